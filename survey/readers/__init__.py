"""Readers of questionnaire files: every format a field team's tools export.

    src = open_source(path, encoding=None)      # format from the content (magic bytes), then the extension
    for chunk in src.iter_main(100_000): ...    # main table in chunks, each with ``_row``
    src.repeats()                               # {name: DataFrame} repeat tables (roster), whole
    src.close()

Formats: CSV / tab text (UTF-8, UTF-8 BOM, UTF-16 BOM, GBK/GB18030, or ``encoding=``), XLSX, SPSS SAV/ZSAV,
Stata DTA, an ODK Central / Kobo ZIP, a Survey Solutions ZIP (tab or Stata). Any failure to read is an
ImportFileError naming the file (row, column) and the fix.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ImportFileError
from .base import DEFAULT_CHUNK_ROWS, LINK, MAX_CELL_CHARS, PARENT, ROW, USER_MISSING, Source  # noqa: F401

FORMATS = ("csv", "tab", "xlsx", "sav", "dta", "odk", "survey_solutions")
_SUFFIX = {".csv": "csv", ".txt": "csv", ".tab": "tab", ".tsv": "tab", ".xlsx": "xlsx", ".xlsm": "xlsx",
           ".sav": "sav", ".zsav": "sav", ".dta": "dta", ".zip": "zip"}


def detect_format(path) -> str:
    """csv | tab | xlsx | sav | dta | zip, from the first bytes (a renamed file is still read right)."""
    from sampling.readers import check_file

    path = Path(path)
    check_file(path, ImportFileError,
               folder_fix="give the exported file itself (for a ZIP export, the .zip as downloaded)",
               empty_fix="export the questionnaire data again; the copy may have failed")
    with open(path, "rb") as fh:
        head = fh.read(512)
    by_ext = _SUFFIX.get(path.suffix.lower())
    if head.startswith(b"$FL2") or head.startswith(b"$FL3"):
        return "sav"
    if head.startswith(b"<stata_dta>") or (len(head) > 1 and head[0] in (104, 105, 108, 110, 111, 112, 113, 114, 115)
                                          and head[1] in (1, 2) and by_ext == "dta"):
        return "dta"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if by_ext == "xlsx":
            return "xlsx"
        import zipfile
        try:
            with zipfile.ZipFile(path) as zf:
                if "[Content_Types].xml" in zf.namelist() and any(n.startswith("xl/") for n in zf.namelist()):
                    return "xlsx"
        except zipfile.BadZipFile:
            pass
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError("this is an old Excel .xls workbook", code="unknown_format", file=path,
                              fix="open it in Excel or WPS and save it as .xlsx (另存为 Excel 工作簿), then import "
                                  "the .xlsx")
    if by_ext in ("sav", "dta", "xlsx", "zip"):
        what = {"sav": "SPSS", "dta": "Stata", "xlsx": "XLSX", "zip": "ZIP"}[by_ext]
        raise ImportFileError(f"the file is named {path.suffix} but is not a {what} file (its first bytes do not "
                              "match): it is damaged, or another file was renamed", code="corrupt_file", file=path,
                              fix=f"export the data again as {what}, or give the file its real extension")
    if b"\x00" in head and not (head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff")):
        raise ImportFileError("this is a binary file, not a table", code="unknown_format", file=path,
                              fix="give a .csv, .xlsx, .sav, .zsav, .dta or the .zip export of ODK/Kobo/Survey "
                                  "Solutions")
    return by_ext if by_ext in ("csv", "tab") else "csv"


def open_source(path, *, encoding: str | None = None) -> Source:
    """Open a questionnaire file for import (see the module docstring)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt in ("csv", "tab"):
        from .text import TextSource
        sentinels = ()
        if fmt == "tab":
            from .archive import SUSO_SENTINELS
            sentinels = SUSO_SENTINELS
        return TextSource(path, encoding=encoding, fmt=fmt, label=str(path), sentinels=sentinels,
                          main_name=path.name)
    if fmt == "xlsx":
        from .xlsx import XlsxSource
        return XlsxSource(path)
    if fmt in ("sav", "dta"):
        from .stat import StatSource
        return StatSource(path, fmt, encoding=encoding)
    from .archive import ArchiveSource
    return ArchiveSource(path, encoding=encoding)
