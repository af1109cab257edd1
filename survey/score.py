"""Scoring households (SPEC §4): income, 两不愁三保障, and the verdicts 错退, 返贫, 漏评, 错评, 认可.

``score_households(households, persons, rules)`` is pure and vectorised (one pass of numpy/pandas
operations over all households; persons are aggregated with ``np.bincount``). ``score_workspace(ws)``
reads the store, scores every current household under the workspace's rules and writes the table
``household_scores`` (one row per household, the columns of docs/CONTRACTS.md "Scores and indicators")
together with ``score_runs`` (the rules' JSON and hash), so every result names the rules that made it.

Conventions (all from the configuration, see ``survey.rules``):

* per-capita income = (工资性 + 经营性 − 生产经营支出 + 财产性 + 转移性) / size; a missing component counts
  as 0, all five missing = income unknown. Size is the registered size (``size``, else ``declared_size``,
  else the roster count) or, with ``household_size = "resident"``, ``resident_size``.
* poor by income when per-capita income is **at or below** the line (the same comparison everywhere).
* "meets the standard" = income above the line and every guarantee met; "poor" = income at or below the
  line or (``guarantee_failure_is_poor``) a guarantee failed.
* An unanswered item is never evidence: a guarantee whose answer is missing is not counted as failed, and an
  unknown income is not counted as poor; both are listed in the reasons (``*_missing``) for the reviewer.
* 错退: status 已脱贫 and not meeting the standard today (regime B: the exit year is the assessed year). In
  regimes A and C from 2017 on, a household that exited in an earlier year is 错退 when its exit-year
  per-capita income was at or below that year's line; otherwise, poor now = 返贫; poor now with the
  exit-year income unknown = 错退 (or 返贫 when ``unknown_exit_income_counts_as_wrongly_exited = false``).
* 漏评: not registered and poor (``missed``, counted in persons by ``missed_persons``); members found in a
  poor registered household beyond its register size (``register_size``) are added to ``missed_persons``.
* 错评: registered, not exited (未脱贫/拟脱贫/监测户) and not poor; or any registered household with a red line.
  An 已脱贫 household is never 错评 for its income.
* 认可: every applicable item (or a majority) in the top-k box; ``sat_exit`` applies to exited households only.
"""
from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import pandas as pd

from .errors import ScoringError
from .rules import NOT_EXITED, REGISTERED, STATUS_ZH, Rules

__all__ = ["score_households", "score_workspace", "write_scores", "read_scores", "score_runs", "SCORE_COLUMNS"]

SCORE_COLUMNS = [
    "household_id", "village_code", "county_code", "province_code", "instrument", "register_status", "size",
    "per_capita_income", "line", "line_other_series", "income_poor", "food_ok", "clothing_ok", "education_ok",
    "medical_ok", "housing_ok", "water_ok", "guarantees_ok", "meets_standard", "poor", "wrongly_exited",
    "fell_back", "missed", "missed_persons", "wrongly_included", "not_exited_but_meets", "recognises",
    "near_line", "between_lines", "reasons", "review", "rules_hash",
]
BOOL_COLUMNS = ["income_poor", "food_ok", "clothing_ok", "education_ok", "medical_ok", "housing_ok", "water_ok",
                "guarantees_ok", "meets_standard", "poor", "wrongly_exited", "fell_back", "missed",
                "wrongly_included", "not_exited_but_meets", "near_line", "between_lines"]
INCOME_COMPONENTS = ["wage_income", "business_income", "business_cost", "property_income", "transfer_income"]
GROSS_COLUMNS = {"grain": "gross_grain", "tobacco": "gross_tobacco", "livestock": "gross_livestock",
                 "orchard": "gross_orchard"}
RED_LINES_ZH = {
    "public_servant": "家庭成员为国家公职人员", "village_committee": "家庭成员为村委会成员",
    "vehicle_value_yuan": "拥有价值较高的车辆", "commercial_housing": "在城镇拥有商品房或商铺",
    "company": "经营注册公司", "empty_registration": "空挂户",
}


# ---------------------------------------------------------------------------------------------- helpers
def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce").astype(float)


