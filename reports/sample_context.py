"""A complete, realistic province context without a workspace: for the tests, the benchmark and previews.

The numbers are made up but consistent (numerators, denominators and intervals agree; a county with a zero
错退 count carries its exact upper bound; one county fails). Personal data in the problem cases are raw
(full ID numbers, phones, a name with markup) on purpose: the renderer must mask and escape them.
"""
from __future__ import annotations

import math

from sampling.geography import PROVINCES, province_name, region

from .formatting import pct, zero_display

LEVEL = 0.95


def _ind(key, name, level, prov, county, unit, num, den, est, se, df, threshold, direction, suspected=0.0):
    official = num / den if den else None
    t = 2.0 if df and df > 30 else 2.1
    if num == 0:
        zero_upper = 1 - 0.025 ** (1 / max(int(den / 3.2), 1))
        lo, hi = 0.0, zero_upper
        est, se = 0.0, 0.0
    else:
        zero_upper = None
        lo, hi = max(0.0, est - t * se), min(1.0, est + t * se)
    passed = None
    if threshold is not None and official is not None:
        passed = official <= threshold if direction == "<=" else official >= threshold
    dist = None
    if threshold is not None and se:
        dist = (threshold - est) / se if direction == "<=" else (est - threshold) / se
    display = zero_display(zero_upper) if zero_upper is not None else pct(official)
    return dict(key=key, name_zh=name, level=level, province_code=prov, county_code=county, unit=unit,
                numerator=float(num), denominator=float(den), official=official, estimate=est, se=se,
                ci_low=lo, ci_high=hi, df=df, deff=1.6 if se else None, threshold=threshold, direction=direction,
                passed=passed, distance_se=dist, zero_upper=zero_upper, suspected=float(suspected),
                display=display)


def _indicators(prov, county, level, rng_state, n_hh, west, fail=False, zero=False):
    import numpy as np

    rng = np.random.default_rng(rng_state)
    ex_persons = int(n_hh * 0.45 * 3.4)
    we = 0 if zero else int(rng.integers(1, 6)) + (int(ex_persons * 0.03) if fail else 0)
    nonreg_village = int(n_hh * 8.5 * 3.3)
    mi = int(rng.integers(0, 8))
    rec_den = n_hh
    rec_num = int(rec_den * rng.uniform(0.93, 0.99))
    df = float(max(2, int(n_hh / 45) - 2))
    we_rate = we / ex_persons
    mi_rate = mi / nonreg_village if nonreg_village else 0.0
    thr_inc = 0.03 if west else 0.02
    inc = 0.006 + rng.uniform(0, 0.006) + we_rate * 0.15
    out = [
        _ind("incidence", "综合贫困发生率", level, prov, county, "persons", round(inc * 41000, 1), 41000.0, inc,
             inc * 0.09, df, thr_inc, "<="),
        _ind("wrongly_exited_rate", "脱贫人口错退率", level, prov, county, "persons", we, ex_persons,
             we_rate * rng.uniform(0.9, 1.1), we_rate * 0.45 + 0.0005, df, 0.02, "<=", suspected=int(rng.integers(0, 4))),
        _ind("missed_rate", "贫困人口漏评率", level, prov, county, "persons", mi, nonreg_village,
             mi_rate * rng.uniform(0.9, 1.1), mi_rate * 0.5 + 0.0001, df, 0.02, "<=", suspected=int(rng.integers(0, 5))),
        _ind("recognition_rate", "群众认可度", level, prov, county, "households", rec_num, rec_den,
             rec_num / rec_den * rng.uniform(0.995, 1.0), 0.006, df, 0.90, ">="),
    ]
    return out


