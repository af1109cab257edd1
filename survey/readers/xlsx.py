"""XLSX workbooks: the first sheet is the main table, other sheets are repeat tables (e.g. the roster).

Formula cells are read as the values Excel stored with them and never evaluated. A formula without a stored value
(a workbook written by a program and never opened in Excel), merged cells and title rows above the header make the
file unreadable as a table: it is refused with the cell named and the fix. Rows are streamed (openpyxl read-only).
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..errors import ImportFileError
from .base import ROW, Source, add_rows, check_header

_MERGE = re.compile(rb'<mergeCell\s+ref="([A-Z]+[0-9]+(?::[A-Z]+[0-9]+)?)"')
_CELL = re.compile(rb'<c\b([^>]*?)(?:/>|>(.*?)</c>)', re.S)
_REF = re.compile(rb'\br="([A-Z]+[0-9]+)"')


def _sheet_xml_checks(zf: zipfile.ZipFile, member: str, path, title: str) -> None:
    xml = zf.read(member)
    merged = _MERGE.findall(xml)
    if merged:
        refs = ", ".join(m.decode() for m in merged[:5]) + (" …" if len(merged) > 5 else "")
        raise ImportFileError(
            f"sheet {title!r} has merged cells ({refs}); a merged cell has one value for several rows or "
            "columns, so rows cannot be told apart", code="merged_cells", file=path, column=merged[0].decode(),
            fix="select the sheet, unmerge the cells (取消合并单元格), fill each cell with its own value and "
                "keep one header row of variable names on row 1")
    if b"<f" not in xml:
        return
    for attrs, body in _CELL.findall(xml):
        if not body or b"<f" not in body:
            continue
        v = re.search(rb"<v>(.*?)</v>", body, re.S)
        if v is None or v.group(1).strip() == b"":
            ref = _REF.search(attrs)
            cell = ref.group(1).decode() if ref else "?"
            raise ImportFileError(
                f"sheet {title!r}, cell {cell} holds a formula without a stored value; formulas are never "
                "evaluated on import", code="formula_without_value", file=path, column=cell,
                fix="open the workbook in Excel or WPS and save it (the values are then stored), or replace the "
                    "formulas by their values (复制 → 选择性粘贴 → 数值)")


# Workbooks up to this size are read with calamine (Rust; 7-20x faster than openpyxl, but it holds a whole sheet
# in memory); larger ones are streamed row by row with openpyxl, so memory stays bounded.
CALAMINE_MAX_BYTES = 16 << 20


class XlsxSource(Source):
    def __init__(self, path: Path):
        super().__init__(path=Path(path), format="xlsx")
        if not zipfile.is_zipfile(self.path):
            raise ImportFileError("this is not an XLSX workbook (not a zip container): the file is damaged, "
                                  "truncated, or an old .xls / a CSV with the wrong extension",
                                  code="corrupt_file", file=path,
                                  fix="open it in Excel or WPS and save it as .xlsx, or export it again")
        self._wb = None
        try:
            if self.path.stat().st_size <= CALAMINE_MAX_BYTES and _calamine() is not None:
                sheets = self._open_calamine()
            else:
                sheets = self._open_openpyxl()
        except ImportFileError:
            raise
        except Exception as exc:  # damaged workbooks raise many library errors
            raise ImportFileError(f"cannot read this workbook: {type(exc).__name__}: {exc}",
                                  code="corrupt_file", file=path,
                                  fix="open it in Excel or WPS, save it again as .xlsx, or export it again") from None
        self._sheets = sheets
        main = sheets[0]
        self.main_name = main.title
        self._main = main
        header, self.head_rows = self._header(main)
        self.columns = check_header(header, path, self.main_name)
        self._repeats_read = False

    def _open_openpyxl(self) -> list:
        import openpyxl

        self._wb = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        sheets = list(self._wb.worksheets)
        with zipfile.ZipFile(self.path) as zf:
            for ws in sheets:
                member = getattr(ws, "_worksheet_path", None)
                if member:
                    _sheet_xml_checks(zf, member, self.path, ws.title)
        return sheets

    def _open_calamine(self) -> list:
        wb = _calamine().from_path(str(self.path))
        with zipfile.ZipFile(self.path) as zf:
            members = _sheet_members(zf)
            names = [n for n in wb.sheet_names if n in members] or list(wb.sheet_names)
            for name in names:
                if name in members:
                    _sheet_xml_checks(zf, members[name], self.path, name)
        return [_CalamineSheet(wb, name) for name in names]

    def repeats(self) -> dict[str, pd.DataFrame]:
        # Read on first use: opening a workbook only to look at its columns (pairing files) must not parse the
        # roster sheet, the costliest part of a workbook.
        if not self._repeats_read:
            self._repeats_read = True
            for ws in self._sheets[1:]:
                h, _ = self._header(ws)
                if not any(h):
                    continue
                title = ws.title
                self.repeat_tables.setdefault(title, self._read_whole(ws, check_header(h, self.path, title)))
                self.repeat_files.setdefault(title, title)
        return super().repeats()

    @staticmethod
    def _trim(row) -> list:
        row = list(row)
        while row and (row[-1] is None or (isinstance(row[-1], str) and not row[-1].strip())):
            row.pop()
        return row

    def _header(self, ws):
        rows = _iter_rows(ws)
        header = self._trim(next(rows, ()) or ())
        head = []
        for row in rows:
            head.append(["" if v is None else str(v) for v in row])
            if len(head) >= 10:
                break
        return header, head

    def _rows(self, ws, width: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
        cols = self._columns_for(ws, width)
        buf, first, rownum = [], 2, 1
        pending_blank = []
        rows = _iter_rows(ws)
        next(rows, None)                       # the header
        for row in rows:
            rownum += 1
            vals = list(row[:width]) + [None] * (width - len(row[:width]))
            vals = [None if isinstance(v, str) and not v.strip() else v for v in vals]
            if all(v is None for v in vals):
                pending_blank.append(vals)   # trailing blank rows are dropped, inner ones kept
                continue
            if pending_blank:
                buf.extend(pending_blank)
                pending_blank = []
            buf.append(vals)
            if len(buf) >= chunk_rows:
                yield add_rows(pd.DataFrame(buf, columns=cols, dtype=object), first)
                first += len(buf)
                buf = []
        if buf:
            yield add_rows(pd.DataFrame(buf, columns=cols, dtype=object), first)

    def _columns_for(self, ws, width):
        header, _ = self._header(ws)
        header = list(header[:width]) + [None] * (width - len(header[:width]))
        return [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]

    def _read_whole(self, ws, names) -> pd.DataFrame:
        parts = list(self._rows(ws, len(names), 1 << 30))
        if not parts:
            return pd.DataFrame(columns=[ROW] + names)
        frame = pd.concat(parts, ignore_index=True)
        frame.columns = [ROW] + names
        return frame

    def _main_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        for frame in self._rows(self._main, len(self.columns), chunk_rows):
            frame.columns = [ROW] + self.columns
            yield frame

    def close(self) -> None:
        try:
            if self._wb is not None:
                self._wb.close()
        except Exception:  # pragma: no cover
            pass


def _calamine():
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:  # pragma: no cover - a declared dependency; openpyxl still reads everything
        return None
    return CalamineWorkbook


class _CalamineSheet:
    """A sheet read by calamine, loaded on first use."""

    def __init__(self, wb, name: str):
        self.wb, self.title, self._rows = wb, name, None

    def rows(self) -> list:
        if self._rows is None:
            self._rows = self.wb.get_sheet_by_name(self.title).to_python(skip_empty_area=False)
        return self._rows


def _iter_rows(ws):
    """Cell values row by row, as openpyxl gives them: None for an empty cell, whole numbers as int."""
    if not isinstance(ws, _CalamineSheet):
        yield from ws.iter_rows(values_only=True)
        return
    for row in ws.rows():
        yield tuple(None if v == "" else int(v) if type(v) is float and v.is_integer() and abs(v) < 2 ** 53 else v
                    for v in row)


def _sheet_members(zf: zipfile.ZipFile) -> dict:
    """{sheet name: zip member of its XML} from the workbook's relationships."""
    import posixpath
    import xml.etree.ElementTree as ET

    ns_main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    ns_rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
    try:
        book = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ET.ParseError):
        return {}
    target = {r.get("Id"): r.get("Target", "") for r in rels}
    out = {}
    for sh in book.iter(f"{ns_main}sheet"):
        t = target.get(sh.get(f"{ns_rel}id"))
        if t:
            out[sh.get("name")] = t.lstrip("/") if t.startswith("/") else posixpath.normpath(posixpath.join("xl", t))
    return out
