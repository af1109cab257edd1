"""The importer: every row accepted, quarantined with its reasons or skipped as an exact duplicate, and counted;
files that cannot be imported change nothing."""
import json
import zipfile

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from _survey_fixtures import households, villages

from sampling.workspace import init_workspace
from survey import store
from survey.errors import ImportFileError
from survey.importer import import_file, import_files, import_status
from survey.readers import ROW, open_source


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws")


def frames(n=4, status=1, start=0):
    main, roster = households(n + start, status)
    main, roster = main.iloc[start:].drop(columns=ROW), roster.drop(columns=ROW)
    roster = roster[roster["household_id"].isin(main["household_id"])]
    return main.reset_index(drop=True), roster.reset_index(drop=True)


def xlsx(path, main, roster=None):
    with pd.ExcelWriter(path) as xw:
        main.to_excel(xw, sheet_name="hh", index=False)
        if roster is not None:
            roster.to_excel(xw, sheet_name="members", index=False)
    return path


def add_draw(ws, sample, reserve=(), villages_=(), created="2019-04-01T00:00:00"):
    with ws.transaction() as con:
        con.execute("CREATE TABLE IF NOT EXISTS draws (draw_id TEXT PRIMARY KEY, created TEXT NOT NULL, seed INTEGER "
                    "NOT NULL, design_json TEXT NOT NULL, frame_hashes_json TEXT NOT NULL, software_version TEXT NOT "
                    "NULL, summary_json TEXT NOT NULL)")
        con.execute("CREATE TABLE IF NOT EXISTS sample_households (draw_id TEXT NOT NULL, household_id TEXT NOT NULL, "
                    "village_code TEXT, county_code TEXT, role TEXT NOT NULL, reserve_order INTEGER)")
        con.execute("CREATE TABLE IF NOT EXISTS sample_villages (draw_id TEXT NOT NULL, county_code TEXT, "
                    "village_code TEXT NOT NULL)")
        con.execute("INSERT INTO draws VALUES ('d1', ?, 1, '{}', '{}', 'test', '{}')", (created,))
        rows = [("d1", h, h[:12], h[:6], "sample", None) for h in sample]
        rows += [("d1", h, h[:12], h[:6], "reserve", i + 1) for i, h in enumerate(reserve)]
        con.executemany("INSERT INTO sample_households VALUES (?,?,?,?,?,?)", rows)
        con.executemany("INSERT INTO sample_villages VALUES ('d1', ?, ?)", [(v[:6], v) for v in villages_])


def test_clean_csv_accepted_and_reconciled(ws, tmp_path):
    main, _ = frames(4)
    p = tmp_path / "hh.csv"
    main.to_csv(p, index=False, encoding="gbk")
    r = import_file(ws, p)
    assert (r.status, r.instrument, r.rows_in, r.accepted, r.quarantined, r.duplicates_skipped) == \
        ("imported", "hh_registered", 4, 4, 0, 0)
    assert r.reconciles and r.sha256 and r.size == p.stat().st_size
    assert any("linkage" in m for m in r.messages)           # no draw: said so
    hh = store.read_households(ws)
    assert hh["household_id"].tolist() == main["household_id"].tolist()
    assert str(hh["register_status"].dtype) == "Int64"
    assert hh["head_name"].iloc[0] == "王五"
    assert set(hh["instrument"]) == {"hh_registered"} and set(hh["version"]) == {1}
    log = store.read_imports(ws)
    assert log[["status", "rows_in", "accepted", "user"]].iloc[0].tolist()[:3] == ["imported", 4, 4]
    assert log["sha256"].iloc[0] == r.sha256
    assert (ws.path / "imports" / "hh.validation.xlsx").exists() and r.report


def test_same_file_again_changes_nothing(ws, tmp_path):
    main, roster = frames(3)
    p = xlsx(tmp_path / "hh.xlsx", main, roster)
    import_file(ws, p)
    before = store.data_fingerprint(ws)
    r = import_file(ws, p)
    assert r.status == "unchanged" and r.rows_in == 12 and r.duplicates_skipped == 12 and r.reconciles
    assert store.data_fingerprint(ws) == before
    assert store.read_imports(ws)["status"].tolist() == ["imported", "unchanged"]