def sample_province_context(code: str = "520000", *, seed: int = 1, n_counties: int = 6,
                            insufficient: bool = False) -> dict:
    """A province context shaped as ``reports.context.build_province_context`` returns it."""
    import numpy as np

    code = str(code)
    rng = np.random.default_rng(seed + int(code[:2]))
    name = province_name(code)
    short = PROVINCES.get(code, (name, name, "central"))[1]
    west = region(code) == "west"
    counties = [f"{code[:2]}{k:02d}{j:02d}" for k, j in zip(range(1, n_counties + 1), [2, 22, 23, 24, 25, 26, 27,
                                                                                     28, 29, 30, 31, 32] * 5)]
    county_names = {c: f"{short}第{i + 1}县" for i, c in enumerate(counties)}
    county_ind = []
    hh_per_county = []
    for i, c in enumerate(counties):
        n_hh = int(rng.integers(1000, 1500))
        hh_per_county.append(n_hh)
        county_ind += _indicators(code, c, "county", seed * 1000 + i + int(code[:2]), n_hh, west,
                                  fail=(i == 1), zero=(i in (0, 3)))
    total_hh = sum(hh_per_county)
    prov_ind = []
    for key in ("incidence", "wrongly_exited_rate", "missed_rate", "recognition_rate"):
        rows = [d for d in county_ind if d["key"] == key]
        num = sum(d["numerator"] for d in rows)
        den = sum(d["denominator"] for d in rows)
        est = num / den
        se = (sum((d["se"] or 0) ** 2 * (d["denominator"] / den) ** 2 for d in rows)) ** 0.5
        if key == "wrongly_exited_rate":
            se = max(se, 0.0004)
        first = rows[0]
        prov_ind.append(_ind(key, first["name_zh"], "province", code, None, first["unit"], num, den, est, se,
                             float(len(counties) * 20), first["threshold"], first["direction"],
                             suspected=sum(d["suspected"] for d in rows)))
    status_rows = [("已脱贫", 0.42), ("未脱贫", 0.05), ("当年拟脱贫", 0.02), ("监测户", 0.01), ("一般户", 0.40),
                   ("边缘户", 0.10)]
    interviewed = int(total_hh * 0.985)
    guarantees = []
    for key, label, share in (("food_ok", "不愁吃", 0.002), ("clothing_ok", "不愁穿", 0.001),
                              ("education_ok", "义务教育保障", 0.004), ("medical_ok", "基本医疗保障", 0.006),
                              ("housing_ok", "住房安全保障", 0.009), ("water_ok", "饮水安全", 0.012)):
        failed = int(interviewed * share * rng.uniform(0.5, 1.5))
        guarantees.append({"key": key, "label": label, "checked": interviewed, "failed": failed,
                           "share": failed / interviewed})
    comps = [("工资性收入", 6200.0), ("经营性净收入", 2100.0), ("财产性收入", 310.0), ("转移性收入", 2350.0)]
    total_inc = sum(v for _, v in comps)
    sat_items = [("sat_policy", "政策认可"), ("sat_measures", "帮扶措施"), ("sat_results", "帮扶成效"),
                 ("sat_exit", "脱贫退出"), ("sat_cadres", "驻村工作队和帮扶责任人")]
    sat_rows = []
    for label, share in status_rows:
        n = int(interviewed * share)
        rates = [None if (k == "sat_exit" and label != "已脱贫") else float(rng.uniform(0.93, 0.995))
                 for k, _ in sat_items]
        sat_rows.append({"label": label, "n": n, "rates": rates})
    measures = [(m, float(rng.uniform(0.05, 0.8))) for m in
                ("产业", "就业", "易地搬迁", "教育", "健康", "兜底", "生态", "金融", "光伏", "危房改造", "资产收益")]
    reg = int(interviewed * 0.5)
    cases = [
        {"kind": "错退", "confirmed": True, "county_code": counties[min(1, len(counties) - 1)], "county": county_names[counties[min(1, len(counties) - 1)]],
         "village": "石门村", "household_id": f"{counties[min(1, len(counties) - 1)]}0010010007", "head_name": "王<b>小明</b>",
         "head_id_number": "52010219850312123X", "phone": "13812345678", "register_status": "已脱贫", "size": 4,
         "reasons": ["人均纯收入 3,512.40 元，低于 3,747 元的贫困线", "住房为C级危房，未改造"],
         "review": "审核通过", "comment": "户主电话 139 8765 4321，身份证 520102198503121234 已核"},
        {"kind": "漏评", "confirmed": False, "county_code": counties[min(2, len(counties) - 1)], "county": county_names[counties[min(2, len(counties) - 1)]],
         "village": "龙井村", "household_id": f"{counties[min(2, len(counties) - 1)]}0020030011", "head_name": "欧阳娜娜",
         "head_id_number": "522401199001019876", "phone": "0851-86801234", "register_status": "一般户", "size": 3,
         "reasons": ["人均纯收入 2,980.00 元，不高于 3,747 元的贫困线"], "review": "疑似漏评",
         "comment": "<script>alert('x')</script> 家中有大病患者"},
        {"kind": "错评", "confirmed": True, "county_code": counties[0], "county": county_names[counties[0]],
         "village": "新寨村", "household_id": f"{counties[0]}0030020005", "head_name": "李四",
         "head_id_number": "520102197002023456", "phone": "15900001111", "register_status": "未脱贫", "size": 2,
         "reasons": ["家庭成员为国家公职人员"], "review": "审核通过", "comment": ""},
    ]
    files = [
        {"file": f"{short}_脱贫户问卷.xlsx", "instrument": "hh_registered", "rows_in": reg + 12, "accepted": reg,
         "quarantined": 12, "errors": 12, "warnings": 40,
         "top_problems": [{"rule": "身份证号校验位错误", "count": 7}, {"rule": "访问结束早于开始", "count": 5},
                          {"rule": "外出务工月数超出0–12", "count": 3}]},
        {"file": f"{short}_非建档立卡户问卷.sav", "instrument": "hh_nonregistered", "rows_in": interviewed - reg + 3,
         "accepted": interviewed - reg, "quarantined": 3, "errors": 3, "warnings": 11,
         "top_problems": [{"rule": "户规模与花名册人数不符", "count": 3}]},
        {"file": f"{short}_村问卷.csv", "instrument": "village", "rows_in": 180, "accepted": 180, "quarantined": 0,
         "errors": 0, "warnings": 0, "top_problems": []},
    ]
    ctx = {
        "kind": "province",
        "status": "insufficient" if insufficient else "ok",
        "insufficient_reasons": ["尚未导入本省的住户问卷（0户）", "尚未对本省住户进行评分"] if insufficient else [],
        "province": {"code": code, "name": name, "short": short, "region": "west" if west else "central"},
        "assessment": {"name": "贫困县退出专项评估检查", "year": 2019, "regime": "B",
                       "evaluator": "第三方评估机构（示例）", "date": "2019-12-20", "level": LEVEL,
                       "line": 3747.0, "line_series": "planning", "line_other": 3218.0},
        "indicators": [] if insufficient else prov_ind,
        "county_indicators": [] if insufficient else county_ind,
        "county_names": county_names,
        "design": {"name": "exit_check", "title": "贫困县退出专项评估检查抽样设计", "seed": 20191120,
                   "draw_id": "d-7f3a9c21", "created": "2019-11-15T08:30:00+00:00",
                   "frames": {"villages": "3f1c9a…", "households": "a81e02…"},
                   "frame_hashes": {"villages": "3f1c9a7d52e04b18", "households": "a81e02cc9b7d4410"},
                   "software_version": "tpa 0.1.0", "rules_hash": "9c41d2e07a3b5f18",
                   "strata": [{"level": "村", "label": "贫困村（偏远）", "method": "系统PPS"},
                              {"level": "村", "label": "贫困村（其他）", "method": "系统PPS"},
                              {"level": "村", "label": "非贫困村", "method": "系统PPS"},
                              {"level": "户", "label": "建档立卡户", "method": "简单随机"},
                              {"level": "户", "label": "非建档立卡户", "method": "简单随机"}]},
        "fieldwork": {"start": "2019-11-20", "end": "2019-12-05"},
        "sample": {
            "counties": len(counties), "villages": 28 * len(counties),
            "by_village_type": [{"label": "贫困村（偏远）", "villages": 9 * len(counties), "households": int(total_hh * 0.32)},
                                {"label": "贫困村（其他）", "villages": 10 * len(counties), "households": int(total_hh * 0.35)},
                                {"label": "非贫困村", "villages": 9 * len(counties),
                                 "households": total_hh - int(total_hh * 0.32) - int(total_hh * 0.35)}],
            "by_status": [{"label": lab, "sampled": int(total_hh * s), "interviewed": int(interviewed * s),
                           "persons": int(interviewed * s * 3.3)} for lab, s in status_rows],
            "sampled": total_hh, "interviewed": interviewed,
            "response_rate": interviewed / total_hh, "reserves_drawn": 5 * 28 * len(counties),
            "reserves_used": int(total_hh * 0.03),
        },
        "guarantees": [] if insufficient else guarantees,
        "income": {} if insufficient else {
            "n": interviewed, "mean_pc": total_inc,
            "components": [{"label": lab, "mean": v, "share": v / total_inc} for lab, v in comps],
            "lines": [{"label": "扶贫规划口径贫困线", "line": 3747.0, "below": int(interviewed * 0.011),
                       "share": int(interviewed * 0.011) / interviewed},
                      {"label": "国家统计局口径贫困线", "line": 3218.0, "below": int(interviewed * 0.006),
                       "share": int(interviewed * 0.006) / interviewed},
                      {"label": "贫困线以上10%以内（临界）", "line": 3747.0 * 1.1, "below": int(interviewed * 0.02),
                       "share": int(interviewed * 0.02) / interviewed}]},
        "satisfaction": {} if insufficient else {"items": [{"key": k, "label": lab} for k, lab in sat_items],
                                                   "rows": sat_rows},
        "measures": [] if insufficient else [{"label": m, "households": int(reg * s), "share": s} for m, s in measures],
        "cases": [] if insufficient else cases,
        "data_quality": files if not insufficient else [],
        "texts": {"summary_text": "", "recommendations": ""},
    }
    return ctx


def sample_national_contexts(codes=None, seed: int = 1) -> list[dict]:
    codes = list(codes or PROVINCES)
    return [sample_province_context(c, seed=seed) for c in codes]


def _check() -> None:  # pragma: no cover - a quick manual look
    ctx = sample_province_context()
    assert math.isclose(sum(r["households"] for r in ctx["sample"]["by_village_type"]), ctx["sample"]["sampled"])
