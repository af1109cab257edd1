"""Codebooks as data: the shipped instruments load, agree with the data contracts, and bad files are refused."""
import pytest

from survey.codebook import INSTRUMENTS, load_codebook
from survey.errors import CodebookError

# docs/CONTRACTS.md "Questionnaires": the household instrument's columns.
HOUSEHOLD_COLUMNS = """household_id village_code county_code province_code interview_start interview_end enumerator_1
enumerator_2 gps_lat gps_lon head_name head_id_number phone register_status exit_year declared_size resident_size
net_income_declared wage_income business_income business_cost property_income transfer_income exit_year_income_pc
food_regular_protein food_stable clothing_seasonal clothing_donation house_grade house_renovated water_litres
water_quality_ok water_piped water_round_trip_min water_interrupt_days causes measures rl_vehicle_value
rl_commercial_housing rl_company rl_empty_registration sat_policy sat_measures sat_results sat_exit sat_cadres
dibao dangerous_house chronic_illness no_labour elderly_alone""".split()
PERSON_COLUMNS = """person_id household_id member_no name id_number relation sex age ethnicity education in_school
school_exempt health labour migrant_months insurance insurance_exempt public_servant village_committee""".split()
VILLAGE_COLUMNS = """village_code county_code interview_date households persons persons_registered persons_exited
persons_nonregistered poor_village remote terrain""".split()


def test_instruments_load_with_contract_columns():
    assert INSTRUMENTS == ("hh_registered", "hh_nonregistered", "village")
    reg = load_codebook("hh_registered")
    assert reg.name == "hh_registered" and reg.key == "household_id" and reg.label_zh == "脱贫户/建档立卡户问卷"
    assert set(reg.variables) == set(HOUSEHOLD_COLUMNS)
    assert set(reg.repeats) == {"members"} and reg.repeats["members"].key == ("household_id", "member_no")
    assert set(reg.repeats["members"].variables) == set(PERSON_COLUMNS)
    non = load_codebook("hh_nonregistered")
    assert non.label_zh == "非建档立卡户问卷"
    assert set(non.variables) == set(HOUSEHOLD_COLUMNS) - {"exit_year", "exit_year_income_pc", "causes", "sat_exit"}
    assert non.variables["register_status"].choices == {"5": "一般户", "6": "边缘户"}
    assert reg.variables["register_status"].choices == {"1": "已脱贫", "2": "未脱贫", "3": "当年拟脱贫", "4": "监测户"}
    vil = load_codebook("village")
    assert vil.key == "village_code" and set(vil.variables) == set(VILLAGE_COLUMNS) and not vil.repeats


def test_variable_attributes():
    cb = load_codebook("hh_registered")
    v = cb.variables["exit_year"]
    assert (v.type, v.min, v.max, v.required, v.relevant) == ("integer", 2014, 2020, True, "${register_status} = 1")
    causes = cb.variables["causes"]
    assert causes.type == "select_multiple" and "因病" in causes.choices and len(causes.choices) == 11
    assert len(cb.variables["measures"].choices) == 11
    assert cb.personal_columns() >= {"head_name", "head_id_number", "phone", "gps_lat", "gps_lon", "name",
                                     "id_number"}
    assert cb.repeats["members"].variables["migrant_months"].max == 12
    assert cb.variables["register_status"].numeric_codes and not cb.variables["house_grade"].numeric_codes


def test_rules_carry_chinese_message_and_fix():
    for name in INSTRUMENTS:
        cb = load_codebook(name)
        for r in cb.rules:
            assert r.severity in ("error", "warning")
            assert any("\u4e00" <= ch <= "\u9fff" for ch in r.message_zh + r.fix_zh + r.rule_zh), r.id
    ids = {r.id for r in load_codebook("hh_registered").rules}
    assert {"roster_size", "head_count", "head_spouse_same_sex", "interview_end_before_start",
            "income_total_mismatch", "exited_income_below_line", "cause_illness_nobody_ill"} <= ids
    assert "exited_income_below_line" not in {r.id for r in load_codebook("hh_nonregistered").rules}


def test_match_score():
    cb = load_codebook("hh_registered")
    assert cb.match_score(HOUSEHOLD_COLUMNS) == 1.0
    assert cb.match_score(["household_id", "x"]) == pytest.approx(1 / len(cb.variables))
    assert cb.repeats["members"].match_score(PERSON_COLUMNS) == 1.0


def test_loading_returns_independent_objects():
    a = load_codebook("village")
    a.variables["persons"].max = 1
    assert load_codebook("village").variables["persons"].max == 500000


def _write(tmp_path, text, name="cb.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD = """
name: mini
label_zh: 小问卷
key: household_id
choice_lists: {yesno: {0: 否, 1: 是}}
variables:
  - {name: household_id, type: code, label_zh: 户编码, pattern: '^[0-9]{16}$', required: true}
  - {name: ok, type: select_one, choices: yesno, label_zh: 是否}
  - {name: n, type: integer, label_zh: 人数, min: 0, max: 9, relevant: "${ok} = 1"}
rules:
  - {id: r1, rule_zh: 测试, severity: warning, when: "${n} > 5", field: n, message_zh: 人多, fix_zh: 核对}
"""


def test_yaml_codebook_file(tmp_path):
    cb = load_codebook(_write(tmp_path, GOOD))
    assert cb.name == "mini" and list(cb.variables) == ["household_id", "ok", "n"] and cb.rules[0].id == "r1"


@pytest.mark.parametrize("change,match", [
    (("type: integer, label_zh: 人数", "type: number, label_zh: 人数"), "unknown type"),
    (("choices: yesno", "choices: nolist"), "choice list 'nolist'"),
    (("min: 0, max: 9", "min: 10, max: 9"), "above max"),
    (('relevant: "${ok} = 1"', 'relevant: "${okk} = 1"'), "unknown okk"),
    (('relevant: "${ok} = 1"', 'relevant: "${ok} = = 1"'), "relevant of 'n'"),
    (("severity: warning", "severity: fatal"), "severity"),
    (("key: household_id", "key: hh"), "key 'hh'"),
    (("field: n,", "field: zz,"), "field 'zz'"),
    (("label_zh: 是否}", "label_zh: 是否, colour: red}"), "unknown fields"),
    (("name: mini", "name: [mini"), "not valid YAML"),
])
def test_bad_codebook_files_are_refused(tmp_path, change, match):
    with pytest.raises(CodebookError, match=match):
        load_codebook(_write(tmp_path, GOOD.replace(*change)))


def test_unknown_names():
    with pytest.raises(CodebookError, match="unknown codebook"):
        load_codebook("hh_unknown")
    with pytest.raises(CodebookError, match="not found"):
        load_codebook("/nonexistent/cb.yaml")
