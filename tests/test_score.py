"""Household scoring: every rule at its boundary, on hand-built households (expected values by hand, SPEC §4)."""
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.errors import ScoringError
from survey.rules import Rules
from survey.score import score_households

RULES = Rules.defaults()          # regime B, 2019, planning series: line 3747 (NBS 3218)


def household(i=1, **over):
    """A registered, exited household of 2 adults that meets every standard with income 5,000 per head."""
    h = dict(household_id=f"52010200100100{i:02d}", village_code="520102001001", county_code="520102",
             province_code="520000", register_status=1, exit_year=2019, size=2, resident_size=2,
             wage_income=10000, business_income=0, business_cost=0, property_income=0, transfer_income=0,
             exit_year_income_pc=np.nan,
             food_regular_protein=1, food_stable=1, clothing_seasonal=1, clothing_donation=0,
             house_grade="B", house_renovated=0, measures="产业", water_litres=50, water_quality_ok=1,
             water_piped=1, water_round_trip_min=0, water_interrupt_days=0,
             rl_vehicle_value=0, rl_commercial_housing=0, rl_company=0, rl_empty_registration=0,
             sat_policy=1, sat_measures=1, sat_results=2, sat_exit=1, sat_cadres=1)
    h.update(over)
    return h


def adults(i=1, n=2, **over):
    rows = []
    for k in range(n):
        p = dict(household_id=f"52010200100100{i:02d}", member_no=k + 1, age=40, in_school=0, school_exempt=0,
                 insurance=1, insurance_exempt=0, public_servant=0, village_committee=0)
        p.update(over)
        rows.append(p)
    return rows


def score(hhs, persons=None, rules=RULES):
    hh = pd.DataFrame(hhs)
    if persons is None:
        persons = [p for h in hhs for p in adults(int(h["household_id"][-2:]), int(h["size"]))]
    return score_households(hh, pd.DataFrame(persons), rules)


def reason_tests(row):
    return [r["test"] for r in json.loads(row["reasons"])]


# ---------------------------------------------------------------------------------------------- income
def test_income_exactly_at_the_line_is_poor_and_one_fen_above_is_not():
    s = score([household(1, wage_income=2 * 3747), household(2, wage_income=2 * 3747 + 0.02)])
    assert s["per_capita_income"].tolist() == [3747.0, 3747.01]
    assert s["income_poor"].tolist() == [True, False]
    assert s["wrongly_exited"].tolist() == [True, False]
    assert s["meets_standard"].tolist() == [False, True]
    reason = json.loads(s["reasons"][0])[0]
    assert reason == {"test": "income", "value": 3747.0, "threshold": 3747.0,
                      "message_zh": "人均纯收入3747.00元，不高于扶贫规划口径2019年贫困线3747元"}


def test_net_income_subtracts_costs_and_divides_by_the_configured_size():
    h = household(1, wage_income=3000, business_income=5000, business_cost=1500, property_income=200,
                  transfer_income=800, size=3, resident_size=2)
    assert score([h])["per_capita_income"][0] == pytest.approx(7500 / 3)
    resident = Rules.defaults(poverty_line={"household_size": "resident"})
    assert score([h], rules=resident)["per_capita_income"][0] == pytest.approx(7500 / 2)


def test_the_two_series_and_households_between_them():
    # pci 3500: poor under planning (3747), not under NBS (3218); between the lines under both
    # pci 3218: at the NBS line, poor under both series, so not "between"
    # pci 3747: at the planning line: poor under planning, not under NBS, between
    hhs = [household(1, wage_income=7000), household(2, wage_income=6436), household(3, wage_income=7494)]
    p = score(hhs)
    n = score(hhs, rules=Rules.defaults(poverty_line={"series": "nbs"}))
    assert p["line"].tolist() == [3747] * 3 and p["line_other_series"].tolist() == [3218] * 3
    assert n["line"].tolist() == [3218] * 3 and n["line_other_series"].tolist() == [3747] * 3
    assert p["income_poor"].tolist() == [True, True, True]
    assert n["income_poor"].tolist() == [False, True, False]
    assert p["between_lines"].tolist() == [True, False, True]
    assert n["between_lines"].tolist() == [True, False, True]
    msg = [r for r in json.loads(p["reasons"][0]) if r["test"] == "between_lines"][0]["message_zh"]
    assert "3747" in msg and "3218" in msg


def test_near_the_line_both_sides():
    # margin 10 %: 3747 × 1.1 = 4121.7
    s = score([household(1, wage_income=2 * 4121.7), household(2, wage_income=2 * 4121.8),
               household(3, wage_income=2 * 3372.3), household(4, wage_income=2 * 3372.2)])
    assert s["near_line"].tolist() == [True, False, True, False]


