import json

import pandas as pd
import pytest

from sampling.errors import FrameError
from sampling.frames import build_village_frame, check_frame
from sampling.population import county_households, village_frame
from sampling.readers import read_table, write_table


@pytest.fixture(scope="module")
def population():
    frame = village_frame(["贵州"], 21, counties_per_province=2, villages_per_county=6)
    hh, ps = county_households(21, frame)
    return frame, hh, ps


def _problem(report, row, column, code):
    p = report.problems
    hit = p[(p["row"] == row) & (p["column"] == column) & (p["code"] == code)]
    return len(hit) == 1


def test_clean_generated_frames_pass(population):
    frame, hh, _ = population
    assert check_frame(frame, "village", strata="poor_village").ok
    r = check_frame(hh, "household")
    assert r.ok and r.n_warnings == 0


def test_village_problems_found_at_user_rows_in_csv(tmp_path, population):
    frame = population[0].copy()
    # data row i (0-based) is line i + 2 of the CSV: the header is line 1
    frame.loc[3, "village_code"] = frame.loc[1, "village_code"]          # duplicate → rows 3 and 5
    frame.loc[4, "county_code"] = "520199"                               # does not nest → row 6
    frame.loc[6, "households"] = 0                                        # non-positive size → row 8
    frame.loc[7, "persons"] = None                                        # missing size → row 9
    frame.loc[8, "village_code"] = "52012110120"                          # 11 digits → row 10
    write_table(frame, tmp_path / "v.csv")
    r = check_frame(tmp_path / "v.csv", "village")
    assert _problem(r, 3, "village_code", "duplicate_id") and _problem(r, 5, "village_code", "duplicate_id")
    assert _problem(r, 6, "county_code", "codes_do_not_nest")
    assert _problem(r, 8, "households", "non_positive_size")
    assert _problem(r, 9, "persons", "missing_size")
    assert _problem(r, 10, "village_code", "bad_code")
    assert set(r.problems["file"]) == {str(tmp_path / "v.csv")}
    assert r.problems.loc[r.problems.row == 6, "value"].iloc[0].startswith("520199")
    assert not r.ok
    with pytest.raises(FrameError) as err:
        r.raise_if_errors()
    assert err.value.row == 3 and err.value.column == "village_code" and "v.csv" in str(err.value)


def test_rows_in_xlsx_and_parquet(tmp_path, population):
    frame = population[0].copy()
    frame.loc[2, "households"] = -5
    write_table(frame, tmp_path / "v.xlsx")
    write_table(frame, tmp_path / "v.parquet")
    assert _problem(check_frame(tmp_path / "v.xlsx"), 4, "households", "non_positive_size")
    # Parquet has no header line: rows are case numbers from 1
    assert _problem(check_frame(tmp_path / "v.parquet"), 3, "households", "non_positive_size")


def test_household_problems(population):
    hh = population[1].head(50).copy()
    hh.loc[5, "household_id"] = "5201991012010099"                 # not inside its village → row 6
    hh.loc[9, "head_id_number"] = hh.loc[9, "head_id_number"][:17] + ("0" if hh.loc[9, "head_id_number"][17] != "0" else "1")
    hh.loc[11, "head_id_number"] = hh.loc[11, "head_id_number"][:16]
    hh.loc[13, "size"] = 0
    hh.loc[15, "register_status"] = 9
    hh.loc[20, "household_id"] = hh.loc[19, "household_id"]
    r = check_frame(hh, "household")
    assert _problem(r, 6, "village_code", "codes_do_not_nest")
    assert _problem(r, 10, "head_id_number", "id_check_digit")
    assert _problem(r, 12, "head_id_number", "id_length")
    assert _problem(r, 14, "size", "non_positive_size")
    assert _problem(r, 16, "register_status", "bad_status")
    assert _problem(r, 20, "household_id", "duplicate_id") and _problem(r, 21, "household_id", "duplicate_id")
    fixes = r.problems.set_index("code")["fix"]
    assert all(isinstance(f, str) and f for f in fixes)


def test_missing_column_suggests_mapping_and_mapping_fixes_it(tmp_path, population):
    frame = population[0].rename(columns={"village_code": "村代码"})
    write_table(frame, tmp_path / "v.csv")
    r = check_frame(tmp_path / "v.csv")
    miss = r.problems[r.problems.code == "missing_column"]
    assert list(miss["column"]) == ["village_code"] and "--map 村代码=village_code" in miss["fix"].iloc[0]
    assert check_frame(tmp_path / "v.csv", mapping=["村代码=village_code"]).ok
    assert check_frame(tmp_path / "v.csv", mapping={"村代码": "village_code"}).ok
    with pytest.raises(FrameError):
        check_frame(tmp_path / "v.csv", mapping={"no_such": "village_code"})


def test_numeric_codes_mapped_from_other_names_keep_digits(tmp_path):
    pd.DataFrame({"村": ["052010101201"], "县": ["052010"], "households": [10], "persons": [30]}).to_csv(
        tmp_path / "v.csv", index=False)
    assert check_frame(tmp_path / "v.csv", mapping={"村": "village_code", "县": "county_code"}).ok


