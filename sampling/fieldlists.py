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
    sh = result.sample_households.copy()
    sv = result.sample_villages.copy()
    hh_labels = _stratum_labels(design, "household")
    v_labels = _stratum_labels(design, "village")
    sh["hh_stratum_label"] = sh["hh_stratum"].map(hh_labels).fillna(sh["hh_stratum"])
    groups_taken = {}
    for info in result.extra.get("household", {}).values():
        for v, g in info.get("groups_taken", {}).items():
            groups_taken[v] = g
    counties = sv.groupby("county_code", sort=True)
    sh_by_village = {v: g for v, g in sh.groupby("village_code", sort=False)}
    for county_code, villages in counties:
        county_name = str(villages["county_name"].iloc[0])
        stem = f"{county_code}_{_safe_name(county_name)}"
        _write_county_xlsx(folder / "counties" / f"{stem}.xlsx", draw_id, result, county_code, county_name,
                           villages, sh_by_village, v_labels, groups_taken)
        rows = [sh_by_village[v] for v in villages["village_code"] if v in sh_by_village]
        county_rows = pd.concat(rows, ignore_index=True) if rows else sh.iloc[0:0]
        _county_csv(county_rows, villages).to_csv(folder / "counties" / f"{stem}.csv", index=False,
                                                  encoding="utf-8-sig", lineterminator="\n")
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


def _status_text(v):
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    return STATUS_LABELS.get(int(v), str(v))


def _county_csv(rows: pd.DataFrame, villages: pd.DataFrame) -> pd.DataFrame:
    vnames = dict(zip(villages["village_code"], villages["village_name"]))
    out = pd.DataFrame({"村代码": rows["village_code"], "村名": rows["village_code"].map(vnames)})
    for header, col, kind in FIELD_COLUMNS:
        if col is None:
            out[header] = "" if kind == "blank" else np.arange(1, len(rows) + 1)
        elif kind == "status":
            out[header] = [_status_text(v) for v in rows[col]]
        elif col == "role":
            out[header] = rows[col].map(ROLE_LABELS)
        else:
            out[header] = rows[col].to_numpy()
    return out


def _write_county_xlsx(path, draw_id, result, county_code, county_name, villages, sh_by_village, v_labels,
                       groups_taken):
    import xlsxwriter

    design = result.design
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False, "nan_inf_to_errors": False})
    wb.set_properties({"title": f"{design.title} 抽样名单 {county_name}", "author": "tpa",
                       "created": FIXED_TIME})
    bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                          "valign": "vcenter"})
    text = wb.add_format({"num_format": "@"})
    prob = wb.add_format({"num_format": "0.000000"})
    weight = wb.add_format({"num_format": "0.000"})
    reserve_fmt = wb.add_format({"font_color": "#7F7F7F"})
    cover = wb.add_worksheet("说明")
    cover.set_column(0, 0, 22)
    cover.set_column(1, 8, 16)
    n_sample = sum(int((sh_by_village[v]["role"] == "sample").sum()) for v in villages["village_code"]
                   if v in sh_by_village)
    n_res = sum(int((sh_by_village[v]["role"] == "reserve").sum()) for v in villages["village_code"]
                if v in sh_by_village)
    meta = [("抽样设计", design.title), ("抽样编号", draw_id), ("随机种子", str(result.seed)),
            ("县", f"{county_name}（{county_code}）"), ("样本村数", len(villages)), ("样本户数", n_sample),
            ("备用户数", n_res),
            ("使用说明", "样本户必须全部入户调查；样本户无法访问（举家外出、拒访等）时，方可按同一村、同一抽样层的"
                     "“备用顺序”依次启用备用户，并在“访问结果”栏记录原因。不得自行更换样本户。"),
            ("保密", "本名单含户主姓名、电话和住址，仅供本县调查组入户使用，调查结束后交回。")]
    for i, (k, v) in enumerate(meta):
        cover.write(i, 0, k, bold)
        cover.write(i, 1, v)
    r0 = len(meta) + 1
    heads = ["村代码", "村名", "乡镇", "抽样层", "村入样概率", "有目的选取", "样本户数", "备用户数", "排查村民小组"]
    cover.write_row(r0, 0, heads, bold)
    sheet_names = _sheet_names(villages)
    townships = (dict(zip(villages["village_code"], villages["_township_name"].astype(str)))
                 if "_township_name" in villages.columns else {})
    for i, v in enumerate(villages.itertuples(index=False)):
        rows = sh_by_village.get(v.village_code)
        ns = 0 if rows is None else int((rows["role"] == "sample").sum())
        nr = 0 if rows is None else int((rows["role"] == "reserve").sum())
        township = townships.get(v.village_code, "")
        cover.write_string(r0 + 1 + i, 0, str(v.village_code))
        cover.write(r0 + 1 + i, 1, str(v.village_name))
        cover.write(r0 + 1 + i, 2, str(township) if township is not None else "")
        cover.write(r0 + 1 + i, 3, v_labels.get(v.stratum, v.stratum))
        if v.pi_village == v.pi_village:
            cover.write_number(r0 + 1 + i, 4, float(v.pi_village), prob)
        cover.write(r0 + 1 + i, 5, "是" if v.purposive else "否")
        cover.write_number(r0 + 1 + i, 6, ns)
        cover.write_number(r0 + 1 + i, 7, nr)
        cover.write(r0 + 1 + i, 8, groups_taken.get(v.village_code, ""))
    headers = [h for h, _, _ in FIELD_COLUMNS]
    widths = [6, 8, 8, 18, 18, 10, 14, 8, 28, 10, 8, 11, 9, 16, 16]
    for name, v in zip(sheet_names, villages.itertuples(index=False)):
        ws = wb.add_worksheet(name)
        ws.write(0, 0, f"{county_name} {v.village_name}（{v.village_code}） 抽样编号 {draw_id}")
        ws.write_row(1, 0, headers, bold)
        for j, w in enumerate(widths):
            ws.set_column(j, j, w)
        ws.freeze_panes(2, 0)
        rows = sh_by_village.get(v.village_code)
        if rows is None:
            continue
        cols = {c: rows[c].tolist() for _, c, _ in FIELD_COLUMNS if c}
        for i in range(len(rows)):
            r = i + 2
            is_res = cols["role"][i] == "reserve"
            for j, (header, col, kind) in enumerate(FIELD_COLUMNS):
                if col is None:
                    if kind == "int":
                        ws.write_number(r, j, i + 1)
                    continue
                val = cols[col][i]
                if val is None or val is pd.NA or (isinstance(val, float) and val != val):
                    continue
                if kind == "status":
                    ws.write_string(r, j, _status_text(val))
                elif col == "role":
                    ws.write_string(r, j, ROLE_LABELS.get(val, str(val)), reserve_fmt if is_res else None)
                elif kind == "int":
                    ws.write_number(r, j, int(val))
                elif kind == "prob":
                    ws.write_number(r, j, float(val), prob)
                elif kind == "weight":
                    ws.write_number(r, j, float(val), weight)
                else:
                    ws.write_string(r, j, str(val), text)
    wb.close()


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