def test_province_override_line_is_used_and_named():
    r = Rules.defaults(poverty_line={"province_overrides": {"520000": 4000}})
    s = score([household(1, wage_income=7990)], rules=r)
    assert s["line"][0] == 4000 and s["income_poor"][0]


# ---------------------------------------------------------------------------------------------- guarantees
@pytest.mark.parametrize("age,in_school,exempt,ok", [
    (6, 0, 0, False), (5, 0, 0, True), (15, 0, 0, False), (15.9, 0, 0, False), (16, 0, 0, True),
    (10, 1, 0, True), (10, 0, 1, True), (10, 0, 2, True), (6.0, 1, 0, True),
])
def test_compulsory_education_ages_in_whole_years_with_exemptions(age, in_school, exempt, ok):
    persons = adults(1, 2) + [dict(household_id="5201020010010001", member_no=3, age=age, in_school=in_school,
                                   school_exempt=exempt, insurance=1, insurance_exempt=0, public_servant=0,
                                   village_committee=0)]
    s = score([household(1, size=3, wage_income=30000)], persons)
    assert s["education_ok"][0] == ok
    assert s["wrongly_exited"][0] == (not ok)
    if not ok:
        r = [x for x in json.loads(s["reasons"][0]) if x["test"] == "education"][0]
        assert r["value"] == 1 and "6至15周岁" in r["message_zh"]


@pytest.mark.parametrize("insurance,exempt,ok", [(0, 0, False), (0, 1, True), (1, 0, True), (2, 0, True)])
def test_medical_insurance_and_its_exemptions(insurance, exempt, ok):
    persons = adults(1, 1) + adults(1, 1, member_no=2, insurance=insurance, insurance_exempt=exempt)
    assert score([household(1)], persons)["medical_ok"][0] == ok


@pytest.mark.parametrize("grade,renovated,measures,ok", [
    ("A", 0, "", True), ("B", 0, "", True), ("C", 0, "", False), ("D", 0, "产业", False), ("C", 1, "", True),
    ("D", 0, "产业 易地搬迁", True), ("d", 1, "", True),
])
def test_house_c_d_safe_only_after_renovation_or_relocation(grade, renovated, measures, ok):
    s = score([household(1, house_grade=grade, house_renovated=renovated, measures=measures)])
    assert s["housing_ok"][0] == ok and s["guarantees_ok"][0] == ok


def test_food_and_clothing():
    s = score([household(1, food_regular_protein=0), household(2, food_stable=0),
               household(3, clothing_seasonal=0), household(4, clothing_donation=1), household(5)])
    assert s["food_ok"].tolist() == [False, False, True, True, True]
    assert s["clothing_ok"].tolist() == [True, True, False, False, True]
    assert s["wrongly_exited"].tolist() == [True, True, True, True, False]


def test_water_is_checked_alongside_and_joins_the_standard_only_when_configured():
    hhs = [household(1, water_litres=34), household(2, water_litres=35),
           household(3, water_piped=0, water_round_trip_min=20), household(4, water_piped=0, water_round_trip_min=21),
           household(5, water_interrupt_days=36), household(6, water_interrupt_days=37),
           household(7, water_quality_ok=0), household(8, province_code="620000", water_litres=20)]
    s = score(hhs)
    assert s["water_ok"].tolist() == [False, True, True, False, True, False, False, True]   # 甘肃 is dry: 20 L
    assert not s["wrongly_exited"].any()
    strict = score(hhs, rules=Rules.defaults(guarantees={"water_required_for_standard": True}))
    assert strict["wrongly_exited"].tolist() == [True, False, False, True, False, True, True, False]
    old = score(hhs, rules=Rules.defaults(guarantees={"water_rule": "2004"}))
    assert old["water_ok"].tolist() == [True, True, True, False, True, False, False, True]   # 37 > 36.5 days


def test_guarantee_failure_poor_is_configurable():
    hhs = [household(1, house_grade="D", register_status=5, exit_year=np.nan),
           household(2, house_grade="D", register_status=1)]
    s = score(hhs)
    assert s["poor"].tolist() == [True, True] and s["missed"].tolist() == [True, False]
    r = Rules.defaults(guarantees={"guarantee_failure_is_poor": False})
    t = score(hhs, rules=r)
    assert t["poor"].tolist() == [False, False] and not t["missed"].any()
    # not meeting the standard is still 错退
    assert t["wrongly_exited"].tolist() == [False, True]


def test_missing_answer_is_not_a_failure_but_is_reported():
    s = score([household(1, house_grade=None, food_stable=np.nan, wage_income=np.nan, business_income=np.nan,
                         business_cost=np.nan, property_income=np.nan, transfer_income=np.nan)])
    assert s["housing_ok"][0] and s["food_ok"][0] and not s["income_poor"][0]
    assert np.isnan(s["per_capita_income"][0])
    assert {"housing_missing", "food_missing", "income_missing"} <= set(reason_tests(s.iloc[0]))


