"""Sampling frames: build a village frame from a household register, and check a frame before drawing.

``build_village_frame`` aggregates a household register (建档立卡 export plus non-registered rosters) into the
village frame of docs/CONTRACTS.md, carrying village attributes from a village list and reporting (never
fixing) villages whose totals in the list disagree with the register.

``check_frame`` finds what would make a draw wrong: duplicate IDs, missing or non-positive size measures,
codes that do not nest, invalid resident ID numbers, units outside any stratum, missing columns. Each problem
names the file, the row as the user sees it (header = row 1 in CSV/XLSX, so the first data row is 2), the
column, the value, and a fix in Chinese. ``FrameReport.raise_if_errors()`` stops a draw from a bad frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FrameError, check_arg
from .geography import PROVINCES
from .idnumber import FIX_TEXT_ZH as ID_FIX_ZH
from .idnumber import PROBLEM_TEXT_ZH as ID_PROBLEM_ZH
from .idnumber import id_number_problems

PROBLEM_COLUMNS = ["file", "row", "column", "code", "problem", "value", "fix", "severity"]
REQUIRED = {
    "village": ["village_code", "county_code", "households", "persons"],
    "household": ["household_id", "village_code", "register_status", "size"],
    "person": ["person_id", "household_id", "id_number"],
}
SIZE_COLUMNS = {"village": ["households", "persons"], "household": ["size"], "person": []}
# Column names seen in registers and village lists (中文表头) → ours; used to suggest --map.
SYNONYMS = {
    "村代码": "village_code", "行政村代码": "village_code", "村编码": "village_code", "村级代码": "village_code",
    "县代码": "county_code", "县编码": "county_code", "区县代码": "county_code", "乡镇代码": "township_code",
    "省代码": "province_code", "市代码": "city_code", "户数": "households", "总户数": "households",
    "人数": "persons", "总人数": "persons", "总人口": "persons", "户籍人口": "persons", "户编号": "household_id",
    "户码": "household_id", "户主身份证号": "head_id_number", "户主身份证号码": "head_id_number",
    "身份证号": "id_number", "身份证号码": "id_number", "证件号码": "id_number", "户类型": "register_status",
    "贫困户属性": "register_status", "户属性": "register_status", "家庭人口数": "size", "家庭人数": "size",
    "人口数": "size", "户籍人数": "size", "贫困村": "poor_village", "是否贫困村": "poor_village",
    "village": "village_code", "vcode": "village_code", "county": "county_code", "hhid": "household_id",
    "hh_id": "household_id", "n_households": "households", "n_persons": "persons", "hh_size": "size",
    "status": "register_status",
}
STATUS_REGISTERED = (1, 2, 3, 4)


@dataclass
class FrameReport:
    """Result of ``check_frame``: the problems (one row each) and counts."""

    file: str | None
    kind: str
    n_rows: int
    problems: pd.DataFrame
    mapping: dict = field(default_factory=dict)

    @property
    def n_errors(self) -> int:
        return int((self.problems["severity"] == "error").sum())

    @property
    def n_warnings(self) -> int:
        return int((self.problems["severity"] == "warning").sum())

    @property
    def ok(self) -> bool:
        return self.n_errors == 0

    def counts(self) -> pd.DataFrame:
        """Problems per (severity, code, column) with the first row where each occurs."""
        if self.problems.empty:
            return pd.DataFrame(columns=["severity", "code", "column", "problem", "count", "first_row"])
        g = self.problems.groupby(["severity", "code", "column"], sort=False, dropna=False)
        out = g.agg(problem=("problem", "first"), count=("row", "size"), first_row=("row", "first")).reset_index()
        return out.sort_values(["severity", "count"], ascending=[True, False], kind="stable")

    def summary(self) -> str:
        name = self.file or "(table)"
        lines = [f"frame check of {name} ({self.kind}, {self.n_rows:,} rows): "
                 f"{self.n_errors:,} errors, {self.n_warnings:,} warnings"]
        for r in self.counts().itertuples(index=False):
            where = f"first at row {r.first_row}" if pd.notna(r.first_row) else "whole table"
            lines.append(f"  {r.severity:7s} {r.column or '-'}: {r.problem} × {r.count:,} ({where})")
        return "\n".join(lines)

    def raise_if_errors(self, max_listed: int = 3) -> None:
        """Raise FrameError naming the first problems; nothing is drawn from a bad frame."""
        if self.ok:
            return
        errs = self.problems[self.problems["severity"] == "error"]
        first = errs.iloc[0]
        listed = "; ".join(
            (f"row {r.row} " if pd.notna(r.row) else "") + f"{r.column}: {r.problem}" + (
                f" ({r.value})" if isinstance(r.value, str) and r.value else "")
            for r in errs.head(max_listed).itertuples(index=False))
        raise FrameError(f"the frame has {len(errs):,} error(s): {listed}", code="bad_frame", file=self.file,
                         row=None if pd.isna(first.row) else int(first.row), column=first.column,
                         fix=f"{first.fix}; run `tpa frame check` for the full list")

    def to_dict(self, max_problems: int = 1000) -> dict:
        return {"file": self.file, "kind": self.kind, "rows": self.n_rows, "errors": self.n_errors,
                "warnings": self.n_warnings, "ok": self.ok, "mapping": self.mapping,
                "counts": self.counts().to_dict("records"),
                "problems": self.problems.head(max_problems).astype(object).where(self.problems.head(max_problems)
                                                                               .notna(), None).to_dict("records"),
                "problems_truncated": len(self.problems) > max_problems}

    def write(self, path) -> Path:
        """Write the problem list (XLSX, CSV, Parquet by extension) with Chinese headers for XLSX/CSV."""
        from .readers import write_table

        path = Path(path)
        df = self.problems.copy()
        if path.suffix.lower() in (".xlsx", ".csv"):
            df = df.rename(columns={"file": "文件", "row": "行号", "column": "列", "code": "问题代码",
                                    "problem": "问题", "value": "值", "fix": "修改建议", "severity": "级别"})
            df["级别"] = df["级别"].map({"error": "错误", "warning": "警告"})
        return write_table(df, path, bom=path.suffix.lower() == ".csv")


class _Collector:
    def __init__(self, file, first_row: int):
        self.file = file
        self.first_row = first_row
        self.parts: list[pd.DataFrame] = []

    def add(self, positions, column, code, problem, values, fix, severity="error"):
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            return
        vals = pd.Series(values).astype(object).where(pd.Series(values).notna(), "").astype(str).to_numpy() \
            if not np.isscalar(values) else np.full(len(positions), str(values), dtype=object)
        self.parts.append(pd.DataFrame({
            "file": self.file, "row": positions + self.first_row, "column": column, "code": code,
            "problem": problem, "value": vals, "fix": fix, "severity": severity}))

    def add_table(self, column, code, problem, fix, severity="error", value=""):
        self.parts.append(pd.DataFrame({"file": [self.file], "row": [pd.NA], "column": [column], "code": [code],
                                        "problem": [problem], "value": [value], "fix": [fix],
                                        "severity": [severity]}))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else object) for c in PROBLEM_COLUMNS})
        df = pd.concat(self.parts, ignore_index=True)
        df["row"] = df["row"].astype("Int64")
        sev = (df["severity"] == "warning").astype(int)
        order = np.lexsort((df["row"].fillna(-1).to_numpy(), sev.to_numpy()))
        return df.iloc[order].reset_index(drop=True)[PROBLEM_COLUMNS]


def _text(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip()


def _parse_mapping(mapping) -> dict:
    if not mapping:
        return {}
    if isinstance(mapping, dict):
        return {str(k): str(v) for k, v in mapping.items()}
    out = {}
    for item in mapping:
        if "=" not in str(item):
            raise FrameError(f"mapping {item!r} is not THEIRS=OURS", code="bad_mapping",
                             fix="write --map 村代码=village_code")
        theirs, ours = str(item).split("=", 1)
        out[theirs.strip()] = ours.strip()
    return out


def check_frame(path_or_df, kind: str = "village", *, mapping=None, strata=None, encoding=None, sheet=None,
                file=None) -> FrameReport:
    """Check a village or household frame; returns a FrameReport (never raises for problems in the data).

    mapping: {their column: our column} (or "THEIRS=OURS" strings). strata: a column name (or names) whose
    values define the strata of the draw; units outside any stratum and strata without size are errors.
    A DataFrame's rows are reported 1-based unless it carries ``attrs["first_data_row"]`` (read_table sets it).
    """
    check_arg(kind in REQUIRED, "kind", f"must be one of {sorted(REQUIRED)}")
    mapping = _parse_mapping(mapping)
    if isinstance(path_or_df, pd.DataFrame):
        df = path_or_df
        file = file or df.attrs.get("source_file")
    else:
        from .readers import CODE_COLUMNS, is_code_column, read_table

        # their names for our code columns must be read as text too, or leading zeros are gone
        extra = tuple(theirs for theirs, ours in mapping.items() if is_code_column(ours))
        df = read_table(path_or_df, encoding=encoding, sheet=sheet, dtype_str=CODE_COLUMNS + extra)
        file = file or str(path_or_df)
    first_row = int(df.attrs.get("first_data_row", 1))
    if mapping:
        unknown = [k for k in mapping if k not in df.columns]
        if unknown:
            raise FrameError(f"mapped column(s) {unknown} are not in the table", code="bad_mapping", file=file,
                             fix=f"the table's columns are {list(map(str, df.columns))[:30]}")
        df = df.rename(columns=mapping)
        # codes read under their own names were not recognised as codes: make them text now
        from .readers import _code_to_text, is_code_column

        for ours in mapping.values():
            if is_code_column(ours):
                df[ours] = _code_to_text(df[ours])
    C = _Collector(file, first_row)
    n = len(df)
    if n == 0:
        C.add_table("", "empty", "表中没有数据行", "导出包含数据的完整表格")
    missing = [c for c in REQUIRED[kind] if c not in df.columns]
    for col in missing:
        hint = [theirs for theirs in df.columns if SYNONYMS.get(str(theirs).strip()) == col]
        fix = (f"用 --map {hint[0]}={col} 指定对应列" if hint
               else f"表中应有列 {col}；若列名不同，用 --map 原列名={col} 指定（mapping 参数）")
        C.add_table(col, "missing_column", f"缺少必需列 {col}", fix)
    strata_cols = [strata] if isinstance(strata, str) else list(strata or [])
    for s in strata_cols:
        if s not in df.columns:
            C.add_table(s, "missing_column", f"缺少分层列 {s}", f"检查分层列名，或用 --map 原列名={s} 指定")
    if n:
        if kind == "village":
            _check_village(df, C)
        elif kind == "household":
            _check_household(df, C)
        else:
            _check_person(df, C)
        _check_ids(df, C)
        size_col = (SIZE_COLUMNS[kind] or [None])[0]
        for s in strata_cols:
            if s in df.columns:
                _check_strata(df, s, size_col if size_col in df.columns else None, C)
    return FrameReport(file=None if file is None else str(file), kind=kind, n_rows=n, problems=C.frame(),
                       mapping=mapping)


def _check_unique(df, col, C, what):
    if col not in df.columns:
        return
    s = _text(df[col])
    dup = (s.duplicated(keep=False) & s.notna()).to_numpy()
    pos = np.flatnonzero(dup)
    if len(pos):
        first_pos = pd.Series(np.arange(len(s)))[dup].groupby(s[dup].to_numpy()).transform("min").to_numpy()
        C.add(pos, col, "duplicate_id", f"{what}重复", s.iloc[pos].to_numpy(),
              "删除重复行，或更正编码；重复首次出现于第 " + (first_pos + C.first_row).astype(str) + " 行")
    miss = np.flatnonzero(s.isna().to_numpy() | (s == "").fillna(True).to_numpy())
    C.add(miss, col, "missing_id", f"{what}为空", "", f"补填{what}")


def _check_code_format(df, col, width, C, what):
    if col not in df.columns:
        return None
    s = _text(df[col])
    ok = s.str.fullmatch(r"\d{%d}" % width).fillna(False).to_numpy(dtype=bool)
    bad = np.flatnonzero(~ok & s.notna().to_numpy() & (s != "").fillna(False).to_numpy())
    C.add(bad, col, "bad_code", f"{what}应为{width}位数字", s.iloc[bad].to_numpy(),
          f"填写{width}位数字{what}（文本格式，保留前导0；Excel 中把该列设为文本）")
    return s, ok


def _check_nesting(df, child, child_s, child_ok, parent, width, C, child_what, parent_what, pad=""):
    if parent not in df.columns or child_s is None:
        return
    p = _text(df[parent])
    prefix = child_s.str.slice(0, width) + pad
    bad = child_ok & p.notna().to_numpy() & (prefix != p).fillna(True).to_numpy()
    pos = np.flatnonzero(bad)
    C.add(pos, parent, "codes_do_not_nest",
          f"{child_what}不属于该{parent_what}（{child_what}前{width}位应等于{parent_what}）",
          (p.iloc[pos] + " / " + child_s.iloc[pos]).to_numpy(),
          f"核对{parent_what}或{child_what}，二者须一致")


def _numeric(df, col, C, what, *, required=True):
    if col not in df.columns:
        return None
    raw = df[col]
    vals = pd.to_numeric(raw, errors="coerce")
    not_num = vals.isna().to_numpy() & raw.notna().to_numpy() & (raw.astype("string").str.strip() != "").fillna(False).to_numpy()
    C.add(np.flatnonzero(not_num), col, "not_a_number", f"{what}不是数字", raw.iloc[np.flatnonzero(not_num)],
          f"填写{what}的数字")
    missing = raw.isna().to_numpy() | (raw.astype("string").str.strip() == "").fillna(True).to_numpy()
    if required:
        C.add(np.flatnonzero(missing), col, "missing_size", f"{what}缺失", "", f"补填{what}（抽样的规模度量）")
    return vals.to_numpy(dtype=float, na_value=np.nan)


def _check_village(df, C):
    v = _check_code_format(df, "village_code", 12, C, "村代码")
    c = _check_code_format(df, "county_code", 6, C, "县代码")
    _check_code_format(df, "township_code", 12, C, "乡镇代码")
    _check_code_format(df, "province_code", 6, C, "省代码")
    _check_unique(df, "village_code", C, "村代码")
    if v is not None:
        vs, vok = v
        _check_nesting(df, "village_code", vs, vok, "county_code", 6, C, "村代码", "县代码")
        _check_nesting(df, "village_code", vs, vok, "township_code", 9, C, "村代码", "乡镇代码", pad="000")
        _check_nesting(df, "village_code", vs, vok, "province_code", 2, C, "村代码", "省代码", pad="0000")
    if c is not None:
        cs, cok = c
        unknown = cok & ~cs.str.slice(0, 2).add("0000").isin(list(PROVINCES)).fillna(False).to_numpy()
        C.add(np.flatnonzero(unknown), "county_code", "not_assessed_province", "县代码不属于中西部22个评估省份",
              cs.iloc[np.flatnonzero(unknown)], "核对县代码前两位（省代码）", severity="warning")
    hh = _numeric(df, "households", C, "户数")
    pp = _numeric(df, "persons", C, "人数")
    for vals, col, what in ((hh, "households", "户数"), (pp, "persons", "人数")):
        if vals is None:
            continue
        nonpos = np.flatnonzero(vals <= 0)
        C.add(nonpos, col, "non_positive_size", f"{what}不大于0，该村无法按规模抽取",
              df[col].iloc[nonpos], f"核对该村{what}；确无住户的村从抽样框中删除")
        frac = np.flatnonzero(~np.isnan(vals) & (vals != np.round(vals)))
        C.add(frac, col, "not_integer", f"{what}不是整数", df[col].iloc[frac], f"{what}应为整数")
    if hh is not None and pp is not None:
        fewer = np.flatnonzero((pp < hh) & (hh > 0))
        C.add(fewer, "persons", "persons_below_households", "人数少于户数（每户至少1人）",
              (df["persons"].astype(str) + " < " + df["households"].astype(str)).iloc[fewer],
              "核对该村户数与人数")
    for part, total, what in (("hh_registered", "households", "建档立卡户数"),
                              ("persons_registered", "persons", "建档立卡人数")):
        if part in df.columns and total in df.columns:
            a = pd.to_numeric(df[part], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            b = pd.to_numeric(df[total], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            over = np.flatnonzero(a > b)
            C.add(over, part, "part_exceeds_total", f"{what}大于总数", df[part].iloc[over],
                  f"核对{what}与{'总户数' if total == 'households' else '总人数'}")
    for flag in ("poor_village", "remote"):
        if flag in df.columns:
            f = pd.to_numeric(df[flag], errors="coerce")
            bad = np.flatnonzero(~f.isin([0, 1]).to_numpy())
            C.add(bad, flag, "bad_flag", f"{flag} 应为0或1", df[flag].iloc[bad], "用1表示是、0表示否",
                  severity="error" if flag == "poor_village" else "warning")


def _check_duplicate_ids(df, column, C, problem, fix):
    """Every row whose resident ID number (non-empty) appears more than once: one person registered twice."""
    if column not in df.columns:
        return
    s = _text(df[column])
    dup = np.flatnonzero((s.duplicated(keep=False) & s.notna() & (s != "")).to_numpy(dtype=bool))
    C.add(dup, column, "duplicate_person", problem, s.iloc[dup], fix)


def _check_household(df, C):
    h = _check_code_format(df, "household_id", 16, C, "户编号")
    _check_code_format(df, "village_code", 12, C, "村代码")
    _check_unique(df, "household_id", C, "户编号")
    if h is not None:
        hs, hok = h
        _check_nesting(df, "household_id", hs, hok, "village_code", 12, C, "户编号", "村代码")
    if "village_code" in df.columns:
        vs = _text(df["village_code"])
        vok = vs.str.fullmatch(r"\d{12}").fillna(False).to_numpy(dtype=bool)
        _check_nesting(df, "village_code", vs, vok, "county_code", 6, C, "村代码", "县代码")
        _check_nesting(df, "village_code", vs, vok, "township_code", 9, C, "村代码", "乡镇代码", pad="000")
    size = _numeric(df, "size", C, "家庭人口数")
    if size is not None:
        nonpos = np.flatnonzero(size <= 0)
        C.add(nonpos, "size", "non_positive_size", "家庭人口数不大于0", df["size"].iloc[nonpos],
              "核对家庭人口数（至少1人）")
        big = np.flatnonzero(size > 20)
        C.add(big, "size", "implausible_size", "家庭人口数超过20，请核实", df["size"].iloc[big],
              "核对家庭人口数", severity="warning")
    if "register_status" in df.columns:
        st = pd.to_numeric(df["register_status"], errors="coerce")
        bad = np.flatnonzero(~st.isin([1, 2, 3, 4, 5, 6]).to_numpy())
        C.add(bad, "register_status", "bad_status", "户类型代码不在1–6之间",
              df["register_status"].iloc[bad],
              "用 1已脱贫 2未脱贫 3当年拟脱贫 4监测户 5一般户 6边缘户 编码")
        if "exit_year" in df.columns:
            ey = pd.to_numeric(df["exit_year"], errors="coerce")
            no_year = np.flatnonzero((st == 1).to_numpy() & ey.isna().to_numpy())
            C.add(no_year, "exit_year", "missing_exit_year", "已脱贫户缺少脱贫年度", "", "补填脱贫年度",
                  severity="warning")
    _check_duplicate_ids(df, "head_id_number", C, "户主身份证号重复（同一人在多户登记）",
                         "核实是否重复建档，删除或合并重复的户")


def _check_person(df, C):
    p = _check_code_format(df, "person_id", 18, C, "人员编号")
    _check_code_format(df, "household_id", 16, C, "户编号")
    _check_unique(df, "person_id", C, "人员编号")
    if p is not None:
        ps, pok = p
        _check_nesting(df, "person_id", ps, pok, "household_id", 16, C, "人员编号", "户编号")
    _check_duplicate_ids(df, "id_number", C, "身份证号重复（同一人登记多次）", "核实是否重复登记，删除重复的人员")


def _check_ids(df, C):
    for col in ("id_number", "head_id_number"):
        if col not in df.columns:
            continue
        probs = id_number_problems(df[col])
        for code, text in ID_PROBLEM_ZH.items():
            pos = np.flatnonzero((probs == code).to_numpy())
            C.add(pos, col, f"id_{code}", text, _text(df[col]).iloc[pos], ID_FIX_ZH[code])


def _check_strata(df, col, size_col, C):
    s = df[col]
    empty = s.isna().to_numpy() | (s.astype("string").str.strip() == "").fillna(True).to_numpy()
    C.add(np.flatnonzero(empty), col, "no_stratum", "该单位没有分层值，不属于任何层", "", f"补填分层列 {col}")
    key = s.astype("string").str.strip()
    valid = ~empty
    if not valid.any():
        C.add_table(col, "empty_strata", f"分层列 {col} 全部为空", f"补填分层列 {col}")
        return
    counts = key[valid].value_counts()
    if size_col is not None:
        size = pd.to_numeric(df[size_col], errors="coerce").fillna(0).clip(lower=0)
        totals = size[valid].groupby(key[valid].to_numpy()).sum()
        for stratum in totals.index[totals.to_numpy() <= 0]:
            C.add_table(col, "empty_stratum", f"层“{stratum}”的规模合计为0，无法从中抽样",
                        "核对该层各单位的规模，或与相邻层合并", value=str(stratum))
    for stratum in counts.index[counts.to_numpy() == 1]:
        C.add_table(col, "single_unit_stratum", f"层“{stratum}”只有1个单位（方差无法估计）",
                    "与相邻层合并，或在设计中将其作为必选单位", severity="warning", value=str(stratum))


# --------------------------------------------------------------------------------------------------------------
def build_village_frame(households: pd.DataFrame, villages: pd.DataFrame | None = None, *,
                        persons: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregate a household register into a village frame; returns (frame, county_summary).

    Size measures come from the register: households and persons by register group (persons counted from the
    persons table when given, else the households' ``size``). Village attributes (names, poor-village and
    remote flags, 出列年份, terrain, 村民小组) come from the village list. Where the list carries its own
    totals (households, persons, …) that differ from the register, the village is listed in
    ``county_summary.attrs["mismatches"]`` (records of village_code, column, list_value, register_value) and
    counted per county (``mismatched_villages``); the frame keeps the register's figures.
    """
    need = ["household_id", "village_code", "register_status"] + ([] if persons is not None else ["size"])
    missing = [c for c in need if c not in households.columns]
    if missing:
        raise FrameError(f"the household register lacks the columns {missing}", code="missing_column",
                         file=households.attrs.get("source_file"),
                         fix="rename the columns (or use --map) so that the register has "
                             "household_id, village_code, register_status and size")
    hh = households
    vcode = _text(hh["village_code"])
    status = pd.to_numeric(hh["register_status"], errors="coerce")
    if status.isna().any() or not status.isin([1, 2, 3, 4, 5, 6]).all():
        pos = int(np.flatnonzero(~status.isin([1, 2, 3, 4, 5, 6]).to_numpy())[0])
        raise FrameError("register_status must be a code 1–6", code="bad_status",
                         file=hh.attrs.get("source_file"), row=pos + int(hh.attrs.get("first_data_row", 1)),
                         column="register_status", fix="1已脱贫 2未脱贫 3当年拟脱贫 4监测户 5一般户 6边缘户")
    if persons is not None:
        cnt = _text(persons["household_id"]).value_counts()
        size = _text(hh["household_id"]).map(cnt).fillna(0).to_numpy(dtype=np.int64)
    else:
        raw = pd.to_numeric(hh["size"], errors="coerce")
        bad = raw.isna().to_numpy() | (raw <= 0).to_numpy() | (raw != raw.round()).to_numpy()
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise FrameError(f"{int(bad.sum()):,} household(s) have a missing, non-integer or non-positive size "
                             f"(first: {hh['size'].iloc[pos]!r})", code="bad_size",
                             file=hh.attrs.get("source_file"), row=pos + int(hh.attrs.get("first_data_row", 1)),
                             column="size", fix="correct the household sizes; `tpa frame check --kind household` "
                                                "lists every problem")
        size = raw.to_numpy(dtype=np.int64)
    st = status.to_numpy(dtype=np.int64)
    groups = {"exited": st == 1, "not_exited": (st >= 2) & (st <= 4), "nonregistered": st >= 5}
    agg = pd.DataFrame({"village_code": vcode.to_numpy(), "households": 1, "persons": size})
    for g, m in groups.items():
        agg[f"hh_{g}"] = m.astype(np.int64)
        agg[f"persons_{g}"] = np.where(m, size, 0)
    reg = agg.groupby("village_code", sort=True).sum()
    reg["hh_registered"] = reg["hh_exited"] + reg["hh_not_exited"]
    reg["persons_registered"] = reg["persons_exited"] + reg["persons_not_exited"]
    size_cols = ["households", "persons", "hh_registered", "hh_exited", "hh_not_exited", "hh_nonregistered",
                 "persons_registered", "persons_exited", "persons_not_exited", "persons_nonregistered"]
    mismatches = []
    if villages is not None:
        vl = villages.copy()
        vl["village_code"] = _text(vl["village_code"])
        dup = vl["village_code"].duplicated()
        if dup.any():
            raise FrameError(f"the village list has duplicate village codes ({vl['village_code'][dup].iloc[0]})",
                             code="duplicate_id", file=villages.attrs.get("source_file"),
                             row=int(np.flatnonzero(dup.to_numpy())[0]) + int(villages.attrs.get("first_data_row", 1)),
                             column="village_code", fix="remove the duplicate rows from the village list")
        vl = vl.set_index("village_code")
        codes = vl.index.union(reg.index)
        frame = pd.DataFrame(index=codes)
        for c in size_cols:
            frame[c] = reg[c].reindex(codes).fillna(0).astype(np.int64)
            if c in vl.columns:
                listed = pd.to_numeric(vl[c], errors="coerce").reindex(codes)
                diff = listed.notna() & (listed != frame[c])
                for code in codes[diff.to_numpy()]:
                    mismatches.append({"village_code": code, "column": c, "list_value": listed[code],
                                       "register_value": int(frame.at[code, c])})
        not_in_list = reg.index.difference(vl.index)
        for code in not_in_list:
            mismatches.append({"village_code": code, "column": "village_code", "list_value": None,
                               "register_value": int(reg.at[code, "households"])})
        for c in vl.columns:
            if c not in size_cols and c != "rural_population":
                frame[c] = vl[c].reindex(codes)
        frame["rural_population"] = (pd.to_numeric(vl["rural_population"], errors="coerce").reindex(codes)
                                     .fillna(frame["persons"]).astype(np.int64)
                                     if "rural_population" in vl.columns else frame["persons"])
    else:
        frame = reg[size_cols].copy()
        frame["rural_population"] = frame["persons"]
    frame = frame.reset_index().rename(columns={"index": "village_code"})
    vc = frame["village_code"].astype("str")
    derived = {"county_code": vc.str.slice(0, 6), "township_code": vc.str.slice(0, 9) + "000",
               "province_code": vc.str.slice(0, 2) + "0000", "city_code": vc.str.slice(0, 4) + "00"}
    for c, val in derived.items():
        if c not in frame.columns:
            frame[c] = val
        else:
            frame[c] = _text(frame[c]).fillna(val).astype("str")
    if "province_name" not in frame.columns:
        frame["province_name"] = frame["province_code"].map(lambda c: PROVINCES.get(c, ("",))[0])
    if "region" not in frame.columns:
        frame["region"] = frame["province_code"].map(lambda c: PROVINCES.get(c, ("", "", "central"))[2])
    notes = []
    for c, default in (("poor_village", 0), ("remote", 0)):
        if c not in frame.columns:
            frame[c] = default
            notes.append(f"{c} not in the village list: set to 0")
        frame[c] = pd.to_numeric(frame[c], errors="coerce").fillna(0).astype(np.int8)
    for c in ("county_name", "township_name", "village_name", "terrain"):
        if c not in frame.columns:
            frame[c] = pd.Series(pd.NA, index=frame.index, dtype="str")
    if "village_exit_year" not in frame.columns:
        frame["village_exit_year"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    if "n_groups" not in frame.columns:
        frame["n_groups"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    from .population.frame import FRAME_COLUMNS

    frame = frame[FRAME_COLUMNS + [c for c in frame.columns if c not in FRAME_COLUMNS]]
    mism = pd.DataFrame(mismatches, columns=["village_code", "column", "list_value", "register_value"])
    frame.attrs["notes"] = notes
    summary = county_summary(frame, mism)
    # records, not a DataFrame: pandas deep-copies attrs on every operation and writers serialise them
    summary.attrs["mismatches"] = mism.astype(object).where(mism.notna(), None).to_dict("records")
    return frame, summary


def county_summary(frame: pd.DataFrame, mismatches: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per county: villages, poor villages, households and persons by group, the registered poverty rate
    (persons not exited / rural population, the exit gate of SPEC §2) and villages whose list totals disagree."""
    g = frame.groupby("county_code", sort=True)
    out = pd.DataFrame({
        "villages": g.size(),
        "poor_villages": g["poor_village"].sum(),
        "households": g["households"].sum(),
        "persons": g["persons"].sum(),
        "hh_registered": g["hh_registered"].sum(),
        "hh_exited": g["hh_exited"].sum(),
        "persons_exited": g["persons_exited"].sum(),
        "persons_not_exited": g["persons_not_exited"].sum(),
        "persons_nonregistered": g["persons_nonregistered"].sum(),
        "rural_population": g["rural_population"].sum(),
    })
    out["registered_rate"] = out["persons_not_exited"] / out["rural_population"].where(out["rural_population"] > 0)
    if mismatches is not None and len(mismatches):
        mc = mismatches.drop_duplicates("village_code")["village_code"].astype(str).str.slice(0, 6).value_counts()
        out["mismatched_villages"] = mc.reindex(out.index).fillna(0).astype(np.int64)
    else:
        out["mismatched_villages"] = 0
    return out.reset_index()
