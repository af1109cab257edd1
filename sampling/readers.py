"""Reading and writing the tables users hand in: CSV, XLSX, SAV/ZSAV, DTA, Parquet.

Code columns (division codes, household and person IDs, resident ID numbers, phone numbers) are always read as
text: a register read with numeric codes loses leading zeros and, for 18-digit ID numbers, the last digits
(float64 holds 15–16 significant digits). Every failure becomes a ``FrameError`` naming the file and the fix.

The returned DataFrame carries ``df.attrs``: ``source_file``, ``format``, ``encoding`` (CSV), ``sheet`` (XLSX),
``first_data_row`` (the row number a user sees for the first data row: 2 in CSV/XLSX where the header is row 1,
1 in SAV/DTA/Parquet where rows are case numbers) and, for SAV/DTA, ``value_labels`` and ``variable_labels``.
"""
from __future__ import annotations

import codecs
import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FrameError

CODE_COLUMNS = ("household_id", "person_id", "id_number", "head_id_number", "phone")
READ_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".sav": "sav",
                ".zsav": "sav", ".dta": "dta", ".parquet": "parquet", ".pq": "parquet"}
WRITE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx", ".sav": "sav", ".zsav": "sav",
                 ".dta": "dta"}
XLSX_MAX_ROWS = 1_048_575          # Excel's sheet limit minus the header row
_SNIFF_BYTES = 1 << 20


def is_code_column(name, dtype_str=CODE_COLUMNS) -> bool:
    name = str(name)
    return name.endswith("_code") or name in dtype_str


def content_hash(path) -> str:
    """sha256 hex digest of the file's bytes (recorded with every draw, SPEC §5)."""
    path = Path(path)
    check_file(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(path: Path, error=FrameError, *, folder_fix: str = "give the path of the table file inside the folder",
               empty_fix: str = "export the table again; the file may have been truncated by a failed copy") -> None:
    """The file exists, is a file and is not empty; else ``error`` (the calling stage's type) with the fix."""
    if not path.exists():
        raise error("file not found", code="file_not_found", file=path,
                    fix="check the path and the file name (文件不存在，请检查路径)")
    if path.is_dir():
        raise error("this is a folder, not a file", code="not_a_file", file=path, fix=folder_fix)
    if path.stat().st_size == 0:
        raise error("the file is empty (0 bytes)", code="empty_file", file=path, fix=empty_fix)




def detect_encoding(path) -> str:
    """The text encoding of a CSV: 'utf-8-sig' (BOM), 'utf-16' (BOM), 'utf-8', 'gb18030' (for GBK/GB2312/GB18030,
    its superset) or whatever charset-normalizer finds. Raises FrameError when nothing fits."""
    path = Path(path)
    check_file(path)
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    return _detect_from_bytes(head, path, complete=len(head) < _SNIFF_BYTES)


def _detect_from_bytes(head: bytes, path, complete: bool) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        if not _looks_like_misread_gbk(text, head, complete):
            return "utf-8"
        return "gb18030"
    except UnicodeDecodeError:
        pass
    # GBK is what Excel on Chinese Windows writes; try the GB family before asking the detector, which can
    # mistake short GBK text for other CJK code pages.
    try:
        codecs.getincrementaldecoder("gb18030")().decode(head, final=complete)
        return "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise FrameError("cannot tell the text encoding of this file (not UTF-8, not GBK/GB18030)",
                         code="unknown_encoding", file=path,
                         fix="save the file as CSV UTF-8 (Excel: 另存为 → CSV UTF-8) or give the encoding "
                             "explicitly (--encoding)")
    enc = best.encoding.lower().replace("_", "")
    return "gb18030" if enc in ("gb2312", "gbk", "gb18030", "hz") else best.encoding


def _looks_like_misread_gbk(text: str, head: bytes, complete: bool) -> bool:
    """Short GBK text can also be valid UTF-8 (two GBK bytes forming one 2-byte UTF-8 sequence, e.g. "一" =
    D2 BB = Cyrillic "һ"). Real Chinese text in UTF-8 has 3-byte characters; when every non-ASCII character
    decodes from a 2-byte sequence, none is Arabic script (Uyghur and Kazakh names in Xinjiang registers), and
    the bytes read as GB18030 give Chinese characters, the file is GBK."""
    non_ascii = [c for c in text if ord(c) > 127]
    if not non_ascii or any(ord(c) > 0x7FF or 0x600 <= ord(c) <= 0x6FF for c in non_ascii):
        return False
    try:
        gb = codecs.getincrementaldecoder("gb18030")().decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    return any("\u4e00" <= c <= "\u9fff" for c in gb)