# ---------------------------------------------------------------------------------------------- verdicts
def test_missed_and_wrongly_included_and_exited_never_wrongly_included_for_income():
    hhs = [household(1, register_status=5, wage_income=6000, size=3, exit_year=np.nan),   # 2000 ≤ 3747
           household(2, register_status=6, wage_income=20000, exit_year=np.nan),
           household(3, register_status=2, wage_income=20000, exit_year=np.nan),          # not poor, 未脱贫
           household(4, register_status=3, wage_income=20000, exit_year=np.nan),
           household(5, register_status=4, wage_income=2000, exit_year=np.nan),
           household(6, register_status=1, wage_income=90000)]                            # exited, rich
    s = score(hhs)
    assert s["missed"].tolist() == [True, False, False, False, False, False]
    assert s["missed_persons"].tolist() == [3, 0, 0, 0, 0, 0]
    assert s["wrongly_included"].tolist() == [False, False, True, True, False, False]
    assert s["not_exited_but_meets"].tolist() == [False, False, True, True, False, False]
    assert s["instrument"].tolist() == ["hh_nonregistered"] * 2 + ["hh_registered"] * 4


def test_missing_members_of_a_poor_registered_household_count_as_missed_persons():
    hhs = [household(1, register_status=2, wage_income=3000, size=4, register_size=3, exit_year=np.nan),
           household(2, register_status=2, wage_income=90000, size=4, register_size=3, exit_year=np.nan)]
    persons = adults(1, 4) + adults(2, 4)
    s = score(hhs, persons)
    assert s["missed_persons"].tolist() == [1, 0]
    assert not s["missed"].any()
    assert "missed_members" in reason_tests(s.iloc[0])


@pytest.mark.parametrize("over,persons_over,key", [
    ({"rl_vehicle_value": 30000}, {}, "vehicle_value_yuan"),
    ({"rl_commercial_housing": 1}, {}, "commercial_housing"),
    ({"rl_company": 1}, {}, "company"),
    ({"rl_empty_registration": 1}, {}, "empty_registration"),
    ({}, {"public_servant": 1}, "public_servant"),
    ({}, {"village_committee": 1}, "village_committee"),
])
def test_red_lines_fire_for_any_registered_household_and_can_be_switched_off(over, persons_over, key):
    hhs = [household(1, register_status=1, **over), household(2, register_status=2, wage_income=2000,
                                                               exit_year=np.nan, **over),
           household(3, register_status=5, exit_year=np.nan, **over)]
    persons = adults(1, 1) + adults(1, 1, member_no=2, **persons_over) + adults(2, 2) + adults(3, 2)
    persons[3].update(persons_over)
    persons[5].update(persons_over)
    s = score(hhs, persons)
    assert s["wrongly_included"].tolist() == [True, True, False]
    assert f"red_line_{key}" in reason_tests(s.iloc[0])
    off = Rules.defaults(red_lines={key: False})
    assert not score(hhs, persons, rules=off)["wrongly_included"].any()


def test_vehicle_one_yuan_below_the_red_line_is_fine():
    assert not score([household(1, rl_vehicle_value=29999)])["wrongly_included"][0]


# ---------------------------------------------------------------------------------------------- 返贫 (regime A)
def test_fell_back_needs_the_exit_year_income_regime_a():
    a = Rules.defaults(assessment={"regime": "A", "year": 2019})
    poor_now = dict(register_status=1, exit_year=2017, wage_income=4000)              # 2000 ≤ 3747
    hhs = [household(1, exit_year_income_pc=3400, **poor_now),      # above 2017 line 3335: 返贫
           household(2, exit_year_income_pc=3335, **poor_now),      # at the 2017 line: 错退
           household(3, **poor_now),                                # unknown exit income: 错退 by default
           household(4, register_status=1, exit_year=2017, exit_year_income_pc=3000),   # rich now, poor at exit
           household(5, register_status=1, exit_year=2019, wage_income=4000)]           # exited this year
    s = score(hhs, rules=a)
    assert s["fell_back"].tolist() == [True, False, False, False, False]
    assert s["wrongly_exited"].tolist() == [False, True, True, True, True]
    r = [x for x in json.loads(s["reasons"][1]) if x["test"] == "wrongly_exited_exit_income"][0]
    assert r["value"] == 3335 and r["threshold"] == 3335
    lenient = Rules.defaults(assessment={"regime": "A"},
                             fell_back={"unknown_exit_income_counts_as_wrongly_exited": False})
    t = score(hhs, rules=lenient)
    assert t["fell_back"].tolist() == [True, False, True, False, False]
    # regime B: everything is today's test
    b = score(hhs)
    assert b["wrongly_exited"].tolist() == [True, True, True, False, True] and not b["fell_back"].any()


