import hashlib

import numpy as np
import pandas as pd
import pytest

from sampling.errors import FrameError
from sampling.readers import content_hash, detect_encoding, read_table, write_table


@pytest.fixture
def table():
    return pd.DataFrame({
        "county_code": ["052010", "520102"],          # leading zero must survive
        "village_code": ["052010001001", "520102001002"],
        "household_id": ["0520100010010001", "5201020010020002"],
        "head_id_number": ["11010519491231002X", "440524188001010014"],
        "phone": ["013800000000", "13912345678"],
        "head_name": ["张三", "李四"],
        "register_status": [1, 5],
        "size": [3, 2],
        "wage_income": [12000.5, 0.0],
    })


def _check_same(got, table):
    for col in ["county_code", "village_code", "household_id", "head_id_number", "phone", "head_name"]:
        assert got[col].tolist() == table[col].tolist(), col
    assert got["register_status"].astype(int).tolist() == [1, 5]
    assert got["size"].astype(int).tolist() == [3, 2]
    assert np.allclose(got["wage_income"].astype(float), [12000.5, 0.0])


@pytest.mark.parametrize("ext", ["csv", "parquet", "xlsx", "sav", "zsav", "dta"])
def test_round_trip_every_format(tmp_path, table, ext):
    path = write_table(table, tmp_path / f"t.{ext}")
    got = read_table(path)
    _check_same(got, table)
    assert got.attrs["first_data_row"] == (2 if ext in ("csv", "xlsx") else 1)


def test_sav_value_and_variable_labels(tmp_path, table):
    path = write_table(table, tmp_path / "t.sav", value_labels={"register_status": {1: "已脱贫", 5: "一般户"}},
                       variable_labels={"head_name": "户主姓名"})
    got = read_table(path)
    assert got.attrs["value_labels"]["register_status"] == {1: "已脱贫", 5: "一般户"}
    assert got.attrs["variable_labels"]["head_name"] == "户主姓名"


