"""`tpa estimate`: the --json contract, formats, errors; numbers pinned to the R fixtures."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from tpa.cli import main

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "r_survey"))
from rfix import HERE, cases, close, dataset  # noqa: E402


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_contract_and_r_numbers(capsys):
    code, out, err = run(capsys, "estimate", HERE / "apiclus2.csv", "--weight", "pw", "--psu", "dnum+snum",
                         "--fpc", "fpc1+fpc2", "--mean", "api00", "--prop", "sch_wide", "--ratio", "api00:api99",
                         "--by", "stype", "--json")
    assert code == 0, err
    doc = json.loads(out)                      # stdout is the JSON document and nothing else
    assert doc["design"] == {"n": 126, "strata": 1, "psus": 40, "df": 39}
    keys = {"statistic", "variable", "level", "domain", "estimate", "se", "ci_low", "ci_high", "df", "deff", "n"}
    for e in doc["estimates"]:
        assert keys <= set(e)
    means = [e for e in doc["estimates"] if e["statistic"] == "mean"]
    fx = cases(prefix="clus2_by_mean")[0]
    for res in fx["results"]:
        e = [m for m in means if m["domain"] == res["domain"]][0]
        for k in ("estimate", "se", "ci_low", "ci_high", "deff"):
            close(e[k], res[k], k)
        assert e["df"] == res["df"] and e["n"] == res["n"] and e["level"] is None
    ratios = [e for e in doc["estimates"] if e["statistic"] == "ratio"]
    assert {r["variable"] for r in ratios} == {"api00:api99"}
    props = [e for e in doc["estimates"] if e["statistic"] == "prop"]
    assert {p["level"] for p in props} == {"No", "Yes"}          # the category as it appears in the data
    fxp = cases(prefix="clus2_prop_by")[0]
    for res in fxp["results"]:
        e = [p for p in props if p["domain"] == res["domain"] and p["level"] == res["level"]][0]
        close(e["estimate"], res["estimate"], "p")
        if res["ci"].get("logit"):
            close(e["ci_low"], res["ci"]["logit"][0], "logit low")
            close(e["ci_high"], res["ci"]["logit"][1], "logit high")


def test_whole_population_domain_is_null_and_levels_keep_type(capsys, tmp_path):
    code, out, err = run(capsys, "estimate", HERE / "rare.csv", "--weight", "w", "--strata", "stratum",
                         "--psu", "psu_id", "--prop", "y", "--ci", "clopper-pearson", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [e["level"] for e in doc["estimates"]] == [0, 1]
    assert all(e["domain"] is None for e in doc["estimates"])
    fx = cases(prefix="rare_prop")
    fx = [c for c in fx if c["name"] == "rare_prop"][0]
    for res, e in zip(fx["results"], doc["estimates"]):
        close(e["ci_low"], res["ci"]["beta"][0], "beta low")
        close(e["ci_high"], res["ci"]["beta"][1], "beta high")


@pytest.mark.parametrize("ext", ["parquet", "dta"])
def test_other_formats(capsys, tmp_path, ext):
    df = dataset("apistrat")[["stype", "pw", "fpc", "api00"]]
    path = tmp_path / f"apistrat.{ext}"
    if ext == "parquet":
        df.to_parquet(path)
    else:
        df.to_stata(path, write_index=False)
    code, out, err = run(capsys, "estimate", path, "--weight", "pw", "--strata", "stype", "--fpc", "fpc",
                         "--mean", "api00", "--json")
    assert code == 0, err
    res = cases(prefix="strat_mean")[0]["results"][0]
    e = json.loads(out)["estimates"][0]
    close(e["estimate"], res["estimate"], "mean")
    close(e["se"], res["se"], "se")


def test_lonely_psu_option_and_default_failure(capsys):
    args = ["estimate", HERE / "lonely.csv", "--weight", "w", "--strata", "stratum", "--psu", "psu", "--mean", "y"]
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error:") and "stratum 4" in err and "--lonely-psu" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, *args, "--lonely-psu", "average", "--json")
    assert code == 0
    res = cases(prefix="lonely_average_mean")[0]["results"][0]
    close(json.loads(out)["estimates"][0]["se"], res["se"], "average se")


def test_errors_are_one_line_exit_2(capsys):
    code, out, err = run(capsys, "estimate", HERE / "apistrat.csv", "--weight", "pw", "--mean", "nope")
    assert code == 2 and "nope" in err and "Fix:" in err
    code, out, err = run(capsys, "estimate", HERE / "apistrat.csv", "--weight", "pw")
    assert code == 2 and "nothing to estimate" in err
    code, out, err = run(capsys, "estimate", HERE / "apistrat.csv", "--weight", "pw", "--ratio", "api00")
    assert code == 2 and "NUM:DEN" in err
    code, out, err = run(capsys, "estimate", HERE / "apiclus2.csv", "--weight", "pw", "--mean", "enroll")
    assert code == 2 and "enroll" in err and "--na-rm" in err
    code, out, err = run(capsys, "estimate", HERE / "missing.csv", "--weight", "pw", "--mean", "x")
    assert code == 2 and "missing.csv" in err


def test_no_weight_note_on_stderr(capsys):
    code, out, err = run(capsys, "estimate", HERE / "apisrs.csv", "--mean", "api00", "--json")
    assert code == 0 and "weighs 1" in err
    e = json.loads(out)["estimates"][0]
    assert e["estimate"] == pytest.approx(dataset("apisrs")["api00"].mean(), rel=1e-12)
    # srs with replacement: SE = sd / sqrt(n)
    s = dataset("apisrs")["api00"]
    assert e["se"] == pytest.approx(s.std(ddof=1) / len(s) ** 0.5, rel=1e-9)


def test_table_output(capsys):
    code, out, err = run(capsys, "estimate", HERE / "apistrat.csv", "--weight", "pw", "--strata", "stype",
                         "--total", "enroll", "--by", "sch_wide", "--df-normal")
    assert code == 0, err
    assert out.startswith("design: n=200") and "sch_wide=Yes" in out


def test_crossed_domains(capsys):
    code, out, err = run(capsys, "estimate", HERE / "apistrat.csv", "--weight", "pw", "--strata", "stype",
                         "--fpc", "fpc", "--mean", "api00", "--by", "stype+sch_wide", "--json")
    assert code == 0, err
    est = json.loads(out)["estimates"]
    assert len(est) == 6 and est[0]["domain"] == {"stype": "E", "sch_wide": "No"}
    from survey.design import Design

    df = dataset("apistrat")
    d = Design(df, weights="pw", strata="stype", fpc="fpc")
    one = d.subset((df["stype"] == "E") & (df["sch_wide"] == "No")).mean("api00").iloc[0]
    assert est[0]["se"] == pytest.approx(one["se"], rel=1e-12) and est[0]["df"] == one["df"]


def test_json_is_strict_and_notes_explain_edge_cases(capsys):
    """Proportions at 0 in a domain, a one-PSU domain: defined numbers or null with a note, never NaN."""
    code, out, err = run(capsys, "estimate", HERE / "rare.csv", "--weight", "w", "--strata", "stratum",
                         "--psu", "psu_id", "--prop", "y", "--mean", "x", "--by", "dom", "--ci", "wilson", "--json")
    assert code == 0, err

    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name} in the output")

    doc = json.loads(out, parse_constant=no_constants)
    for e in doc["estimates"]:
        assert "note" not in e or isinstance(e["note"], str) and e["note"]
        if e["statistic"] == "prop" and e["estimate"] in (0, 1):
            assert e["note"] and e["ci_low"] is not None and e["ci_high"] is not None
    lon = HERE / "lonely.csv"
    code, out, err = run(capsys, "estimate", lon, "--weight", "w", "--strata", "stratum", "--psu", "psu",
                         "--mean", "y", "--by", "psu", "--lonely-psu", "remove", "--json")
    assert code == 0, err
    doc = json.loads(out, parse_constant=no_constants)
    assert all(e["df"] == 0 and e["ci_low"] is None and "df = 0" in e["note"] for e in doc["estimates"])
