"""SPSS (.sav, .zsav) and Stata (.dta) files through pyreadstat, read in chunks.

Value labels are kept (``Source.value_labels``) and the codes stay codes. User-defined missing values (SPSS
missing values and ranges, Stata's .a–.z) are kept distinct from system missing: the cell becomes missing for
analysis and the code is kept in ``_user_missing`` ({variable: code}, JSON) on the same row, so that "refused"
(-8) is never confused with "not asked" (blank).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..errors import ImportFileError
from .base import USER_MISSING, Source, add_rows, check_header, check_long_cells


def _reader(fmt: str):
    import pyreadstat

    return pyreadstat.read_dta if fmt == "dta" else pyreadstat.read_sav


def _fail(path, fmt, exc) -> ImportFileError:
    what = "Stata" if fmt == "dta" else "SPSS"
    text = str(exc)
    if "expected number of rows" in text or "truncated" in text:
        msg = f"the {what} file is truncated: it holds fewer rows than its header announces"
    else:
        msg = f"cannot read this {what} file: {text or type(exc).__name__}"
    return ImportFileError(msg, code="corrupt_file", file=path,
                           fix="the file is damaged or was cut off during copying; export it again from "
                               f"{what} (or ask the field team for the original file)")


class StatSource(Source):
    def __init__(self, path: Path, fmt: str, *, encoding=None, sentinels_numeric=(), sentinels_text=()):
        super().__init__(path=Path(path), format=fmt)
        self._kwargs = {"user_missing": True}
        if encoding:
            self._kwargs["encoding"] = encoding
        self.encoding = encoding
        self._num_sentinels = list(sentinels_numeric)
        self._text_sentinels = list(sentinels_text)
        if self.path.stat().st_size == 0:
            raise ImportFileError("the file is empty (0 bytes)", code="empty_file", file=path,
                                  fix="export the questionnaire data again; the copy may have failed")
        try:
            _, meta = _reader(fmt)(str(self.path), metadataonly=True, **self._kwargs)
        except Exception as exc:  # pyreadstat raises ReadstatError / PyreadstatError / OSError / UnicodeError
            raise _fail(self.path, fmt, exc) from None
        self.meta = meta
        self.columns = check_header(list(meta.column_names), self.path)
        self.value_labels = {k: {_key(c): str(v) for c, v in m.items()}
                             for k, m in (meta.variable_value_labels or {}).items()}
        ranges = dict(getattr(meta, "missing_ranges", None) or {})
        self._ranges = {k: [(r["lo"], r["hi"]) for r in v] for k, v in ranges.items()}
        self.user_missing = {k: [lo if lo == hi else [lo, hi] for lo, hi in v] for k, v in self._ranges.items()}
        for k, v in (getattr(meta, "missing_user_values", None) or {}).items():
            self.user_missing.setdefault(k, list(v))
        n = getattr(meta, "number_rows", None)
        self.n_rows_hint = int(n) if n is not None and n >= 0 else None
        self._fast = None
        if fmt == "sav":
            from .sav_fast import fast_sav_layout
            self._fast = fast_sav_layout(self.path, meta.column_names)
            self._formats = dict(getattr(meta, "original_variable_types", None) or {})
            self._file_encoding = encoding or getattr(meta, "file_encoding", None) or "utf-8"

    def chunk_refs(self, chunk_rows: int) -> "list[SavChunk] | Iterator[SavChunk] | None":
        """SPSS files this module decodes itself come as chunks any process can load: an uncompressed file's
        chunks name their cases (a list, known in advance: any process reads any of them), a compressed file's
        carry the decompressed cases (an iterator: the file is decompressed in order)."""
        from .sav_fast import complete_cases

        if self._fast is None:
            return None
        if complete_cases(self.path, self._fast) is not None:
            return list(self._sav_chunks(chunk_rows))
        return self._sav_chunks(chunk_rows)

    def _sav_chunks(self, chunk_rows: int) -> Iterator["SavChunk"]:
        from .sav_fast import complete_cases, iter_cases

        lay = self._fast
        dec = _SavDecoder(path=self.path, layout=lay, encoding=self._file_encoding, formats=self._formats,
                          columns=list(self.columns), missing=self._missing_rules())
        whole = complete_cases(self.path, lay)
        if whole is not None:
            if whole != lay.ncases:      # fewer: cut off; more: rows the header does not count (not dropped)
                raise self._truncated(whole)
            for first in range(0, lay.ncases, chunk_rows):
                yield SavChunk(dec, first, min(chunk_rows, lay.ncases - first))
            return
        first = 0
        try:
            for mat in iter_cases(self.path, lay, chunk_rows):
                yield SavChunk(dec, first, len(mat), mat)
                first += len(mat)
        except ValueError as exc:
            raise _fail(self.path, self.format, exc) from None
        if self.n_rows_hint is not None and first != self.n_rows_hint:
            raise self._truncated(first)

    def _truncated(self, got: int) -> ImportFileError:
        what = "truncated" if got < (self.n_rows_hint or 0) else "damaged"
        return ImportFileError(f"the SPSS file is {what}: its header announces {self.n_rows_hint:,} rows but "
                               f"{got:,} could be read", code="corrupt_file", file=self.path,
                               fix="the file is damaged or was cut off during copying; export it again from SPSS")

    def _missing_rules(self) -> "_MissingRules":
        return _MissingRules(ranges=self._ranges, format=self.format, numeric=tuple(self._num_sentinels),
                             text=tuple(self._text_sentinels))

    def _main_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        if self._fast is not None:
            for ref in self._sav_chunks(chunk_rows):
                yield ref.decode()
            return
        read = _reader(self.format)
        first, total = 1, 0
        offset = 0
        while True:
            try:
                chunk, _ = read(str(self.path), row_offset=offset, row_limit=chunk_rows, **self._kwargs)
            except Exception as exc:
                raise _fail(self.path, self.format, exc) from None
            if len(chunk) == 0:
                break
            chunk = chunk.reset_index(drop=True)
            chunk.columns = self.columns
            self._missing(chunk)
            # SAV/DTA rows are case numbers: the first case is row 1 (as SPSS/Stata's data view shows it)
            add_rows(chunk, first)
            first += len(chunk)
            total += len(chunk)
            offset += len(chunk)
            yield chunk
            if len(chunk) < chunk_rows:
                break
        if self.n_rows_hint is not None and total != self.n_rows_hint:
            raise ImportFileError(f"the file announces {self.n_rows_hint:,} rows but {total:,} could be read",
                                  code="corrupt_file", file=self.path,
                                  fix="the file is damaged or truncated; export it again")

    def _missing(self, chunk: pd.DataFrame) -> None:
        self._missing_rules().apply(chunk)

    def close(self) -> None:
        if self._fast is not None:
            from .sav_fast import release_buffers
            release_buffers()


@dataclass(frozen=True)
class _MissingRules:
    """User-defined missing codes (moved out of the data into ``_user_missing``) and sentinels (missing)."""
    ranges: dict
    format: str
    numeric: tuple = ()
    text: tuple = ()

    def apply(self, chunk: pd.DataFrame) -> None:
        found = {}
        for col, ranges in self.ranges.items():
            if col not in chunk.columns:
                continue
            s = chunk[col]
            if pd.api.types.is_numeric_dtype(s.dtype):
                v = s.to_numpy(dtype="float64", na_value=np.nan)
                mask = np.zeros(len(v), dtype=bool)
                for lo, hi in ranges:
                    mask |= (v >= lo) & (v <= hi)
            else:
                vals = {str(lo) for lo, hi in ranges} | {str(hi) for lo, hi in ranges}
                mask = s.astype(str).isin(vals).to_numpy() & s.notna().to_numpy()
            if mask.any():
                found[col] = (mask, s.to_numpy(dtype=object))
                chunk[col] = s.where(~mask)
        for col in chunk.columns:
            s = chunk[col]
            if s.dtype == object and self.format == "dta":
                # Stata extended missing values (.a–.z) come back as letters in a numeric column
                letters = s.map(lambda x: isinstance(x, str) and len(x) == 1 and x.isalpha()).to_numpy(dtype=bool)
                if letters.any():
                    others = s[~letters]
                    if others.map(lambda x: x is None or isinstance(x, (int, float, np.number))).all():
                        found[col] = (letters, ("." + s.astype(str)).to_numpy(dtype=object))
                        chunk[col] = pd.to_numeric(s.where(~letters), errors="coerce")
            if self.numeric and pd.api.types.is_numeric_dtype(chunk[col].dtype):
                v = chunk[col]
                chunk[col] = v.where(~v.isin(list(self.numeric)))
            elif self.text and not pd.api.types.is_numeric_dtype(chunk[col].dtype):
                v = chunk[col]
                chunk[col] = v.where(~v.isin(list(self.text)))
        if found or self.ranges:
            chunk[USER_MISSING] = _user_missing_json(found, len(chunk))


@dataclass(frozen=True)
class _SavDecoder:
    path: Path
    layout: object
    encoding: str
    formats: dict
    columns: list
    missing: _MissingRules


@dataclass
class SavChunk:
    """A chunk of an SPSS file that any process can load: it names its cases by their place in an uncompressed
    file (small: whoever checks it reads them) or carries a compressed file's decompressed cases."""
    decoder: _SavDecoder
    first: int                          # 0-based case number of its first row
    nrows: int
    units: np.ndarray | None = None     # decompressed cases; None: read from the file

    def decode(self) -> pd.DataFrame:
        """The chunk as ``iter_main``'s raw chunks are (before the over-long cell check)."""
        from .sav_fast import decode, read_cases

        d = self.decoder
        try:
            mat = self.units if self.units is not None else read_cases(d.path, d.layout, self.first, self.nrows)
            chunk = decode(mat, d.layout, d.encoding, d.formats)
        except (ValueError, LookupError, OSError) as exc:
            raise _fail(d.path, "sav", exc) from None
        chunk.columns = d.columns
        d.missing.apply(chunk)
        # SAV/DTA rows are case numbers: the first case is row 1 (as SPSS/Stata's data view shows it)
        return add_rows(chunk, self.first + 1)

    def load(self) -> pd.DataFrame:
        """The chunk exactly as ``Source.iter_main`` yields it."""
        chunk = self.decode()
        check_long_cells(chunk, self.decoder.path, "main")
        return chunk


def _user_missing_json(found: dict, n: int) -> np.ndarray:
    any_mask = np.zeros(n, dtype=bool)
    for mask, _ in found.values():
        any_mask |= mask
    out = np.full(n, None, dtype=object)
    for i in np.flatnonzero(any_mask):
        out[i] = json.dumps({col: _plain(vals[i]) for col, (mask, vals) in found.items() if mask[i]},
                            ensure_ascii=False)
    return out


def _plain(v):
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return int(f) if f.is_integer() else f
    if isinstance(v, np.integer):
        return int(v)
    return v if isinstance(v, (str, int, float)) or v is None else str(v)


def _key(code):
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)