@pytest.mark.parametrize("fmt", ["csv", "sav"])
def test_same_file_again_is_unchanged_when_its_hash_comes_late(ws, tmp_path, monkeypatch, fmt):
    """The hash of a large file is computed while the import goes on: a file imported before is still found out
    (the work done meanwhile is rolled back), and a new file's hash is in the audit log."""
    import time as _time

    from survey import importer
    real = importer._sha256

    def slow(path):
        _time.sleep(1.0)
        return real(path)

    monkeypatch.setattr(importer, "_sha256", slow)
    monkeypatch.setattr(importer, "_HASH_ALONGSIDE_BYTES", 0)      # as for a large file: hashed alongside
    main, _ = frames(9)
    p = tmp_path / f"hh.{fmt}"
    if fmt == "csv":
        main.to_csv(p, index=False)
    else:
        pyreadstat.write_sav(main, str(p))
    first = import_file(ws, p, chunk_rows=2, workers=2, write_report=False)
    before = store.data_fingerprint(ws)
    again = import_file(ws, p, chunk_rows=2, workers=2, write_report=False)
    assert first.status == "imported" and first.sha256 == real(p)
    assert again.status == "unchanged" and again.rows_in == again.duplicates_skipped == 9 and again.reconciles
    assert store.data_fingerprint(ws) == before
    # asked for as another instrument, the same file is still the same file (not a wrong-instrument rejection)
    other = import_file(ws, p, instrument="village", chunk_rows=2, workers=2, write_report=False)
    assert other.status == "unchanged" and store.data_fingerprint(ws) == before
    log = store.read_imports(ws)
    assert log["status"].tolist() == ["imported", "unchanged", "unchanged"]
    assert log["sha256"].tolist() == [first.sha256] * 3


def test_same_content_in_another_file_is_skipped_as_duplicates(ws, tmp_path):
    main, roster = frames(3)
    import_file(ws, xlsx(tmp_path / "a.xlsx", main, roster))
    before = store.data_fingerprint(ws)
    r = import_file(ws, xlsx(tmp_path / "b.xlsx", main.iloc[::-1], roster))    # same households, other order
    assert (r.status, r.accepted, r.duplicates_skipped, r.quarantined) == ("imported", 0, 12, 0)
    after = store.data_fingerprint(ws)
    assert (after["store_segments"], after["superseded"]) == (before["store_segments"], before["superseded"])


def test_corrected_file_supersedes_and_keeps_history(ws, tmp_path):
    main, roster = frames(3)
    import_file(ws, xlsx(tmp_path / "a.xlsx", main, roster))
    fixed = main.copy()
    fixed.loc[1, "wage_income"] = "21000"
    fixed.loc[1, "net_income_declared"] = "28000"
    r = import_file(ws, xlsx(tmp_path / "a_fixed.xlsx", fixed, roster))
    assert (r.accepted, r.duplicates_skipped, r.superseded) == (4, 8, 1)   # household 2 and its 3 members
    hh = store.read_households(ws)
    assert len(hh) == 3
    row = hh.set_index("household_id").loc[main["household_id"][1]]
    assert row["wage_income"] == 21000 and row["version"] == 2 and row["import_id"] == r.import_id
    hist = store.read_households(ws, history=True)
    assert len(hist) == 4
    old = hist[hist["superseded_by"].notna()]
    assert old["household_id"].tolist() == [main["household_id"][1]] and old["wage_income"].iloc[0] == 20000
    persons = store.read_persons(ws)
    assert len(persons) == 9
    assert set(persons.loc[persons["household_id"] == main["household_id"][1], "import_id"]) == {r.import_id}
    assert len(store.read_persons(ws, history=True)) == 12


