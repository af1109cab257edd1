"""Questionnaire readers: every format a field team hands in, read row for row, with row numbers and missing values
kept; every unreadable file refused with an ImportFileError naming the file, row or column and the fix."""
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import xlsxwriter
from _survey_fixtures import households

from survey.errors import ImportFileError
from survey.readers import ROW, USER_MISSING, detect_format, open_source
from survey.readers.archive import ITEM


def _all(src, chunk=100_000):
    parts = list(src.iter_main(chunk))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _frames(n=4):
    main, roster = households(n)
    return main.drop(columns=ROW), roster.drop(columns=ROW)


# ---------------------------------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize("encoding,expect", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"),
                                             ("gb18030", "gb18030")])
def test_csv_encodings_detected(tmp_path, encoding, expect):
    main, _ = _frames()
    p = tmp_path / "hh.csv"
    main.to_csv(p, index=False, encoding=encoding)
    src = open_source(p)
    assert src.encoding == expect
    df = _all(src)
    assert list(df[ROW]) == [2, 3, 4, 5]
    assert df["head_name"].tolist() == main["head_name"].tolist()      # Chinese text intact
    assert df["household_id"].tolist() == main["household_id"].tolist()  # codes stay text
    assert src.columns[0] == "household_id"                             # no BOM in the first name


def test_csv_explicit_encoding_wins_and_wrong_one_names_the_row(tmp_path):
    main, _ = _frames()
    p = tmp_path / "hh.csv"
    main.to_csv(p, index=False, encoding="gbk")
    assert _all(open_source(p, encoding="gbk"))["head_name"].iloc[0] == "王五"
    with pytest.raises(ImportFileError) as e:
        open_source(p, encoding="utf-8")
    assert e.value.code == "bad_encoding" and e.value.row == 2 and "--encoding" in e.value.fix


def test_csv_gbk_text_late_in_the_file_is_found(tmp_path):
    p = tmp_path / "late.csv"
    body = "household_id,head_name\n" + "".join(f"52010200100{i:05d},abc\n" for i in range(3000))
    p.write_bytes(body.encode() + "5201020010099999,王五\n".encode("gbk"))
    with pytest.raises(ImportFileError) as e:
        open_source(p, encoding="utf-8")
    assert e.value.row == 3002


