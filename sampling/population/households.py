"""Households and persons of synthetic villages, with register errors and the known truth.

``village_households(seed, village)`` is a deterministic function of (seed, village_code) and the village's
frame row: every random number of a village comes from ``np.random.default_rng([seed, int(village_code)])``,
drawn in a fixed order, so a village generated alone equals the same village inside a county run. The numbers
are drawn village by village; the strings (codes, names, ID numbers) are built afterwards in one batch, each
row from its own values only.

Register errors are planted at the requested rates (shares of households within each register group):
``wrongly_exited`` among 已脱贫 households, ``wrongly_included`` among 未脱贫/拟脱贫/监测户 households (30 % of
them by a red line, the rest by being above the line with every guarantee met), ``missed`` among 一般户/边缘户.
The truth columns are then computed from the generated values by the scoring rule (``household_truth``), not
copied from the plan.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SamplingError, check_arg
from . import profiles as P
from . import text as T

HOUSEHOLD_COLUMNS = [
    "household_id", "village_code", "township_code", "county_code", "city_code", "province_code", "group_no",
    "head_name", "head_id_number", "phone", "address", "gps_lat", "gps_lon", "register_status", "exit_year",
    "size", "resident_size", "dibao", "dangerous_house", "chronic_illness", "no_labour", "elderly_alone",
    "wage_income", "business_income", "business_cost", "property_income", "transfer_income",
    "exit_year_income_pc", "food_regular_protein", "food_stable", "clothing_seasonal", "clothing_donation",
    "house_grade", "house_renovated", "water_litres", "water_quality_ok", "water_piped", "water_round_trip_min",
    "water_interrupt_days", "causes", "measures", "rl_vehicle_value", "rl_commercial_housing", "rl_company",
    "rl_empty_registration", "sat_policy", "sat_measures", "sat_results", "sat_exit", "sat_cadres",
    "true_poor", "true_wrongly_exited", "true_missed", "true_wrongly_included",
]
PERSON_COLUMNS = [
    "person_id", "household_id", "member_no", "name", "id_number", "relation", "sex", "age", "ethnicity",
    "education", "in_school", "school_exempt", "health", "labour", "migrant_months", "insurance",
    "insurance_exempt", "public_servant", "village_committee",
]
DEFAULT_YEAR = 2019
SAT_ITEMS = ("sat_policy", "sat_measures", "sat_results", "sat_exit", "sat_cadres")
VEHICLE_RED_LINE = 30000
# ages are whole years on 31 December of the assessed year: a person of age a was born in year − a
ID_SLOTS_PER_AGE_SEX = 365 * 500
_ID_MULT, _ID_AGE_SHIFT = 7919, 3571          # 7919 is prime to 182,500 = 2²·5⁴·73: a bijection on the slots
_PHONE_PREFIXES = np.array([130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157,
                            158, 159, 166, 170, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187,
                            188, 189, 191, 198, 199])
# probability of 低保 by register status 1..6
_DIBAO_P = np.array([0, 0.12, 0.30, 0.30, 0.30, 0.015, 0.10])
# adult education (0 none … 4 大专及以上) by age band, cumulative
_EDU_CUM = np.cumsum(np.array([[0.02, 0.12, 0.55, 0.18, 0.13],     # 19–39
                               [0.08, 0.35, 0.45, 0.10, 0.02],     # 40–59
                               [0.35, 0.45, 0.15, 0.04, 0.01]]),   # 60+
                     axis=1)
_RED_TYPES = np.cumsum([0.20, 0.20, 0.25, 0.15, 0.10, 0.10])       # servant, committee, vehicle, housing, company, empty
_FAIL_ITEMS = np.cumsum([0.15, 0.10, 0.20, 0.25, 0.30])            # food, clothing, education, medical, housing


def _rates(error_rates) -> dict:
    rates = dict(P.DEFAULT_ERROR_RATES)
    if error_rates:
        unknown = set(error_rates) - set(rates)
        check_arg(not unknown, "error_rates", f"unknown keys {sorted(unknown)}; use {sorted(rates)}")
        rates.update(error_rates)
    for k, v in rates.items():
        check_arg(0 <= float(v) <= 1, "error_rates", f"{k} must be between 0 and 1, got {v}")
    return {k: float(v) for k, v in rates.items()}


def _ethnicity_tables():
    table = {}
    names = ["汉族"]
    for code, prof in P.PROFILES.items():
        for eth, _ in prof["minorities"]:
            if eth not in names:
                names.append(eth)
        idx = np.array([names.index(e) for e, _ in prof["minorities"]], dtype=np.int64)
        cum = np.cumsum([s for _, s in prof["minorities"]]) if prof["minorities"] else np.zeros(0)
        table[code] = (idx, cum)
    return names, table


ETHNICITIES, _ETH_TABLE = _ethnicity_tables()


# Columns of the per-household and per-person uniform blocks each village draws (fixed order = reproducibility).
_HU = {name: i for i, name in enumerate(
    "group_no tiebreak u1 u2 u3 head_age single_old single_age head_sex committee red_type vehicle vehicle_amt "
    "vehicle_small vehicle_red ur2 fail_item fail_detail grade renovated water_fail litres litres_low piped trip "
    "interrupt base lift edge by_income w_share cost exit_year exit_pc not_rec which lat lon surname ethnicity "
    "phone_prefix phone_rest phone_rest2".split())}
_HU_CAUSES = len(_HU)
_HU_MEASURES = _HU_CAUSES + len(P.CAUSES)
_HU_SAT = _HU_MEASURES + len(P.MEASURES)
N_HU = _HU_SAT + 5
_PU = {name: i for i, name in enumerate(
    "relation child_gap spouse parent sibling other sex health edu exempt school labour migrant months newborn "
    "servant surname g1 g2 two_chars".split())}
N_PU = len(_PU)
_HN = {name: i for i, name in enumerate("head_age vehicle_amt base lat lon".split())}
N_HN = len(_HN)
_PN = {"spouse": 0}
N_PN = len(_PN)


def _u16(rng, rows: int, n: int) -> np.ndarray:
    """(rows, n) uniform 16-bit integers from the raw 64-bit stream (4 per draw: the generator is the cost)."""
    k = rows * n
    return rng.bit_generator.random_raw((k + 3) // 4).view(np.uint16)[:k].reshape(rows, n)


def _unit(u16) -> np.ndarray:
    """16-bit integers as uniforms in (0, 1), resolution 1/65536 (ample for shares and amounts)."""
    return (u16.astype(np.float32) + np.float32(0.5)) * np.float32(1 / 65536)


def _uint(u, lo, hi):
    """Integers lo ≤ x < hi from uniforms."""
    return np.minimum(lo + (u * (hi - lo)).astype(np.int64), hi - 1)


def _draw(seed: int, rows: list[dict], year: int) -> dict:
    """Every random number of every village, village by village from its own stream, concatenated."""
    p3 = 0.4 if year < 2020 else 0.8
    p4 = 0.1 if year >= 2019 else 0.0
    p6 = 0.06 if year >= 2019 else 0.0
    parts = {k: [] for k in ("status", "dibao", "size", "UH", "UP", "NH", "NP", "centre")}
    for v in rows:
        rng = np.random.default_rng([seed, int(v["village_code"])])
        counts = [int(v["hh_exited"]), int(v["hh_not_exited"]), int(v["hh_nonregistered"])]
        pcounts = [int(v["persons_exited"]), int(v["persons_not_exited"]), int(v["persons_nonregistered"])]
        for c, p, what in zip(counts, pcounts, ("exited", "not_exited", "nonregistered")):
            if c < 0 or p < c or (c == 0 and p != 0):
                raise SamplingError(f"village {v['village_code']}: hh_{what}={c} and persons_{what}={p} are not "
                                    "possible (every household has at least one person)", code="bad_village_sizes",
                                    column=f"persons_{what}", fix="correct the village's sizes in the frame")
        n = sum(counts)
        if n > 9999:
            raise SamplingError(f"village {v['village_code']} has {n:,} households; household IDs hold 4 digits",
                                code="bad_village_sizes", column="households",
                                fix="split the village or give it at most 9,999 households")
        group = np.repeat(np.arange(3), counts)
        u0 = rng.random((n, 2))
        u = u0[:, 0]
        status = np.where(group == 0, 1, np.where(group == 1, np.where(u < p4, 4, np.where(u < p4 + p3, 3, 2)),
                                                  np.where(u < p6, 6, 5)))
        dibao = u0[:, 1] < _DIBAO_P[status]
        size = np.ones(n, dtype=np.int64)
        start = 0
        for g in range(3):
            ng = counts[g]
            if ng:
                # 低保 households get few extra members: sizes of about 1.2–1.4 (SPEC §3.1)
                w = np.where(dibao[start:start + ng], 0.08, 1.0)
                size[start:start + ng] += rng.multinomial(pcounts[g] - ng, w / w.sum())
            start += ng
        parts["status"].append(status)
        parts["dibao"].append(dibao)
        parts["size"].append(size)
        if n and size.max() > 99:
            raise SamplingError(f"village {v['village_code']}: persons per household would exceed 99 (member "
                                "numbers hold 2 digits)", code="bad_village_sizes", column="persons",
                                fix="give the village a plausible number of persons for its households")
        nt = int(size.sum())
        # one row per variable: columns of the county arrays stay contiguous
        parts["UH"].append(_u16(rng, N_HU, n))
        parts["UP"].append(_u16(rng, N_PU, nt))
        parts["NH"].append(rng.standard_normal((N_HN, n), dtype=np.float32))
        parts["NP"].append(rng.standard_normal((N_PN, nt), dtype=np.float32))
        parts["centre"].append(rng.standard_normal(2))
    out = {}
    for k, v in parts.items():
        if k in ("UH", "UP", "NH", "NP"):
            out[k] = np.concatenate(v, axis=1)
        elif k == "centre":
            out[k] = np.array(v).reshape(-1, 2)
        else:
            out[k] = np.concatenate(v)
    out["n_hh"] = np.array([len(s) for s in parts["status"]], dtype=np.int64)
    return out


def _generate(seed: int, rows: list[dict], year: int, rates: dict, lines: dict) -> tuple[dict, dict, dict]:
    """Numeric household and person arrays of all villages (global indices), from the villages' draws."""
    D = _draw(seed, rows, year)
    nv = len(rows)
    vidx0 = np.repeat(np.arange(nv), D["n_hh"])
    n_groups = np.array([int(r["n_groups"]) for r in rows])
    UH = D["UH"]
    group_no = _uint(_unit(UH[_HU["group_no"]]), 1, n_groups[vidx0] + 1)
    # registers list households by 村民小组; within a group the order is random
    order = np.lexsort((UH[_HU["tiebreak"]], group_no, vidx0))
    UH = UH[:, order]
    NH = D["NH"][:, order]
    status, dibao, size, group_no = D["status"][order], D["dibao"][order], D["size"][order], group_no[order]
    vidx = vidx0                      # the sort keeps each village's block in place
    n = len(status)
    h = lambda name: _unit(UH[_HU[name]])  # noqa: E731
    hn = lambda name: NH[_HN[name]]  # noqa: E731

    s1 = status == 1
    s234 = (status >= 2) & (status <= 4)
    s56 = status >= 5
    reg = status <= 4
    u1 = h("u1")
    wi = s234 & (u1 < rates["wrongly_included"])
    red_des = wi & (h("u2") < 0.3)
    des_poor = (s1 & (u1 < rates["wrongly_exited"])) | (s234 & ~wi) | (s56 & (u1 < rates["missed"]))
    by_income = des_poor & (h("u3") < np.where(s234, 0.75, np.where(s1, 0.6, 0.5)))
    by_guarantee = des_poor & ~by_income

    # ---- persons
    nt = int(size.sum())
    UP = D["UP"]
    p = lambda name: _unit(UP[_PU[name]])  # noqa: E731
    hh_of = np.repeat(np.arange(n), size)
    hstart = np.cumsum(size) - size
    member = np.arange(nt) - hstart[hh_of] + 1
    head_age = np.clip(np.round(54 + 13 * hn("head_age")), 22, 92).astype(np.int64)
    single_old = (size == 1) & (dibao | (h("single_old") < 0.3))
    head_age = np.where(single_old, _uint(h("single_age"), 62, 91), head_age)
    head_sex = np.where(h("head_sex") < 0.85, 1, 2)
    ur = p("relation")
    rel_other = np.array([3, 5, 4, 6, 7])[np.minimum(np.searchsorted([0.65, 0.80, 0.92, 0.95], ur, side="right"), 4)]
    relation = np.where(member == 1, 1, np.where(member == 2, np.where(ur < 0.8, 2, np.where(ur < 0.95, 3, 4)),
                                                 rel_other))
    ha = head_age[hh_of]
    gap = _uint(p("child_gap"), 0, 16)
    spouse_age = np.clip(ha + np.round(-2 + 3 * D["NP"][_PN["spouse"]]).astype(np.int64), 18, 98)
    parent_age = np.minimum(ha + 22 + _uint(p("parent"), 0, 12), 100)
    sibling_age = np.clip(ha + _uint(p("sibling"), -8, 9), 1, 100)
    age = np.select([relation == 1, relation == 2, relation == 3, relation == 4, relation == 5, relation == 6],
                    [ha, spouse_age, np.maximum(ha - 22 - gap, 0), parent_age, np.maximum(ha - 46 - gap, 0),
                     sibling_age], _uint(p("other"), 0, 80))
    hs = head_sex[hh_of]
    sex = np.where(relation == 1, hs, np.where(relation == 2, 3 - hs, np.where(p("sex") < 0.52, 1, 2)))
    regp = reg[hh_of]
    old = age >= 60
    p4_, p3_ = np.where(regp, 0.05, 0.015), np.where(regp, 0.03, 0.008)
    p2_ = np.where(regp, 0.10 + 0.15 * old, 0.04 + 0.10 * old)
    uh = p("health")
    health = np.where(uh < p4_, 4, np.where(uh < p4_ + p3_, 3, np.where(uh < p4_ + p3_ + p2_, 2, 1)))
    ue, ux, ux2 = p("edu"), p("exempt"), p("school")
    band = np.where(age >= 60, 2, np.where(age >= 40, 1, 0))
    adult_edu = (ue[:, None] > _EDU_CUM[band][:, :4]).sum(axis=1)
    compulsory = (age >= 6) & (age <= 15)
    exempt = compulsory & (health == 4) & (ux < 0.5)
    school_exempt = np.where(exempt, np.where(ux < 0.25, 1, 2), 0)
    in_school = (compulsory & ~exempt) | ((age >= 16) & (age <= 18) & (ux2 < 0.7)) | \
                ((age >= 19) & (age <= 22) & (ux2 < 0.3))
    education = np.select([exempt, age < 6, age <= 11, age <= 15, (age <= 18) & in_school, (age <= 22) & in_school],
                          [0, 0, 1, 2, 3, 4], adult_edu)
    ul = p("labour")
    labour = np.select([(age < 16) | (age > 70) | (in_school & (age >= 16)), health == 4,
                        health == 3, age >= 65, health == 2],
                       [5, 4, np.where(ul < 0.5, 4, 3), 3, np.where(ul < 0.4, 3, 1)],
                       np.where(ul < 0.18, 2, 1))
    migrant = ((labour == 1) | (labour == 2)) & (age <= 55) & (p("migrant") < 0.45)
    migrant_months = np.where(migrant, _uint(p("months"), 3, 13), 0)
    newborn_exempt = (age == 0) & (p("newborn") < 0.3)
    insurance = np.where(newborn_exempt, 0, 1)
    insurance_exempt = newborn_exempt.astype(np.int64)
    public_servant = (~regp) & (age >= 22) & (age <= 59) & (p("servant") < 0.01)
    # five village committee members, heads of ordinary households, per village
    village_committee = np.zeros(nt, dtype=bool)
    elig = s56 & (head_age >= 30) & (head_age <= 65)
    rc = np.where(elig, h("committee"), np.inf)
    co = np.lexsort((rc, vidx))
    first_in_village = np.searchsorted(vidx[co], vidx[co], side="left")
    rank = np.empty(n, dtype=np.int64)
    rank[co] = np.arange(n) - first_in_village
    village_committee[hstart[elig & (rank < 5)]] = True

    # red lines planted on registered households chosen as wrongly included
    red_type = np.searchsorted(_RED_TYPES, h("red_type"), side="right")
    public_servant[hstart[red_des & (red_type == 0)]] = True
    village_committee[hstart[red_des & (red_type == 1)]] = True
    insurance = np.where(public_servant, 2, insurance)
    uv = h("vehicle")
    vehicle = np.where(s56 & (uv < 0.15), np.round(45000 * np.exp(0.6 * hn("vehicle_amt")), -2), 0.0)
    vehicle = np.where(reg & (uv < 0.05), np.round(3000 + 22000 * h("vehicle_small"), -2), vehicle)
    vehicle = np.where(red_des & (red_type == 2), np.round(32000 + 88000 * h("vehicle_red"), -2), vehicle)
    ur2 = h("ur2")
    commercial = (s56 & (ur2 < 0.04)) | (red_des & (red_type == 3))
    company = (s56 & (ur2 > 0.99)) | (red_des & (red_type == 4))
    empty_reg = (s56 & (ur2 > 0.04) & (ur2 < 0.045)) | (red_des & (red_type == 5))

    # ---- guarantees (两不愁三保障) and water
    item = np.searchsorted(_FAIL_ITEMS, h("fail_item"), side="right")
    uf = h("fail_detail")
    first_child = np.full(n, -1)
    cidx = np.flatnonzero(compulsory & in_school)
    if len(cidx):
        hh_c, first = np.unique(hh_of[cidx], return_index=True)
        first_child[hh_c] = cidx[first]
    item = np.where((item == 2) & (first_child < 0), 4, item)
    fail_food = by_guarantee & (item == 0)
    fail_cloth = by_guarantee & (item == 1)
    fail_edu = by_guarantee & (item == 2)
    fail_med = by_guarantee & (item == 3)
    fail_house = by_guarantee & (item == 4)
    food_protein = ~(fail_food & (uf < 0.6))
    food_stable = ~(fail_food & (uf >= 0.6))
    cloth_seasonal = ~(fail_cloth & (uf < 0.5))
    cloth_donation = fail_cloth & (uf >= 0.5)
    in_school[first_child[fail_edu]] = False
    med_member = hstart + np.minimum((uf * size).astype(np.int64), size - 1)
    insurance[med_member[fail_med]] = 0
    insurance_exempt[med_member[fail_med]] = 0
    uhg = h("grade")
    grade = np.searchsorted([0.45, 0.90, 0.97], uhg, side="right")      # 0 A, 1 B, 2 C, 3 D
    renovated = ((grade >= 2) | (reg & (h("renovated") < 0.15))) & ~fail_house
    grade = np.where(fail_house, np.where(uhg < 0.7, 2, 3), grade)
    dry_v = np.array([r["province_code"] in ("150000", "540000", "620000", "630000", "640000", "650000")
                      for r in rows])
    need = np.where(dry_v, 20, 35)[vidx]
    uw = h("water_fail")
    water_fail = des_poor & (uw < 0.2)
    litres = np.round(need + 5 + (145 - need) * h("litres"))
    litres = np.where(water_fail & (uw < 0.1), np.round(8 + (need - 9) * h("litres_low")), litres)
    quality = ~(water_fail & (uw >= 0.1))
    piped = h("piped") < 0.85
    trip = np.where(piped, 0, _uint(h("trip"), 5, 21))
    interrupt = _uint(h("interrupt"), 0, 16)

    # ---- income (yuan, the assessed year)
    line = lines[year]
    k = year - 2014
    factor = np.array([0.9 if r.get("region", "central") == "west" else 1.05 for r in rows])[vidx]
    med = np.where(reg, P.REGISTERED_PC_2014 * P.REGISTERED_GROWTH ** k * np.where(s234, 0.7, 1.0),
                   P.NONREGISTERED_PC_2014 * P.NONREGISTERED_GROWTH ** k) * factor
    base = med * np.exp(0.45 * hn("base"))
    pc = np.where(base <= line * 1.02, line * (1.03 + 0.42 * h("lift")), base)
    pc = np.where(status == 6, line * (1.03 + 0.47 * h("edge")), pc)        # 边缘户: just above the line
    pc = np.where(by_income, line * (0.45 + 0.52 * h("by_income")), pc)
    net = pc * size
    any_migrant = np.bincount(hh_of, weights=migrant, minlength=n) > 0
    t_share = np.where(dibao, 0.45, np.where(reg, 0.12, 0.08))
    p_share = 0.02
    w_share = np.minimum(np.where(any_migrant, 0.55, 0.3) * (0.8 + 0.4 * h("w_share")), 1 - t_share - p_share)
    b_net = net * (1 - t_share - p_share - w_share)
    wage = np.round(net * w_share)
    prop = np.round(net * p_share)
    transfer = np.round(net * t_share)
    bcost = np.round(b_net * (0.3 + 0.5 * h("cost")))
    # households without a business: the rounding residue goes to wages, so no business income without costs
    no_business = b_net < 50
    bcost = np.where(no_business, 0.0, bcost)
    wage = np.where(no_business, np.round(net) - prop - transfer, wage)
    business = np.round(net) - wage - prop - transfer + bcost
    pc_final = (wage + business - bcost + prop + transfer) / size

    years = np.arange(2014, year + 1)
    inc = np.diff(np.r_[0.0, [P.EXIT_SHARE[y] for y in years]])
    exit_year = years[np.minimum(np.searchsorted(np.cumsum(inc) / inc.sum(), h("exit_year"), side="right"),
                                 len(years) - 1)]
    line_exit = np.array([lines[int(y)] for y in years])[exit_year - 2014]
    pc_exit = pc_final / 1.25 ** (year - exit_year)
    pc_exit = np.where(by_income, np.minimum(pc_exit, line_exit * 0.97),
                       np.maximum(pc_exit, line_exit * (1.03 + 0.27 * h("exit_pc"))))
    pc_exit = np.where(exit_year == year, pc_final, np.round(pc_exit, 2))

    # ---- causes and measures (registered households)
    ill = np.bincount(hh_of, weights=(health == 2) | (health == 3), minlength=n) > 0
    disabled = np.bincount(hh_of, weights=health == 4, minlength=n) > 0
    student = np.bincount(hh_of, weights=in_school, minlength=n) > 0
    labourers = np.bincount(hh_of, weights=labour <= 3, minlength=n)
    uc = _unit(UH[_HU_CAUSES:_HU_CAUSES + len(P.CAUSES)]).T
    causes = np.column_stack([ill & (uc[:, 0] < 0.95), disabled & (uc[:, 1] < 0.8), student & (uc[:, 2] < 0.35),
                              uc[:, 3] < 0.05, uc[:, 4] < 0.07, uc[:, 5] < 0.04, uc[:, 6] < 0.22,
                              (labourers == 0) | (uc[:, 7] < 0.10), uc[:, 8] < 0.25, uc[:, 9] < 0.08,
                              uc[:, 10] < 0.05])
    causes[:, 8] |= ~causes.any(axis=1)
    causes &= reg[:, None]
    um = _unit(UH[_HU_MEASURES:_HU_MEASURES + len(P.MEASURES)]).T
    measures = np.column_stack([um[:, 0] < 0.7, any_migrant | (um[:, 1] < 0.3), (um[:, 2] < 0.1) & ~fail_house,
                                student, ill, dibao, um[:, 6] < 0.15, um[:, 7] < 0.25, um[:, 8] < 0.1, renovated,
                                um[:, 10] < 0.2])
    measures &= reg[:, None]
    measures[:, 9] |= renovated & (grade >= 2)
    relocated = measures[:, 2]

    # ---- satisfaction (1 非常满意 … 5 非常不满意): about 97 % of households recognise every item
    usat = _unit(UH[_HU_SAT:_HU_SAT + 5]).T
    sat = np.where(usat < 0.72, 1, 2)
    not_rec = h("not_rec") >= 0.97
    which = _uint(h("which"), 0, 5)
    which = np.where((which == 3) & ~s1, 4, which)
    uw2 = usat[np.arange(n), which]
    bad = np.where(uw2 < 0.6, 3, np.where(uw2 < 0.9, 4, 5))
    sat[np.flatnonzero(not_rec), which[not_rec]] = bad[not_rec]

    # ---- GPS: county centre from the county's own stream, village centre from the village's
    boxes = np.array([P.PROFILES.get(r["province_code"], {"box": (25, 35, 100, 115)})["box"] for r in rows])
    ccodes = np.array([str(r["county_code"]) for r in rows])
    centres = {}
    for c, b in zip(ccodes, boxes):
        if c not in centres:
            crng = np.random.default_rng([seed, int(c), 7])
            centres[c] = (crng.uniform(b[0], b[1]), crng.uniform(b[2], b[3]))
    cc = np.array([centres[c] for c in ccodes])
    v_lat = cc[:, 0] + 0.12 * D["centre"][:, 0]
    v_lon = cc[:, 1] + 0.12 * D["centre"][:, 1]
    lat = np.clip(v_lat[vidx] + 0.006 * hn("lat"), boxes[vidx, 0] - 0.2, boxes[vidx, 1] + 0.2).round(6)
    lon = np.clip(v_lon[vidx] + 0.006 * hn("lon"), boxes[vidx, 2] - 0.2, boxes[vidx, 3] + 0.2).round(6)

    # ---- names, ethnicity, phones
    nm = P.names()
    cum_sur = np.cumsum(nm["surname_p"])
    cum_sur[-1] = 1.0
    surname_hh = np.searchsorted(cum_sur, h("surname"), side="right")
    surname = np.where((relation == 2) | (relation == 7), np.searchsorted(cum_sur, p("surname"), side="right"),
                       surname_hh[hh_of])
    ethnicity = np.zeros(n, dtype=np.int64)
    provs = np.array([r["province_code"] for r in rows])[vidx]
    ue_h = h("ethnicity")
    for code in np.unique(provs):
        eth_idx, eth_cum = _ETH_TABLE.get(code, (np.zeros(0, np.int64), np.zeros(0)))
        if len(eth_idx):
            sel = provs == code
            pos = np.searchsorted(eth_cum, ue_h[sel], side="right")
            ethnicity[sel] = np.where(pos < len(eth_idx), eth_idx[np.minimum(pos, len(eth_idx) - 1)], 0)
    phone_prefix = _PHONE_PREFIXES[_uint(h("phone_prefix"), 0, len(_PHONE_PREFIXES))]
    phone_rest = ((UH[_HU["phone_rest"]].astype(np.int64) << 16) | UH[_HU["phone_rest2"]]) % 100_000_000

    # ---- ID-number slots: distinct within a county for every (age, sex) by construction
    pv = vidx[hh_of]
    blocks = np.empty(nv, dtype=np.int64)
    for i, r in enumerate(rows):
        vc = str(r["village_code"])
        tnum, knum = int(vc[6:9]) - 101, int(vc[9:12]) - 201
        blocks[i] = tnum * 30 + knum if (0 <= tnum < 60 and 0 <= knum < 30) else int(vc) % 1800
    ko = np.lexsort((sex, age, pv))
    ks = (pv[ko] * 256 + age[ko]) * 4 + sex[ko]
    grp_start = np.r_[0, np.flatnonzero(ks[1:] != ks[:-1]) + 1]
    j = np.empty(nt, dtype=np.int64)
    j[ko] = np.arange(nt) - np.repeat(grp_start, np.diff(np.r_[grp_start, nt]))
    slot = (_ID_MULT * (blocks[pv] * 100 + j) + _ID_AGE_SHIFT * age) % ID_SLOTS_PER_AGE_SEX

    H = dict(vidx=vidx, status=status, dibao=dibao, size=size, group_no=group_no, des_poor=des_poor, lat=lat,
             lon=lon, wage=wage, business=business, bcost=bcost, prop=prop, transfer=transfer,
             exit_year=exit_year, pc_exit=pc_exit, food_protein=food_protein, food_stable=food_stable,
             cloth_seasonal=cloth_seasonal, cloth_donation=cloth_donation, grade=grade, renovated=renovated,
             relocated=relocated, litres=litres, quality=quality, piped=piped, trip=trip, interrupt=interrupt,
             causes=causes, measures=measures, vehicle=vehicle, commercial=commercial, company=company,
             empty_reg=empty_reg, sat=sat, ethnicity=ethnicity, phone_prefix=phone_prefix,
             phone_rest=phone_rest, ill=ill, labourers=labourers, head_age=head_age,
             resident=np.bincount(hh_of, weights=migrant_months < 6, minlength=n).astype(np.int64))
    Pp = dict(hh_of=hh_of, member=member, relation=relation, sex=sex, age=age, surname=surname, g1=p("g1"),
              g2=p("g2"), two_chars=p("two_chars") < 0.7, education=education, in_school=in_school,
              school_exempt=school_exempt, health=health, labour=labour, migrant_months=migrant_months,
              insurance=insurance, insurance_exempt=insurance_exempt, public_servant=public_servant,
              village_committee=village_committee, slot=slot)
    return H, Pp