def _code_to_text(s: pd.Series) -> pd.Series:
    """A code column as text: integral numbers without '.0', surrounding blanks removed, missing kept missing."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("str")
    if pd.api.types.is_integer_dtype(s):
        out = s.astype("Int64").astype("string")
        return out.astype("str")
    if pd.api.types.is_float_dtype(s):
        vals = s.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(vals)
        integral = finite & (vals == np.round(vals))
        out = np.full(len(vals), np.nan, dtype=object)
        if integral.any():
            out[integral] = np.char.mod("%.0f", vals[integral]).astype(object)
        other = finite & ~integral
        if other.any():
            out[other] = vals[other].astype(str).astype(object)
        return pd.Series(out, index=s.index, name=s.name).astype("str")
    if s.dtype == object:
        def conv(v):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return np.nan
            if isinstance(v, float) and v.is_integer():
                return "%.0f" % v
            return str(v)
        s = s.map(conv)
    return s.astype("str").str.strip()


def _fix_code_columns(df: pd.DataFrame, dtype_str) -> pd.DataFrame:
    for col in df.columns:
        if is_code_column(col, dtype_str):
            df[col] = _code_to_text(df[col])
    return df


def read_table(path, *, encoding=None, sheet=None, dtype_str=CODE_COLUMNS, header_row: int = 1,
               columns=None) -> pd.DataFrame:
    """Read a table file into a DataFrame; the format comes from the extension.

    encoding: CSV text encoding (detected when None; an explicit one wins) or SAV/DTA character set for old
    files. sheet: XLSX sheet name or 0-based index (default the first). header_row: 1-based row of the column
    names in CSV/XLSX (registers often carry title rows above it). columns: read only these columns.
    """
    path = Path(path)
    fmt = READ_FORMATS.get(path.suffix.lower())
    if fmt is None:
        if path.suffix.lower() == ".xls":
            fix = "open it in Excel or WPS and save it as .xlsx (另存为 Excel 工作簿)"
        else:
            fix = "give a .csv, .xlsx, .sav, .zsav, .dta or .parquet file"
        raise FrameError(f"unsupported file type {path.suffix or '(no extension)'!r}", code="unknown_format",
                         file=path, fix=fix)
    check_file(path)
    reader = {"csv": _read_csv, "xlsx": _read_xlsx, "sav": _read_stat, "dta": _read_stat,
              "parquet": _read_parquet}[fmt]
    try:
        df = reader(path, encoding=encoding, sheet=sheet, dtype_str=dtype_str, header_row=header_row,
                    columns=columns)
    except FrameError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # corrupt or truncated files surface as many library-specific exceptions
        if columns is not None and isinstance(exc, (KeyError, ValueError)) and "not" in str(exc).lower():
            raise FrameError(f"column(s) asked for are not in the file: {exc}", code="missing_column", file=path,
                             fix="check the column names (they are case- and space-sensitive)") from exc
        raise FrameError(f"cannot read this {fmt.upper()} file: {type(exc).__name__}: {exc}",
                         code="corrupt_file", file=path,
                         fix=f"check that the file really is {fmt.upper()} and is complete; export it again") from exc
    df.attrs.setdefault("source_file", str(path))
    df.attrs["format"] = fmt
    return df


def _read_csv(path, *, encoding, sheet, dtype_str, header_row, columns):
    enc = encoding or detect_encoding(path)
    try:
        codecs.lookup(enc)
    except LookupError:
        raise FrameError(f"unknown encoding {enc!r}", code="unknown_encoding", file=path,
                         fix="use utf-8, utf-8-sig, gbk or gb18030") from None
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    try:
        first_line = head.decode(enc, errors="replace").splitlines()[header_row - 1] if head else ""
    except IndexError:
        first_line = ""
    sep = "\t" if first_line.count("\t") > first_line.count(",") else ","
    skip = header_row - 1
    try:
        header = pd.read_csv(path, encoding=enc, sep=sep, nrows=0, skiprows=skip)
        names = [str(c) for c in header.columns]
        dtype = {c: "str" for c in names if is_code_column(c, dtype_str)}
        df = pd.read_csv(path, encoding=enc, sep=sep, skiprows=skip, dtype=dtype, usecols=columns,
                         low_memory=False)
    except UnicodeDecodeError as exc:
        raise FrameError(f"the file is not valid {enc} text (byte {exc.start} of a block: {exc.reason})",
                         code="bad_encoding", file=path,
                         fix="save the file as CSV UTF-8, or give the right encoding (--encoding gbk)") from exc
    except pd.errors.EmptyDataError as exc:
        raise FrameError("the file has no header row", code="empty_file", file=path,
                         fix="the first row must hold the column names") from exc
    except pd.errors.ParserError as exc:
        raise FrameError(f"the CSV is malformed: {exc}", code="malformed_csv", file=path,
                         fix="check quoting and the number of separators on the row named") from exc
    df.columns = [str(c).strip() for c in df.columns]
    df = _fix_code_columns(df, dtype_str)
    df.attrs.update(encoding=enc, first_data_row=header_row + 1, separator=sep)
    return df


def _read_xlsx(path, *, encoding, sheet, dtype_str, header_row, columns):
    import zipfile

    import openpyxl

    if not zipfile.is_zipfile(path):
        raise FrameError("this is not an XLSX workbook (not a zip container)", code="corrupt_file", file=path,
                         fix="if it is an old .xls or a CSV renamed to .xlsx, open it in Excel/WPS and save as .xlsx")
    # data_only: cached values; formulas are never evaluated (a workbook saved by a non-Excel tool may have none)
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        names = wb.sheetnames
        if sheet is None:
            ws = wb[names[0]]
        elif isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
            idx = int(sheet)
            if not 0 <= idx < len(names):
                raise FrameError(f"the workbook has no sheet number {idx}", code="no_sheet", file=path,
                                 fix=f"sheets are {names} (numbered from 0)")
            ws = wb[names[idx]]
        else:
            if sheet not in names:
                raise FrameError(f"the workbook has no sheet {sheet!r}", code="no_sheet", file=path,
                                 fix=f"use one of {names}")
            ws = wb[sheet]
        rows = ws.iter_rows(values_only=True)
        header = None
        for i, row in enumerate(rows, start=1):
            if i == header_row:
                header = row
                break
        if header is None or all(v is None for v in header):
            raise FrameError(f"sheet {ws.title!r} has no header row at row {header_row}", code="empty_file",
                             file=path, fix="the column names must be on the first row of the sheet")
        width = len(header)
        while width and header[width - 1] is None:
            width -= 1
        cols = [str(v).strip() if v is not None else f"Unnamed: {j}" for j, v in enumerate(header[:width])]
        data = [r[:width] for r in rows]
        sheet_title = ws.title
    finally:
        wb.close()
    # trailing blank rows are common in hand-kept sheets
    while data and all(v is None for v in data[-1]):
        data.pop()
    df = pd.DataFrame(data, columns=cols) if data else pd.DataFrame(columns=cols)
    for col in df.columns:
        if is_code_column(col, dtype_str):
            df[col] = _code_to_text(df[col].astype(object))
        elif df[col].dtype == object:
            inferred = pd.api.types.infer_dtype(df[col], skipna=True)
            if inferred in ("integer", "floating", "mixed-integer-float"):
                df[col] = pd.to_numeric(df[col])
            elif inferred in ("datetime", "datetime64", "date"):
                df[col] = pd.to_datetime(df[col], errors="coerce")
            elif inferred == "string":
                df[col] = df[col].astype("str")
    if columns is not None:
        df = df[list(columns)]
    df.attrs.update(sheet=sheet_title, first_data_row=header_row + 1)
    return df


def _read_stat(path, *, encoding, sheet, dtype_str, header_row, columns):
    import pyreadstat

    fn = pyreadstat.read_dta if path.suffix.lower() == ".dta" else pyreadstat.read_sav
    kwargs = {"usecols": list(columns) if columns is not None else None}
    if encoding:
        kwargs["encoding"] = encoding
    try:
        df, meta = fn(str(path), **kwargs)
    except pyreadstat.ReadstatError as exc:
        raise FrameError(f"cannot read this file: {exc}", code="corrupt_file", file=path,
                         fix="check the file is complete; for old SPSS files give the encoding (--encoding gbk)") from exc
    df = _fix_code_columns(df, dtype_str)
    df.attrs.update(first_data_row=1, value_labels=dict(meta.variable_value_labels or {}),
                    variable_labels={k: v for k, v in zip(meta.column_names, meta.column_labels or []) if v})
    return df


def _read_parquet(path, *, encoding, sheet, dtype_str, header_row, columns):
    df = pd.read_parquet(path, columns=list(columns) if columns is not None else None)
    df = _fix_code_columns(df, dtype_str)
    df.attrs["first_data_row"] = 1
    return df


# ---------------------------------------------------------------------------------------------------------------
def write_table(df: pd.DataFrame, path, *, value_labels=None, variable_labels=None, bom: bool = False) -> Path:
    """Write a table; the format comes from the extension (.csv UTF-8, .parquet, .xlsx, .sav/.zsav, .dta).

    value_labels: {column: {code: label}} and variable_labels: {column: label}, written to SAV/DTA (ignored
    elsewhere). bom: write a UTF-8 BOM in CSV so that Excel on Chinese Windows opens it correctly.
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FrameError(f"cannot write files of type {path.suffix or '(no extension)'!r}", code="unknown_format",
                         file=path, fix="use .csv, .parquet, .xlsx, .sav or .dta")
    if fmt == "xlsx" and len(df) > XLSX_MAX_ROWS:
        raise FrameError(f"{len(df):,} rows do not fit in one Excel sheet (limit {XLSX_MAX_ROWS:,})",
                         code="too_many_rows", file=path, fix="write Parquet or CSV for tables of this size")
    path.parent.mkdir(parents=True, exist_ok=True)
    if df.attrs:
        df = df.copy(deep=False)      # Parquet would try to store attrs as JSON metadata
        df.attrs = {}
    tmp = path.with_name(path.name + ".part")
    try:
        if fmt == "csv":
            _write_csv(df, tmp, bom)
        elif fmt == "parquet":
            df.to_parquet(tmp, index=False)
        elif fmt == "xlsx":
            _write_xlsx(df, tmp)
        else:
            _write_stat(df, tmp, fmt, path.suffix.lower() == ".zsav", value_labels, variable_labels)
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    return path


