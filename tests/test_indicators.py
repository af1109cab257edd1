"""Indicators: official ratios by hand, design-based estimates against R survey, the zero-count bound, verdicts."""
import math
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey.errors import ScoringError
from survey.indicators import Indicator, format_percent, indicators_from_scores, zero_upper_bound
from survey.rules import Rules

FIX = Path(__file__).parent / "fixtures" / "r_indicators"
CODES = {"household_id": str, "village_code": str, "county_code": str, "province_code": str, "code": str}
KEYS = ("wrongly_exited_rate", "missed_rate", "recognition_rate", "incidence", "identification_accuracy")


def fixture_inputs():
    d = pd.read_csv(FIX / "data.csv", dtype=CODES)
    v = pd.read_csv(FIX / "villages.csv", dtype=CODES)
    scores = d[["household_id", "village_code", "county_code", "province_code", "register_status", "size",
                "missed_persons"]].copy()
    scores["wrongly_exited"] = d["wrongly_exited"].astype(bool)
    scores["wrongly_included"] = d["wrongly_included"].astype(bool)
    scores["missed"] = (d["missed_persons"] > 0) & (d["register_status"] >= 5)
    scores["recognises"] = pd.array(d["recognises"].map({1: True, 0: False}), dtype="boolean")
    sample = d[["household_id", "village_stratum", "weight", "purposive", "pi_village", "pi_household"]].copy()
    sample["pi_county"] = 1.0
    return d, v, scores, sample


@pytest.mark.r
@pytest.mark.parametrize("by", ["county", "province"])
def test_design_based_estimates_agree_with_r_survey(by):
    d, v, scores, sample = fixture_inputs()
    r = pd.read_csv(FIX / "results.csv", dtype=CODES)
    # R: confint(svyratio) = estimate ± t·SE for the ratios; svyciprop(logit) for the recognition rate
    t_rules = Rules.defaults(estimation={"rate_ci": "t"})
    logit_rules = Rules.defaults(estimation={"rate_ci": "logit"})
    inds = [i for i in indicators_from_scores(scores, sample, t_rules, by=by, populations=v, keys=KEYS)
            if i.key != "recognition_rate"]
    inds += indicators_from_scores(scores, sample, logit_rules, by=by, populations=v, keys=("recognition_rate",))
    assert len(inds) == (3 if by == "county" else 2) * len(KEYS)
    for i in inds:
        code = i.county_code if by == "county" else i.province_code
        flip = i.key == "identification_accuracy"          # R computes the error rate: accuracy = 1 − it
        row = r[(r.level == by) & (r.code == code)
                & (r.key == ("identification_error" if flip else i.key))].iloc[0]
        est = 1 - i.estimate if flip else i.estimate
        lo, hi = (1 - i.ci_high, 1 - i.ci_low) if flip else (i.ci_low, i.ci_high)
        off = 1 - i.official if flip else i.official
        assert est == pytest.approx(row.estimate, abs=1e-6), (code, i.key)
        assert i.se == pytest.approx(row.se, abs=1e-6), (code, i.key)
        assert off == pytest.approx(row.official, abs=1e-6), (code, i.key)
        assert i.df == row.df
        if not math.isnan(row.deff):
            assert i.deff == pytest.approx(row.deff, rel=1e-6), (code, i.key)
        # intervals: R's, clipped to [0, 1]; the incidence cannot fall below the register's remaining rate
        floor = 0.0
        if i.key == "incidence":
            vv = v[v.county_code.str[:2] == code[:2]] if by == "province" else v[v.county_code == code]
            floor = vv.persons_not_exited.sum() / vv.rural_population.sum()
        assert lo == pytest.approx(max(row.ci_low, floor if not flip else row.ci_low, 0.0), abs=1e-6), (code, i.key)
        assert hi == pytest.approx(min(row.ci_high, 1.0), abs=1e-6), (code, i.key)