def _flag(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(value == 1, answered) for a 0/1 column; a missing column is unanswered everywhere."""
    v = _num(df, col).to_numpy()
    return v == 1, ~np.isnan(v)


class _F:
    """A per-household value formatted lazily, only for the households a reason applies to.

    kind: "num" JSON number (null for NaN), "zh" number for a message (缺失 for NaN), "line" a line in whole
    yuan when whole, "json" a JSON string literal, "text" the value as text."""

    def __init__(self, values, kind: str = "num", spec: str = "%.2f"):
        self.values = np.asarray(values, dtype=object if kind in ("json", "text") else float)
        self.kind, self.spec = kind, spec

    def take(self, idx: np.ndarray) -> np.ndarray:
        v = self.values[idx]
        if self.kind in ("json", "text"):
            ser = pd.Series(v, dtype=object)
            ok = ser.map(lambda x: isinstance(x, str), na_action="ignore").fillna(False).astype(bool)
            uniq = pd.unique(ser[ok])
            table = {u: (json.dumps(u, ensure_ascii=False) if self.kind == "json" else u) for u in uniq}
            return ser.map(table).where(ok, "null" if self.kind == "json" else "").to_numpy(dtype=object)
        nan = np.isnan(v)
        if self.kind == "line":
            uniq = np.unique(v[~nan])
            table = {u: (f"{u:.0f}" if float(u).is_integer() else f"{u:.2f}") for u in uniq}
            out = pd.Series(v).map(table).to_numpy(dtype=object)
        else:
            out = np.char.mod(self.spec, np.where(nan, 0.0, v)).astype(object)
        out[nan] = "null" if self.kind == "num" else "缺失"
        return out


class _Reasons:
    """Accumulates one JSON list of reasons per household; values are formatted only where a reason applies."""

    def __init__(self, n: int):
        self.n = n
        self.acc = np.full(n, "", dtype=object)

    @staticmethod
    def _part(x, idx):
        return x.take(idx) if isinstance(x, _F) else x

    def add(self, mask, test: str, value, threshold, *message):
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(idx):
            return
        msg = ""
        for part in message:
            msg = msg + self._part(part, idx)
        frag = ('{"test": "' + test + '", "value": ') + self._part(value, idx) + ', "threshold": ' \
            + self._part(threshold, idx) + ', "message_zh": "' + msg + '"}'
        cur = self.acc[idx]
        self.acc[idx] = cur + np.where(cur == "", "", ", ").astype(object) + frag

    def result(self) -> np.ndarray:
        return "[" + self.acc + "]"


def _require(df: pd.DataFrame, cols, what: str):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ScoringError(f"the {what} table lacks the column(s) {', '.join(missing)}", column=missing[0],
                           fix="import questionnaires whose codebook has these variables (docs/CONTRACTS.md)")


# ---------------------------------------------------------------------------------------------- scoring
def score_households(households: pd.DataFrame, persons: pd.DataFrame | None, rules: Rules) -> pd.DataFrame:
    """Score households under ``rules``; one output row per input household, in input order.

    ``households`` holds the questionnaire/population household columns (docs/CONTRACTS.md); ``persons``
    the roster (``household_id`` plus ``age, in_school, school_exempt, insurance, insurance_exempt,
    public_servant, village_committee``). An optional ``register_size`` column (the register's household
    size) lets missing members of registered households count as 漏评 persons.
    """
    _require(households, ["household_id", "register_status"], "households")
    hh = households.reset_index(drop=True)
    n = len(hh)
    hid = hh["household_id"].astype(str)
    dup = hid.duplicated()
    if dup.any():
        raise ScoringError(f"household {hid[dup].iloc[0]} appears {int((hid == hid[dup].iloc[0]).sum())} times",
                           column="household_id", fix="keep one current questionnaire per household")
    status = _num(hh, "register_status")
    bad = ~status.isin(list(REGISTERED) + [5, 6])
    if bad.any():
        raise ScoringError(f"household {hid[bad].iloc[0]} has register_status {hh['register_status'][bad].iloc[0]!r}",
                           column="register_status",
                           fix="use 1 已脱贫, 2 未脱贫, 3 当年拟脱贫, 4 监测户, 5 一般户 or 6 边缘户")
    status = status.to_numpy().astype(int)
    registered = np.isin(status, REGISTERED)
    exited = status == 1
    not_exited = np.isin(status, NOT_EXITED)
    province = (hh["province_code"].astype(str) if "province_code" in hh else
                hh["household_id"].astype(str).str[:2] + "0000")
    province = province.str[:2] + "0000"

    # ---- persons aggregated per household (codes into hh rows, -1 for persons of other households)
    if persons is None:
        persons = pd.DataFrame({"household_id": pd.Series([], dtype=str)})
    _require(persons, ["household_id"], "persons")
    codes = pd.Categorical(persons["household_id"].astype(str), categories=hid).codes
    keep = codes >= 0
    codes_k = codes[keep]
    pp = persons.loc[keep]

    def per_hh(mask) -> np.ndarray:
        return np.bincount(codes_k, weights=np.asarray(mask, dtype=float), minlength=n).astype(int)

    roster = per_hh(np.ones(len(codes_k)))
    age = np.floor(_num(pp, "age").to_numpy())
    school_age = (age >= rules.school_age_min) & (age <= rules.school_age_max)
    in_school, in_school_known = _flag(pp, "in_school")
    exempt_school = _num(pp, "school_exempt").isin([1, 2]).to_numpy()
    child_out = per_hh(school_age & in_school_known & ~in_school & ~exempt_school)
    child_unknown = per_hh(school_age & ~in_school_known & ~exempt_school)
    ins = _num(pp, "insurance").to_numpy()
    ins_exempt, _ = _flag(pp, "insurance_exempt")
    uninsured = per_hh(~np.isnan(ins) & ~np.isin(ins, [1, 2]) & ~ins_exempt)
    ins_unknown = per_hh(np.isnan(ins) & ~ins_exempt)
    servants = per_hh(_flag(pp, "public_servant")[0])
    committee = per_hh(_flag(pp, "village_committee")[0])

    # ---- size and income
    reg_size = _num(hh, "size")
    if "declared_size" in hh:
        reg_size = reg_size.fillna(_num(hh, "declared_size"))
    reg_size = reg_size.fillna(pd.Series(np.where(roster > 0, roster, np.nan)))
    size = reg_size if rules.household_size == "registered" else _num(hh, "resident_size").fillna(reg_size)
    size = size.to_numpy()
    size_ok = size > 0
    comps = {c: _num(hh, c) for c in INCOME_COMPONENTS}
    cost = comps["business_cost"]
    if rules.impute_costs:
        imputed = sum(rules.cost_shares.get(k, 0.0) * _num(hh, col).fillna(0.0) for k, col in GROSS_COLUMNS.items())
        has_gross = np.zeros(n, dtype=bool)
        for col in GROSS_COLUMNS.values():
            has_gross |= _num(hh, col).notna().to_numpy()
        cost = cost.where(cost.notna() | ~has_gross, imputed)
    all_missing = np.logical_and.reduce([comps[c].isna().to_numpy() for c in INCOME_COMPONENTS])
    net = (comps["wage_income"].fillna(0) + comps["business_income"].fillna(0) - cost.fillna(0)
           + comps["property_income"].fillna(0) + comps["transfer_income"].fillna(0)).to_numpy()
    net = np.where(all_missing, np.nan, net)
    with np.errstate(divide="ignore", invalid="ignore"):
        pci = np.where(size_ok, net / np.where(size_ok, size, 1.0), np.nan)
    income_known = ~np.isnan(pci)

    # ---- lines (looked up once per province)
    provs = pd.unique(province)
    line_map = {p: rules.line(p) for p in provs}
    other_map = {p: rules.line_or_nan(p, series=rules.other_series) for p in provs}
    line = province.map(line_map).to_numpy(dtype=float)
    other = province.map(other_map).to_numpy(dtype=float)
    income_poor = income_known & (pci <= line)
    near_line = income_known & (np.abs(pci - line) <= rules.near_line_margin * line)
    lo, hi = np.fmin(line, other), np.fmax(line, other)
    between = income_known & ~np.isnan(other) & (lo != hi) & (pci > lo) & (pci <= hi)

    # ---- 两不愁三保障 (a missing answer is not a failure; it is reported)
    protein, protein_known = _flag(hh, "food_regular_protein")
    stable, stable_known = _flag(hh, "food_stable")
    food_fail = (protein_known & ~protein) | (stable_known & ~stable)
    food_unknown = ~food_fail & ~(protein_known & stable_known)
    seasonal, seasonal_known = _flag(hh, "clothing_seasonal")
    donation, donation_known = _flag(hh, "clothing_donation")
    cloth_fail = (seasonal_known & ~seasonal) | (donation_known & donation)
    cloth_unknown = ~cloth_fail & ~(seasonal_known & donation_known)
    edu_fail = child_out > 0
    med_fail = uninsured > 0
    grade = (hh["house_grade"].astype("string").str.strip().str.upper() if "house_grade" in hh
             else pd.Series(pd.NA, index=hh.index, dtype="string"))
    grade_known = grade.notna().to_numpy() & grade.isin(["A", "B", "C", "D"]).fillna(False).to_numpy()
    renovated, _ = _flag(hh, "house_renovated")
    relocated = ((" " + hh["measures"].astype("string").fillna("") + " ").str.contains(" 易地搬迁 ", regex=False)
                 .to_numpy(dtype=bool) if "measures" in hh else np.zeros(n, dtype=bool))
    safe_grade = grade.isin(list(rules.safe_house_grades)).fillna(False).to_numpy(dtype=bool)
    house_fail = grade_known & ~safe_grade & ~renovated & ~relocated
    litres = _num(hh, "water_litres").to_numpy()
    quality, quality_known = _flag(hh, "water_quality_ok")
    piped, _ = _flag(hh, "water_piped")
    trip = _num(hh, "water_round_trip_min").to_numpy()
    interrupt = _num(hh, "water_interrupt_days").to_numpy()
    if rules.water_rule == "2018":
        need = np.where(province.isin(list(rules.dry_provinces)).to_numpy(), rules.water_litres_dry,
                        rules.water_litres_wet)
        max_interrupt = rules.water_interrupt_days_max
    else:  # 2004 基本安全: 20 L, round trip ≤ 20 min, reliability ≥ 90 %
        need = np.full(n, rules.water_litres_dry)
        max_interrupt = 0.10 * 365
    with np.errstate(invalid="ignore"):
        water_fail = ((litres < need) | (quality_known & ~quality)
                      | (~piped & (trip > rules.water_round_trip_minutes)) | (interrupt > max_interrupt))
    water_fail = np.asarray(water_fail, dtype=bool)
    guarantees_fail = food_fail | cloth_fail | edu_fail | med_fail | house_fail
    if rules.water_required_for_standard:
        guarantees_fail = guarantees_fail | water_fail
    guarantees_ok = ~guarantees_fail
    meets = ~income_poor & guarantees_ok
    poor = income_poor | (guarantees_fail if rules.guarantee_failure_is_poor else np.zeros(n, dtype=bool))

    # ---- verdicts
    exit_year = _num(hh, "exit_year").to_numpy()
    exit_inc = _num(hh, "exit_year_income_pc").to_numpy()
    fell_back_rule = rules.regime in ("A", "C") and rules.year >= 2017
    earlier = exited & (exit_year < rules.year) if fell_back_rule else np.zeros(n, dtype=bool)
    exit_line = np.full(n, np.nan)
    if earlier.any():
        pairs = pd.DataFrame({"p": province[earlier].to_numpy(), "y": exit_year[earlier].astype(int)})
        lut = {(p, y): rules.line(p, y) for p, y in pairs.drop_duplicates().itertuples(index=False)}
        exit_line[earlier] = [lut[k] for k in zip(pairs["p"], pairs["y"])]
    exit_known = earlier & ~np.isnan(exit_inc)
    exit_fail = exit_known & (exit_inc <= exit_line)
    now_fail = exited & ~meets
    unknown_we = rules.unknown_exit_income_is_wrongly_exited
    wrongly_exited = (now_fail & ~earlier) | exit_fail | (earlier & now_fail & ~exit_known & unknown_we)
    fell_back = earlier & now_fail & ~exit_fail & (exit_known | (not unknown_we))
    missed = ~registered & poor
    if "register_size" in hh:
        missing_members = np.maximum(0, roster - _num(hh, "register_size").fillna(pd.Series(roster)).to_numpy())
    else:
        missing_members = np.zeros(n)
    missing_members = np.where(registered & poor & (roster > 0), missing_members, 0).astype(int)
    size_int = np.where(size_ok, size, 0)
    missed_persons = np.where(missed, size_int, 0) + missing_members
    rl = rules.red_lines
    vehicle = _num(hh, "rl_vehicle_value").to_numpy()
    red = {
        "public_servant": (servants > 0) if rl.get("public_servant", True) else np.zeros(n, bool),
        "village_committee": (committee > 0) if rl.get("village_committee", True) else np.zeros(n, bool),
        "vehicle_value_yuan": (np.nan_to_num(vehicle, nan=-1) >= float(rl["vehicle_value_yuan"]))
        if rl.get("vehicle_value_yuan") not in (None, False) else np.zeros(n, bool),
        "commercial_housing": _flag(hh, "rl_commercial_housing")[0] if rl.get("commercial_housing", True)
        else np.zeros(n, bool),
        "company": _flag(hh, "rl_company")[0] if rl.get("company", True) else np.zeros(n, bool),
        "empty_registration": _flag(hh, "rl_empty_registration")[0] if rl.get("empty_registration", True)
        else np.zeros(n, bool),
    }
    red_any = np.logical_or.reduce(list(red.values())) & registered
    wrongly_included = (not_exited & ~poor) | red_any
    not_exited_but_meets = not_exited & meets

    # ---- recognition (认可度)
    applicable = np.zeros(n)
    recognised = np.zeros(n)
    for item in rules.satisfaction_items:
        if item not in hh:
            continue
        v = _num(hh, item).to_numpy()
        app = ~np.isnan(v) & (exited if item == "sat_exit" else True)
        applicable += app
        recognised += app & (v <= rules.top_box)
    if rules.satisfaction_rule == "all":
        rec = recognised == applicable
    else:
        rec = 2 * recognised > applicable
    recognises = pd.array(np.where(applicable > 0, rec, False), dtype="boolean")
    recognises[applicable == 0] = pd.NA

    # ---- reasons
    R = _Reasons(n)
    PCI, LINE, OTHER = _F(pci), _F(line), _F(other)
    pci_zh, line_zh, other_zh = _F(pci, "zh"), _F(line, "line"), _F(other, "line")
    label = f"{rules.line_label_zh()}贫困线"
    R.add(income_poor, "income", PCI, LINE, "人均纯收入", pci_zh, "元，不高于" + label, line_zh, "元")
    R.add(~income_known & size_ok, "income_missing", "null", LINE, "收入数据缺失，无法判定收入是否达标")
    R.add(~size_ok, "size_missing", "null", "null", "家庭人口数缺失或为0，无法计算人均收入")
    R.add(food_fail, "food", "0", "1", "不愁吃未达标（主食或肉蛋奶豆不能保障）")
    R.add(cloth_fail, "clothing", "0", "1", "不愁穿未达标（四季衣被不足或依赖捐助）")
    R.add(edu_fail, "education", _F(child_out, spec="%d"), "0",
          f"义务教育未保障：{rules.school_age_min}至{rules.school_age_max}周岁儿童失学辍学",
          _F(child_out, "zh", "%d"), "人")
    R.add(med_fail, "medical", _F(uninsured, spec="%d"), "0", "基本医疗未保障：未参加基本医疗保险",
          _F(uninsured, "zh", "%d"), "人")
    grade_obj = grade.astype(object).where(grade.notna(), None).to_numpy()
    R.add(house_fail, "housing", _F(grade_obj, "json"), json.dumps(list(rules.safe_house_grades)),
          "住房安全未保障：房屋鉴定为", _F(grade_obj, "text"), "级，未改造或搬迁")
    R.add(water_fail, "water", _F(litres, spec="%.0f"), _F(need, spec="%.0f"),
          "饮水安全未达标（水量、水质、取水便利或供水保证率不达标）")
    for item_unknown, test, msg in ((food_unknown, "food_missing", "不愁吃相关题目缺答"),
                                    (cloth_unknown, "clothing_missing", "不愁穿相关题目缺答"),
                                    (child_unknown > 0, "education_missing", "学龄儿童在校情况缺答"),
                                    (ins_unknown > 0, "medical_missing", "成员参保情况缺答"),
                                    (~grade_known, "housing_missing", "房屋安全等级缺失")):
        R.add(item_unknown, test, "null", "null", msg + "，未计为不达标")
    R.add(near_line, "near_line", PCI, LINE, "人均纯收入", pci_zh,
          f"元，在贫困线{rules.near_line_margin * 100:g}%范围内（贫困线", line_zh, "元）")
    R.add(between, "between_lines", PCI, OTHER, "人均纯收入", pci_zh, "元，介于两种口径贫困线之间（本评估口径",
          line_zh, "元，另一口径", other_zh, "元）")
    R.add(wrongly_exited & ~exit_fail, "wrongly_exited", "null", "null",
          "错退：已脱贫户未达到脱贫标准（收入不高于贫困线或两不愁三保障未达标）")
    R.add(exit_fail, "wrongly_exited_exit_income", _F(exit_inc), _F(exit_line), "错退：脱贫当年人均纯收入",
          _F(exit_inc, "zh"), "元，不高于当年贫困线", _F(exit_line, "line"), "元")
    R.add(earlier & now_fail & ~exit_known, "exit_income_missing", "null", "null",
          "脱贫当年收入未知，按" + ("错退" if unknown_we else "返贫") + "计")
    R.add(fell_back, "fell_back", "null", "null", "返贫：脱贫时达标，现判定为贫困")
    R.add(missed, "missed", _F(size_int, spec="%d"), "null", "漏评：非建档立卡户判定为贫困，涉及",
          _F(size_int, "zh", "%d"), "人")
    R.add(missing_members > 0, "missed_members", _F(missing_members, spec="%d"), "null", "漏评：贫困户中有",
          _F(missing_members, "zh", "%d"), "名成员未纳入建档立卡")
    R.add(not_exited & ~poor, "wrongly_included", PCI, LINE, "错评：",
          _F(pd.Series(status).map(STATUS_ZH).to_numpy(dtype=object), "text"), "户人均纯收入", pci_zh,
          "元高于贫困线", line_zh, "元且两不愁三保障均达标")
    for key, mask in red.items():
        if key == "vehicle_value_yuan":
            R.add(mask & registered, f"red_line_{key}", _F(vehicle, spec="%.0f"), f"{float(rl.get(key)):.0f}",
                  f"错评红线：{RED_LINES_ZH[key]}（", _F(vehicle, "zh", "%.0f"), f"元，不低于{rl.get(key)}元）")
        else:
            R.add(mask & registered, f"red_line_{key}", "1", "1", f"错评红线：{RED_LINES_ZH[key]}")
    not_rec = (applicable - recognised).astype(int)
    rule_zh = "全部" if rules.satisfaction_rule == "all" else "多数"
    not_recognised = (applicable > 0) & ~rec
    R.add(not_recognised, "not_recognised", _F(not_rec, spec="%d"), _F(applicable, spec="%d"), "不认可：",
          _F(applicable, "zh", "%d"), "项适用认可度题目中", _F(not_rec, "zh", "%d"),
          f"项未选前{rules.top_box}档（规则：{rule_zh}适用项须认可）")

    instrument = (hh["instrument"].astype(str) if "instrument" in hh else
                  pd.Series(np.where(registered, "hh_registered", "hh_nonregistered"), index=hh.index))
    out = pd.DataFrame({
        "household_id": hid,
        "village_code": hh["village_code"].astype(str) if "village_code" in hh else hid.str[:12],
        "county_code": hh["county_code"].astype(str) if "county_code" in hh else hid.str[:6],
        "province_code": province,
        "instrument": instrument,
        "register_status": status,
        "size": size,
        "per_capita_income": pci,
        "line": line,
        "line_other_series": other,
        "income_poor": income_poor,
        "food_ok": ~food_fail, "clothing_ok": ~cloth_fail, "education_ok": ~edu_fail, "medical_ok": ~med_fail,
        "housing_ok": ~house_fail, "water_ok": ~water_fail,
        "guarantees_ok": guarantees_ok, "meets_standard": meets, "poor": poor,
        "wrongly_exited": wrongly_exited, "fell_back": fell_back, "missed": missed,
        "missed_persons": missed_persons.astype(int), "wrongly_included": wrongly_included,
        "not_exited_but_meets": not_exited_but_meets, "recognises": recognises,
        "near_line": near_line, "between_lines": between,
        "reasons": R.result(),
        "review": pd.Series(None, index=hh.index, dtype=object),
        "rules_hash": rules.hash,
    })
    for c in BOOL_COLUMNS:
        out[c] = out[c].astype(bool)
    return out


# ---------------------------------------------------------------------------------------------- workspace
SCORES_DDL = """
CREATE TABLE IF NOT EXISTS household_scores (
    household_id TEXT PRIMARY KEY, village_code TEXT, county_code TEXT, province_code TEXT, instrument TEXT,
    register_status INTEGER, size REAL, per_capita_income REAL, line REAL, line_other_series REAL,
    income_poor INTEGER, food_ok INTEGER, clothing_ok INTEGER, education_ok INTEGER, medical_ok INTEGER,
    housing_ok INTEGER, water_ok INTEGER, guarantees_ok INTEGER, meets_standard INTEGER, poor INTEGER,
    wrongly_exited INTEGER, fell_back INTEGER, missed INTEGER, missed_persons INTEGER, wrongly_included INTEGER,
    not_exited_but_meets INTEGER, recognises INTEGER, near_line INTEGER, between_lines INTEGER, reasons TEXT,
    review TEXT, rules_hash TEXT, run_id INTEGER)
"""
RUNS_DDL = """
CREATE TABLE IF NOT EXISTS score_runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT, rules_hash TEXT, rules_json TEXT,
    n_households INTEGER, summary_json TEXT)