def test_unknown_household_quarantined_with_reason(ws, tmp_path):
    main, roster = frames(4)
    add_draw(ws, sample=main["household_id"][:2].tolist(), reserve=[main["household_id"][2]])
    r = import_file(ws, xlsx(tmp_path / "hh.xlsx", main, roster))
    assert (r.rows_in, r.accepted, r.quarantined) == (16, 12, 4)        # household 4 and its 3 members
    assert not any("linkage" in m for m in r.messages)
    q = store.read_quarantine(ws)
    assert len(q) == 4
    head = q[q["sheet"] == "hh"].iloc[0]
    assert head["key"] == main["household_id"][3] and head["row"] == 5
    reasons = json.loads(head["reasons"])
    assert reasons[0]["rule"] == "not_in_sample" and reasons[0]["message_zh"]
    assert json.loads(head["payload"])["household_id"] == main["household_id"][3]
    members = q[q["sheet"] == "members"]
    assert len(members) == 3 and set(members["key"]) == {main["household_id"][3]}
    issues = store.read_issues(ws, r.import_id)
    assert "not_in_sample" in set(issues["rule"])
    st = import_status(ws)
    village = st[st["level"] == "village"].iloc[0]
    assert (village["sampled"], village["reserves_drawn"], village["interviewed"], village["reserves_used"]) == \
        (2, 1, 2, 1)
    assert village["completion_pct"] == 100.0
    assert set(st["level"]) == {"village", "county"}


def test_rows_with_errors_quarantined_others_accepted(ws, tmp_path):
    main, _ = frames(3)
    main.loc[0, "register_status"] = "9"          # not a code
    main.loc[2, "household_id"] = None             # no key
    p = tmp_path / "hh.csv"
    main.to_csv(p, index=False)
    r = import_file(ws, p)
    assert (r.rows_in, r.accepted, r.quarantined) == (3, 1, 2) and r.errors >= 2
    q = store.read_quarantine(ws)
    assert sorted(q["row"].tolist()) == [2, 4]
    rules = {rr["rule"] for rs in q["reasons"] for rr in json.loads(rs)}
    assert "choice" in rules


def test_duplicates_inside_a_file(ws, tmp_path):
    main, _ = frames(3)
    twice = pd.concat([main, main.iloc[[0]]], ignore_index=True)        # exact repeat: skipped
    conflict = main.iloc[[1]].copy()
    conflict["wage_income"] = "1"                                        # same household, other answers
    data = pd.concat([twice, conflict], ignore_index=True)
    p = tmp_path / "hh.csv"
    data.to_csv(p, index=False)
    r = import_file(ws, p)
    assert (r.rows_in, r.accepted, r.quarantined, r.duplicates_skipped) == (5, 2, 2, 1)
    assert sorted(store.read_quarantine(ws)["row"].tolist()) == [3, 6]


def test_duplicates_across_chunks(ws, tmp_path):
    main, _ = frames(4)
    conflict = main.iloc[[0]].copy()
    conflict["wage_income"] = "1"
    data = pd.concat([main, main.iloc[[1]], conflict], ignore_index=True)
    p = tmp_path / "hh.csv"
    data.to_csv(p, index=False)
    r = import_file(ws, p, chunk_rows=2)
    assert (r.rows_in, r.accepted, r.duplicates_skipped, r.quarantined) == (6, 4, 1, 1)
    q = store.read_quarantine(ws)
    assert q["row"].tolist() == [7]
    assert json.loads(q["reasons"].iloc[0])[0]["rule"] == "duplicate"


def test_odk_zip_import(ws, tmp_path):
    from test_readers_questionnaire import odk_zip
    main, roster = frames(3)
    roster = roster[~((roster["household_id"] == main["household_id"][2]) & (roster["member_no"] == "3"))]
    r = import_file(ws, odk_zip(tmp_path / "odk.zip", main, roster))
    assert r.format == "odk" and r.rows_in == 3 + 8 and r.reconciles
    assert r.tables["members"]["rows_in"] == 8
    persons = store.read_persons(ws)
    assert len(persons) + r.tables["members"]["quarantined"] + r.tables["members"]["duplicates_skipped"] == 8
    assert set(persons["household_id"]) <= set(main["household_id"])