def test_default_rate_interval_is_logit_with_the_design_effect_truncated_at_one():
    from scipy import stats

    d, v, scores, sample = fixture_inputs()
    for i in indicators_from_scores(scores, sample, Rules.defaults(), populations=v, keys=("wrongly_exited_rate",)):
        county = i.county_code
        p, V, df = i.estimate, i.se ** 2, i.df
        c = d[(d.county_code == county) & (d.purposive == 0)]
        n = int((c.register_status == 1).sum())
        V = max(V, p * (1 - p) / n)                     # binomial variance of the n sampled exited households
        h = stats.t.ppf(0.975, df) * math.sqrt(V) / (p * (1 - p))
        logit = math.log(p / (1 - p))
        assert i.ci_low == pytest.approx(1 / (1 + math.exp(-(logit - h))), rel=1e-9)
        assert i.ci_high == pytest.approx(1 / (1 + math.exp(-(logit + h))), rel=1e-9)


def test_korn_graubard_truncated_interval_by_hand():
    from scipy import stats

    d, v, scores, sample = fixture_inputs()
    kg = Rules.defaults(estimation={"rate_ci": "korn-graubard-truncated"})
    (i,) = [x for x in indicators_from_scores(scores, sample, kg, populations=v,
                                              keys=("wrongly_exited_rate",)) if x.county_code == "520103"]
    # by hand: n_eff = p(1−p)/max(V, p(1−p)/n) · (t_{n−1}/t_df)², limits from the beta distribution
    p, V, df = i.estimate, i.se ** 2, i.df
    c = d[(d.county_code == "520103") & (d.purposive == 0)]
    n = int((c.register_status == 1).sum())
    neff = p * (1 - p) / max(V, p * (1 - p) / n) * (stats.t.ppf(0.025, n - 1) / stats.t.ppf(0.025, df)) ** 2
    assert i.ci_low == pytest.approx(stats.beta.ppf(0.025, neff * p, neff * (1 - p) + 1), rel=1e-9)
    assert i.ci_high == pytest.approx(stats.beta.ppf(0.975, neff * p + 1, neff * (1 - p)), rel=1e-9)


def test_official_ratios_by_hand_include_purposive_villages():
    d, v, scores, sample = fixture_inputs()
    inds = {(i.county_code, i.key): i for i in
            indicators_from_scores(scores, sample, Rules.defaults(), by="county", populations=v, keys=KEYS)}
    c = d[d.county_code == "520102"]
    exited = c[c.register_status == 1]
    we = inds[("520102", "wrongly_exited_rate")]
    assert we.numerator == (exited["size"] * exited["wrongly_exited"]).sum()
    assert we.denominator == exited["size"].sum()
    assert we.official == we.numerator / we.denominator
    mi = inds[("520102", "missed_rate")]
    sampled_villages = c["village_code"].unique()
    assert len(sampled_villages) == 8                         # 7 drawn + 1 purposive
    assert mi.denominator == v[v.village_code.isin(sampled_villages)]["persons_nonregistered"].sum()
    assert mi.numerator == c["missed_persons"].sum()
    rc = inds[("520102", "recognition_rate")]
    assert rc.unit == "households"
    assert rc.numerator == (c["recognises"] == 1).sum() and rc.denominator == c["recognises"].notna().sum()


def test_purposive_households_are_left_out_of_the_weighted_estimate():
    d, v, scores, sample = fixture_inputs()
    rules = Rules.defaults()
    base = indicators_from_scores(scores, sample, rules, populations=v, keys=("wrongly_exited_rate",))
    s2 = scores.copy()
    purposive = d["purposive"] == 1
    s2.loc[purposive, "wrongly_exited"] = ~s2.loc[purposive, "wrongly_exited"]
    changed = indicators_from_scores(s2, sample, rules, populations=v, keys=("wrongly_exited_rate",))
    for a, b in zip(base, changed):
        assert a.estimate == b.estimate and a.se == b.se
        assert a.official != b.official


# ---------------------------------------------------------------------------------------------- zero count
def small_county(we_flags, recognises=None, sizes=None):
    """One county, 2 strata × 2 villages × 3 exited households; equal weights 10."""
    n = 12
    hid = [f"4101020010{v:02d}{k:04d}" for v in range(1, 5) for k in range(1, 4)]
    scores = pd.DataFrame({
        "household_id": hid, "village_code": [h[:12] for h in hid], "county_code": "410102",
        "province_code": "410000", "register_status": 1, "size": sizes or [2] * n,
        "wrongly_exited": we_flags, "wrongly_included": False, "missed": False, "missed_persons": 0,
        "recognises": pd.array(recognises or [True] * n, dtype="boolean")})
    sample = pd.DataFrame({"household_id": hid, "village_stratum": ["a"] * 6 + ["b"] * 6, "weight": 10.0,
                           "purposive": 0, "pi_village": 0.5, "pi_county": 1.0})
    return scores, sample