"""


def _register_sizes(ws) -> pd.DataFrame | None:
    """Register household sizes from the latest draw, when one exists (for missing members)."""
    try:
        from sampling.draw import sample_households
    except ImportError:
        return None
    try:
        s = sample_households(ws)
    except Exception:  # no draw in this workspace
        return None
    if s is None or "size" not in s or s.empty:
        return None
    s = s.drop_duplicates("household_id")
    return pd.DataFrame({"household_id": s["household_id"].astype(str),
                         "register_size": pd.to_numeric(s["size"], errors="coerce")})


def score_workspace(ws) -> pd.DataFrame:
    """Score every current household of the store under the workspace's rules; write ``household_scores``."""
    from . import store

    rules = Rules.from_config(ws.config)
    households = store.read_households(ws)
    persons = store.read_persons(ws)
    if households is None or len(households) == 0:
        raise ScoringError("the workspace holds no household questionnaires to score",
                           fix="import questionnaires first with `tpa import FILE`")
    households = households.copy()
    households["household_id"] = households["household_id"].astype(str)
    if "register_size" not in households:
        sizes = _register_sizes(ws)
        if sizes is not None:
            households = households.merge(sizes, on="household_id", how="left")
    scores = score_households(households, persons, rules)
    return write_scores(ws, scores, rules)