def _write_csv(df, path, bom: bool) -> None:
    """UTF-8 CSV through Arrow (10× faster than pandas on large tables); pandas for what Arrow cannot type."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        df.to_csv(path, index=False, encoding="utf-8-sig" if bom else "utf-8")
        return
    with open(path, "wb") as fh:
        if bom:
            fh.write(codecs.BOM_UTF8)
        pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(quoting_style="needed"))


def _write_xlsx(df, path):
    import xlsxwriter

    # constant_memory streams rows; strings_to_numbers off keeps codes as text cells
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "nan_inf_to_errors": False})
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, [str(c) for c in df.columns])
    cols = []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            vals = [None if pd.isna(v) else v.to_pydatetime() for v in s]
        elif pd.api.types.is_float_dtype(s):
            arr = s.to_numpy(dtype=float, na_value=np.nan)
            vals = np.where(np.isfinite(arr), arr, np.nan).astype(object)
            vals[~np.isfinite(arr)] = None
            vals = vals.tolist()
        else:
            vals = s.astype(object).where(s.notna(), None).tolist()   # Python scalars, None for missing
        cols.append(vals)
    # a datetime needs a number format, or Excel (and any reader) shows the serial number
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    date_cols = [j for j, c in enumerate(df.columns) if pd.api.types.is_datetime64_any_dtype(df[c])]
    write_row = ws.write_row
    for i, row in enumerate(zip(*cols), start=1):
        write_row(i, 0, row)
        for j in date_cols:
            if row[j] is not None:
                ws.write_datetime(i, j, row[j], date_fmt)
    wb.close()


def _write_stat(df, path, fmt, compress, value_labels, variable_labels):
    import pyreadstat

    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
            out[c] = s.astype(object).where(s.notna(), "")
        elif pd.api.types.is_bool_dtype(s):
            out[c] = s.astype(float)
        elif pd.api.types.is_extension_array_dtype(s) and pd.api.types.is_numeric_dtype(s):
            out[c] = s.astype("float64")
        else:
            out[c] = s
    labels = {c: variable_labels.get(c) for c in out.columns} if variable_labels else None
    col_labels = [labels.get(c) or "" for c in out.columns] if labels else None
    # pyreadstat wants label keys of the column's own type
    vl = {c: {int(k) if pd.api.types.is_integer_dtype(out[c]) or fmt == "dta" else float(k): v
              for k, v in m.items()}
          for c, m in (value_labels or {}).items() if c in out.columns}
    if fmt == "sav":
        pyreadstat.write_sav(out, str(path), column_labels=col_labels, variable_value_labels=vl or None,
                             compress=compress)
    else:
        # Stata attaches value labels to integer variables only
        for c in vl:
            if pd.api.types.is_float_dtype(out[c]) and out[c].notna().all():
                out[c] = out[c].astype("int64")
        pyreadstat.write_dta(out, str(path), column_labels=col_labels, variable_value_labels=vl or None)