def test_zero_count_gets_the_exact_upper_bound_never_a_bare_zero():
    scores, sample = small_county([False] * 12)
    rules = Rules.defaults()
    (we,) = indicators_from_scores(scores, sample, rules, keys=("wrongly_exited_rate",))
    expected = 1 - 0.025 ** (1 / 12)                 # 12 sampled households, persons clustered in them
    assert expected == pytest.approx(0.26464, abs=1e-5)
    assert we.official == 0 and we.estimate == 0 and we.se == 0
    assert we.zero_upper == pytest.approx(expected, abs=1e-12)
    assert we.ci_low == 0 and we.ci_high == pytest.approx(expected, abs=1e-12)
    assert we.distance_se is None
    assert we.display == "0（95%置信上限 26.46%）"
    assert we.passed is True


def test_zero_upper_bound_formula():
    assert zero_upper_bound(300) == pytest.approx(1 - 0.025 ** (1 / 300))
    assert zero_upper_bound(300) == pytest.approx(0.012221, abs=1e-6)
    assert zero_upper_bound(1) == pytest.approx(0.975)
    assert zero_upper_bound(300, level=0.90) == pytest.approx(1 - 0.05 ** (1 / 300))


def test_every_unit_counts_gives_the_mirror_bound():
    scores, sample = small_county([False] * 12, recognises=[True] * 12)
    (rc,) = indicators_from_scores(scores, sample, Rules.defaults(), keys=("recognition_rate",))
    assert rc.official == 1 and rc.se == 0
    assert rc.ci_low == pytest.approx(0.025 ** (1 / 12)) and rc.ci_high == 1
    assert rc.passed is True and rc.display == "100.00%"


# ---------------------------------------------------------------------------------------------- verdicts
def test_exactly_at_the_threshold_passes_and_comparison_is_unrounded():
    # two exited households: 1 of 50 persons wrongly exited is exactly 2 %
    scores, sample = small_county([True] + [False] * 11)
    scores["size"] = [1, 49] + [3] * 10
    scores.loc[2:, "register_status"] = 5
    (we,) = indicators_from_scores(scores, sample, Rules.defaults(), keys=("wrongly_exited_rate",))
    assert we.numerator == 1 and we.denominator == 50 and we.official == 0.02
    assert we.passed is True and we.display == "2.00%"
    # 40 of 1999 = 2.001 %: displays as 2.00 % but fails
    scores["size"] = [40, 1959] + [3] * 10
    (we,) = indicators_from_scores(scores, sample, Rules.defaults(), keys=("wrongly_exited_rate",))
    assert we.display == "2.00%" and we.passed is False


def test_display_rounds_half_up():
    assert format_percent(0.012345) == "1.23%"
    assert format_percent(0.01235) == "1.24%"      # half-up, not banker's rounding
    assert format_percent(0.00125) == "0.13%"
    assert format_percent(0.0) == "0.00%"


def test_distance_in_standard_errors_is_signed_towards_passing():
    d, v, scores, sample = fixture_inputs()
    for i in indicators_from_scores(scores, sample, Rules.defaults(), populations=v, keys=KEYS):
        if i.threshold is None or not i.se:
            assert i.distance_se is None
            continue
        expected = (i.threshold - i.estimate) / i.se if i.direction == "<=" else (i.estimate - i.threshold) / i.se
        assert i.distance_se == pytest.approx(expected)


def test_incidence_threshold_by_region_and_the_register_gate():
    d, v, scores, sample = fixture_inputs()
    inds = indicators_from_scores(scores, sample, Rules.defaults(), populations=v,
                                  keys=("incidence", "registered_rate_gate"))
    byc = {(i.county_code, i.key): i for i in inds}
    assert byc[("520102", "incidence")].threshold == 0.03
    assert byc[("410102", "incidence")].threshold == 0.02
    g = byc[("410102", "registered_rate_gate")]
    vv = v[v.county_code == "410102"]
    assert g.official == vv.persons_not_exited.sum() / vv.rural_population.sum()
    assert g.se == 0 and g.threshold == 0.03 and g.passed is (g.official <= 0.03)