def write_scores(ws, scores: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Replace the workspace's ``household_scores`` with ``scores`` (one transaction) and record the run with
    the rules' JSON and hash in ``score_runs``. The current review verdicts are attached as ``review``."""
    from .review import current_reviews

    scores = scores.copy()
    reviews = current_reviews(ws)
    if not reviews.empty:
        scores["review"] = scores["household_id"].map(reviews.set_index("household_id")["verdict"])
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    summary = {k: int(scores[k].sum()) for k in ("wrongly_exited", "fell_back", "missed", "wrongly_included")}
    summary["missed_persons"] = int(scores["missed_persons"].sum())
    with ws.transaction() as con:
        con.execute(SCORES_DDL)
        con.execute(RUNS_DDL)
        cur = con.execute("INSERT INTO score_runs (created, rules_hash, rules_json, n_households, summary_json) "
                          "VALUES (?, ?, ?, ?, ?)",
                          (created, rules.hash, rules.to_json(), len(scores), json.dumps(summary)))
        run_id = cur.lastrowid
        con.execute("DELETE FROM household_scores")
        table = scores.copy()
        for c in BOOL_COLUMNS:
            table[c] = table[c].astype(int)
        rec = table["recognises"]
        table["recognises"] = [None if pd.isna(v) else int(bool(v)) for v in rec.astype(object)]
        table["run_id"] = run_id
        cols = SCORE_COLUMNS + ["run_id"]
        table = table[cols].astype(object).where(table[cols].notna(), None)
        con.executemany(f"INSERT INTO household_scores ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        table.itertuples(index=False, name=None))
    scores.attrs["run_id"] = run_id
    return scores


def score_runs(ws) -> pd.DataFrame:
    """Every scoring run: when, under which rules (hash and full JSON), how many households."""
    if not ws.table_exists("score_runs"):
        return pd.DataFrame(columns=["run_id", "created", "rules_hash", "rules_json", "n_households", "summary_json"])
    return ws.read_sql("SELECT * FROM score_runs ORDER BY run_id")


def read_scores(ws) -> pd.DataFrame:
    """The stored household scores (booleans restored); ScoringError when `tpa score` has not run."""
    if not ws.table_exists("household_scores"):
        raise ScoringError("no household scores in this workspace", fix="run `tpa score` first")
    df = ws.read_sql("SELECT * FROM household_scores")
    for c in BOOL_COLUMNS:
        df[c] = df[c].astype(bool)
    df["recognises"] = pd.array(df["recognises"].map({1: True, 0: False, 1.0: True, 0.0: False}),
                                dtype="boolean")
    for c in ("household_id", "village_code", "county_code", "province_code"):
        df[c] = df[c].astype(str)
    return df
