"""The Chinese validation report reads back with the right headers, rows and counts."""
import openpyxl
import pandas as pd
import pytest

from _survey_fixtures import households
from survey.errors import SurveyError
from survey.validate import ISSUE_COLUMNS, validate
from survey.validation_report import PROBLEM_HEADERS, write_validation_report


@pytest.fixture(scope="module")
def result():
    main, roster = households(3)
    main.loc[1, "register_status"] = "9"
    main.loc[2, "enumerator_2"] = None
    roster.loc[4, "age"] = "abc<&>\x01"
    return validate("hh_registered", main, {"members": roster}, file="村A.csv")


def test_report_reads_back(tmp_path, result):
    path = write_validation_report(result, tmp_path / "r.xlsx", file_name="村A.csv",
                                   counts={"duplicates_skipped": 1})
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "问题清单"]
    ws = wb["问题清单"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == PROBLEM_HEADERS == ["文件", "行号", "表", "户编码", "字段", "规则", "问题", "发现的值",
                                                "如何修改", "严重程度"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:J4"
    body = rows[1:]
    assert len(body) == 3
    by_rule = {r[5]: r for r in body}
    choice = by_rule["不在选项中"]
    assert choice[:5] == ("村A.csv", 3, "主表（脱贫户/建档立卡户问卷）", "5201020010010002",
                          "户类型（建档立卡状态） [register_status]")
    assert choice[7] == "9" and choice[9] == "错误" and "1 已脱贫" in choice[8]
    age = by_rule["类型不符"]
    assert age[1] == 6 and age[2] == "家庭成员花名册" and age[7] == "abc<&>"    # control character dropped
    assert by_rule["调查员两人一组"][9] == "警告"
    summary = {r[0]: r[1] for r in wb["汇总"].iter_rows(values_only=True) if r[0]}
    assert summary["文件"] == "村A.csv" and summary["读入行数"] == 3 and summary["隔离"] == 1
    assert summary["接收"] == 2 and summary["重复跳过"] == 1 and summary["错误数"] == 2 and summary["警告数"] == 1
    assert summary["不在选项中"] == "错误"


def test_report_from_an_issues_table_and_empty(tmp_path, result):
    path = write_validation_report(result.issues, tmp_path / "a.xlsx", file_name="f.csv",
                                   counts={"读入行数": 10, "接收": 10, "隔离": 0})
    summary = {r[0]: r[1] for r in openpyxl.load_workbook(path)["汇总"].iter_rows(values_only=True) if r[0]}
    assert summary["读入行数"] == 10 and summary["错误数"] == 2
    empty = pd.DataFrame(columns=ISSUE_COLUMNS)
    path = write_validation_report(empty, tmp_path / "e.xlsx", file_name="f.csv", counts={"rows": 0})
    wb = openpyxl.load_workbook(path)
    assert list(wb["问题清单"].iter_rows(values_only=True)) == [tuple(PROBLEM_HEADERS)]
    with pytest.raises(SurveyError):
        write_validation_report("nonsense", tmp_path / "x.xlsx")


def test_file_level_issue_has_no_row_number(tmp_path):
    main, roster = households(2)
    res = validate("hh_registered", main.drop(columns="wage_income"), {"members": roster})
    path = write_validation_report(res, tmp_path / "m.xlsx", file_name="f.csv")
    body = list(openpyxl.load_workbook(path)["问题清单"].iter_rows(values_only=True))[1:]
    assert body[0][1] == "整列" and body[0][4] == "工资性收入（元） [wage_income]"


def test_a_long_problem_list_is_written_in_blocks_with_every_line_in_order(tmp_path, result, monkeypatch):
    """Problem lines are turned into sheet XML a block at a time (memory stays bounded): cut into blocks of 1,100,
    6,000 lines read back exactly as written in one block."""
    from survey import validation_report

    issues = pd.concat([result.issues] * 2000, ignore_index=True)   # 6,000 problems
    whole = write_validation_report(issues, tmp_path / "one.xlsx", file_name="f.csv")
    monkeypatch.setattr(validation_report, "_BLOCK", 1100)
    cut = write_validation_report(issues, tmp_path / "cut.xlsx", file_name="f.csv")
    rows = [list(openpyxl.load_workbook(p, read_only=True)["问题清单"].iter_rows(values_only=True))
            for p in (whole, cut)]
    assert len(rows[1]) == 6001 and rows[0] == rows[1]
    assert [r[5] for r in rows[1][1:4]] == result.issues["rule_zh"].tolist()