"""The validation report of one imported file: an XLSX workbook in Chinese that a field team can act on.

Sheet 汇总: the file, rows read, accepted, quarantined, duplicates skipped, errors, warnings, and the most frequent
rules. Sheet 问题清单: one line per problem (文件, 行号, 表, 户编码, 字段, 规则, 问题, 发现的值, 如何修改, 严重程度),
frozen header, filter on every column. Written with xlsxwriter in constant-memory mode: 100k problems in seconds.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import SurveyError

PROBLEM_HEADERS = ["文件", "行号", "表", "户编码", "字段", "规则", "问题", "发现的值", "如何修改", "严重程度"]
_WIDTHS = [22, 7, 14, 19, 24, 24, 50, 26, 46, 9]
SEVERITY_ZH = {"error": "错误", "warning": "警告"}
# The last row an XLSX sheet can hold, less the header.
_MAX_ROWS = 1_048_575
_BLOCK = 20_000         # problem lines turned into sheet XML at a time
_SUMMARY_LABELS = [("file", "文件"), ("rows", "读入行数"), ("accepted", "接收"), ("quarantined", "隔离"),
                   ("duplicates_skipped", "重复跳过"), ("errors", "错误数"), ("warnings", "警告数")]
_COUNT_ALIASES = {"read": "rows", "n_rows": "rows", "rows_read": "rows", "skipped": "duplicates_skipped",
                  "duplicates": "duplicates_skipped", "skipped_duplicates": "duplicates_skipped",
                  "n_errors": "errors", "n_warnings": "warnings", "读入行数": "rows", "接收": "accepted",
                  "隔离": "quarantined", "重复跳过": "duplicates_skipped", "错误数": "errors", "警告数": "warnings"}


def _sheet_names(codebook) -> dict[str, str]:
    names = {"main": "主表"}
    if codebook is not None:
        names["main"] = f"主表（{codebook.label_zh}）"
        for g in codebook.repeats.values():
            names[g.name] = g.label_zh
    return names


def _field_labels(codebook) -> dict[tuple[str, str], str]:
    out = {}
    if codebook is None:
        return out
    for table, v in codebook.all_variables():
        out[(table, v.name)] = f"{v.label_zh} [{v.name}]" if v.label_zh else v.name
    for table, v in codebook.all_variables():
        out.setdefault(("main", v.name), f"{v.label_zh} [{v.name}]" if v.label_zh else v.name)
    return out


def write_validation_report(result_or_issues, path, *, file_name: str = "", counts: dict | None = None,
                            codebook=None, top: int = 15) -> Path:
    """Write the Chinese validation report of one file to ``path`` (XLSX) and return the path.

    ``result_or_issues`` is a ValidationResult or an issues DataFrame (survey.validate.ISSUE_COLUMNS).
    ``counts``: rows, accepted, quarantined, duplicates_skipped (errors and warnings are counted from the
    issues when not given; Chinese keys 读入行数 … are accepted too).
    """
    import xlsxwriter

    issues = getattr(result_or_issues, "issues", result_or_issues)
    if not isinstance(issues, pd.DataFrame):
        raise SurveyError("write_validation_report needs a ValidationResult or an issues table",
                          fix="pass validate(...) or its .issues")
    codebook = codebook if codebook is not None else getattr(result_or_issues, "codebook", None)
    c = {}
    if hasattr(result_or_issues, "counts"):
        c.update(result_or_issues.counts())
    for k, v in (counts or {}).items():
        c[_COUNT_ALIASES.get(k, k)] = v
    sev = issues["severity"].astype(str) if "severity" in issues else pd.Series([], dtype=str)
    c.setdefault("errors", int((sev == "error").sum()))
    c.setdefault("warnings", int((sev == "warning").sum()))
    c.setdefault("file", file_name or (str(issues["file"].iloc[0]) if len(issues) and "file" in issues else ""))
    if file_name:
        c["file"] = file_name

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    try:
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                              "valign": "vcenter"})
        bold = wb.add_format({"bold": True})
        err = wb.add_format({"font_color": "#C00000", "bold": True})
        warn = wb.add_format({"font_color": "#9C5700"})
        title = wb.add_format({"bold": True, "font_size": 14})

        # ---- 汇总
        ws = wb.add_worksheet("汇总")
        ws.set_column(0, 0, 16)
        ws.set_column(1, 1, 40)
        ws.set_column(2, 3, 12)
        ws.write(0, 0, "数据核查报告", title)
        r = 2
        for key, label in _SUMMARY_LABELS:
            ws.write(r, 0, label, bold)
            val = c.get(key, "")
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                ws.write_number(r, 1, val)
            else:
                ws.write_string(r, 1, "" if val is None else str(val))
            r += 1
        r += 1
        ws.write(r, 0, "说明", bold)
        ws.write_string(r, 1, "错误：该户数据不能使用，已隔离，改正后重新导入；警告：数据可以使用，但请核实。")
        r += 2
        ws.write_row(r, 0, ["规则", "严重程度", "问题数", "涉及户数"], head)
        r += 1
        if len(issues):
            g = issues.assign(_hh=issues["household_id"].astype(str)).groupby(["rule_zh", "severity"], sort=False)
            tab = pd.DataFrame({"n": g.size(), "hh": g["_hh"].nunique()}).reset_index()
            tab["_order"] = tab["severity"].map({"error": 0, "warning": 1}).fillna(2)
            tab = tab.sort_values(["_order", "n"], ascending=[True, False]).head(top)
            for row in tab.itertuples(index=False):
                ws.write_string(r, 0, str(row.rule_zh))
                ws.write_string(r, 1, SEVERITY_ZH.get(row.severity, str(row.severity)),
                                err if row.severity == "error" else warn)
                ws.write_number(r, 2, int(row.n))
                ws.write_number(r, 3, int(row.hh))
                r += 1
        else:
            ws.write_string(r, 0, "未发现问题")
            r += 1
        if len(issues) > _MAX_ROWS:
            r += 1
            ws.write_string(r, 0, f"问题超过 {_MAX_ROWS} 条，问题清单只列出前 {_MAX_ROWS} 条", err)

        # ---- 问题清单: header, widths, frozen header, filter and colours from xlsxwriter; the rows themselves are
        # written afterwards as sheet XML built column-wise (xlsxwriter's per-cell calls took ~40 s per 100k rows).
        wp = wb.add_worksheet("问题清单")
        for i, w in enumerate(_WIDTHS):
            wp.set_column(i, i, w)
        wp.freeze_panes(1, 0)
        n = min(len(issues), _MAX_ROWS)
        wp.autofilter(0, 0, max(n, 1), len(PROBLEM_HEADERS) - 1)
        wp.write_row(0, 0, PROBLEM_HEADERS, head)
        if n:
            last = len(PROBLEM_HEADERS) - 1
            wp.conditional_format(1, last, n, last, {"type": "cell", "criteria": "==", "value": '"错误"',
                                                     "format": err})
            wp.conditional_format(1, last, n, last, {"type": "cell", "criteria": "==", "value": '"警告"',
                                                     "format": warn})
    finally:
        wb.close()
    if n:
        # in blocks: the XML of a million problems would otherwise be built whole in memory
        blocks = (_rows_xml(issues.iloc[i:min(i + _BLOCK, n)], codebook, start=i + 2) for i in range(0, n, _BLOCK))
        _inject_rows(path, "xl/worksheets/sheet2.xml", blocks, n + 1, len(PROBLEM_HEADERS))
    return path


_BAD_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"   # characters XML 1.0 forbids


def _xml_text(s: pd.Series) -> pd.Series:
    s = s.astype("string[pyarrow]").fillna("").str.replace(_BAD_XML, "", regex=True)
    return s.str.replace("&", "&amp;", regex=False).str.replace("<", "&lt;", regex=False) \
        .str.replace(">", "&gt;", regex=False)


def _col_letter(i: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]


def _rows_xml(sub: pd.DataFrame, codebook, start: int = 2) -> str:
    """<row> elements for the problem lines, built with column operations; the first is sheet row ``start``."""
    n = len(sub)
    # Issues may come back from the store with None, NaN or numbers as text: normalise every column first.
    sub = sub.copy()
    for c in ("file", "sheet", "household_id", "field", "rule_zh", "message_zh", "value", "fix_zh", "severity"):
        col = sub[c] if c in sub.columns else pd.Series([""] * n, index=sub.index)
        sub[c] = col.astype(object).where(col.notna(), "").astype(str)
    sub["row"] = pd.to_numeric(sub["row"], errors="coerce") if "row" in sub.columns else pd.NA
    sheets = _sheet_names(codebook)
    labels = _field_labels(codebook)
    sheet_col = sub["sheet"].astype(str).reset_index(drop=True)
    field_col = sub["field"].astype(str).reset_index(drop=True)
    pairs = sheet_col + "\t" + field_col
    flat = {f"{t}\t{f}": lab for (t, f), lab in labels.items()}
    field_text = pairs.map(flat).fillna(field_col) if labels else field_col
    rownum = pd.Series(range(start, start + n)).astype(str).astype("string[pyarrow]")
    row_vals = pd.array(sub["row"].reset_index(drop=True).round(), dtype="Int64")
    row_present = ~pd.isna(row_vals)
    text_cols = {
        0: sub["file"].astype(str).reset_index(drop=True),
        2: sheet_col.map(sheets).fillna(sheet_col),
        3: sub["household_id"].astype(str).reset_index(drop=True),
        4: field_text,
        5: sub["rule_zh"].astype(str).reset_index(drop=True),
        6: sub["message_zh"].astype(str).reset_index(drop=True),
        7: sub["value"].astype(str).reset_index(drop=True).str.slice(0, 32000),
        8: sub["fix_zh"].astype(str).reset_index(drop=True),
        9: sub["severity"].astype(str).reset_index(drop=True).map(SEVERITY_ZH).fillna(sub["severity"].astype(str)
                                                                                      .reset_index(drop=True)),
    }
    cells = []
    for i in range(len(PROBLEM_HEADERS)):
        ref = '<c r="' + _col_letter(i) + rownum
        if i == 1:
            num = pd.Series(row_vals).astype(str)
            cell = (ref + '"><v>' + num + "</v></c>").where(
                pd.Series(row_present), ref + '" t="inlineStr"><is><t>整列</t></is></c>')
        else:
            cell = ref + '" t="inlineStr"><is><t xml:space="preserve">' + _xml_text(text_cols[i]) + "</t></is></c>"
        cells.append(cell)
    row = '<row r="' + rownum + '">'
    for cell in cells:
        row = row + cell
    row = row + "</row>"
    return "".join(row.tolist())


def _inject_rows(path: Path, member: str, blocks, last_row: int, ncols: int) -> None:
    """Append rows (an iterable of XML text blocks) to a worksheet of a finished workbook: the zip is rewritten,
    the other parts copied, the rows streamed into the worksheet."""
    import re
    import shutil
    import tempfile
    import zipfile

    tmp = Path(tempfile.mkstemp(suffix=".xlsx", dir=path.parent)[1])
    try:
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename != member:
                    zout.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
                    continue
                xml = data.decode("utf-8")
                xml = re.sub(r'<dimension ref="[^"]*"/>',
                             f'<dimension ref="A1:{_col_letter(ncols - 1)}{last_row}"/>', xml, count=1)
                head, sep, tail = xml.partition("</sheetData>")
                if not sep:
                    raise SurveyError("internal: worksheet without sheetData", fix="report this")
                info = zipfile.ZipInfo(item.filename, date_time=item.date_time)
                info.compress_type = zipfile.ZIP_DEFLATED
                with zout.open(info, "w", force_zip64=last_row > 200_000) as out:
                    out.write(head.encode("utf-8"))
                    for block in blocks:
                        out.write(block.encode("utf-8"))
                    out.write((sep + tail).encode("utf-8"))
        shutil.move(str(tmp), str(path))
    finally:
        if tmp.exists():
            tmp.unlink()
