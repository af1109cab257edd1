"""Simulated fieldwork through the real pipeline: synthetic population → draw (shipped preset) → team files in
SAV / XLSX / GBK CSV / ODK ZIP → survey.importer.import_files. Every planted mistake must be reported by
validation at its household and field, every file must reconcile, reserves used must be in the store and the
accepted answers must equal the population truth."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _survey_fixtures import drawn_workspace

from sampling.draw import draw_sample, sample_households
from sampling.population import county_households, generate_population
from sampling.workspace import init_workspace
from survey import store as st
from survey.errors import SurveyError
from survey.fieldwork import MISTAKE_KINDS, simulate_fieldwork
from survey.importer import import_files


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("fieldwork")
    ws, pop = drawn_workspace(base, 7, 5, 3)
    summary = simulate_fieldwork(ws, base / "out", seed=5, refusal_rate=0.1, teams_per_county=4,
                                 mistakes={k: 2 for k in MISTAKE_KINDS})
    results = import_files(ws, summary.paths, write_report=False)
    return {"base": base, "pop": pop, "ws": ws, "summary": summary, "results": results,
            "by_file": {r.file: r for r in results}}


def test_every_format_and_file_reconciles(run):
    s, results = run["summary"], run["results"]
    assert {f.format for f in s.files} == {"sav", "xlsx", "csv", "odk"}
    assert {f.team_format for f in s.files} == {"sav", "xlsx", "csv", "odk"}
    for f in s.files:
        assert Path(f.path).is_file()
        if f.format == "csv":
            data = Path(f.path).read_bytes()
            assert f.encoding == "gbk"
            data.decode("gbk")
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        if f.format == "odk":
            with zipfile.ZipFile(f.path) as zf:
                names = zf.namelist()
            assert names[0] == f"{f.instrument}.csv"
            assert (f"{f.instrument}-members.csv" in names) == (f.instrument != "village")
    assert len(results) == len(s.files)
    for r, f in zip(results, s.files):
        assert r.status == "imported", (r.file, r.error)
        assert r.instrument == f.instrument
        assert r.rows_in == r.accepted + r.quarantined + r.duplicates_skipped
        assert r.rows_in == f.main_rows + f.roster_rows


def test_every_planted_mistake_is_reported_where_it_was_planted(run):
    s, ws = run["summary"], run["ws"]
    assert {m.kind for m in s.mistakes} == set(MISTAKE_KINDS)
    issues = st.read_issues(ws)
    errors = issues[issues["severity"] == "error"]
    fmt = {f.file: f.format for f in s.files}
    skipped = {}
    for m in s.mistakes:
        if m.rule is None:      # duplicate_household: skipped as an exact duplicate (ODK: with its roster)
            size = int(st.read_households(ws).set_index("household_id").at[m.household_id, "declared_size"])
            skipped[m.file] = skipped.get(m.file, 0) + 1 + (size if fmt[m.file] == "odk" else 0)
            continue
        hit = errors[(errors["file"] == m.file) & (errors["rule"] == m.rule) & (errors["household_id"] ==
                                                                                m.household_id)
                     & (errors["field"] == m.field)]
        assert len(hit) == 1, (m, errors[errors["household_id"] == m.household_id])
        if m.sheet == "members":
            assert hit["sheet"].iloc[0] == "members"
            assert hit["value"].iloc[0] == m.value
    assert {r.file: r.duplicates_skipped for r in run["results"] if r.duplicates_skipped} == skipped
    assert {m.field for m in s.mistakes if m.kind == "out_of_range"} == {"age", "migrant_months"}
    # nothing else is an error: the truth itself passes validation
    planted = {m.household_id for m in s.mistakes}
    assert set(errors["household_id"]) <= planted
    # the households with an error are quarantined, not stored
    bad = {m.household_id for m in s.mistakes if m.rule is not None}
    q = st.read_quarantine(ws)
    assert bad <= set(q["key"])
    hh = st.read_households(ws)
    assert not bad & set(hh["household_id"])
    dup = [m.household_id for m in s.mistakes if m.kind == "duplicate_household"]
    assert all((hh["household_id"] == d).sum() == 1 for d in dup)


def test_file_summaries_count_the_mistakes(run):
    s = run["summary"]
    per_file = {}
    for m in s.mistakes:
        per_file.setdefault(m.file, {}).setdefault(m.kind, 0)
        per_file[m.file][m.kind] += 1
    assert {f.file: f.mistakes for f in s.files if f.mistakes} == per_file
    assert s.mistake_counts() == {k: 2 for k in MISTAKE_KINDS}
    assert len({m.true_household_id for m in s.mistakes}) == len(s.mistakes)


def test_refusals_are_replaced_by_reserves_in_the_store(run):
    s, ws = run["summary"], run["ws"]
    sh = sample_households(ws)
    hh = st.read_households(ws)
    stored = set(hh["household_id"])
    assert len(s.refusals) >= 2
    used = s.reserves_used
    assert used
    role = dict(zip(sh["household_id"], sh["role"]))
    order = dict(zip(sh["household_id"], sh["reserve_order"]))
    stratum = dict(zip(sh["household_id"], sh["hh_stratum"]))
    bad = {m.true_household_id for m in s.mistakes if m.rule is not None}
    for r in s.refusals:
        assert r.household_id not in stored
        if r.replaced_by is None:
            continue
        assert role[r.replaced_by] == "reserve" and order[r.replaced_by] == r.reserve_order
        assert stratum[r.replaced_by] == stratum[r.household_id]
        assert r.replaced_by[:12] == r.household_id[:12]
        assert r.replaced_by in stored or r.replaced_by in bad
    # reserves are taken in order within a village and stratum
    for (v, h), g in pd.DataFrame([vars(r) for r in s.refusals if r.replaced_by]).groupby(
            ["village_code", "hh_stratum"]):
        assert sorted(g["reserve_order"]) == list(range(1, len(g) + 1))
    # every other sampled household came in (or was held back by a planted mistake)
    refused = {r.household_id for r in s.refusals}
    expected = set(sh.loc[sh["role"] == "sample", "household_id"]) - refused
    assert expected - stored <= bad
    # the import status counts the reserves that came in
    from survey.importer import import_status

    status = import_status(ws)
    assert status.loc[status["level"] == "county", "reserves_used"].sum() == len(set(used) & stored)


def test_accepted_answers_equal_the_population_truth(run):
    ws, pop = run["ws"], run["pop"]
    truth = pd.read_parquet(pop / "households.parquet").set_index("household_id")
    persons = pd.read_parquet(pop / "persons.parquet").set_index("person_id")
    hh = st.read_households(ws).set_index("household_id")
    assert len(hh) > 30
    t = truth.loc[hh.index]
    for c in ("wage_income", "business_income", "transfer_income", "water_litres"):
        np.testing.assert_allclose(hh[c].to_numpy(dtype=float), t[c].to_numpy(dtype=float))
    for c in ("register_status", "resident_size", "dibao", "sat_policy"):
        assert (hh[c].astype(int).to_numpy() == t[c].astype(int).to_numpy()).all(), c
    assert (hh["declared_size"].astype(int).to_numpy() == t["size"].to_numpy()).all()
    assert (hh["house_grade"].astype(str).to_numpy() == t["house_grade"].astype(str).to_numpy()).all()
    assert (hh["head_id_number"].astype(str).to_numpy() == t["head_id_number"].to_numpy()).all()
    net = t["wage_income"] + t["business_income"] - t["business_cost"] + t["property_income"] + t["transfer_income"]
    np.testing.assert_allclose(hh["net_income_declared"].to_numpy(dtype=float), net.to_numpy(), atol=0.01)
    reg = hh["instrument"] == "hh_registered"
    assert (hh.loc[reg, "register_status"].astype(int) <= 4).all()
    assert (hh.loc[~reg, "register_status"].astype(int) >= 5).all()
    ex = reg & (hh["register_status"].astype(int) == 1)
    assert (hh.loc[ex, "exit_year"].astype(int).to_numpy() == t.loc[ex, "exit_year"].astype(int).to_numpy()).all()
    start = pd.to_datetime(hh["interview_start"])
    assert (pd.to_datetime(hh["interview_end"]) > start).all()
    assert start.dt.year.eq(2020).all()
    ps = st.read_persons(ws)
    assert len(ps) == int(hh["declared_size"].astype(int).sum())
    pid = ps["household_id"].astype(str) + ps["member_no"].astype(int).astype(str).str.zfill(2)
    p = persons.loc[pid]
    for c in ("age", "sex", "relation", "education", "insurance", "migrant_months"):
        assert (ps[c].astype(int).to_numpy() == p[c].astype(int).to_numpy()).all(), c
    assert (ps["id_number"].astype(str).to_numpy() == p["id_number"].to_numpy()).all()


def test_village_questionnaires(run):
    ws, pop = run["ws"], run["pop"]
    from sampling.draw import sample_villages

    sv = sample_villages(ws)
    v = st.read_villages(ws).set_index("village_code")
    assert set(v.index) == set(sv["village_code"])
    frame = pd.read_parquet(pop / "villages.parquet").set_index("village_code").loc[v.index]
    for c in ("households", "persons", "persons_registered", "persons_exited", "poor_village", "remote"):
        assert (v[c].astype(int).to_numpy() == frame[c].astype(int).to_numpy()).all(), c
    assert (v["terrain"].astype(str).to_numpy() == frame["terrain"].astype(str).to_numpy()).all()


def test_deterministic_through_the_cli(run, capsys):
    import json

    from tpa.cli import main

    base, s = run["base"], run["summary"]
    out2 = base / "out_cli"
    # the same answers whether the population is found from the draw or given with --population
    code = main(["fieldwork", "simulate", "--workspace", str(run["ws"].path), "--out", str(out2), "--seed", "5",
                 "--refusal-rate", "0.1", "--teams-per-county", "4", "--mistakes-per-kind", "2",
                 "--population", str(run["pop"]), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["file"] for f in doc["files"]] == [f.file for f in s.files]
    assert doc["mistake_counts"] == s.mistake_counts()
    for f in s.files:
        assert Path(f.path).read_bytes() == (out2 / f.file).read_bytes(), f.file
    # a non-empty output folder is a user error (exit 2)
    assert main(["fieldwork", "simulate", "--workspace", str(run["ws"].path), "--out", str(out2)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_synthetic_draw_regenerates_the_truth_without_mistakes(tmp_path):
    pop = tmp_path / "pop"
    generate_population(pop, ["海南"], 11, counties_per_province=1, villages_per_county=4, year=2019,
                        villages_only=True)
    ws = init_workspace(tmp_path / "ws", year=2018)
    draw_sample(ws, "annual", 1, villages=pop / "villages.parquet", households="synthetic:11", write_lists=False)
    s = simulate_fieldwork(ws, tmp_path / "out", mistakes=False, refusal_rate=0, teams_per_county=1)
    assert s.mistakes == [] and s.refusals == []
    assert "regenerated" in s.truth
    files = {f.instrument: f for f in s.files if f.main_rows}     # the household file (not its members file)
    assert set(files) >= {"hh_registered", "village"}
    from survey.readers import ROW, open_source

    src = open_source(files["hh_registered"].path)      # a SAV team: households.sav + members.sav
    try:
        got = pd.concat(list(src.iter_main()), ignore_index=True).drop(columns=ROW)
    finally:
        src.close()
    got["household_id"] = got["household_id"].astype(str)
    got = got.set_index("household_id")
    villages = pd.read_parquet(pop / "villages.parquet")
    hh, _ = county_households(11, villages[villages["village_code"].isin({h[:12] for h in got.index})], year=2019)
    t = hh.set_index("household_id").loc[got.index]
    np.testing.assert_allclose(got["wage_income"].astype(float), t["wage_income"].astype(float))
    # fieldwork in the year after the assessed year (2018 here)
    assert pd.to_datetime(got["interview_start"]).dt.year.eq(2019).all()
    sampled = set(sample_households(ws).query("role == 'sample'")["household_id"])
    assert set(got.index) <= sampled


def test_user_errors(tmp_path, run):
    with pytest.raises(SurveyError, match="not empty"):
        simulate_fieldwork(run["ws"], run["base"] / "out")
    with pytest.raises(SurveyError, match="share"):
        simulate_fieldwork(run["ws"], tmp_path / "x", refusal_rate=1.5)
    with pytest.raises(SurveyError, match="unknown mistake"):
        simulate_fieldwork(run["ws"], tmp_path / "y", mistakes={"typo": 1})
    with pytest.raises(SurveyError, match="population"):
        simulate_fieldwork(run["ws"], tmp_path / "z", population=tmp_path / "missing")
