"""SPSS (.sav, .zsav) and Stata (.dta) files through pyreadstat, read in chunks.

Value labels are kept (``Source.value_labels``) and the codes stay codes. User-defined missing values (SPSS
missing values and ranges, Stata's .a–.z) are kept distinct from system missing: the cell becomes missing for
analysis and the code is kept in ``_user_missing`` ({variable: code}, JSON) on the same row, so that "refused"
(-8) is never confused with "not asked" (blank).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..errors import ImportFileError
from .base import USER_MISSING, Source, add_rows, check_header


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

    def _fast_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        from .sav_fast import decode, iter_cases

        first = 1
        try:
            for mat in iter_cases(self.path, self._fast, chunk_rows):
                chunk = decode(mat, self._fast, self._file_encoding, self._formats)
                chunk.columns = self.columns
                self._missing(chunk)
                add_rows(chunk, first)
                first += len(chunk)
                yield chunk
        except (ValueError, LookupError) as exc:
            raise _fail(self.path, self.format, exc) from None
        total = first - 1
        if self.n_rows_hint is not None and total != self.n_rows_hint:
            raise ImportFileError(f"the SPSS file is truncated: its header announces {self.n_rows_hint:,} rows but "
                                  f"{total:,} could be read", code="corrupt_file", file=self.path,
                                  fix="the file is damaged or was cut off during copying; export it again from SPSS")

    def _main_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        if self._fast is not None:
            yield from self._fast_chunks(chunk_rows)
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
        """Move user-defined missing codes out of the data into ``_user_missing``; sentinels become missing."""
        found = {}
        for col, ranges in self._ranges.items():
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
            if self._num_sentinels and pd.api.types.is_numeric_dtype(chunk[col].dtype):
                v = chunk[col]
                chunk[col] = v.where(~v.isin(self._num_sentinels))
            elif self._text_sentinels and not pd.api.types.is_numeric_dtype(chunk[col].dtype):
                v = chunk[col]
                chunk[col] = v.where(~v.isin(self._text_sentinels))
        if found or self._ranges:
            chunk[USER_MISSING] = _user_missing_json(found, len(chunk))

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
