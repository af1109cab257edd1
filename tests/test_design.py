"""Design construction: counts and df against R, fpc forms, nesting, multi-stage rules, clear errors."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey.design import Design
from survey.errors import EstimationError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "r_survey"))
from rfix import close, dataset, fixtures  # noqa: E402

SPECS = {
    "apistrat": dict(weights="pw", strata="stype", fpc="fpc"),
    "apiclus1": dict(weights="pw", ids="dnum", fpc="fpc"),
    "apiclus2": dict(weights="pw", ids=["dnum", "snum"], fpc=["fpc1", "fpc2"]),
    "apisrs": dict(weights="pw", fpc="fpc"),
    "rare": dict(weights="w", strata="stratum", ids="psu_id"),
}


@pytest.mark.r
@pytest.mark.parametrize("info", fixtures()["designs"], ids=[d["name"] for d in fixtures()["designs"]])
def test_design_counts_against_r(info):
    d = Design(dataset(info["name"]), **SPECS[info["name"]])
    assert (d.n, d.df, d.n_psu, d.n_strata) == (info["n"], info["df"], info["psus"], info["strata"])
    assert d.summary() == {"n": info["n"], "strata": info["strata"], "psus": info["psus"], "df": info["df"]}


def test_fpc_as_fraction_equals_population_size():
    df = dataset("apistrat").copy()
    n_h = df.groupby("stype")["pw"].transform("size")
    df["frac"] = n_h / df["fpc"]
    a = Design(df, weights="pw", strata="stype", fpc="fpc").mean("api00").iloc[0]
    b = Design(df, weights="pw", strata="stype", fpc="frac").mean("api00").iloc[0]
    assert a["se"] == pytest.approx(b["se"], rel=1e-12)


def test_first_stage_fpc_only_uses_first_stage():
    df = dataset("apiclus2")
    a = Design(df, weights="pw", ids="dnum+snum", fpc="fpc1").total("api00").iloc[0]
    b = Design(df, weights="pw", ids="dnum", fpc="fpc1").total("api00").iloc[0]
    assert a["se"] == pytest.approx(b["se"], rel=1e-12)


def test_two_stage_variance_by_hand():
    """Full two-stage variance (Cochran 11.24 form R uses): stage-1 term with fpc plus, for each PSU, the
    sampling fraction n/N times its within-PSU between-SSU term with the stage-2 fpc."""
    df = dataset("apiclus2")
    d = Design(df, weights="pw", ids="dnum+snum", fpc="fpc1+fpc2")
    y = df["api00"].to_numpy() * df["pw"].to_numpy()
    t = pd.Series(y).groupby(df["dnum"]).sum()
    n, N = len(t), df["fpc1"].iloc[0]
    v1 = (1 - n / N) * n / (n - 1) * ((t - t.mean()) ** 2).sum()
    v2 = 0.0
    for _, g in df.assign(z=y).groupby("dnum"):
        m, M = len(g), g["fpc2"].iloc[0]
        if m > 1:
            v2 += (n / N) * (1 - m / M) * m / (m - 1) * ((g["z"] - g["z"].mean()) ** 2).sum()
    close(d.total("api00")["se"].iloc[0], np.sqrt(v1 + v2), "two-stage SE")


def test_nesting():
    df = pd.DataFrame({"h": [1, 1, 1, 2, 2, 2], "psu": [1, 1, 2, 1, 2, 2], "w": [2.0] * 6,
                       "y": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0]})
    with pytest.raises(EstimationError, match="more than one stratum") as exc:
        Design(df, weights="w", strata="h", ids="psu")
    assert "nest" in str(exc.value)
    a = Design(df, weights="w", strata="h", ids="psu", nest=True)
    df2 = df.assign(psu2=df["h"] * 10 + df["psu"])
    b = Design(df2, weights="w", strata="h", ids="psu2")
    assert a.mean("y")["se"].iloc[0] == pytest.approx(b.mean("y")["se"].iloc[0], rel=1e-12)
    assert a.n_psu == 4 and a.df == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(weights="pw", strata="stype", fpc="bad_fpc"), "more than 100%"),
    (dict(weights="pw", strata="stype", fpc="mixed"), "mixes"),
    (dict(weights="pw", strata="stype", fpc="varying"), "varies within a stratum"),
    (dict(weights="pw_missing", strata="stype"), "missing"),
    (dict(weights="pw", ids="one"), "only one primary sampling unit"),
    (dict(weights="pw", strata="nothere"), "nothere"),
])
def test_design_errors_are_clear(kwargs, match):
    df = dataset("apistrat").copy()
    df["bad_fpc"] = 10
    df["mixed"] = np.where(df["stype"] == "E", 0.5, 100)
    df["varying"] = df["fpc"] + np.arange(len(df)) % 2
    df["pw_missing"] = df["pw"].where(df.index != 3)
    df["one"] = 1
    with pytest.raises(EstimationError, match=match) as exc:
        Design(df, **kwargs)
    assert exc.value.fix


def test_subset_by_query_and_mask_agree():
    df = dataset("apistrat")
    d = Design(df, weights="pw", strata="stype", fpc="fpc")
    a = d.subset("sch_wide == 'Yes'").mean("api00").iloc[0]
    b = d.subset(df["sch_wide"] == "Yes").mean("api00").iloc[0]
    assert a["se"] == b["se"] and a["n"] == int((df["sch_wide"] == "Yes").sum())
    sub = d.subset(df["stype"] == "E")
    assert (sub.n, sub.n_strata) == (100, 1)


def test_zero_outside_domain_variance_api():
    """variance(z) = Var(Σ w z) with z zero outside the domain equals the domain total's SE."""
    df = dataset("apiclus1")
    d = Design(df, weights="pw", ids="dnum", fpc="fpc")
    m = (df["stype"] == "H").to_numpy()
    z = np.where(m, df["api00"].to_numpy(), 0.0)
    se = d.total("api00", by="stype")
    se_h = se[[dd == {"stype": "H"} for dd in se["domain"]]]["se"].iloc[0]
    assert np.sqrt(d.variance(z, mask=m)) == pytest.approx(se_h, rel=1e-12)