def test_orphan_roster_rows_quarantined(ws, tmp_path):
    main, roster = frames(2)
    stray = roster.iloc[[0]].copy()
    stray["household_id"] = "5201020010019999"
    stray["person_id"] = "520102001001999901"
    r = import_file(ws, xlsx(tmp_path / "hh.xlsx", main, pd.concat([roster, stray], ignore_index=True)))
    assert r.rows_in == 2 + 7 and r.reconciles and r.tables["members"]["quarantined"] == 1
    q = store.read_quarantine(ws)
    assert q["key"].tolist() == ["5201020010019999"]
    assert json.loads(q["reasons"].iloc[0])[0]["rule"] == "orphan_member"


def test_survey_solutions_import(ws, tmp_path):
    from test_readers_questionnaire import suso_zip
    main, roster = frames(2)
    r = import_file(ws, suso_zip(tmp_path / "suso.zip", main, roster))
    assert r.format == "survey_solutions" and r.rows_in == 8 and r.reconciles
    assert len(store.read_persons(ws)) + r.tables["members"]["quarantined"] == 6


def test_sav_import_keeps_user_missing(ws, tmp_path):
    main, _ = frames(3)
    df = main.copy()
    for c in ("register_status", "declared_size", "wage_income"):
        df[c] = pd.to_numeric(df[c])
    df.loc[2, "wage_income"] = -8.0
    p = tmp_path / "hh.sav"
    pyreadstat.write_sav(df, str(p), missing_ranges={"wage_income": [-8, -9]},
                         variable_value_labels={"register_status": {1: "未脱贫"}})
    r = import_file(ws, p)
    assert r.format == "sav" and r.rows_in == 3 and r.reconciles
    assert any("value labels of register_status" in m for m in r.messages)
    hh = pd.concat([store.read_households(ws), store.read_quarantine(ws)], ignore_index=True)
    assert len(hh) == 3
    stored = store.read_households(ws)
    if main["household_id"][2] in set(stored["household_id"]):
        row = stored.set_index("household_id").loc[main["household_id"][2]]
        assert pd.isna(row["wage_income"]) and json.loads(row["_user_missing"]) == {"wage_income": -8}


def test_village_questionnaire(ws, tmp_path):
    v = villages(3)
    add_draw(ws, sample=[], villages_=v["village_code"][:2].tolist())
    p = tmp_path / "v.csv"
    v.to_csv(p, index=False)
    r = import_file(ws, p)
    assert r.instrument == "village" and (r.accepted, r.quarantined) == (2, 1)
    assert store.read_villages(ws)["village_code"].tolist() == v["village_code"][:2].tolist()


def test_nonregistered_instrument_detected(ws, tmp_path):
    main, _ = frames(2, status=5)
    main = main.drop(columns=["exit_year", "exit_year_income_pc", "sat_exit", "causes"])
    p = tmp_path / "n.csv"
    main.to_csv(p, index=False)
    assert import_file(ws, p).instrument == "hh_nonregistered"


@pytest.mark.parametrize("case", ["empty", "header_only", "wrong_instrument", "named_wrong_instrument",
                                  "title_rows", "long_cell", "truncated_sav", "sav_longer_than_header",
                                  "wrong_encoding", "missing"])
