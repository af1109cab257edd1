"""CSV and tab-separated text: UTF-8 (with or without BOM), UTF-16 (BOM), GBK/GB18030, or an explicit encoding.

The encoding is detected from the first megabyte and then checked over the whole file before a row is read, so
that a file in the wrong encoding is refused with the row of the first bad byte, never half imported.
"""
from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..errors import ImportFileError
from .base import Source, add_rows, check_header

_BLOCK = 1 << 20


def detect_encoding(path) -> str:
    """The encoding of a text file (sampling.readers.detect_encoding when present, same rules otherwise)."""
    try:
        from sampling.readers import detect_encoding as _detect
    except ImportError:  # pragma: no cover - the sampling reader is part of the project
        _detect = None
    if _detect is not None:
        from sampling.errors import TpaError
        try:
            return _detect(path)
        except TpaError as exc:
            raise ImportFileError(exc.message, code="unknown_encoding", file=path, fix=exc.fix) from None
    with open(path, "rb") as fh:  # pragma: no cover
        head = fh.read(_BLOCK)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for enc in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(enc)().decode(head, final=len(head) < _BLOCK)
            return enc
        except UnicodeDecodeError:
            continue
    raise ImportFileError("cannot tell the text encoding of this file", code="unknown_encoding", file=path,
                          fix="save it as CSV UTF-8, or give --encoding gbk")


def check_encoding(path, encoding: str) -> None:
    """Decode the whole file (streaming, C speed); on the first bad byte name its row and the fix."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise ImportFileError(f"unknown encoding {encoding!r}", code="unknown_encoding", file=path,
                              fix="use utf-8, utf-8-sig, gbk, gb18030 or utf-16") from None
    line = 1
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_BLOCK)
            final = len(block) < _BLOCK
            try:
                decoder.decode(block, final=final)
            except UnicodeDecodeError as exc:
                line += block[:max(exc.start, 0)].count(b"\n")
                other = "GBK/GB18030" if encoding.lower().replace("-", "").startswith("utf") else "UTF-8"
                raise ImportFileError(
                    f"the file is not valid {encoding} text: byte 0x{block[exc.start]:02x} cannot be read",
                    code="bad_encoding", file=path, row=line,
                    fix=f"the file is probably in another encoding ({other}); save it as CSV UTF-8 "
                        f"(Excel: 另存为 → CSV UTF-8), or give the right one with --encoding") from None
            line += block.count(b"\n")
            if final:
                break


def sniff_separator(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


class TextSource(Source):
    """A delimited text table read from a path or from bytes of an archive member."""

    def __init__(self, path: Path, *, encoding=None, data: bytes | None = None, main_name: str = "main",
                 fmt: str = "csv", label: str | None = None, sentinels=()):
        super().__init__(path=Path(path), format=fmt, main_name=main_name)
        self._data = data
        self._label = label or str(path)
        self._sentinels = list(sentinels)
        if data is None:
            size = self.path.stat().st_size
            if size == 0:
                raise ImportFileError("the file is empty (0 bytes)", code="empty_file", file=path,
                                      fix="export the questionnaire data again; the copy may have failed")
            enc = encoding or detect_encoding(self.path)
            check_encoding(self.path, enc)
            with open(self.path, "rb") as fh:
                head = fh.read(64 * 1024)
                fh.seek(max(0, size - 4))
                tail = fh.read()
            if not tail.rstrip(b"\x00").endswith((b"\n", b"\r", b"\n\x00")):
                self.warnings.append(f"{self.path.name}: the last line has no line end; if the file was cut off "
                                     "during copying its last row is incomplete (check the last row)")
        else:
            enc = encoding or _detect_bytes(data, path)
            try:
                data.decode(enc)
            except UnicodeDecodeError as exc:
                raise ImportFileError(f"{main_name} is not valid {enc} text", code="bad_encoding", file=path,
                                      row=data[:exc.start].count(b"\n") + 1,
                                      fix="export the archive again, or give the encoding with --encoding") from None
            head = data[:64 * 1024]
        # Python's utf-16 codec strips the BOM; utf-8-sig too.
        self.encoding = enc
        text_head = head.decode(enc, errors="replace")
        if text_head.startswith("\ufeff"):
            text_head = text_head[1:]
        lines = text_head.splitlines()
        if not lines or not lines[0].strip():
            raise ImportFileError("the file has no header row", code="empty_file", file=self._label,
                                  fix="the first line must hold the variable names (see `tpa codebook show`)")
        self.sep = sniff_separator(lines[0])
        try:
            header = next(csv.reader([lines[0]], delimiter=self.sep))
        except csv.Error as exc:
            raise ImportFileError(f"the header line cannot be read: {exc}", code="malformed_csv",
                                  file=self._label, row=1, fix="check the quotes on the first line") from None
        self.columns = check_header(header, self._label, main_name)
        self.head_rows = []
        for ln in lines[1:11]:
            try:
                self.head_rows.append(next(csv.reader([ln], delimiter=self.sep)))
            except (csv.Error, StopIteration):
                break

    def _open(self):
        if self._data is not None:
            return io.BytesIO(self._data)
        return open(self.path, "rb")

    def _main_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        first = 2
        na = [""] + self._sentinels
        with self._open() as fh:
            try:
                reader = pd.read_csv(fh, encoding=self.encoding, sep=self.sep, dtype=str, keep_default_na=False,
                                     na_values=na, chunksize=chunk_rows, skip_blank_lines=False,
                                     header=0, names=self.columns, engine="c", quoting=csv.QUOTE_MINIMAL)
                for chunk in reader:
                    chunk = chunk.reset_index(drop=True)
                    for col in chunk.columns:
                        if chunk[col].dtype == object or pd.api.types.is_string_dtype(chunk[col].dtype):
                            chunk[col] = chunk[col].str.strip()
                    add_rows(chunk, first)
                    first += len(chunk)
                    yield chunk
            except pd.errors.ParserError as exc:
                raise ImportFileError(f"the table is malformed: {exc}", code="malformed_csv", file=self._label,
                                      fix="check the quotes and the number of separators on the line named "
                                          "(a field with a comma must be in double quotes)") from None
            except UnicodeDecodeError as exc:  # pragma: no cover - checked before reading
                raise ImportFileError(f"the file is not valid {self.encoding} text: {exc.reason}",
                                      code="bad_encoding", file=self._label,
                                      fix="give the right encoding with --encoding") from None
            except pd.errors.EmptyDataError:
                return

    def read_all(self) -> pd.DataFrame:
        parts = list(self.iter_main(1 << 30))
        if not parts:
            return pd.DataFrame(columns=["_row"] + self.columns)
        return pd.concat(parts, ignore_index=True)


def _detect_bytes(data: bytes, path) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    for enc in ("utf-8", "gb18030"):
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    raise ImportFileError("cannot tell the text encoding of a table in the archive", code="unknown_encoding",
                          file=path, fix="give the encoding with --encoding")