def test_csv_chunks_keep_row_numbers_and_missing(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("a,b\n1,x\n,\n3, z \n4,\n", encoding="utf-8")
    src = open_source(p)
    parts = list(src.iter_main(2))
    assert [len(x) for x in parts] == [2, 2]
    df = pd.concat(parts, ignore_index=True)
    assert df[ROW].tolist() == [2, 3, 4, 5]
    assert df["b"].isna().tolist() == [False, True, False, True]
    assert df["b"].iloc[2] == "z"


def test_tab_file_with_sentinels(tmp_path):
    p = tmp_path / "hh.tab"
    p.write_text("household_id\tage\tname\n1\t-999999999\t##N/A##\n2\t30\tx\n", encoding="utf-8")
    df = _all(open_source(p))
    assert df["age"].isna().tolist() == [True, False]
    assert df["name"].isna().tolist() == [True, False]


def test_empty_and_header_only_csv(tmp_path):
    p = tmp_path / "e.csv"
    p.write_bytes(b"")
    with pytest.raises(ImportFileError) as e:
        open_source(p)
    assert e.value.code == "empty_file"
    p.write_text("household_id,head_name\n")
    assert _all(open_source(p)).empty


def test_duplicate_column_names_refused(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(ImportFileError) as e:
        open_source(p)
    assert e.value.column == "a" and e.value.code == "duplicate_column"


def test_malformed_csv_names_the_line(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(ImportFileError) as e:
        _all(open_source(p))
    assert e.value.code == "malformed_csv" and "line 3" in e.value.message


def test_cell_of_ten_thousand_characters_refused(tmp_path):
    p = tmp_path / "long.csv"
    pd.DataFrame({"household_id": ["1", "2"], "note": ["ok", "长" * 10_000]}).to_csv(p, index=False)
    with pytest.raises(ImportFileError) as e:
        _all(open_source(p))
    assert e.value.code == "cell_too_long" and e.value.column == "note" and e.value.row == 3


def test_binary_and_renamed_files_refused(tmp_path):
    p = tmp_path / "x.sav"
    p.write_text("household_id\n1\n")
    with pytest.raises(ImportFileError) as e:
        detect_format(p)
    assert e.value.code == "corrupt_file"
    q = tmp_path / "old.xls"
    q.write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 600)
    with pytest.raises(ImportFileError) as e:
        detect_format(q)
    assert ".xlsx" in e.value.fix


# ---------------------------------------------------------------------------------------------------------- XLSX
def _xlsx(path, rows, *, formula=None, merge=None, sheets=None):
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("hh")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v is not None:
                ws.write(i, j, v)
    if formula:
        r, c, text, value = formula
        ws.write_formula(r, c, text, None, value)
    if merge:
        ws.merge_range(*merge, "merged")
    for name, srows in (sheets or {}).items():
        s = wb.add_worksheet(name)
        for i, row in enumerate(srows):
            s.write_row(i, 0, row)
    wb.close()


@pytest.fixture(params=["calamine", "openpyxl"])
def xlsx_engine(request, monkeypatch):
    """Both XLSX paths: calamine (workbooks up to CALAMINE_MAX_BYTES) and openpyxl streaming (larger ones)."""
    from survey.readers import xlsx
    if request.param == "openpyxl":
        monkeypatch.setattr(xlsx, "CALAMINE_MAX_BYTES", -1)
    return request.param


def test_xlsx_formula_read_as_stored_value_never_evaluated(tmp_path, xlsx_engine):
    p = tmp_path / "f.xlsx"
    _xlsx(p, [["household_id", "wage_income", "net_income_declared"], ["5201020010010001", 100, None]],
          formula=(1, 2, "=B2*1000", 42))     # the stored value (42) is what counts, not B2*1000
    df = _all(open_source(p))
    assert df["net_income_declared"].tolist() == [42]
    assert df[ROW].tolist() == [2]


def test_xlsx_formula_without_stored_value_refused(tmp_path, xlsx_engine):
    import openpyxl
    p = tmp_path / "nf.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["household_id", "wage_income"])
    ws.append(["1", "=1+1"])
    wb.save(p)
    with pytest.raises(ImportFileError) as e:
        open_source(p)
    assert e.value.code == "formula_without_value" and e.value.column == "B2"


def test_xlsx_merged_cells_refused(tmp_path, xlsx_engine):
    p = tmp_path / "m.xlsx"
    _xlsx(p, [["title"], ["household_id", "head_name"], ["1", "x"]], merge=(0, 0, 0, 1))
    with pytest.raises(ImportFileError) as e:
        open_source(p)
    assert e.value.code == "merged_cells" and "A1:B1" in e.value.message and "取消合并" in e.value.fix


def test_xlsx_roster_sheet_and_blank_rows(tmp_path, xlsx_engine):
    main, roster = _frames(2)
    p = tmp_path / "hh.xlsx"
    _xlsx(p, [list(main.columns)] + main.astype(object).where(main.notna(), None).values.tolist() + [[None]],
          sheets={"members": [list(roster.columns)] + roster.fillna("").values.tolist()})
    src = open_source(p)
    df = _all(src)
    assert len(df) == 2 and df[ROW].tolist() == [2, 3]
    assert df["household_id"].tolist() == main["household_id"].tolist()
    reps = src.repeats()
    assert list(reps) == ["members"] and len(reps["members"]) == 6
    assert reps["members"][ROW].tolist() == list(range(2, 8))


def test_xlsx_cells_keep_their_types(tmp_path, xlsx_engine):
    import datetime as dt
    p = tmp_path / "t.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet("hh")
    ws.write_row(0, 0, ["household_id", "declared_size", "gps_lat", "interview_start", "head_name"])
    ws.write_string(1, 0, "5201020010010001")
    ws.write_number(1, 1, 3)
    ws.write_number(1, 2, 26.5)
    ws.write_datetime(1, 3, dt.datetime(2019, 5, 1, 9, 30), wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}))
    ws.write_string(1, 4, "  ")
    wb.close()
    row = _all(open_source(p)).iloc[0]
    assert row["household_id"] == "5201020010010001"            # text stays text (no lost leading digits)
    assert type(row["declared_size"]) is int and row["declared_size"] == 3
    assert row["gps_lat"] == 26.5
    assert pd.Timestamp(row["interview_start"]) == pd.Timestamp("2019-05-01 09:30")
    assert row["head_name"] is None                              # a blank cell is missing