def test_strata(population):
    frame = population[0].copy()
    frame["stratum"] = ["a"] * 5 + ["b"] * 5 + ["c"] + [None]
    frame.loc[5:9, "households"] = 0
    r = check_frame(frame, strata="stratum")
    assert _problem(r, 12, "stratum", "no_stratum")
    empty = r.problems[r.problems.code == "empty_stratum"]
    assert list(empty["value"]) == ["b"] and empty["severity"].iloc[0] == "error"
    single = r.problems[r.problems.code == "single_unit_stratum"]
    assert list(single["value"]) == ["c"] and single["severity"].iloc[0] == "warning"
    assert check_frame(frame, strata="nope").problems.code.eq("missing_column").any()


def test_build_village_frame_matches_generated_sizes(population):
    frame, hh, ps = population
    villages = frame.drop(columns=[c for c in frame.columns if c.startswith(("hh_", "persons_"))])
    built, summary = build_village_frame(hh, villages, persons=ps)
    cols = ["households", "persons", "hh_registered", "hh_exited", "hh_not_exited", "hh_nonregistered",
            "persons_registered", "persons_exited", "persons_not_exited", "persons_nonregistered",
            "rural_population"]
    a = built.set_index("village_code").sort_index()
    b = frame.set_index("village_code").sort_index()
    assert (a[cols] == b[cols]).all().all()
    assert (a["poor_village"] == b["poor_village"]).all() and (a["village_name"] == b["village_name"]).all()
    assert summary["households"].sum() == len(hh) and summary["mismatched_villages"].sum() == 0
    # registered poverty rate = persons not exited / rural population, per county
    c0 = frame[frame.county_code == summary.county_code[0]]
    assert summary["registered_rate"][0] == pytest.approx(c0.persons_not_exited.sum() / c0.persons.sum())


def test_build_reports_mismatches_without_fixing(population):
    frame, hh, _ = population
    villages = frame.copy()
    villages.loc[2, "households"] += 7
    villages = villages.drop(index=4)
    built, summary = build_village_frame(hh, villages)
    mism = pd.DataFrame(summary.attrs["mismatches"])
    assert set(mism["village_code"]) == {frame.village_code[2], frame.village_code[4]}
    row = mism[mism.column == "households"].iloc[0]
    assert row["list_value"] == frame.households[2] + 7 and row["register_value"] == frame.households[2]
    # the frame keeps the register's count
    assert built.set_index("village_code").at[frame.village_code[2], "households"] == frame.households[2]
    assert summary["mismatched_villages"].sum() == 2


def test_build_without_village_list_uses_register_and_derives_codes(population):
    _, hh, _ = population
    built, _ = build_village_frame(hh[["household_id", "village_code", "register_status", "size"]])
    assert (built["county_code"] == built["village_code"].str[:6]).all()
    assert (built["province_name"] == "贵州省").all() and (built["poor_village"] == 0).all()
    with pytest.raises(FrameError):
        build_village_frame(hh[["household_id", "village_code"]])


def test_cli_frame_check_exit_codes_and_report(tmp_path, population, capsys):
    from tpa.cli import main

    frame = population[0].copy()
    write_table(frame, tmp_path / "good.csv")
    assert main(["frame", "check", str(tmp_path / "good.csv")]) == 0
    frame.loc[3, "village_code"] = frame.loc[1, "village_code"]
    write_table(frame, tmp_path / "bad.csv")
    capsys.readouterr()
    assert main(["frame", "check", str(tmp_path / "bad.csv"), "--report", str(tmp_path / "r.xlsx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "bad.csv" in err[-1] and "Traceback" not in "".join(err)
    report = read_table(tmp_path / "r.xlsx")
    assert {"行号", "列", "问题", "修改建议"} <= set(report.columns) and 3 in report["行号"].tolist()
    assert main(["frame", "check", str(tmp_path / "bad.csv"), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == 2 and doc["problems"][0]["row"] == 3
    assert main(["frame", "check", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_cli_frame_build(tmp_path, population, capsys):
    from tpa.cli import main

    frame, hh, ps = population
    write_table(hh, tmp_path / "hh.csv")
    write_table(ps, tmp_path / "ps.parquet")
    write_table(frame, tmp_path / "v.xlsx")
    assert main(["frame", "build", "--households", str(tmp_path / "hh.csv"), "--persons", str(tmp_path / "ps.parquet"),
                 "--villages", str(tmp_path / "v.xlsx"), "--out", str(tmp_path / "f.parquet")]) == 0
    out = capsys.readouterr().out
    assert frame.county_code[0] in out
    built = read_table(tmp_path / "f.parquet")
    assert built["persons"].sum() == len(ps)


def test_build_refuses_bad_sizes_naming_the_row(population):
    hh = population[1].head(30)[["household_id", "village_code", "register_status", "size"]].copy()
    hh["size"] = hh["size"].astype(float)
    hh.loc[7, "size"] = None
    with pytest.raises(FrameError) as err:
        build_village_frame(hh)
    assert err.value.row == 8 and err.value.column == "size"


def test_person_table_checks(population):
    ps = population[2].head(40).copy()
    ps.loc[4, "id_number"] = ps.loc[2, "id_number"]
    ps.loc[9, "person_id"] = "5201991012010001" + "01"
    r = check_frame(ps, "person")
    assert _problem(r, 3, "id_number", "duplicate_person") and _problem(r, 5, "id_number", "duplicate_person")
    assert _problem(r, 10, "household_id", "codes_do_not_nest")
    assert check_frame(population[2], "person").ok