def _join_codes(flags: np.ndarray, words) -> pd.arrays.ArrowStringArray:
    """Space-separated words where flags are set, built on byte matrices."""
    n = len(flags)
    enc = [w.encode("utf-8") for w in words]
    width = sum(len(e) + 1 for e in enc)
    mat = np.zeros((n, width), dtype=np.uint8)
    pos = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    for i, e in enumerate(enc):
        b = np.frombuffer(b" " + e, dtype=np.uint8)
        sel = rows[flags[:, i]]
        if len(sel):
            cols = pos[sel, None] + np.arange(len(b))[None, :]
            mat[sel[:, None], cols] = b[None, :]
            pos[sel] += len(b)
    # drop the leading space of non-empty rows: shift by one
    lengths = np.maximum(pos - 1, 0)
    out = np.zeros((n, max(width - 1, 1)), dtype=np.uint8)
    out[:, :width - 1] = mat[:, 1:]
    return T.to_str(out, lengths=lengths)


def county_households(seed: int, villages: pd.DataFrame, *, year: int | None = None, error_rates=None,
                      lines: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Households and persons of every village in ``villages`` (frame rows), in frame order.

    year: the assessed year (incomes, exits, ages); by default the year the frame was built for
    (``villages.attrs["year"]``, set by ``village_frame``), else 2019.
    """
    if year is None:
        year = villages.attrs.get("year", DEFAULT_YEAR)
    rates = _rates(error_rates)
    check_arg(2014 <= int(year) <= 2020, "year", "must be between 2014 and 2020")
    year = int(year)
    lines = lines or P.poverty_lines()
    need = ["village_code", "township_code", "county_code", "city_code", "province_code", "n_groups",
            "hh_exited", "hh_not_exited", "hh_nonregistered", "persons_exited", "persons_not_exited",
            "persons_nonregistered"]
    missing = [c for c in need if c not in villages.columns]
    if missing:
        raise SamplingError(f"village rows lack the columns {missing}", code="bad_argument",
                            fix="pass rows of sampling.population.village_frame")
    cols = need + [c for c in ("region", "province_name", "county_name", "township_name", "village_name")
                   if c in villages.columns]
    rows = villages[cols].to_dict("records")
    if not rows:
        return pd.DataFrame(columns=HOUSEHOLD_COLUMNS), pd.DataFrame(columns=PERSON_COLUMNS)
    H, Pp = _generate(int(seed), rows, year, rates, lines)
    n, nt = len(H["status"]), len(Pp["age"])
    vidx = H["vidx"]
    hh_of = Pp["hh_of"]
    vfirst = np.searchsorted(vidx, vidx, side="left")
    seq_in_village = np.arange(n) - vfirst + 1

    def codes(col, width):
        arr = np.array([str(r[col]) for r in rows], dtype=f"S{width}")
        return np.frombuffer(arr.tobytes(), dtype=np.uint8).reshape(len(rows), width)

    vcode = codes("village_code", 12)
    hid = np.hstack([vcode[vidx], T.digits(seq_in_village, 4)])
    pid = np.hstack([hid[hh_of], T.digits(Pp["member"], 2)])
    ccode = codes("county_code", 6)

    # ID numbers: county + birth date + sequence (parity = sex) + check character
    age, sex = Pp["age"], Pp["sex"]
    offset = Pp["slot"] // 500
    seq = (Pp["slot"] % 500) * 2 + (sex == 1)
    birth = (year - age - 1970).astype("datetime64[Y]").astype("datetime64[D]") + offset
    by = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    bm = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    bd = (birth - birth.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    first17 = np.hstack([ccode[vidx][hh_of], T.digits(by, 4), T.digits(bm, 2), T.digits(bd, 2),
                         T.digits(seq, 3)])
    from ..idnumber import CHECK_MAP, WEIGHTS
    check = np.frombuffer(CHECK_MAP.encode(), dtype=np.uint8)[((first17.astype(np.int64) - 48) @ WEIGHTS) % 11]
    idmat = np.hstack([first17, check[:, None]])

    # names
    nm = P.names()
    sur = T.char_table(nm["surnames"])
    male, female = T.char_table(nm["male_given"]), T.char_table(nm["female_given"])
    def given(u):
        mi = np.minimum((u * len(male)).astype(np.int64), len(male) - 1)
        fi = np.minimum((u * len(female)).astype(np.int64), len(female) - 1)
        return np.where((sex == 1)[:, None], male[mi], female[fi])
    name_mat = np.hstack([sur[Pp["surname"]], given(Pp["g1"]), given(Pp["g2"])])
    name_len = np.where(Pp["two_chars"], 9, 6)
    heads = np.flatnonzero(Pp["member"] == 1)

    phone = np.hstack([T.digits(H["phone_prefix"], 3), T.digits(H["phone_rest"], 8)])
    addr_parts = [c for c in ("province_name", "county_name", "township_name", "village_name") if c in cols]
    address = pd.Series([""] * len(rows), dtype="str")
    for c in addr_parts:
        address = address + pd.Series([str(r[c]) for r in rows], dtype="str")
    address = pd.Series(address.array.take(vidx)) + pd.Series(H["group_no"]).astype("str") + "组"

    def small(col):
        uniq, inv = np.unique(np.array([str(r[col]) for r in rows]), return_inverse=True)
        return T.from_small(uniq, inv[vidx])

    exit_year = pd.array(np.where(H["status"] == 1, H["exit_year"], 0), dtype="Int64")
    exit_year[H["status"] != 1] = pd.NA
    sat = H["sat"]
    i8 = lambda a: np.asarray(a).astype(np.int8)  # noqa: E731
    hh = pd.DataFrame({
        "household_id": T.to_str(hid),
        "village_code": T.to_str(vcode[vidx]),
        "township_code": small("township_code"),
        "county_code": small("county_code"),
        "city_code": small("city_code"),
        "province_code": small("province_code"),
        "group_no": H["group_no"].astype(np.int16),
        "head_name": T.to_str(name_mat[heads], lengths=name_len[heads]),
        "head_id_number": T.to_str(idmat[heads]),
        "phone": T.to_str(phone),
        "address": address.array,
        "gps_lat": H["lat"], "gps_lon": H["lon"],
        "register_status": i8(H["status"]),
        "exit_year": exit_year,
        "size": H["size"].astype(np.int16),
        "resident_size": H["resident"].astype(np.int16),
        "dibao": i8(H["dibao"]),
        "dangerous_house": i8((H["grade"] >= 2) & ~H["renovated"] & ~H["relocated"]),
        "chronic_illness": i8(H["ill"]),
        "no_labour": i8(H["labourers"] == 0),
        "elderly_alone": i8((H["size"] == 1) & (H["head_age"] >= 65)),
        "wage_income": H["wage"], "business_income": H["business"], "business_cost": H["bcost"],
        "property_income": H["prop"], "transfer_income": H["transfer"],
        "exit_year_income_pc": np.where(H["status"] == 1, H["pc_exit"], np.nan),
        "food_regular_protein": i8(H["food_protein"]), "food_stable": i8(H["food_stable"]),
        "clothing_seasonal": i8(H["cloth_seasonal"]), "clothing_donation": i8(H["cloth_donation"]),
        "house_grade": T.from_small(["A", "B", "C", "D"], H["grade"]),
        "house_renovated": i8(H["renovated"]),
        "water_litres": H["litres"], "water_quality_ok": i8(H["quality"]), "water_piped": i8(H["piped"]),
        "water_round_trip_min": H["trip"].astype(np.int16), "water_interrupt_days": H["interrupt"].astype(np.int16),
        "causes": _join_codes(H["causes"], P.CAUSES),
        "measures": _join_codes(H["measures"], P.MEASURES),
        "rl_vehicle_value": H["vehicle"], "rl_commercial_housing": i8(H["commercial"]),
        "rl_company": i8(H["company"]), "rl_empty_registration": i8(H["empty_reg"]),
        "sat_policy": i8(sat[:, 0]), "sat_measures": i8(sat[:, 1]), "sat_results": i8(sat[:, 2]),
        "sat_exit": pd.array(np.where(H["status"] == 1, sat[:, 3], 0), dtype="Int8"),
        "sat_cadres": i8(sat[:, 4]),
    })
    hh.loc[H["status"] != 1, "sat_exit"] = pd.NA
    persons = pd.DataFrame({
        "person_id": T.to_str(pid),
        "household_id": T.to_str(hid[hh_of]),
        "member_no": Pp["member"].astype(np.int16),
        "name": T.to_str(name_mat, lengths=name_len),
        "id_number": T.to_str(idmat),
        "relation": i8(Pp["relation"]), "sex": i8(Pp["sex"]), "age": Pp["age"].astype(np.int16),
        "ethnicity": T.from_small(ETHNICITIES, H["ethnicity"][hh_of]),
        "education": i8(Pp["education"]), "in_school": i8(Pp["in_school"]),
        "school_exempt": i8(Pp["school_exempt"]), "health": i8(Pp["health"]), "labour": i8(Pp["labour"]),
        "migrant_months": i8(Pp["migrant_months"]), "insurance": i8(Pp["insurance"]),
        "insurance_exempt": i8(Pp["insurance_exempt"]), "public_servant": i8(Pp["public_servant"]),
        "village_committee": i8(Pp["village_committee"]),
    })
    truth = household_truth(hh, persons, year, lines=lines, hh_of=hh_of)
    for c in truth:
        hh[c] = truth[c]
    return hh[HOUSEHOLD_COLUMNS], persons[PERSON_COLUMNS]


def household_truth(hh: pd.DataFrame, persons: pd.DataFrame, year: int, *, lines=None, hh_of=None) -> dict:
    """The known truth by the scoring rule of SPEC §4 with the shipped configuration (planning-series line,
    registered size, guarantee failure counts as poor, 饮水 not part of the standard, every red line on).

    poor = per-capita net income ≤ line or any of food, clothing, compulsory education, medical insurance,
    safe housing fails; wrongly_exited = 已脱贫 and poor (today's test); missed = 一般户/边缘户 and poor;
    wrongly_included = (未脱贫/拟脱贫/监测户 and not poor) or (registered and a red line).
    """
    lines = lines or P.poverty_lines()
    line = lines[int(year)]
    n = len(hh)
    if hh_of is None:
        hh_of = pd.Index(hh["household_id"]).get_indexer(persons["household_id"])
    status = hh["register_status"].to_numpy()
    net = (hh["wage_income"].to_numpy() + hh["business_income"].to_numpy() - hh["business_cost"].to_numpy()
           + hh["property_income"].to_numpy() + hh["transfer_income"].to_numpy())
    pc = net / hh["size"].to_numpy()
    age = persons["age"].to_numpy()
    child_out = ((age >= 6) & (age <= 15) & (persons["in_school"].to_numpy() != 1)
                 & ~np.isin(persons["school_exempt"].to_numpy(), (1, 2)))
    uninsured = ~np.isin(persons["insurance"].to_numpy(), (1, 2)) & (persons["insurance_exempt"].to_numpy() != 1)
    per_hh = lambda m: np.bincount(hh_of, weights=m, minlength=n) > 0  # noqa: E731
    relocated = (" " + hh["measures"].astype("str").fillna("") + " ").str.contains(" 易地搬迁 ", regex=False)
    house_ok = (hh["house_grade"].isin(["A", "B"]).to_numpy() | (hh["house_renovated"].to_numpy() == 1)
                | relocated.to_numpy(dtype=bool))
    guarantees_ok = ((hh["food_regular_protein"].to_numpy() == 1) & (hh["food_stable"].to_numpy() == 1)
                     & (hh["clothing_seasonal"].to_numpy() == 1) & (hh["clothing_donation"].to_numpy() == 0)
                     & ~per_hh(child_out) & ~per_hh(uninsured) & house_ok)
    poor = (pc <= line) | ~guarantees_ok
    red = (per_hh(persons["public_servant"].to_numpy() == 1) | per_hh(persons["village_committee"].to_numpy() == 1)
           | (hh["rl_vehicle_value"].to_numpy() >= VEHICLE_RED_LINE) | (hh["rl_commercial_housing"].to_numpy() == 1)
           | (hh["rl_company"].to_numpy() == 1) | (hh["rl_empty_registration"].to_numpy() == 1))
    registered = status <= 4
    not_exited = (status >= 2) & (status <= 4)
    return {
        "true_poor": poor.astype(np.int8),
        "true_wrongly_exited": ((status == 1) & poor).astype(np.int8),
        "true_missed": ((status >= 5) & poor).astype(np.int8),
        "true_wrongly_included": ((not_exited & ~poor) | (registered & red)).astype(np.int8),
    }


def village_households(seed: int, village, *, year: int | None = None,
                       error_rates=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(households, persons) of one village given its frame row (a Series, dict or one-row DataFrame).

    year defaults to the year of the frame the row came from (its ``attrs["year"]``), else 2019.
    """
    if isinstance(village, pd.DataFrame):
        frame = village
    elif isinstance(village, pd.Series):
        frame = village.to_frame().T
        frame.attrs = dict(village.attrs)
    else:
        frame = pd.DataFrame([dict(village)])
    check_arg(len(frame) == 1, "village", "must be one village row")
    return county_households(seed, frame, year=year, error_rates=error_rates)