def test_bad_files_change_nothing(ws, tmp_path, case):
    main, roster = frames(2)
    import_file(ws, xlsx(tmp_path / "good.xlsx", main, roster))
    before = store.data_fingerprint(ws)
    n_log = len(store.read_imports(ws))
    p = tmp_path / "bad.csv"
    kw = {}
    if case == "empty":
        p.write_bytes(b"")
    elif case == "header_only":
        p.write_text(",".join(main.columns) + "\n")
    elif case == "wrong_instrument":
        pd.DataFrame({"foo": [1], "bar": [2]}).to_csv(p, index=False)
    elif case == "named_wrong_instrument":
        main.to_csv(p, index=False)
        kw["instrument"] = "village"
    elif case == "title_rows":
        p = tmp_path / "bad.xlsx"
        with pd.ExcelWriter(p) as xw:
            pd.DataFrame([["某县脱贫户问卷"], [None]]).to_excel(xw, index=False, header=False)
            main.to_excel(xw, index=False, startrow=2)
    elif case == "long_cell":
        m = frames(2, start=2)[0]
        m.loc[1, "address"] = "x" * 10_000
        m.to_csv(p, index=False)
    elif case == "truncated_sav":
        p = tmp_path / "bad.sav"
        df = main[["household_id", "village_code", "county_code", "head_name"]].copy()
        pyreadstat.write_sav(df, str(p))
        p.write_bytes(p.read_bytes()[:-30])
        kw["instrument"] = "hh_registered"
    elif case == "sav_longer_than_header":        # rows the header does not count are not silently dropped
        p = tmp_path / "bad.sav"
        df = main[["household_id", "village_code", "county_code", "head_name"]].copy()
        pyreadstat.write_sav(df, str(p))
        data = p.read_bytes()
        case = open_source(p)._fast.units * 8
        p.write_bytes(data + data[-case:])            # the last case once more
        kw["instrument"] = "hh_registered"
    elif case == "wrong_encoding":
        m = frames(2, start=2)[0]
        m.to_csv(p, index=False, encoding="gbk")
        kw["encoding"] = "utf-8"
    elif case == "missing":
        p = tmp_path / "nope.csv"
    with pytest.raises(ImportFileError) as e:
        import_file(ws, p, **kw)
    assert e.value.fix and e.value.file
    assert store.data_fingerprint(ws) == before
    log = store.read_imports(ws)
    assert len(log) == n_log + 1 and log["status"].iloc[-1] == "rejected"
    if case == "title_rows":
        assert e.value.code == "extra_header_rows" and e.value.row == 3
    if case == "named_wrong_instrument":
        assert e.value.code == "wrong_instrument" and "hh_registered" in e.value.message


