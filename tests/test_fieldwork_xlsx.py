"""The fieldwork XLSX writer writes the XML itself; readers must see exactly what xlsxwriter's cell-by-cell
writing gave (values, types and number formats), including the awkward values."""
from __future__ import annotations

import datetime as dt

import numpy as np
import openpyxl
import pandas as pd
import pytest

from survey.fieldwork import _plain, _write_xlsx


def _xlsxwriter_book(path, sheets):
    """The writer the fieldwork simulation used before: one xlsxwriter call per cell."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False, "nan_inf_to_errors": False})
    dt_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    d_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for name, df in sheets:
        sh = wb.add_worksheet(name)
        sh.write_row(0, 0, [str(c) for c in df.columns])
        for i, row in enumerate(zip(*[df[c].astype(object).tolist() for c in df.columns]), start=1):
            for j, v in enumerate(row):
                v = _plain(v)
                if v is None:
                    continue
                if isinstance(v, dt.datetime):
                    sh.write_datetime(i, j, v, dt_fmt)
                elif isinstance(v, dt.date):
                    sh.write_datetime(i, j, dt.datetime(v.year, v.month, v.day), d_fmt)
                elif isinstance(v, str):
                    sh.write_string(i, j, v)
                else:
                    sh.write_number(i, j, v)
        sh.freeze_panes(1, 0)
    wb.close()


def _cells(path, read_only):
    wb = openpyxl.load_workbook(path, read_only=read_only, data_only=True)
    out = {}
    for ws in wb.worksheets:
        if read_only:
            out[ws.title] = [tuple((type(v).__name__, v) for v in r) for r in ws.iter_rows(values_only=True)]
        else:
            out[ws.title] = [[(type(c.value).__name__, c.value, c.number_format) for c in r] for r in ws.iter_rows()]
    wb.close()
    return out


def _frames():
    n = 6
    main = pd.DataFrame({
        "household_id": pd.Series(["522701010010001", "", " lead", "trail ", None, "a&b<c>\"d\""], dtype="str"),
        "text_obj": pd.Series(["x", None, "ctl\x01char", "_x0041_ literal", "换行\n文字", np.nan], dtype=object),
        "size": np.array([1, 2, 3, 4, 5, -6], dtype="int8"),
        "big": np.array([1, 12345678901234567, -3, 10 ** 15, 0, 7], dtype="int64"),
        "income": [1.5, np.nan, 1e-7, 123456789.123456789, -0.0, 2 / 3],
        "f32": np.array([0.3, 1.1, np.nan, 2.5, 1e20, -7.25], dtype="float32"),
        "nullable": pd.array([1, None, 3, None, 5, 6], dtype="Int64"),
        "flag": np.array([True, False, True, True, False, False]),
        "start": pd.to_datetime(["2020-01-06 08:41:07", None, "2020-02-29 23:59:59", "1900-03-01 00:00:00",
                                 "2020-12-31 12:00:00.123456", "2020-06-01"], format="ISO8601").astype("datetime64[us]"),
        "day": [dt.date(2020, 1, 6), None, dt.date(2020, 2, 29), dt.date(2019, 12, 31), None, dt.date(2020, 3, 1)],
        "mixed": [1, "two", 3.5, None, dt.datetime(2020, 1, 2, 3, 4, 5), True],
    })
    members = pd.DataFrame({"household_id": ["522701010010001"] * 3, "member_no": [1, 2, 3],
                            "name": ["王伟", "李芳", "张 娜 "]})
    assert len(main) == n
    return [("hh_registered", main), ("members", members), ("empty", main.iloc[:0])]


@pytest.mark.parametrize("read_only", [True, False])
def test_direct_xlsx_reads_back_as_the_xlsxwriter_book(tmp_path, read_only):
    sheets = _frames()
    _xlsxwriter_book(tmp_path / "old.xlsx", sheets)
    _write_xlsx(tmp_path / "new.xlsx", sheets, dt.datetime(2020, 1, 1))
    assert _cells(tmp_path / "new.xlsx", read_only) == _cells(tmp_path / "old.xlsx", read_only)


def test_direct_xlsx_reads_back_as_the_xlsxwriter_book_with_calamine(tmp_path):
    calamine = pytest.importorskip("python_calamine")
    sheets = _frames()
    _xlsxwriter_book(tmp_path / "old.xlsx", sheets)
    _write_xlsx(tmp_path / "new.xlsx", sheets, dt.datetime(2020, 1, 1))

    def cells(path):
        wb = calamine.CalamineWorkbook.from_path(str(path))
        return {name: [[(type(v).__name__, v) for v in row] for row in wb.get_sheet_by_name(name).to_python()]
                for name in wb.sheet_names}

    assert cells(tmp_path / "new.xlsx") == cells(tmp_path / "old.xlsx")


def test_direct_xlsx_is_deterministic_and_readable_by_pandas(tmp_path):
    sheets = _frames()
    _write_xlsx(tmp_path / "a.xlsx", sheets, dt.datetime(2020, 1, 1))
    _write_xlsx(tmp_path / "b.xlsx", sheets, dt.datetime(2020, 1, 1))
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    back = pd.read_excel(tmp_path / "a.xlsx", sheet_name=None, engine="openpyxl")
    assert list(back) == ["hh_registered", "members", "empty"]
    assert back["members"]["name"].tolist() == ["王伟", "李芳", "张 娜 "]
    assert back["hh_registered"]["start"].iloc[0] == pd.Timestamp("2020-01-06 08:41:07")


def test_direct_xlsx_refuses_infinity_like_xlsxwriter(tmp_path):
    df = pd.DataFrame({"x": [1.0, np.inf]})
    with pytest.raises(TypeError):
        _write_xlsx(tmp_path / "inf.xlsx", [("s", df)], dt.datetime(2020, 1, 1))
