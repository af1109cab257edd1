"""Fieldwork files written by worker processes are the files written in one process: same names, same bytes,
same summary (planted mistakes, refusals, encodings, row counts)."""
from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pytest

from _survey_fixtures import drawn_workspace

from survey.errors import SurveyError
from survey.fieldwork import MISTAKE_KINDS, _Workers, simulate_fieldwork


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("fieldwork_workers")
    return drawn_workspace(base, 11, 6, 4)[0]


def _comparable(summary) -> dict:
    d = summary.to_json()
    for k in ("out_dir", "answer_key"):
        d.pop(k)
    for f in d["files"]:
        f["path"] = Path(f["path"]).name
    return d


def test_one_process_and_two_write_the_same_files(ws, tmp_path):
    kw = dict(seed=9, refusal_rate=0.1, teams_per_county=4, mistakes={k: 2 for k in MISTAKE_KINDS})
    one = simulate_fieldwork(ws, tmp_path / "one", workers=1, **kw)
    two = simulate_fieldwork(ws, tmp_path / "two", workers=2, **kw)
    assert {f.format for f in one.files} == {"sav", "xlsx", "csv", "odk"}
    assert _comparable(one) == _comparable(two)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(f.file for f in one.files)
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    # and the workbooks read back as tables with typed cells
    xlsx = next(f for f in one.files if f.format == "xlsx" and f.instrument != "village")
    main = pd.read_excel(xlsx.path, sheet_name=0, dtype=object, engine="openpyxl")
    assert isinstance(main["household_id"].dropna().iloc[0], str)
    assert isinstance(main["interview_start"].dropna().iloc[0], datetime.datetime)


def test_workers_must_be_a_positive_whole_number(ws, tmp_path):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(SurveyError) as e:
            simulate_fieldwork(ws, tmp_path / "out", workers=bad)
        assert e.value.code == "bad_argument"
    assert not (tmp_path / "out").exists()


def test_a_failing_job_is_raised_in_the_caller_and_the_workers_end(tmp_path):
    df = pd.DataFrame({"a": [1, 2]})
    jobs = [("csv", (tmp_path / f"ok{i}.csv", df)) for i in range(4)]
    jobs.append(("csv", (tmp_path / "missing" / "bad.csv", df)))
    pool = _Workers(2)
    pool.start(1)
    try:
        with pytest.raises(FileNotFoundError):
            pool.run(jobs)
    finally:
        pool.close(kill=True)
    assert all(p.returncode is not None for p in pool.procs)

    pool = _Workers(3)
    pool.start(2)
    try:
        results = pool.run(jobs[:4])
    finally:
        pool.close()
    assert results == ["gbk"] * 4
    assert all(p.returncode == 0 for p in pool.procs)


def test_a_worker_that_dies_leaves_its_jobs_to_the_caller(tmp_path, monkeypatch):
    import survey.fieldwork as fw

    monkeypatch.setattr(fw, "_WORKER_CODE", "import sys; sys.exit(3)")
    df = pd.DataFrame({"a": ["是", "否"]})
    jobs = [("csv", (tmp_path / f"f{i}.csv", df)) for i in range(5)]
    pool = _Workers(2)
    pool.start(1)
    try:
        assert pool.run(jobs) == ["gbk"] * 5
    finally:
        pool.close()
    assert all((tmp_path / f"f{i}.csv").read_bytes().decode("gbk").splitlines()[1] == "是" for i in range(5))