def test_import_files_goes_on_after_a_rejected_file(ws, tmp_path):
    main, _ = frames(2)
    good = tmp_path / "good.csv"
    main.to_csv(good, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    res = import_files(ws, [bad, good])
    assert [r.status for r in res] == ["rejected", "imported"]
    assert res[0].error["code"] == "empty_file" and res[1].accepted == 2


def test_import_status_without_draw(ws, tmp_path):
    assert import_status(ws).empty
    main, _ = frames(2)
    p = tmp_path / "hh.csv"
    main.to_csv(p, index=False)
    import_file(ws, p)
    st = import_status(ws)
    assert st.loc[st["level"] == "village", "interviewed"].tolist() == [2]


def test_reads_on_a_fresh_workspace(ws):
    assert store.read_households(ws).empty and store.read_persons(ws).empty and store.read_villages(ws).empty
    assert store.read_imports(ws).empty and store.read_quarantine(ws).empty and store.read_issues(ws).empty


def test_user_missing_zip_member_with_bad_zip_name(ws, tmp_path):
    p = tmp_path / "x.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("form.csv", "foo,KEY\n1,uuid:1\n")
    with pytest.raises(ImportFileError) as e:
        import_file(ws, p)
    assert e.value.code == "wrong_instrument"
    assert np.all(store.read_households(ws).empty)


def test_main_table_only_file_keeps_the_stored_roster(ws, tmp_path):
    main, roster = frames(2)
    import_file(ws, xlsx(tmp_path / "full.xlsx", main, roster))
    p = tmp_path / "main_only.csv"
    main.to_csv(p, index=False)
    r = import_file(ws, p)
    assert (r.accepted, r.duplicates_skipped) == (0, 2)           # same households, no roster: nothing new
    fixed = main.copy()
    fixed.loc[0, "phone"] = "13900000000"
    q = tmp_path / "main_fixed.csv"
    fixed.to_csv(q, index=False)
    r = import_file(ws, q)
    assert (r.accepted, r.duplicates_skipped, r.superseded) == (1, 1, 1)
    assert len(store.read_persons(ws)) == 6                       # the roster stays current
    hh = store.read_households(ws).set_index("household_id")
    assert hh.loc[main["household_id"][0], "phone"] == "13900000000"


# ---- a household file and its members file delivered apart (SPSS / Stata / CSV teams)
def _sav_pair(tmp_path, main, roster, stem="team1"):
    df = main.copy()
    for c in ("register_status", "declared_size", "wage_income"):
        df[c] = pd.to_numeric(df[c])
    hp, mp = tmp_path / f"{stem}_hh.sav", tmp_path / f"{stem}_members.sav"
    pyreadstat.write_sav(df, str(hp))
    pyreadstat.write_sav(roster.astype(str), str(mp))
    return hp, mp


def _check_pair(ws, res, main, roster):
    assert "members" in res[1].file
    assert all(r.status == "imported" and r.reconciles for r in res)
    hh, mem = res
    assert hh.import_id == mem.import_id
    assert (hh.rows_in, hh.accepted) == (len(main), len(main))
    assert (mem.rows_in, mem.accepted, mem.quarantined) == (len(roster), len(roster), 0)
    persons = store.read_persons(ws)
    assert len(persons) == len(roster)
    assert set(persons["household_id"]) == set(main["household_id"])
    imports = store.read_imports(ws)
    assert (imports["status"] == "imported").sum() == 1     # one unit, one audit entry


def test_sav_household_and_members_files_imported_as_one_unit(ws, tmp_path):
    main, roster = frames(3)
    hp, mp = _sav_pair(tmp_path, main, roster)
    res = import_files(ws, [mp, hp])          # order does not matter
    assert [r.file for r in res] == [hp.name, mp.name]
    _check_pair(ws, res, main, roster)
    again = import_files(ws, [hp, mp])
    assert [r.status for r in again] == ["unchanged", "unchanged"]


def test_stata_household_and_members_files_imported_as_one_unit(ws, tmp_path):
    main, roster = frames(3)
    df = main.copy()
    for c in ("register_status", "declared_size", "wage_income"):
        df[c] = pd.to_numeric(df[c])
    hp, mp = tmp_path / "team2_hh.dta", tmp_path / "team2_members.dta"
    pyreadstat.write_dta(df, str(hp), variable_value_labels={"register_status": {1: "已脱贫", 2: "未脱贫"}})
    pyreadstat.write_dta(roster.astype(str), str(mp))
    res = import_files(ws, [hp, mp])
    assert [r.format for r in res] == ["dta", "dta"]
    _check_pair(ws, res, main, roster)


def test_gbk_csv_household_and_members_files(ws, tmp_path):
    main, roster = frames(3)
    hp, mp = tmp_path / "hh.csv", tmp_path / "members.csv"
    main.to_csv(hp, index=False, encoding="gbk")
    roster.to_csv(mp, index=False, encoding="gbk")
    res = import_files(ws, [hp, mp])
    assert [r.file for r in res] == ["hh.csv", "members.csv"] and res[1].encoding in ("gbk", "gb18030")
    _check_pair(ws, res, main, roster)


def test_roster_problem_reported_at_the_members_file_row(ws, tmp_path):
    main, roster = frames(3)
    roster = roster.copy()
    idn = str(roster.loc[4, "id_number"])
    roster.loc[4, "id_number"] = idn[:-1] + ("0" if idn[-1] != "0" else "1")
    hp, mp = _sav_pair(tmp_path, main, roster)
    hh, mem = import_files(ws, [hp, mp])
    assert hh.reconciles and mem.reconciles and mem.errors >= 1
    issues = store.read_issues(ws)
    bad = issues[(issues["field"] == "id_number") & (issues["severity"] == "error")]
    assert len(bad) == 1
    assert bad["file"].iloc[0] == mp.name and bad["sheet"].iloc[0] == "members"
    q = store.read_quarantine(ws)
    qm = q[q["sheet"] == mp.name]
    assert set(qm["file"]) == {mp.name} and 5 in set(qm["row"].astype(int))
    # the row is the members file's own row of that person: SAV case 5 (roster index 4)
    assert int(bad["row"].iloc[0]) == 5 and bad["household_id"].iloc[0] == roster.loc[4, "household_id"]
    assert hh.report and mem.report == hh.report


def test_lone_members_file_refused(ws, tmp_path, capsys):
    from tpa.cli import main as tpa_main
    main, roster = frames(2)
    hp, mp = _sav_pair(tmp_path, main, roster)
    import_file(ws, hp)                       # a household file alone is fine (no roster)
    before = store.data_fingerprint(ws)
    assert tpa_main(["import", str(mp), "--workspace", str(ws.path)]) == 2
    err = capsys.readouterr().err
    assert "team1_members.sav" in err and "import it together with its household file" in err
    assert "Traceback" not in err
    assert store.data_fingerprint(ws) == before and len(store.read_persons(ws)) == 0
    with pytest.raises(ImportFileError) as e:
        import_file(ws, mp)
    assert e.value.code == "roster_without_household"


def _store_content(ws, persons=True):
    """Everything the store holds for the user, without the import ids' bookkeeping order."""
    hh = store.read_households(ws).drop(columns=["import_id"]).sort_values("household_id").reset_index(drop=True)
    ps = store.read_persons(ws).drop(columns=["import_id"]).sort_values(["household_id", "member_no"]) \
        .reset_index(drop=True) if persons else None
    q = store.read_quarantine(ws).drop(columns=["import_id"]).sort_values(["sheet", "row"]).reset_index(drop=True)
    iss = store.read_issues(ws).drop(columns=["import_id"]).sort_values(["sheet", "row", "rule", "field"]) \
        .reset_index(drop=True)
    return hh, ps, q, iss


def test_worker_processes_give_the_same_import(tmp_path):
    """A file of many chunks is checked in worker processes; the store and the counts are those of one process:
    duplicates and conflicts across chunks, errors, and roster rows claimed by the chunk of their household."""
    from test_readers_questionnaire import odk_zip
    main, roster = frames(18)
    idn = main.loc[2, "head_id_number"]
    main.loc[2, "head_id_number"] = idn[:-1] + ("1" if idn[-1] == "0" else "0")  # check digit: an error
    main.loc[4, "water_litres"] = "-5"                                           # out of range
    conflict = main.iloc[[3]].copy()
    conflict["wage_income"] = "1"                                                # same household, other answers
    flat = pd.concat([main.iloc[:9], main.iloc[[1]], conflict], ignore_index=True)   # + an exact duplicate
    with_roster = main.iloc[9:].reset_index(drop=True)
    roster = roster[roster["household_id"].isin(with_roster["household_id"])]
    roster = roster[~((roster["household_id"] == with_roster["household_id"][2]) & (roster["member_no"] == "2"))]
    results = {}
    for workers in (1, 3):                  # all in this process; two worker processes beside it
        d = tmp_path / f"w{workers}"
        ws = init_workspace(d / "ws")
        flat.to_csv(d / "hh.csv", index=False)
        rs = [import_file(ws, d / "hh.csv", chunk_rows=3, workers=workers, write_report=False),
              import_file(ws, odk_zip(d / "odk.zip", with_roster, roster), chunk_rows=3, workers=workers,
                          write_report=False)]
        assert all(r.reconciles for r in rs)
        results[workers] = (rs, _store_content(ws))
    (rs1, c1), (rs2, c2) = results[1], results[3]
    counts = ("rows_in", "accepted", "quarantined", "duplicates_skipped", "errors", "warnings", "tables")
    for r1, r2 in zip(rs1, rs2):
        assert [getattr(r1, k) for k in counts] == [getattr(r2, k) for k in counts]
    assert (rs1[0].rows_in, rs1[0].accepted, rs1[0].quarantined, rs1[0].duplicates_skipped) == (11, 7, 3, 1)
    # the household missing a member is held back whole (roster size ≠ declared size), with its other 2 members
    assert rs1[1].tables["members"]["quarantined"] == 2 and len(c1[1]) == 3 * 9 - 1 - 2
    for a, b in zip(c1, c2):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("compression", ["none", "bytecode"])
def test_sav_chunks_are_read_by_the_process_that_checks_them(tmp_path, compression):
    """An SPSS file's chunks are read by whichever process checks them (a worker reads its own rows; this
    process takes back chunks no worker has started): the store, the counts and the quarantined rows as read are
    those of one process, with errors, exact repeats within and across chunks, a conflict across chunks (its row
    read again for quarantine) and an empty row."""
    main, _ = frames(12)
    idn = main.loc[2, "head_id_number"]
    main.loc[2, "head_id_number"] = idn[:-1] + ("1" if idn[-1] == "0" else "0")  # check digit: an error
    conflict = main.iloc[[3]].copy()
    conflict["wage_income"] = "1"                                                # same household, other answers
    empty = pd.DataFrame([[""] * main.shape[1]], columns=main.columns)
    flat = pd.concat([main.iloc[:7], main.iloc[[6]], main.iloc[7:], main.iloc[[1]], empty, conflict],
                     ignore_index=True)      # in-chunk repeat (row 8), repeat of an earlier chunk, blank, conflict
    results = {}
    for workers in (1, 3):
        d = tmp_path / f"w{workers}"
        ws = init_workspace(d / "ws")
        p = d / "hh.sav"
        pyreadstat.write_sav(flat, str(p), row_compress=compression == "bytecode")
        r = import_file(ws, p, chunk_rows=3, workers=workers, write_report=False)
        hh, _, q, iss = _store_content(ws, persons=False)
        results[workers] = (r, (hh, q, iss))
    (r1, c1), (r3, c3) = results[1], results[3]
    counts = ("rows_in", "accepted", "quarantined", "duplicates_skipped", "errors", "warnings", "tables")
    assert [getattr(r1, k) for k in counts] == [getattr(r3, k) for k in counts]
    # 15 rows with data (the blank one is not a row): 10 households stored, the bad ID and the conflict held back
    assert (r1.rows_in, r1.accepted, r1.quarantined, r1.duplicates_skipped) == (15, 11, 2, 2) and r1.reconciles
    assert "1 empty rows ignored" in "; ".join(r1.messages)
    q = c1[1]
    assert sorted(q["row"].tolist()) == [3, 16]
    held = json.loads(q.loc[q["row"] == 16, "payload"].iloc[0])
    assert held["household_id"] == main.loc[3, "household_id"] and held["wage_income"] == "1"
    for a, b in zip(c1, c3):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("fmt", ["csv", "sav"])     # chunks handed to workers; chunks workers read themselves
def test_a_worker_that_dies_leaves_the_store_as_it_was(ws, tmp_path, monkeypatch, fmt):
    import os

    from survey import importer
    parent = os.getpid()
    real = importer._validate_chunk

    def dies_in_worker(ctx, main_in, rep_in):
        if os.getpid() != parent:
            os._exit(9)                       # as the kernel's out-of-memory killer would end it
        return real(ctx, main_in, rep_in)

    monkeypatch.setattr(importer, "_validate_chunk", dies_in_worker)
    main, _ = frames(8)
    main.iloc[:2].to_csv(tmp_path / "first.csv", index=False)
    import_file(ws, tmp_path / "first.csv")                     # one chunk: checked in this process
    p = tmp_path / f"hh.{fmt}"
    if fmt == "csv":
        main.iloc[2:].to_csv(p, index=False)
    else:
        pyreadstat.write_sav(main.iloc[2:].reset_index(drop=True), str(p))
    before = store.data_fingerprint(ws)
    with pytest.raises(ImportFileError) as e:
        import_file(ws, p, chunk_rows=2, workers=2)
    assert e.value.code == "worker_failed" and "--workers 1" in e.value.fix
    assert store.data_fingerprint(ws) == before and len(store.read_households(ws)) == 2
    assert store.read_imports(ws)["status"].tolist() == ["imported", "rejected"]


def test_blank_rows_of_a_members_file_are_ignored_like_those_of_the_household_file(ws, tmp_path):
    """SPSS writes a blank text as spaces: a row of them in either file is an empty row, not a member."""
    main, roster = frames(3)
    blank_m = pd.DataFrame([[""] * main.shape[1]], columns=main.columns)
    blank_r = pd.DataFrame([[""] * roster.shape[1]], columns=roster.columns)
    pyreadstat.write_sav(pd.concat([main, blank_m], ignore_index=True), str(tmp_path / "hh.sav"))
    pyreadstat.write_sav(pd.concat([roster, blank_r], ignore_index=True), str(tmp_path / "members.sav"))
    hh, members = import_files(ws, [tmp_path / "hh.sav", tmp_path / "members.sav"], write_report=False)
    assert (hh.rows_in, hh.accepted, members.rows_in, members.accepted, members.quarantined) == (3, 3, 9, 9, 0)
    assert "1 empty rows ignored" in hh.messages and store.read_quarantine(ws).empty