def test_incidence_denominator_is_configurable_and_missing_columns_are_named():
    d, v, scores, sample = fixture_inputs()
    rules = Rules.defaults(incidence={"denominator": "rural_resident"})
    with pytest.raises(ScoringError, match="rural_resident"):
        indicators_from_scores(scores, sample, rules, populations=v, keys=("incidence",))
    v2 = v.assign(rural_resident=v.rural_population * 0.8)
    (a,) = indicators_from_scores(scores, sample, Rules.defaults(), populations=v, keys=("incidence",))[:1]
    (b,) = indicators_from_scores(scores, sample, rules, populations=v2, keys=("incidence",))[:1]
    assert b.official == pytest.approx(a.official / 0.8)


def test_missed_denominator_surveyed_variant():
    d, v, scores, sample = fixture_inputs()
    rules = Rules.defaults(incidence={"missed_denominator": "surveyed_nonregistered"})
    inds = indicators_from_scores(scores, sample, rules, keys=("missed_rate",))
    c = d[d.county_code == "520103"]
    i = [x for x in inds if x.county_code == "520103"][0]
    assert i.denominator == c.loc[c.register_status >= 5, "size"].sum()
    assert i.numerator == c["missed_persons"].sum()


def test_confirmed_cases_count_and_suspected_are_shown_separately():
    scores, sample = small_county([True, True, False] + [False] * 9)
    scores["review"] = [None, "疑似错退", "疑似错退"] + [None] * 9
    (we,) = indicators_from_scores(scores, sample, Rules.defaults(), keys=("wrongly_exited_rate",))
    # household 1: confirmed (unreviewed counts by default); 2: flagged but pending; 3: supervisor suspects
    assert we.numerator == 2 and we.suspected == 4
    strict = Rules.defaults(review={"unreviewed": "suspected"})
    (we,) = indicators_from_scores(scores, sample, strict, keys=("wrongly_exited_rate",))
    assert we.numerator == 0 and we.suspected == 6
    assert we.display.startswith("0（95%置信上限")


def test_indicator_fields_follow_the_contract():
    names = [f.name for f in fields(Indicator)]
    assert names == ["key", "name_zh", "level", "province_code", "county_code", "unit", "numerator", "denominator",
                     "official", "estimate", "se", "ci_low", "ci_high", "df", "deff", "threshold", "direction",
                     "passed", "distance_se", "zero_upper", "suspected", "display"]
    d, v, scores, sample = fixture_inputs()
    import json

    inds = indicators_from_scores(scores, sample, Rules.defaults(), populations=v)
    json.dumps([asdict(i) for i in inds], ensure_ascii=False)
    assert {i.key for i in inds} == {"incidence", "wrongly_exited_rate", "missed_rate", "recognition_rate",
                                     "registered_rate_gate"}


def test_regime_a_indicators():
    d, v, scores, sample = fixture_inputs()
    a = Rules.defaults(assessment={"regime": "A"})
    inds = indicators_from_scores(scores, sample, a, by="province", populations=v)
    keys = {i.key for i in inds}
    assert keys == {"identification_accuracy", "exit_accuracy", "satisfaction"}
    ex = [i for i in inds if i.key == "exit_accuracy" and i.province_code == "410000"][0]
    we = indicators_from_scores(scores, sample, a, by="province", populations=v, keys=("wrongly_exited_rate",))
    we = [i for i in we if i.province_code == "410000"][0]
    assert ex.official == pytest.approx(1 - we.official) and ex.se == we.se
    assert ex.threshold is None and ex.passed is None


def test_unsampled_household_is_named():
    scores, sample = small_county([False] * 12)
    with pytest.raises(ScoringError, match="not in the sample"):
        indicators_from_scores(scores, sample.iloc[1:], Rules.defaults(), keys=("wrongly_exited_rate",))
    assert np.isfinite(zero_upper_bound(5))


