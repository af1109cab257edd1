"""Means, totals, ratios and proportions against R `survey` 4.1 fixtures (relative 1e-6), domains, lonely PSUs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey.design import Design
from survey.errors import EstimationError

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "r_survey"))
from rfix import cases, close, dataset, design_for  # noqa: E402

pytestmark = pytest.mark.r

STAT_CASES = cases(("mean", "total", "ratio"))


def _row_for(df, domain):
    if domain is None:
        assert len(df) == 1
        return df.iloc[0]
    (col, val), = domain.items()
    for _, row in df.iterrows():
        if row["domain"] == {col: val} or (row["domain"] and str(row["domain"][col]) == str(val)):
            return row
    raise AssertionError(f"no row for domain {domain}: {list(df['domain'])}")


@pytest.mark.parametrize("case", STAT_CASES, ids=[c["name"] for c in STAT_CASES])
def test_against_r(case):
    d = design_for(case)
    by = case.get("by")
    na_rm = bool(case.get("na_rm"))
    if case["statistic"] == "mean":
        out = d.mean(case["variable"], by=by, na_rm=na_rm)
    elif case["statistic"] == "total":
        out = d.total(case["variable"], by=by, na_rm=na_rm)
    else:
        out = d.ratio(case["variable"], case["denominator"], by=by, na_rm=na_rm)
    assert len(out) == len(case["results"])
    for res in case["results"]:
        row = _row_for(out, res.get("domain"))
        what = f"{case['name']} {res.get('domain')}"
        for key in ("estimate", "se", "ci_low", "ci_high"):
            close(row[key], res[key], f"{what} {key}")
        assert row["df"] == res["df"], what
        assert row["n"] == res["n"], what
        if "deff" in res and res["deff"] is not None:
            close(row["deff"], res["deff"], f"{what} deff")


PROP_CASES = cases("prop")
METHODS = {"logit": "logit", "beta": "clopper-pearson", "mean": "wald", "wilson": "wilson"}


@pytest.mark.parametrize("case", PROP_CASES, ids=[c["name"] for c in PROP_CASES])
@pytest.mark.parametrize("rmethod", list(METHODS))
def test_prop_against_r(case, rmethod):
    d = design_for(case)
    out = d.prop(case["variable"], by=case.get("by"), method=METHODS[rmethod])
    assert len(out) == len(case["results"])
    checked = 0
    for res in case["results"]:
        sel = out[[str(l) == str(res["level"]) for l in out["level"]]]
        row = _row_for(sel, res.get("domain"))
        what = f"{case['name']} {res.get('domain')} level={res['level']} {rmethod}"
        close(row["estimate"], res["estimate"], what + " estimate")
        close(row["se"], res["se"], what + " se")
        assert row["df"] == res["df"] and row["n"] == res["n"], what
        if res.get("deff") is not None:
            close(row["deff"], res["deff"], what + " deff")
        ci = (res.get("ci") or {}).get(rmethod)
        if ci:
            close(row["ci_low"], ci[0], what + " ci_low")
            close(row["ci_high"], ci[1], what + " ci_high")
            checked += 1
        else:
            # p at 0 or 1: defined answers, never NaN
            assert np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]), what
            assert 0 <= row["ci_low"] <= row["estimate"] <= row["ci_high"] <= 1, what
            assert row["note"], what


def test_prop_zero_gives_exact_upper_bound():
    """At p = 0 Clopper–Pearson takes n_eff = rows in the domain: upper = 1 − 0.025^(1/n) (SPEC §2)."""
    d = design_for(cases(prefix="rare_prop_by")[0])
    out = d.prop("y", by="dom", method="clopper-pearson")
    row = out[(out["level"] == 1) & (out["domain"] == {"dom": "a"})].iloc[0]
    assert row["estimate"] == 0
    n = int((dataset("rare")["dom"] == "a").sum())
    assert row["n"] == n
    assert row["ci_low"] == 0
    assert abs(row["ci_high"] - (1 - 0.025 ** (1 / n))) < 1e-12


def test_lonely_fail_is_loud_and_names_stratum():
    case = cases(prefix="lonely_remove_mean")[0]
    d = design_for(case, lonely="fail")
    with pytest.raises(EstimationError) as exc:
        d.mean("y")
    assert "stratum 4" in str(exc.value) and "lonely" in str(exc.value).lower()


def test_lonely_fail_not_raised_for_domain_outside_lonely_stratum():
    lon = dataset("lonely")
    d = Design(lon, weights="w", strata="stratum", ids="psu")
    sub = d.subset(lon["stratum"] <= 3)
    out = sub.mean("y")
    assert np.isfinite(out["se"].iloc[0])


def test_missing_values_error_names_column():
    d = design_for(cases(prefix="clus2_mean_narm")[0])
    with pytest.raises(EstimationError) as exc:
        d.mean("enroll")
    assert "enroll" in str(exc.value) and "missing" in str(exc.value) and "na" in str(exc.value).lower()


def test_df_zero_domain_gives_defined_interval():
    lon = dataset("lonely")
    d = Design(lon, weights="w", strata="stratum", ids="psu", lonely_psu="remove")
    sub = d.subset(lon["psu"] == 11)           # one PSU: df = 0
    m = sub.mean("y").iloc[0]
    assert m["df"] == 0 and m["ci_low"] == -np.inf and m["ci_high"] == np.inf and m["note"]
    p = sub.prop("z").iloc[0]
    assert p["ci_low"] == 0 and p["ci_high"] == 1 and p["note"]


def test_ratio_linearized_matches_ratio():
    case = cases(prefix="clus1_ratio_by")[0]
    d = design_for(case)
    df = dataset("apiclus1")
    mask = (df["stype"] == "H").to_numpy()
    r, z = d.ratio_linearized("api00", "api99", mask=mask)
    res = [x for x in case["results"] if x["domain"] == {"stype": "H"}][0]
    close(r, res["estimate"], "ratio")
    close(np.sqrt(d.variance(z, mask=mask)), res["se"], "ratio se")


def test_subset_then_by_equals_combined_domain():
    df = dataset("apistrat")
    d = Design(df, weights="pw", strata="stype", fpc="fpc")
    a = d.subset(df["sch_wide"] == "Yes").mean("api00", by="stype")
    for _, row in a.iterrows():
        b = d.subset((df["sch_wide"] == "Yes") & (df["stype"] == row["domain"]["stype"])).mean("api00").iloc[0]
        for k in ("estimate", "se", "df", "n"):
            assert row[k] == pytest.approx(b[k], rel=1e-12)


def test_variance_of_total_equals_total_se():
    df = dataset("apiclus2")
    d = Design(df, weights="pw", ids="dnum+snum", fpc="fpc1+fpc2")
    z = df["api00"].to_numpy()                 # variance of the weighted total Σ w z
    assert np.sqrt(d.variance(z)) == pytest.approx(d.total("api00")["se"].iloc[0], rel=1e-12)


def test_bad_arguments_name_the_column():
    df = dataset("apistrat")
    with pytest.raises(EstimationError, match="nope"):
        Design(df, weights="nope")
    with pytest.raises(EstimationError, match="lonely"):
        Design(df, weights="pw", lonely_psu="whatever")
    d = Design(df, weights="pw", strata="stype")
    with pytest.raises(EstimationError, match="stype"):
        d.mean("stype")
    with pytest.raises(EstimationError, match="NUM:DEN"):
        d.estimate(ratios=["api00"])
