"""XLSForm in and out, the codebook workbook, and the `tpa codebook` verbs."""
import json

import openpyxl
import pandas as pd
import pytest

from _survey_fixtures import households
from survey.codebook import INSTRUMENTS, load_codebook
from survey.errors import CodebookError
from survey.validate import validate
from survey.xlsform import codebook_from_xlsform, write_codebook_xlsx, write_xlsform
from tpa.cli import main as tpa_main


def _norm(d):
    d = dict(d)
    d.pop("source")
    return d


@pytest.mark.parametrize("name", INSTRUMENTS)
def test_round_trip_gives_the_same_codebook(tmp_path, name):
    cb = load_codebook(name)
    back = codebook_from_xlsform(write_xlsform(cb, tmp_path / "f.xlsx"))
    assert _norm(back.to_dict()) == _norm(cb.to_dict())
    assert back.notes == []


def test_exported_xlsform_is_valid_for_pyxform(tmp_path):
    pyxform = pytest.importorskip("pyxform.xls2xform")
    path = write_xlsform("hh_registered", tmp_path / "hh.xlsx")
    warnings = pyxform.xls2xform_convert(xlsform_path=str(path), xform_path=str(tmp_path / "hh.xml"),
                                         validate=False)
    assert warnings == []
    xml = (tmp_path / "hh.xml").read_text(encoding="utf-8")
    assert "<members" in xml and "<household_id" in xml and "jr:constraintMsg" in xml


def _xlsform(tmp_path, survey, choices, settings=None, name="form.xlsx"):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "survey"
    for row in survey:
        ws.append(row)
    wc = wb.create_sheet("choices")
    for row in choices:
        wc.append(row)
    if settings:
        st = wb.create_sheet("settings")
        for row in settings:
            st.append(row)
    path = tmp_path / name
    wb.save(path)
    return path


SURVEY = [
    ["type", "name", "label::Chinese (zh)", "label::English (en)", "required", "relevant", "constraint",
     "constraint_message::Chinese (zh)", "calculation"],
    ["start", "interview_start", "", "", "", "", "", "", ""],
    ["begin group", "base", "基础信息", "Basics", "", "", "", "", ""],
    ["text", "household_id", "户编码", "HH id", "yes", "", "regex(., '^[0-9]{16}$')", "", ""],
    ["select_one status", "register_status", "户类型", "Status", "true()", "", "", "", ""],
    ["integer", "exit_year", "脱贫年份", "Exit year", "yes", "${register_status} = '1'",
     ". >= 2014 and . <= 2020", "2014至2020", ""],
    ["end group", "", "", "", "", "", "", "", ""],
    ["geopoint", "gps", "位置", "GPS", "", "", "", "", ""],
    ["note", "n1", "说明", "", "", "", "", "", ""],
    ["integer", "declared_size", "户籍人口数", "", "yes", "", ". > 0", "", ""],
    ["calculate", "double", "", "", "", "", "", "", "${declared_size} * 2"],
    ["begin repeat", "members", "家庭成员", "Members", "", "", "", "", ""],
    ["integer", "member_no", "序号", "", "yes", "", "", "", ""],
    ["select_multiple health", "health", "健康", "", "", "count(${members}) > 0", "", "", ""],
    ["begin repeat", "jobs", "工作", "", "", "", "", "", ""],
    ["text", "job", "工作", "", "", "", "", "", ""],
    ["end repeat", "", "", "", "", "", "", "", ""],
    ["end repeat", "", "", "", "", "", "", "", ""],
    ["barcode", "code", "条码", "", "", "", "", "", ""],
]
CHOICES = [["list_name", "name", "label::Chinese (zh)", "label::English (en)"],
           ["status", "1", "已脱贫", "exited"], ["status", "2", "未脱贫", "not exited"],
           ["health", "1", "健康", "healthy"], ["health", "2", "慢性病", "chronic"]]


def test_codebook_from_an_assessments_own_xlsform(tmp_path):
    path = _xlsform(tmp_path, SURVEY, CHOICES, [["form_title", "form_id"], ["我的问卷", "my_form"]])
    cb = codebook_from_xlsform(path)
    assert cb.name == "my_form" and cb.label_zh == "我的问卷" and cb.key == "household_id"
    assert list(cb.variables) == ["interview_start", "household_id", "register_status", "exit_year", "gps",
                                  "declared_size", "code"]
    v = cb.variables
    assert v["interview_start"].type == "datetime"
    assert (v["household_id"].type, v["household_id"].pattern, v["household_id"].section) == (
        "code", "^[0-9]{16}$", "基础信息")
    assert v["register_status"].choices == {"1": "已脱贫", "2": "未脱贫"} and v["register_status"].required
    e = v["exit_year"]
    assert (e.min, e.max, e.constraint, e.relevant, e.constraint_message_zh, e.label_zh) == (
        2014, 2020, None, "${register_status} = '1'", "2014至2020", "脱贫年份")
    assert v["declared_size"].constraint == ". > 0"
    assert v["gps"].type == "text" and v["code"].type == "text"
    g = cb.repeats["members"]
    assert g.key == ("household_id", "member_no") and list(g.variables) == ["household_id", "member_no", "health"]
    assert g.variables["health"].type == "select_multiple" and g.variables["health"].relevant is None
    assert [c.name for c in cb.calculations][:1] == ["double"]
    notes = " ".join(cb.notes)
    for word in ("geopoint", "nested repeat", "relevant of 'health'"):
        assert word in notes, notes
    # Not a shipped instrument by name, but most of hh_registered's rules need questions it lacks.
    assert cb.instrument is None