def test_satisfaction_weighted_across_household_types():
    # types by register_status: exited (1) weight 0.4, non-registered (5) weight 0.6
    scores, sample = small_county([False] * 12,
                                  recognises=[True, True, True, False, True, True, True, True, False, False, True, True])
    scores["register_status"] = [1] * 6 + [5] * 6
    rules = Rules.defaults(assessment={"regime": "A"}, satisfaction={"type_weights": {"1": 0.4, "5": 0.6, "2": 0.5}})
    (sat,) = indicators_from_scores(scores, sample, rules, keys=("satisfaction",))
    # exited: 5 of 6 recognise; non-registered: 4 of 6; type 2 absent, its weight drops out
    assert sat.official == pytest.approx(0.4 * 5 / 6 + 0.6 * 4 / 6)
    assert sat.estimate == pytest.approx(0.4 * 5 / 6 + 0.6 * 4 / 6)      # equal weights: same as official
    plain = Rules.defaults(assessment={"regime": "A"})
    (unw,) = indicators_from_scores(scores, sample, plain, keys=("satisfaction",))
    assert unw.official == pytest.approx(9 / 12)


def test_province_with_sampled_counties_uses_counties_as_psus():
    d, v, scores, sample = fixture_inputs()
    gz = (d["province_code"] == "520000").to_numpy()
    s2 = sample[gz].copy()
    s2["pi_county"] = 0.5                                   # counties drawn at the first stage
    inds = indicators_from_scores(scores[gz], s2, Rules.defaults(), by="province", populations=v,
                                  keys=("wrongly_exited_rate",))
    gz = [i for i in inds if i.province_code == "520000"][0]
    assert gz.df == 1                                       # 2 counties (PSUs) − 1 stratum
    # one county alone cannot give a variance: the error names the province
    one = (d["county_code"] == "410102").to_numpy()
    s3 = sample[one].assign(pi_county=0.5)
    with pytest.raises(ScoringError, match="province 410000: the design has only one primary sampling unit"):
        indicators_from_scores(scores[one], s3, Rules.defaults(), by="province", keys=("wrongly_exited_rate",))


def test_national_level_pools_provinces():
    d, v, scores, sample = fixture_inputs()
    inds = indicators_from_scores(scores, sample, Rules.defaults(), by="national", populations=v,
                                  keys=("wrongly_exited_rate", "incidence"))
    we, inc = inds
    assert we.level == "national" and we.province_code is None and we.county_code is None
    exited = d[d.register_status == 1]
    assert we.official == (exited["size"] * exited["wrongly_exited"]).sum() / exited["size"].sum()
    assert we.df == 21 - 6                  # 3 counties × 7 drawn villages − 3 × 2 strata
    assert inc.threshold is None and inc.passed is None


def test_exit_verdict_needs_every_indicator():
    from survey.indicators import exit_verdicts

    d, v, scores, sample = fixture_inputs()
    inds = indicators_from_scores(scores, sample, Rules.defaults(), populations=v)
    verdicts = exit_verdicts(inds)
    for code, entry in verdicts.items():
        mine = [i for i in inds if i.county_code == code and i.passed is not None]
        assert entry["passed"] == all(i.passed for i in mine)
        assert entry["failed"] == [i.key for i in mine if not i.passed]


def test_incidence_carries_its_scaled_up_terms():
    d, v, scores, sample = fixture_inputs()
    (inc,) = [i for i in indicators_from_scores(scores, sample, Rules.defaults(), populations=v, keys=("incidence",))
              if i.county_code == "410102"]
    t = inc.terms
    vv = v[v.county_code == "410102"]
    assert t["remaining_registered"] == vv.persons_not_exited.sum() and t["denominator"] == vv.rural_population.sum()
    o = t["official"]
    assert inc.numerator == pytest.approx(t["remaining_registered"] + o["missed_scaled"] + o["wrongly_exited_scaled"])
    assert o["missed_scaled"] == pytest.approx(o["missed_rate"] * vv.persons_nonregistered.sum())
    e = t["estimate"]
    assert inc.estimate == pytest.approx((t["remaining_registered"] + e["missed_scaled"] + e["wrongly_exited_scaled"])
                                         / t["denominator"])
    assert "terms" not in asdict(inc)