@pytest.mark.parametrize("encoding,expected", [("gbk", "gb18030"), ("gb18030", "gb18030"),
                                               ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8")])
def test_csv_encodings_detected(tmp_path, table, encoding, expected):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False, encoding=encoding)
    assert detect_encoding(path) == expected
    got = read_table(path)
    _check_same(got, table)
    assert list(got.columns) == list(table.columns)     # no BOM glued to the first name


def test_explicit_encoding_wins(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("村名,village_code\n张家村,052010001001\n".encode("gbk"))
    got = read_table(path, encoding="gbk")
    assert got["村名"].tolist() == ["张家村"]
    with pytest.raises(FrameError) as err:
        read_table(path, encoding="utf-8")
    assert "t.csv" in str(err.value) and err.value.fix


def test_numeric_codes_in_xlsx_become_text_without_decimals(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["county_code", "household_id", "persons"])
    ws.append([520102, 5201020010010007, 4])
    ws.append([520103.0, None, 2])
    ws.append([None, None, None])                    # trailing blank row
    wb.save(tmp_path / "t.xlsx")
    got = read_table(tmp_path / "t.xlsx")
    assert got["county_code"].tolist() == ["520102", "520103"]
    assert got["household_id"].iloc[0] == "5201020010010007" and pd.isna(got["household_id"].iloc[1])
    assert got["persons"].tolist() == [4, 2]


def test_xlsx_formula_gives_cached_value_not_formula(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["a", "b"])
    ws.append([1, "=A2*2"])     # never calculated by openpyxl: no cached value
    wb.save(tmp_path / "f.xlsx")
    got = read_table(tmp_path / "f.xlsx")
    assert got["a"].tolist() == [1]
    assert pd.isna(got["b"].iloc[0])          # not the text "=A2*2"


def test_xlsx_sheet_choice_and_missing_sheet(tmp_path, table):
    with pd.ExcelWriter(tmp_path / "s.xlsx") as xw:
        table.to_excel(xw, sheet_name="户", index=False)
        table.head(1).to_excel(xw, sheet_name="村", index=False)
    assert len(read_table(tmp_path / "s.xlsx", sheet="村")) == 1
    assert len(read_table(tmp_path / "s.xlsx", sheet=0)) == 2
    with pytest.raises(FrameError) as err:
        read_table(tmp_path / "s.xlsx", sheet="人")
    assert "s.xlsx" in str(err.value) and "户" in str(err.value)


def test_header_row_below_title(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("某县建档立卡花名册,,\nhousehold_id,size,x\n0520100010010001,3,a\n", encoding="utf-8")
    got = read_table(path, header_row=2)
    assert got["household_id"].tolist() == ["0520100010010001"]
    assert got.attrs["first_data_row"] == 3


@pytest.mark.parametrize("name,content", [
    ("missing.csv", None), ("empty.csv", b""), ("empty.parquet", b""),
    ("bad.xlsx", b"this is not a zip"), ("bad.sav", b"not spss at all" * 20), ("bad.dta", b"\x00\x01garbage" * 50),
    ("bad.parquet", b"PAR1 garbage"), ("data.xls", b"abc"), ("data.json", b"{}"),
    ("binary.csv", bytes(range(256)) * 8),
])
def test_bad_files_raise_frame_error_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FrameError) as err:
        read_table(path)
    assert name in str(err.value)
    assert err.value.fix


def test_write_xlsx_refuses_too_many_rows(tmp_path):
    big = pd.DataFrame({"a": np.zeros(1_048_576, dtype=np.int8)})
    with pytest.raises(FrameError):
        write_table(big, tmp_path / "big.xlsx")
    assert not (tmp_path / "big.xlsx").exists()


def test_content_hash_is_sha256_of_bytes(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n")
    assert content_hash(path) == hashlib.sha256(b"a,b\n1,2\n").hexdigest()


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_codes = st.text(alphabet="0123456789", min_size=1, max_size=18)
_names = st.text(alphabet="张王李赵村镇县乡一二三abc ", min_size=1, max_size=8).map(str.strip).filter(bool)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codes=st.lists(_codes, min_size=1, max_size=5), names=st.lists(_names, min_size=5, max_size=5),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]))
def test_csv_round_trip_keeps_codes_and_chinese_text(tmp_path, codes, names, encoding):
    df = pd.DataFrame({"village_code": codes, "phone": codes, "name": names[:len(codes)]})
    path = tmp_path / "h.csv"
    df.to_csv(path, index=False, encoding=encoding)
    got = read_table(path)
    assert got["village_code"].tolist() == codes and got["phone"].tolist() == codes
    assert got["name"].astype(str).tolist() == df["name"].tolist()


def test_xlsx_dates_become_datetimes(tmp_path):
    import datetime as dt

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["interview_date", "n"])
    ws.append([dt.datetime(2019, 12, 3), 1])
    wb.save(tmp_path / "d.xlsx")
    got = read_table(tmp_path / "d.xlsx")
    assert pd.api.types.is_datetime64_any_dtype(got["interview_date"])
    assert got["interview_date"].iloc[0] == pd.Timestamp("2019-12-03")
    write_table(got, tmp_path / "again.xlsx")
    assert read_table(tmp_path / "again.xlsx")["interview_date"].iloc[0] == pd.Timestamp("2019-12-03")


def test_short_gbk_that_is_also_valid_utf8_is_read_as_gbk(tmp_path):
    # "一" in GBK is D2 BB, which is also the UTF-8 encoding of Cyrillic "һ"
    path = tmp_path / "t.csv"
    path.write_bytes("name\n一\n".encode("gbk"))
    assert detect_encoding(path) == "gb18030"
    assert read_table(path)["name"].tolist() == ["一"]
    path.write_bytes("name\nئابدۇرېھىم\n".encode("utf-8"))   # a Uyghur name in Arabic script stays UTF-8
    assert detect_encoding(path) == "utf-8"


@pytest.mark.parametrize("ext", ["csv", "xlsx", "parquet"])
def test_asking_for_a_missing_column_names_it(tmp_path, table, ext):
    path = write_table(table, tmp_path / f"t.{ext}")
    assert read_table(path, columns=["county_code", "size"]).shape == (2, 2)
    with pytest.raises(FrameError) as err:
        read_table(path, columns=["county_code", "no_such_column"])
    assert "no_such_column" in str(err.value) and f"t.{ext}" in str(err.value)