def test_xlsform_codebook_validates_data(tmp_path):
    path = _xlsform(tmp_path, SURVEY, CHOICES)
    cb = codebook_from_xlsform(path)
    main = pd.DataFrame({"household_id": ["5201020010010001", "5201020010010002"], "register_status": ["1", "2"],
                         "exit_year": ["2013", "2018"], "declared_size": ["3", "0"]})
    res = validate(cb, main)
    got = sorted(zip(res.issues["row"], res.issues["field"], res.issues["rule"]))
    assert got == [(2, "exit_year", "range"), (3, "declared_size", "constraint"), (3, "exit_year", "skip")]


def test_shipped_instrument_rules_follow_a_custom_form(tmp_path):
    cb = load_codebook("hh_registered")
    # A form that keeps a subset of the questions: drop the income items.
    path = write_xlsform(cb, tmp_path / "full.xlsx")
    wb = openpyxl.load_workbook(path)
    for sheet in [s for s in wb.sheetnames if s.startswith("tpa_")]:
        del wb[sheet]
    ws = wb["survey"]
    drop = [r for r in range(2, ws.max_row + 1) if ws.cell(r, 2).value in ("wage_income", "net_income_declared")]
    for r in reversed(drop):
        ws.delete_rows(r)
    wb["settings"]["B2"] = "hh_registered"
    wb.save(tmp_path / "custom.xlsx")
    custom = codebook_from_xlsform(tmp_path / "custom.xlsx")
    ids = {r.id for r in custom.rules}
    assert custom.instrument == "hh_registered"
    assert "roster_size" in ids and "income_total_mismatch" not in ids and "exited_income_below_line" not in ids
    assert any("income_total_mismatch" in n for n in custom.notes)
    assert custom.variables["phone"].personal


@pytest.mark.parametrize("survey,choices,match", [
    ([["type", "name"], ["text", "x"]], [["list_name", "name", "label"]], "household_id or village_code"),
    ([["type", "name"], ["text", "household_id"], ["select_one nolist", "s"]], [["list_name", "name", "label"]],
     "nolist"),
    ([["type", "name"], ["text", "household_id"], ["text", "household_id"]], [["list_name", "name"]], "twice"),
    ([["kind", "label"], ["text", "x"]], [["list_name", "name"]], "type and name"),
])
def test_broken_xlsforms_are_refused(tmp_path, survey, choices, match):
    with pytest.raises(CodebookError, match=match):
        codebook_from_xlsform(_xlsform(tmp_path, survey, choices))


def test_not_an_xlsx(tmp_path):
    p = tmp_path / "x.xlsx"
    p.write_text("not a workbook")
    with pytest.raises(CodebookError, match="cannot read"):
        load_codebook(p)


def test_codebook_workbook_has_chinese_headers(tmp_path):
    path = write_codebook_xlsx("hh_registered", tmp_path / "cb.xlsx")
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["变量", "选项", "一致性规则", "计算项"]
    rows = list(wb["变量"].iter_rows(values_only=True))
    assert list(rows[2][:7]) == ["变量名", "题目", "类型", "取值范围", "必答", "跳转条件", "约束"]
    names = [r[0] for r in rows[3:]]
    assert names[:2] == ["household_id", "village_code"] and "member_no" in names
    exit_row = next(r for r in rows[3:] if r[0] == "exit_year")
    assert exit_row[2:6] == ("整数", "2014–2020", "是", "${register_status} = 1")
    choices = list(wb["选项"].iter_rows(values_only=True))
    assert choices[0] == ("选项列表", "代码", "标签") and ("register_status", "1", "已脱贫") in choices


def test_cli_export_and_show(tmp_path, capsys):
    assert tpa_main(["codebook", "export", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["written"]) == 6 and out["codebooks"] == list(INSTRUMENTS)
    xf = tmp_path / "hh_registered_xlsform.xlsx"
    assert tpa_main(["codebook", "export", "--xlsform", str(xf), "--out", str(tmp_path / "b"),
                     "--format", "xlsx"]) == 0
    assert (tmp_path / "b" / "hh_registered_codebook.xlsx").exists()
    assert tpa_main(["codebook", "show", "village"]) == 0
    assert "persons_exited" in capsys.readouterr().out
    assert tpa_main(["codebook", "show", str(xf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["key"] == "household_id"
    assert tpa_main(["codebook", "show", "nothing"]) == 2
    assert "unknown codebook" in capsys.readouterr().err
