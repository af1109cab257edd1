"""Weighting (post-stratification, raking, calibration, trimming, non-response) and jackknife replicates
against R `survey` 4.1 (postStratify, rake, calibrate, trimWeights, as.svrepdesign JK1/JKn)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey.design import Design
from survey.errors import EstimationError
from survey.replicates import ReplicateDesign
from survey.weighting import calibrate, nonresponse_adjust, post_stratify, rake, trim_weights

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "r_survey"))
from rfix import close, dataset, fixtures  # noqa: E402

pytestmark = pytest.mark.r

WCASES = {c["name"]: c for c in fixtures()["weighting"]}


def _base():
    return Design(dataset("apiclus1"), weights="pw", ids="dnum", fpc="fpc")


def _adjusted(name):
    c = WCASES[name]
    d = _base()
    if c["method"] == "poststratify":
        return post_stratify(d, "stype", c["population"])
    if c["method"] == "rake":
        return rake(d, {"stype": c["margins"]["stype"], "sch_wide": c["margins"]["sch_wide"]})
    if c["method"] == "calibrate":
        return calibrate(d, c["population"], by="stype")
    if c["method"] == "trim":
        return trim_weights(d, lower=c["lower"], upper=c["upper"])
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(WCASES))
def test_weights_and_estimates_against_r(name):
    c = WCASES[name]
    d = _adjusted(name)
    np.testing.assert_allclose(d.weights, np.asarray(c["weights"]), rtol=1e-6)
    df = dataset("apiclus1")
    for res in c["results"]:
        dom = res.get("domain")
        dd = d if dom is None else d.subset(df["stype"] == dom["stype"])
        out = (dd.mean if res["statistic"] == "mean" else dd.total)("api00").iloc[0]
        what = f"{name} {res['statistic']} {dom}"
        for k in ("estimate", "se", "ci_low", "ci_high", "deff"):
            close(out[k], res[k], f"{what} {k}")
        assert out["df"] == res["df"], what
        if dom is None:
            assert out["n"] == res["n"], what


def test_poststratified_by_equals_subset():
    d = _adjusted("poststratify")
    a = d.mean("api00", by="stype")
    df = dataset("apiclus1")
    for _, row in a.iterrows():
        b = d.subset(df["stype"] == row["domain"]["stype"]).mean("api00").iloc[0]
        assert row["se"] == pytest.approx(b["se"], rel=1e-12)


def test_poststratify_missing_total_is_named():
    with pytest.raises(EstimationError, match="'M'"):
        post_stratify(_base(), "stype", {"E": 4421, "H": 755})


REPS = fixtures()["replicates"]


@pytest.mark.parametrize("case", REPS, ids=[c["name"] for c in REPS])
def test_jackknife_against_r(case):
    spec = case["design"]
    d = Design(dataset(case["dataset"]), weights=spec["weights"], strata=spec["strata"], ids=spec["ids"])
    r = ReplicateDesign.jackknife(d, type=case["type"])
    assert r.scale == pytest.approx(case["scale"], rel=1e-12)
    df = dataset(case["dataset"])
    for res in case["results"]:
        dom = res.get("domain")
        rr = r if dom is None else ReplicateDesign.jackknife(d.subset(df["stype"] == dom["stype"]), type=case["type"])
        if res["statistic"] == "ratio":
            out = rr.ratio("api00", "api99").iloc[0]
        else:
            out = getattr(rr, res["statistic"])("api00").iloc[0]
        close(out["estimate"], res["estimate"], f"{case['name']} {res['statistic']} {dom}")
        close(out["se"], res["se"], f"{case['name']} {res['statistic']} {dom} se")


def test_jackknife_by_matches_subset():
    df = dataset("apistrat")
    d = Design(df, weights="pw", strata="stype")
    r = ReplicateDesign.jackknife(d, type="JKn")
    a = r.mean("api00", by="sch_wide")
    for _, row in a.iterrows():
        b = ReplicateDesign.jackknife(d.subset(df["sch_wide"] == row["domain"]["sch_wide"]), "JKn").mean("api00")
        assert row["se"] == pytest.approx(b["se"].iloc[0], rel=1e-12)


def test_nonresponse_adjust_by_hand():
    data = pd.DataFrame({"cell": ["a", "a", "a", "b", "b"], "w": [10.0, 20.0, 30.0, 5.0, 5.0],
                         "resp": [1, 0, 1, 1, 1]})
    w = nonresponse_adjust(data, "w", "cell", "resp")
    # cell a: total 60 carried by respondents with 40 -> factor 1.5
    np.testing.assert_allclose(w, [15.0, 0.0, 45.0, 5.0, 5.0])
    data.loc[[0, 2], "resp"] = 0
    with pytest.raises(EstimationError, match="no respondents"):
        nonresponse_adjust(data, "w", "cell", "resp")


def test_trim_keeps_total_by_hand():
    df = pd.DataFrame({"w": [1.0, 2.0, 3.0, 10.0], "y": [1, 2, 3, 4], "psu": [1, 2, 3, 4]})
    d = trim_weights(Design(df, weights="w", ids="psu"), upper=6)
    # 4 trimmed off the largest weight, shared equally by the other three
    np.testing.assert_allclose(d.weights, [1 + 4 / 3, 2 + 4 / 3, 3 + 4 / 3, 6.0])


def test_replicate_weight_columns_equal_built_jackknife():
    """JK1 replicate weights written out as columns give R's JK1 results (fixture jk1_clus1)."""
    case = [c for c in REPS if c["type"] == "JK1"][0]
    df = dataset("apiclus1").copy()
    psus = sorted(df["dnum"].unique())
    n = len(psus)
    cols = []
    for i, p in enumerate(psus):
        df[f"rep{i}"] = np.where(df["dnum"] == p, 0.0, df["pw"] * n / (n - 1))
        cols.append(f"rep{i}")
    r = ReplicateDesign.from_columns(df, weights="pw", repweights=cols, scale=(n - 1) / n)
    for res in case["results"]:
        if res.get("domain") is None and res["statistic"] in ("mean", "total"):
            out = getattr(r, res["statistic"])("api00").iloc[0]
            close(out["estimate"], res["estimate"], res["statistic"])
            close(out["se"], res["se"], res["statistic"] + " se")