def test_damaged_xlsx_refused(tmp_path, xlsx_engine):
    main, _ = _frames()
    p = tmp_path / "hh.xlsx"
    main.to_excel(p, index=False)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImportFileError) as e:
        open_source(p)
    assert e.value.code == "corrupt_file"


# ---------------------------------------------------------------------------------------------------------- SAV / DTA
def _sav(path, n=6, **kw):
    df = pd.DataFrame({"household_id": [f"52010200100100{i:02d}" for i in range(n)],
                       "register_status": [1.0, 2.0, 99.0, -9.0, np.nan, 1.0][:n],
                       "head_name": ["张三", "", "李四", "王五", "赵六", "钱七"][:n]})
    pyreadstat.write_sav(df, str(path), missing_ranges={"register_status": [99, -9]},
                         variable_value_labels={"register_status": {1: "已脱贫", 2: "未脱贫", 99: "拒答", -9: "不知道"}},
                         **kw)
    return df


@pytest.mark.parametrize("compress", [False, True])
def test_sav_value_labels_and_user_missing_kept_apart(tmp_path, compress):
    p = tmp_path / ("hh.zsav" if compress else "hh.sav")
    _sav(p, compress=compress)
    src = open_source(p)
    assert src.format == "sav"
    assert src.value_labels["register_status"]["1"] == "已脱贫"
    assert src.user_missing["register_status"] == [99, -9]
    df = _all(src, chunk=4)
    assert df[ROW].tolist() == [1, 2, 3, 4, 5, 6]       # case numbers, as SPSS shows them
    assert df["register_status"].isna().tolist() == [False, False, True, True, True, False]
    um = df[USER_MISSING].tolist()
    assert json.loads(um[2]) == {"register_status": 99}
    assert json.loads(um[3]) == {"register_status": -9}
    assert pd.isna(um[4])                                  # system missing stays plain missing
    assert df["household_id"].iloc[0] == "5201020010010000"


def test_truncated_sav_refused(tmp_path):
    p = tmp_path / "hh.sav"
    _sav(p)
    data = p.read_bytes()
    p.write_bytes(data[:-40])
    with pytest.raises(ImportFileError) as e:
        _all(open_source(p))
    assert e.value.code == "corrupt_file" and "truncated" in e.value.message
    p.write_bytes(data[:100])
    with pytest.raises(ImportFileError):
        _all(open_source(p))


def test_dta_read_with_labels(tmp_path):
    p = tmp_path / "hh.dta"
    df = pd.DataFrame({"household_id": ["5201020010010001", "5201020010010002"], "register_status": [1, 2]})
    pyreadstat.write_dta(df, str(p), variable_value_labels={"register_status": {1: "已脱贫", 2: "未脱贫"}})
    src = open_source(p)
    assert src.format == "dta" and src.value_labels["register_status"] == {"1": "已脱贫", "2": "未脱贫"}
    out = _all(src)
    assert out["household_id"].tolist() == df["household_id"].tolist()
    assert out["register_status"].tolist() == [1, 2]


