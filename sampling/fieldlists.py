"""Field lists of a draw (抽样名单): one XLSX per county for the field teams, CSV/SAV/DTA for analysts.

Layout of ``samples/<draw_id>/``::

    counties/<county_code>_<county_name>.xlsx   说明 sheet + one sheet per village (Chinese headers)
    counties/<county_code>_<county_name>.csv    the same rows for the county (UTF-8 with BOM, for Excel/WPS)
    sample_households.csv | .sav | .dta         every sampled and reserve household (analysts; value labels)
    sample_villages.csv                         the sampled villages with their probabilities
    design.json, summary.json                   the design as recorded and the design summary

Every file is byte-identical for the same frames, design and seed: rows are sorted by code, the XLSX
creation time is fixed and the timestamps SPSS/Stata files carry in their headers are set to a constant.
Only these lists carry names, phone numbers and addresses in full (SPEC §8); each county's workbook holds
only that county's villages.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

STATUS_LABELS = {1: "已脱贫", 2: "未脱贫", 3: "当年拟脱贫", 4: "监测户", 5: "一般户", 6: "边缘户"}
ROLE_LABELS = {"sample": "样本户", "reserve": "备用户"}
FIXED_TIME = _dt.datetime(2000, 1, 1)

# (header, source column, kind) of a village sheet; kind drives the cell format
FIELD_COLUMNS = [
    ("序号", None, "int"),
    ("样本类型", "role", "text"),
    ("备用顺序", "reserve_order", "int"),
    ("抽样层", "hh_stratum_label", "text"),
    ("户编号", "household_id", "text"),
    ("户主姓名", "head_name", "text"),
    ("联系电话", "_phone", "text"),
    ("村民小组", "_group_no", "text"),
    ("地址", "address", "text"),
    ("户类型", "register_status", "status"),
    ("户籍人数", "size", "int"),
    ("入样概率", "pi", "prob"),
    ("权重", "weight", "weight"),
    ("访问结果", None, "blank"),
    ("备注", None, "blank"),
]

ANALYST_VARIABLE_LABELS = {
    "draw_id": "抽样编号", "household_id": "户编号", "village_code": "村代码", "township_code": "乡镇代码",
    "county_code": "县代码", "province_code": "省代码", "village_stratum": "村抽样层", "hh_stratum": "户抽样层",
    "role": "样本类型(1样本户 2备用户)", "reserve_order": "备用顺序", "pi_county": "县入样概率",
    "pi_village": "村入样概率(给定县)", "pi_household": "户入样概率(给定村)", "pi": "总入样概率",
    "weight": "基础权重", "purposive": "有目的选取", "take_all": "全抽层", "register_status": "户类型",
    "head_name": "户主姓名", "address": "地址", "size": "户籍人数", "N_hh_stratum": "层内总户数",
    "n_hh_stratum": "层内样本户数"}
ANALYST_VALUE_LABELS = {"register_status": STATUS_LABELS, "role": {1: "样本户", 2: "备用户"},
                        "purposive": {0: "否", 1: "是"}, "take_all": {0: "否", 1: "是"}}


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safe_name(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\[\]\s]+', "_", str(text)).strip("_") or "x"


def _sheet_names(villages: pd.DataFrame) -> list[str]:
    names, seen = [], set()
    for code, name in zip(villages["village_code"], villages["village_name"]):
        base = _safe_name(f"{name}_{str(code)[-6:]}")[:31]
        cand, k = base, 2
        while cand.lower() in seen or cand == "说明":
            cand = f"{base[:28]}~{k}"
            k += 1
        seen.add(cand.lower())
        names.append(cand)
    return names


def _stratum_labels(design, level) -> dict:
    return {s.name: s.label or s.name for s in getattr(design, level).strata}


def write_field_lists(result, draw_id: str, folder, *, summary: dict | None = None) -> dict:
    """Write every list of a draw into ``folder``; returns {relative path: sha256} in sorted order."""
    folder = Path(folder)
    (folder / "counties").mkdir(parents=True, exist_ok=True)
    design = result.design
    sh = result.sample_households.reset_index(drop=True)
    sv = result.sample_villages.reset_index(drop=True)
    v_labels = _stratum_labels(design, "village")
    groups_taken = {}
    for info in result.extra.get("household", {}).values():
        for v, g in info.get("groups_taken", {}).items():
            groups_taken[v] = g
    field = _field_table(sh, sv, _stratum_labels(design, "household"))
    # households are sorted by county then village: every county and village is one run of rows
    hv = sh["village_code"].to_numpy(dtype=object)
    vstart = {}
    if len(hv):
        cut = np.flatnonzero(np.r_[True, hv[1:] != hv[:-1], True])
        vstart = {hv[a]: (int(a), int(b)) for a, b in zip(cut[:-1], cut[1:])}
    values = [field[h].tolist() for h, _, _ in FIELD_COLUMNS]
    csv_rows = list(zip(*[["" if (x is None or x is pd.NA or (isinstance(x, float) and x != x)) else x
                           for x in field[c].tolist()] for c in field.columns]))
    roles = sh["role"].to_numpy()
    jobs = []
    for county_code, villages in sv.groupby("county_code", sort=True):
        county_name = str(villages["county_name"].iloc[0])
        stem = f"{county_code}_{_safe_name(county_name)}"
        spans = [vstart.get(v, (0, 0)) for v in villages["village_code"]]
        take = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.arange(0, dtype=np.int64)
        # each job carries only its county's rows, re-based to 0
        local, pos = [], 0
        for a, b in spans:
            local.append((pos, pos + b - a))
            pos += b - a
        jobs.append((str(folder / "counties" / f"{stem}.xlsx"), draw_id, design.title, result.seed, county_code,
                     county_name, villages.reset_index(drop=True), local, [[col[i] for i in take] for col in values],
                     roles[take], v_labels, {v: groups_taken[v] for v in villages["village_code"] if v in groups_taken}))
        with open(folder / "counties" / f"{stem}.csv", "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(list(field.columns))
            w.writerows(csv_rows[i] for i in take)
    _run_jobs(jobs)
    analyst = _analyst_table(sh, draw_id)
    analyst.to_csv(folder / "sample_households.csv", index=False, encoding="utf-8", lineterminator="\n")
    _write_stat(analyst, folder / "sample_households.sav")
    _write_stat(analyst, folder / "sample_households.dta")
    villages_out = sv[[c for c in sv.columns if not c.startswith("_")]].copy()
    villages_out.insert(0, "draw_id", draw_id)
    villages_out.to_csv(folder / "sample_villages.csv", index=False, encoding="utf-8", lineterminator="\n")
    (folder / "design.json").write_text(json.dumps(design.to_dict(), ensure_ascii=False, indent=1, sort_keys=True)
                                        + "\n", encoding="utf-8")
    if summary is not None:
        clean = {k: v for k, v in summary.items() if k not in ("files", "list_dir")}
        (folder / "summary.json").write_text(json.dumps(clean, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                             encoding="utf-8")
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            files[p.relative_to(folder).as_posix()] = sha256_file(p)
    return files


def _field_table(sh: pd.DataFrame, sv: pd.DataFrame, hh_labels: dict) -> pd.DataFrame:
    """Every listed household with the Chinese columns of the field lists (one pass, all counties)."""
    vnames = dict(zip(sv["village_code"], sv["village_name"]))
    out = {"村代码": sh["village_code"].astype(str).to_numpy(dtype=object),
           "村名": sh["village_code"].map(vnames).astype(str).to_numpy(dtype=object)}
    status = pd.to_numeric(sh["register_status"], errors="coerce")
    for header, col, kind in FIELD_COLUMNS:
        if col is None:
            out[header] = ((sh.groupby("village_code", sort=False).cumcount() + 1).to_numpy()
                           if kind == "int" else np.full(len(sh), "", dtype=object))
        elif kind == "status":
            out[header] = status.map(STATUS_LABELS).fillna("").astype(str).to_numpy(dtype=object)
        elif col == "role":
            out[header] = np.where(sh["role"].to_numpy() == "reserve", ROLE_LABELS["reserve"], ROLE_LABELS["sample"])
        elif col == "hh_stratum_label":
            out[header] = sh["hh_stratum"].map(lambda x: hh_labels.get(x, x)).to_numpy(dtype=object)
        elif kind in ("int", "prob", "weight"):
            out[header] = sh[col].to_numpy()
        else:
            v = sh[col]
            out[header] = v.astype(object).where(v.notna(), "").astype(str).to_numpy(dtype=object)
    return pd.DataFrame(out)


def _run_jobs(jobs) -> None:
    # Serial on purpose: worker processes would need fork (unsafe with Arrow's thread pools) or spawn (which
    # re-imports the caller's main module and breaks scripts without a __main__ guard).
    for job in jobs:
        _write_county_xlsx(*job)


_XML_BAD = dict.fromkeys([c for c in range(32) if c not in (9, 10, 13)] + [0xFFFE, 0xFFFF])
_COLS = [chr(65 + i) for i in range(26)]
# cell styles: 0 plain, 1 header, 2 text (@), 3 probability, 4 weight, 5 grey (reserve rows)
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<numFmts count="2"><numFmt numFmtId="164" formatCode="0.000000"/><numFmt numFmtId="165" formatCode="0.000"/></numFmts>
<fonts count="3"><font><sz val="11"/><name val="等线"/><family val="2"/></font><font><b/><sz val="11"/><name val="等线"/><family val="2"/></font><font><sz val="11"/><color rgb="FF7F7F7F"/><name val="等线"/><family val="2"/></font></fonts>
<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill><fill><patternFill patternType="solid"><fgColor rgb="FFDDEBF7"/><bgColor indexed="64"/></patternFill></fill></fills>
<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border><border><left style="thin"><color auto="1"/></left><right style="thin"><color auto="1"/></right><top style="thin"><color auto="1"/></top><bottom style="thin"><color auto="1"/></bottom><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1" applyAlignment="1"><alignment vertical="center" wrapText="1"/></xf><xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""


_XML_SPECIAL = re.compile(r'[&<>"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')


def _esc(text: str) -> str:
    text = str(text)
    if not _XML_SPECIAL.search(text):
        return text
    return (text.translate(_XML_BAD).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


class _Sheet:
    """One worksheet as XML text: strings inline, numbers as shortest round-trip text (deterministic)."""

    def __init__(self, name: str, widths=(), freeze_rows: int = 0):
        self.name = name
        self.widths = widths
        self.freeze_rows = freeze_rows
        self.rows: list[str] = []

    def row(self, r: int, cells) -> None:
        """cells: (value, style) pairs from column A; value None leaves the cell empty."""
        out = []
        for j, (value, style) in enumerate(cells):
            if value is None:
                continue
            ref = f"{_COLS[j]}{r}"
            st = f' s="{style}"' if style else ""
            if isinstance(value, str):
                out.append(f'<c r="{ref}"{st} t="inlineStr"><is><t xml:space="preserve">{_esc(value)}</t></is></c>')
            else:
                out.append(f'<c r="{ref}"{st}><v>{value!r}</v></c>')
        self.rows.append(f'<row r="{r}">{"".join(out)}</row>')

    def xml(self) -> str:
        view = ('<sheetView workbookViewId="0"/>' if not self.freeze_rows else
                f'<sheetView workbookViewId="0"><pane ySplit="{self.freeze_rows}" topLeftCell="A{self.freeze_rows + 1}"'
                ' activePane="bottomLeft" state="frozen"/></sheetView>')
        cols = "".join(f'<col min="{j + 1}" max="{j + 1}" width="{w}" customWidth="1"/>'
                       for j, w in enumerate(self.widths))
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                f'<sheetViews>{view}</sheetViews><sheetFormatPr defaultRowHeight="15"/>'
                + (f"<cols>{cols}</cols>" if cols else "") + f'<sheetData>{"".join(self.rows)}</sheetData>'
                '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>')


def _save_book(path, sheets: list[_Sheet], title: str) -> None:
    """A minimal XLSX package, written with fixed timestamps so that the same lists give the same bytes."""
    import zipfile

    n = len(sheets)
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
          'spreadsheetml.sheet.main+xml"/>'
          + "".join(f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" ContentType="application/vnd.'
                    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(n))
          + '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
          'spreadsheetml.styles+xml"/>'
          '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
          'core-properties+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
            'core-properties" Target="docProps/core.xml"/></Relationships>')
    core = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:title>{_esc(title)}</dc:title><dc:creator>tpa</dc:creator>'
            '<dcterms:created xsi:type="dcterms:W3CDTF">2000-01-01T00:00:00Z</dcterms:created>'
            '</cp:coreProperties>')
    wb = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
          + "".join(f'<sheet name="{_esc(s.name)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, s in enumerate(sheets))
          + "</sheets></workbook>")
    wb_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
               + "".join(f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/'
                         f'2006/relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>' for i in range(n))
               + f'<Relationship Id="rId{n + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                 'relationships/styles" Target="styles.xml"/></Relationships>')
    parts = [("[Content_Types].xml", ct), ("_rels/.rels", rels), ("docProps/core.xml", core),
             ("xl/workbook.xml", wb), ("xl/_rels/workbook.xml.rels", wb_rels), ("xl/styles.xml", _STYLES)]
    parts += [(f"xl/worksheets/sheet{i + 1}.xml", s.xml()) for i, s in enumerate(sheets)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, text in parts:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text.encode("utf-8"))


class _Rec:
    __slots__ = ("village_code", "village_name", "stratum", "pi_village", "purposive")

    def __init__(self, d):
        for k in self.__slots__:
            setattr(self, k, d[k])


def _write_county_xlsx(path, draw_id, title, seed, county_code, county_name, villages, spans, values, roles,
                       v_labels, groups_taken):
    """One county's workbook: a 说明 sheet (the draw, the rules for reserves, the villages) and a sheet per
    village. Written directly as XML (a county has 10-30 sheets; a general writer costs ~10× more)."""
    n_sample = sum(int(np.sum(roles[a:b] == "sample")) for a, b in spans)
    n_res = sum(int(np.sum(roles[a:b] == "reserve")) for a, b in spans)
    cover = _Sheet("说明", widths=[22] + [16] * 8)
    meta = [("抽样设计", title), ("抽样编号", draw_id), ("随机种子", str(seed)),
            ("县", f"{county_name}（{county_code}）"), ("样本村数", len(villages)), ("样本户数", n_sample),
            ("备用户数", n_res),
            ("使用说明", "样本户必须全部入户调查；样本户无法访问（举家外出、拒访等）时，方可按同一村、同一抽样层的"
                     "“备用顺序”依次启用备用户，并在“访问结果”栏记录原因。不得自行更换样本户。"),
            ("保密", "本名单含户主姓名、电话和住址，仅供本县调查组入户使用，调查结束后交回。")]
    for i, (k, v) in enumerate(meta):
        cover.row(i + 1, [(k, 1), (v, 0)])
    r0 = len(meta) + 2
    heads = ["村代码", "村名", "乡镇", "抽样层", "村入样概率", "有目的选取", "样本户数", "备用户数", "排查村民小组"]
    cover.row(r0, [(h, 1) for h in heads])
    townships = (dict(zip(villages["village_code"], villages["_township_name"].astype(str)))
                 if "_township_name" in villages.columns else {})
    records = [_Rec(r) for r in villages[["village_code", "village_name", "stratum", "pi_village",
                                          "purposive"]].to_dict("records")]
    for i, (v, (a, b)) in enumerate(zip(records, spans)):
        pv = float(v.pi_village) if v.pi_village == v.pi_village else None
        cover.row(r0 + 1 + i, [(str(v.village_code), 2), (str(v.village_name), 0),
                               (str(townships.get(v.village_code, "")), 0), (v_labels.get(v.stratum, v.stratum), 0),
                               (pv, 3), ("是" if v.purposive else "否", 0), (int(np.sum(roles[a:b] == "sample")), 0),
                               (int(np.sum(roles[a:b] == "reserve")), 0), (groups_taken.get(v.village_code, ""), 0)])
    sheets = [cover]
    headers = [(h, 1) for h, _, _ in FIELD_COLUMNS]
    widths = [6, 8, 8, 18, 18, 10, 14, 8, 28, 10, 8, 11, 9, 16, 16]
    style = {"int": 0, "prob": 3, "weight": 4, "text": 2, "status": 0, "blank": 0}
    kinds = [kind for _, _, kind in FIELD_COLUMNS]
    role_j = [c for _, c, _ in FIELD_COLUMNS].index("role")

    def cell(val, kind):
        if val is None or val is pd.NA or val == "" or (isinstance(val, float) and val != val):
            return None
        if kind == "int":
            return int(val)
        if kind in ("prob", "weight"):
            return float(val)
        return str(val)

    for name, v, (a, b) in zip(_sheet_names(villages), records, spans):
        sh = _Sheet(name, widths=widths, freeze_rows=2)
        sh.row(1, [(f"{county_name} {v.village_name}（{v.village_code}） 抽样编号 {draw_id}", 0)])
        sh.row(2, headers)
        for i in range(a, b):
            cells = [(cell(values[j][i], kinds[j]), style[kinds[j]]) for j in range(len(kinds))]
            if roles[i] == "reserve":
                cells[role_j] = (cells[role_j][0], 5)
            sh.row(i - a + 3, cells)
        sheets.append(sh)
    _save_book(path, sheets, f"{title} 抽样名单 {county_name}")


def _analyst_table(sh: pd.DataFrame, draw_id: str) -> pd.DataFrame:
    from .draw import HOUSEHOLD_COLUMNS

    out = sh[HOUSEHOLD_COLUMNS].copy()
    out.insert(0, "draw_id", draw_id)
    out["role"] = np.where(out["role"] == "reserve", 2, 1).astype(np.int64)
    return out


def _write_stat(df: pd.DataFrame, path: Path) -> None:
    from .readers import write_table

    write_table(df, path, value_labels=ANALYST_VALUE_LABELS, variable_labels=ANALYST_VARIABLE_LABELS)
    _fix_timestamp(path)


def _fix_timestamp(path: Path) -> None:
    """SPSS and Stata files stamp their header with the time of writing; a fixed stamp keeps lists byte-identical."""
    data = bytearray(path.read_bytes())
    if path.suffix.lower() == ".sav" and data[:4] in (b"$FL2", b"$FL3"):
        data[92:101] = b"01 Jan 00"
        data[101:109] = b"00:00:00"
    elif path.suffix.lower() == ".dta":
        k = data.find(b"<timestamp>")
        if k >= 0:
            length = data[k + 11]
            if length == 17:
                data[k + 12:k + 29] = b"01 Jan 2000 00:00"
    path.write_bytes(bytes(data))