def test_exit_year_line_not_configured_is_a_config_error():
    from sampling.errors import ConfigError

    a = Rules.defaults(assessment={"regime": "A", "year": 2019}, poverty_line={"series": "nbs"})
    with pytest.raises(ConfigError, match="poverty_line.nbs.2018"):
        score([household(1, exit_year=2018, exit_year_income_pc=3000, wage_income=4000)], rules=a)


# ---------------------------------------------------------------------------------------------- 认可
def test_top_box_and_all_versus_majority():
    ans = dict(sat_policy=1, sat_measures=2, sat_results=3, sat_exit=5, sat_cadres=1)
    hhs = [household(1, register_status=2, exit_year=np.nan, **ans),     # sat_exit not applicable
           household(2, register_status=1, **ans),                      # exited: sat_exit applies
           household(3, register_status=5, exit_year=np.nan, sat_policy=np.nan, sat_measures=np.nan,
                     sat_results=np.nan, sat_exit=np.nan, sat_cadres=np.nan)]
    top2 = score(hhs)["recognises"]
    assert top2[0] == False and top2[1] == False and pd.isna(top2[2])  # noqa: E712
    top3 = score(hhs, rules=Rules.defaults(satisfaction={"top_box": 3}))["recognises"]
    assert top3[0] == True and top3[1] == False  # noqa: E712
    maj = score(hhs, rules=Rules.defaults(satisfaction={"rule": "majority"}))["recognises"]
    assert maj[0] == True and maj[1] == True  # noqa: E712  (3 of 4, 3 of 5)
    two_of_four = dict(sat_policy=1, sat_measures=2, sat_results=3, sat_cadres=4)
    m = score([household(1, register_status=2, exit_year=np.nan, **two_of_four)],
              rules=Rules.defaults(satisfaction={"rule": "majority"}))["recognises"]
    assert m[0] == False  # noqa: E712  (2 of 4 is not a majority)


# ---------------------------------------------------------------------------------------------- shape
def test_output_columns_follow_the_contract_and_rules_hash_is_stored():
    from survey.score import SCORE_COLUMNS

    s = score([household(1)])
    assert list(s.columns) == SCORE_COLUMNS
    assert s["rules_hash"][0] == RULES.hash
    json.loads(s["reasons"][0])


def test_bad_input_is_named():
    with pytest.raises(ScoringError, match="register_status"):
        score([household(1, register_status=9)])
    with pytest.raises(ScoringError, match="appears 2 times"):
        score([household(1), household(1)])
    with pytest.raises(ScoringError, match="lacks the column"):
        score_households(pd.DataFrame({"household_id": ["1"]}), None, RULES)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.floats(0, 20000), st.integers(1, 5), st.sampled_from("ABCD"),
                          st.integers(0, 20)), min_size=2, max_size=4))
def test_vectorised_scoring_equals_scoring_each_household_alone(rows):
    hhs, persons = [], []
    for i, (status, income, size, grade, child_age) in enumerate(rows, start=1):
        hhs.append(household(i, register_status=status, wage_income=income * size, size=size, house_grade=grade,
                             exit_year=2019 if status == 1 else np.nan))
        persons += adults(i, size - 1) + [dict(household_id=f"52010200100100{i:02d}", member_no=size,
                                               age=child_age, in_school=0, school_exempt=0, insurance=1,
                                               insurance_exempt=0, public_servant=0, village_committee=0)]
    together = score(hhs, persons)
    for i, h in enumerate(hhs):
        alone = score([h], [p for p in persons if p["household_id"] == h["household_id"]])
        pd.testing.assert_frame_equal(together.iloc[[i]].reset_index(drop=True), alone, check_dtype=False)


def test_production_costs_imputed_from_gross_output_when_configured():
    # grain 10,000 × 40% + orchard 2,000 × 15% = 4,300 of costs when the household cannot report them
    h = household(1, wage_income=0, business_income=12000, business_cost=np.nan, gross_grain=10000,
                  gross_orchard=2000, size=2)
    plain = score([h])
    assert plain["per_capita_income"][0] == 6000                    # cost missing counts as 0
    imputed = score([h], rules=Rules.defaults(production_costs={"impute": True}))
    assert imputed["per_capita_income"][0] == pytest.approx((12000 - 4300) / 2)
    reported = score([dict(h, business_cost=1000)], rules=Rules.defaults(production_costs={"impute": True}))
    assert reported["per_capita_income"][0] == 5500                 # a reported cost is kept