# ---------------------------------------------------------------------------------------------------------- ZIP exports
def odk_zip(path, main, roster, *, form="hh_form"):
    """An ODK Central export: group-prefixed columns, KEY / PARENT_KEY, member number only in the KEY."""
    m = main.copy()
    m.columns = [f"basic-{c}" if c in ("household_id", "head_name") else c for c in m.columns]
    m["KEY"] = [f"uuid:{i:04d}" for i in range(len(m))]
    m["SubmissionDate"] = "2019-05-02T10:00:00Z"
    key_of = dict(zip(main["household_id"], m["KEY"]))
    r = roster.drop(columns=["household_id", "member_no"]).copy()
    r.columns = [f"person/{c}" for c in r.columns]
    r["PARENT_KEY"] = roster["household_id"].map(key_of).to_numpy()
    r["KEY"] = [f"{p}/members[{n}]" for p, n in zip(r["PARENT_KEY"], roster["member_no"])]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{form}.csv", m.to_csv(index=False))
        zf.writestr(f"{form}-members.csv", r.to_csv(index=False))
    return path


def suso_zip(path, main, roster, *, stata=False, tmp=None):
    m = main.copy()
    m.insert(0, "interview__id", [f"{i:032x}" for i in range(len(m))])
    m["interview__key"] = [f"00-00-00-{i:02d}" for i in range(len(m))]
    iid = dict(zip(main["household_id"], m["interview__id"]))
    r = roster.drop(columns=["household_id", "member_no"]).copy()
    r.insert(0, "members__id", roster["member_no"].astype(int).to_numpy())
    r.insert(0, "interview__id", roster["household_id"].map(iid).to_numpy())
    with zipfile.ZipFile(path, "w") as zf:
        if stata:
            for name, f in (("hh_form", m), ("members", r)):
                out = tmp / f"{name}.dta"
                g = f.copy()
                for c in g.columns:
                    if g[c].dtype == object or pd.api.types.is_string_dtype(g[c].dtype):
                        g[c] = g[c].fillna("##N/A##")
                pyreadstat.write_dta(g, str(out))
                zf.write(out, f"{name}.dta")
        else:
            zf.writestr("hh_form.tab", m.fillna("##N/A##").to_csv(index=False, sep="\t"))
            zf.writestr("members.tab", r.fillna("-999999999").to_csv(index=False, sep="\t"))
        zf.writestr("interview__actions.tab", "interview__id\taction\n")
        zf.writestr("export__readme.txt", "Survey Solutions export")
    return path


def test_odk_zip_main_and_repeat_linked_by_parent_key(tmp_path):
    main, roster = _frames(3)
    src = open_source(odk_zip(tmp_path / "odk.zip", main, roster))
    assert src.format == "odk"
    assert "household_id" in src.columns and "head_name" in src.columns     # group prefixes removed
    df = _all(src)
    assert df[ROW].tolist() == [2, 3, 4]
    reps = src.repeats()
    m = reps["members"]
    assert len(m) == 9 and m[ROW].tolist() == list(range(2, 11))
    assert m[ITEM].tolist() == roster["member_no"].astype(int).tolist()
    assert "name" in m.columns
    src.close()


@pytest.mark.parametrize("stata", [False, True])
def test_survey_solutions_export(tmp_path, stata):
    main, roster = _frames(2)
    main.loc[0, "enumerator_2"] = None
    roster.loc[1, "migrant_months"] = None
    src = open_source(suso_zip(tmp_path / "suso.zip", main, roster, stata=stata, tmp=tmp_path))
    assert src.format == "survey_solutions"
    df = _all(src)
    assert len(df) == 2
    assert pd.isna(df["enumerator_2"].iloc[0])                    # ##N/A## read as missing
    m = src.repeats()["members"]
    assert len(m) == 6
    assert m["migrant_months"].isna().sum() == 1                  # -999999999 read as missing
    assert m[ITEM].tolist() == roster["member_no"].astype(int).tolist()
    src.close()


def test_corrupt_zip_refused(tmp_path):
    main, roster = _frames(2)
    p = odk_zip(tmp_path / "odk.zip", main, roster)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 30])
    with pytest.raises(ImportFileError) as e:
        open_source(p)
    assert e.value.code == "corrupt_file"


