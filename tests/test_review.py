"""Review verdicts and appeals: history kept, confirmed vs suspected in the indicators, the CLI verbs."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_score import adults, household  # noqa: E402

from sampling.workspace import init_workspace  # noqa: E402
from survey.errors import ScoringError  # noqa: E402
from survey.review import (add_appeal, appeals, case_flags, current_reviews, decide_appeal, import_reviews,  # noqa: E402
                           list_cases, review_history, set_review)
from survey.rules import Rules  # noqa: E402
from survey.score import read_scores, score_households, score_runs, write_scores  # noqa: E402

WE, MISSED, OK = "5201020010010001", "5201020010010002", "5201020010010003"


@pytest.fixture()
def ws(tmp_path):
    w = init_workspace(tmp_path / "ws")
    rules = Rules.from_config(w.config)
    hhs = [household(1, wage_income=4000),                                         # 错退: 2000 ≤ 3747
           household(2, register_status=5, exit_year=np.nan, wage_income=3000,    # 漏评 (2 persons)
                     village_code="520102001002"),
           household(3, village_code="520102001003")]
    persons = adults(1) + adults(2) + adults(3)
    write_scores(w, score_households(pd.DataFrame(hhs), pd.DataFrame(persons), rules), rules)
    return w


def test_scores_are_stored_with_the_rules_that_made_them(ws):
    s = read_scores(ws)
    assert s["wrongly_exited"].tolist() == [True, False, False]
    assert s["missed_persons"].tolist() == [0, 2, 0]
    runs = score_runs(ws)
    assert len(runs) == 1
    rules = Rules.from_config(ws.config)
    assert runs["rules_hash"][0] == rules.hash == s["rules_hash"][0]
    assert json.loads(runs["rules_json"][0])["poverty_line"]["planning"]["2019"] == 3747


def test_history_is_kept_and_the_latest_verdict_is_current(ws):
    set_review(ws, WE, "疑似错退", "住房C级未改造", reviewer="张组长")
    set_review(ws, WE, "approved", reviewer="李督导")
    hist = review_history(ws, WE)
    assert hist["verdict"].tolist() == ["疑似错退", "审核通过"]
    assert hist["comment"].tolist()[0] == "住房C级未改造"
    cur = current_reviews(ws)
    assert cur.set_index("household_id").loc[WE, "verdict"] == "审核通过"


def test_bad_verdicts_and_unknown_households_are_named(ws):
    with pytest.raises(ScoringError, match="unknown review verdict '好'"):
        set_review(ws, WE, "好", "x")
    with pytest.raises(ScoringError, match="needs a comment"):
        set_review(ws, WE, "疑似漏评")
    with pytest.raises(ScoringError, match="not in this workspace"):
        set_review(ws, "5201020010019999", "审核通过")
    assert review_history(ws).empty


def test_import_checks_every_row_before_writing(ws, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"household_id,verdict,comment\n{WE},审核通过,\n{MISSED},疑似漏评,\n", encoding="utf-8")
    with pytest.raises(ScoringError) as err:
        import_reviews(ws, bad)
    assert err.value.row == 3 and err.value.column == "comment"
    assert review_history(ws).empty                     # nothing written
    good = tmp_path / "good.csv"
    good.write_text(f"household_id,verdict,comment,reviewer\n{WE},审核通过,,王\n{MISSED},疑似漏评,收入偏低待核实,王\n",
                    encoding="utf-8")
    rows = import_reviews(ws, good)
    assert rows["verdict"].tolist() == ["审核通过", "疑似漏评"]
    assert len(review_history(ws)) == 2


def test_appeal_is_recorded_not_overwritten_and_overturns_when_accepted(ws):
    a = add_appeal(ws, WE, "银行流水显示2019年工资收入12000元", submitted_by="县扶贫办")
    assert a["outcome"] == "pending"
    cases = list_cases(ws, "520102")
    row = cases[(cases.household_id == WE) & (cases.kind == "wrongly_exited")].iloc[0]
    assert row["status"] == "confirmed" and row["appeal"] == "pending"
    decide_appeal(ws, a["appeal_id"], "accepted", "核实属实")
    cases = list_cases(ws, "520102")
    row = cases[(cases.household_id == WE) & (cases.kind == "wrongly_exited")].iloc[0]
    assert row["status"] == "overturned"
    # the score itself and the appeal's history stay
    assert read_scores(ws).set_index("household_id").loc[WE, "wrongly_exited"]
    ap = appeals(ws)
    assert ap["outcome"].tolist() == ["accepted"] and ap["evidence"][0].startswith("银行流水")
    with ws.connect() as con:
        assert [r[0] for r in con.execute("SELECT outcome FROM appeal_decisions ORDER BY decision_id")] == \
            ["pending", "accepted"]
    with pytest.raises(ScoringError, match="needs its evidence"):
        add_appeal(ws, WE, "  ")


def test_case_flags_confirmed_suspected_overturned():
    rules = Rules.defaults()
    scores = pd.DataFrame({"household_id": list("abcdef"), "wrongly_exited": [True, True, True, False, True, False],
                           "missed_persons": [0, 0, 0, 0, 0, 3], "wrongly_included": False,
                           "review": [None, "审核通过", "疑似错退", "疑似错退", "其他问题", "疑似漏评"]})
    f = case_flags(scores, rules, overturned={"b"})
    assert f["confirmed_wrongly_exited"].tolist() == [True, False, False, False, False, False]
    assert f["suspected_wrongly_exited"].tolist() == [False, False, True, True, True, False]
    assert f["confirmed_missed"].tolist() == [False] * 6
    assert f["suspected_missed"].tolist() == [False] * 5 + [True]
    strict = Rules.defaults(review={"unreviewed": "suspected"})
    g = case_flags(scores, strict)
    assert g["confirmed_wrongly_exited"].tolist() == [False, True, False, False, False, False]


def test_cases_list_carries_reasons(ws):
    cases = list_cases(ws, "520102")
    assert set(cases["kind"]) == {"wrongly_exited", "missed"}
    r = json.loads(cases.loc[cases.kind == "wrongly_exited", "reasons"].iloc[0])
    assert r[0]["test"] == "income" and r[0]["threshold"] == 3747
    with pytest.raises(ScoringError, match="county 999999"):
        list_cases(ws, "999999")


def test_cli_review_appeal_and_cases(ws):
    from tpa.cli import cli

    run = CliRunner()
    w = ["--workspace", str(ws.path)]
    r = run.invoke(cli, ["review", "set", WE, "疑似错退", "--comment", "房屋C级", "--json"] + w)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["verdict"] == "疑似错退"
    r = run.invoke(cli, ["appeal", "add", WE, "--evidence", "危房改造验收单", "--json"] + w)
    assert r.exit_code == 0 and json.loads(r.stdout)["outcome"] == "pending"
    r = run.invoke(cli, ["cases", "--county", "520102", "--json"] + w)
    doc = json.loads(r.stdout)
    we = [c for c in doc["cases"] if c["kind"] == "wrongly_exited"][0]
    assert we["status"] == "suspected" and we["review"] == "疑似错退" and we["reasons"][0]["test"] == "income"
    r = run.invoke(cli, ["cases", "--county", "520102"] + w)
    assert "错退（疑似）" in r.stdout and "不高于扶贫规划口径2019年贫困线3747元" in r.stdout


def test_indicators_from_the_workspace_use_reviews(ws, tmp_path):
    """compute_indicators end to end: stored scores + a recorded draw + the village frame of the register."""
    from sampling import draw as D
    from survey.indicators import compute_indicators

    with ws.transaction() as con:
        for stmt in D._DDL:
            con.execute(stmt)
        con.execute("INSERT INTO draws VALUES ('D1', '2019-01-01T00:00:00', 1, '{}', ?, 'test', '{}')",
                    (json.dumps({"villages": {"kind": "file", "path": str(tmp_path / "villages.csv")}}),))
        for i, (hid, status, size) in enumerate([(WE, 1, 2), (MISSED, 5, 2), (OK, 1, 2)]):
            con.execute("INSERT INTO sample_households (draw_id, household_id, village_code, county_code, "
                        "province_code, village_stratum, hh_stratum, role, pi_county, pi_village, pi_household, "
                        "pi, weight, purposive, take_all, register_status, size) VALUES "
                        "('D1', ?, ?, '520102', '520000', ?, 'x', 'sample', 1, 0.5, 0.1, 0.05, 20, 0, 0, ?, ?)",
                        (hid, f"52010200100{i + 1}", "s", status, size))
    pd.DataFrame({"village_code": ["520102001001", "520102001002", "520102001003"], "county_code": "520102",
                  "persons_not_exited": [10, 0, 0], "persons_exited": [100, 0, 0],
                  "persons_nonregistered": [0, 890, 0], "rural_population": [110, 890, 0]}) \
        .to_csv(tmp_path / "villages.csv", index=False)
    set_review(ws, WE, "疑似错退", "待核实")
    keys = {i.key: i for i in compute_indicators(ws)}
    we = keys["wrongly_exited_rate"]
    assert we.numerator == 0 and we.suspected == 2 and we.denominator == 4
    mi = keys["missed_rate"]
    assert mi.numerator == 2 and mi.denominator == 890          # village register's non-registered persons
    inc = keys["incidence"]
    assert inc.official == pytest.approx((10 + 2 / 890 * 890 + 0 * 100) / 1000)
    set_review(ws, WE, "审核通过")
    we = {i.key: i for i in compute_indicators(ws)}["wrongly_exited_rate"]
    assert we.numerator == 2 and we.suspected == 0 and we.official == 0.5


def test_cli_indicators_json_is_the_indicator_list(ws, tmp_path):
    from tpa.cli import cli

    test_indicators_from_the_workspace_use_reviews(ws, tmp_path)
    r = CliRunner().invoke(cli, ["indicators", "--by", "county", "--json", "--workspace", str(ws.path)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    keys = {d["key"]: d for d in doc}
    assert set(keys) == {"incidence", "wrongly_exited_rate", "missed_rate", "recognition_rate",
                         "registered_rate_gate"}
    assert keys["wrongly_exited_rate"]["official"] == 0.5 and keys["wrongly_exited_rate"]["county_code"] == "520102"
    r = CliRunner().invoke(cli, ["indicators", "--workspace", str(ws.path)])
    assert "脱贫人口错退率" in r.stdout and "50.00%" in r.stdout


def test_cli_score_reads_the_store_and_writes_scores(tmp_path, monkeypatch):
    """`tpa score --json` over a stubbed store (the store's own tests cover reading imported files)."""
    from survey import store
    from tpa.cli import cli

    w = init_workspace(tmp_path / "ws2")
    hhs = pd.DataFrame([household(1, wage_income=4000), household(2, register_status=5, exit_year=np.nan,
                                                                   wage_income=3000)])
    hhs["instrument"] = ["hh_registered", "hh_nonregistered"]
    monkeypatch.setattr(store, "read_households", lambda ws: hhs)
    monkeypatch.setattr(store, "read_persons", lambda ws: pd.DataFrame(adults(1) + adults(2)))
    r = CliRunner().invoke(cli, ["score", "--json", "--workspace", str(w.path)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["households"] == 2 and doc["wrongly_exited_households"] == 1 and doc["missed_persons"] == 2
    assert doc["rules_hash"] == Rules.from_config(w.config).hash
    assert read_scores(w)["wrongly_exited"].tolist() == [True, False]
    monkeypatch.setattr(store, "read_households", lambda ws: hhs.iloc[0:0])
    r = CliRunner().invoke(cli, ["score", "--workspace", str(w.path)])
    assert r.exit_code != 0