def test_zip_without_tables_refused(tmp_path):
    p = tmp_path / "x.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("readme.md", "nothing")
    with pytest.raises(ImportFileError) as e:
        open_source(p)
    assert e.value.code == "empty_file"


def test_renamed_xlsx_detected_by_content(tmp_path):
    main, _ = _frames(2)
    buf = io.BytesIO()
    main.to_excel(buf, index=False)
    p = tmp_path / "export.dat"
    p.write_bytes(buf.getvalue())
    assert detect_format(p) == "xlsx"


def test_bytecode_block_walk_agrees_with_walking_block_by_block():
    """The vectorised walk over a compressed SAV's command blocks finds the blocks a plain walk finds, and the
    same unfinished tail, whatever the mix of block lengths."""
    from survey.readers.sav_fast import block_starts

    def walk(steps):
        out, p = [], 0
        while p < len(steps) and p + steps[p] <= len(steps):
            out.append(p)
            p += steps[p]
        return out, p

    rng = np.random.default_rng(11)
    for trial in range(2000):
        n = int(rng.integers(0, 200))
        steps = rng.choice([1, 1, 1, 2, 3, 9], n) if trial % 2 else rng.integers(1, 10, n)
        got, tail = block_starts(steps, doublings=int(rng.integers(0, 6)))
        want, want_tail = walk(list(steps))
        assert got.tolist() == want and tail == want_tail


def test_compressed_sav_decodes_the_same_whatever_the_read_size(tmp_path):
    """Blocks and raw units cut across the pieces the file is read in: the decoded cases do not change."""
    from survey.readers.sav_fast import _units_stream

    n = 3000
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"a": rng.choice([1.0, 2.5, np.nan, 300.0, -7.0], n), "s": rng.choice(["甲乙", "", "x" * 20], n),
                       "b": rng.integers(-100, 100, n).astype(float)})
    p = tmp_path / "c.sav"
    pyreadstat.write_sav(df, str(p), row_compress=True)
    src = open_source(p)
    whole = np.concatenate(list(_units_stream(p, src._fast)))
    for block in (8, 24, 1000, 4099):
        assert np.array_equal(np.concatenate(list(_units_stream(p, src._fast, block=block))), whole)
    assert len(whole) == n * src._fast.units


@pytest.mark.parametrize("kw,name", [({}, "u.sav"), ({"row_compress": True}, "c.sav"), ({"compress": True}, "z.zsav")])
def test_fast_sav_decoder_agrees_with_pyreadstat(tmp_path, kw, name):
    """The numpy decoder of SAV data (uncompressed, bytecode, zlib) gives what pyreadstat gives."""
    n = 500
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"hid": [f"5201020010{i:06d}" for i in range(n)],
                       "x": rng.choice([1.5, np.nan, -3.0, 250.0, 151.0, -99.0, 1e12, 0.1], n),
                       "i": rng.choice([1.0, 2.0, 99.0, -9.0, np.nan], n),
                       "s": rng.choice(["张三", "", "abcdefghijklmnop", "y" * 40, "z", "  lead"], n),
                       "t": pd.to_datetime("2019-05-01 09:00:00") + pd.to_timedelta(rng.integers(0, 10**6, n), "s")})
    p = tmp_path / name
    pyreadstat.write_sav(df, str(p), missing_ranges={"i": [99, -9]}, **kw)
    src = open_source(p)
    assert src._fast is not None
    got = _all(src, chunk=37)
    ref, _ = pyreadstat.read_sav(str(p))
    assert got[ROW].tolist() == list(range(1, n + 1))
    assert got["hid"].tolist() == ref["hid"].tolist() and got["s"].tolist() == ref["s"].tolist()
    np.testing.assert_array_equal(got["x"].to_numpy(), ref["x"].to_numpy())
    np.testing.assert_array_equal(got["i"].to_numpy(), ref["i"].to_numpy())
    assert (pd.to_datetime(got["t"]) == pd.to_datetime(ref["t"])).all()
    um = got[USER_MISSING].dropna().map(json.loads)
    assert len(um) == int(df["i"].isin([99, -9]).sum())
