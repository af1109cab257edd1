"""Personal data in leadership outputs (SPEC §8) and the half-up display rounding (SPEC §2, §7)."""
from decimal import Decimal

import pytest

from reports.formatting import count, half_up, interval_text, num, official_display, pct, threshold_text, zero_display
from reports.masking import (coarsen_gps, find_personal_data, mask_id, mask_name, mask_phone, mask_record,
                             scrub_text)


def test_id_keeps_region_and_last_four():
    assert mask_id("52010219850312123X") == "520102********123X"
    assert mask_id("520102850312123") == "520102*****2123"      # old 15-digit numbers too
    assert mask_id(None) == "" and mask_id("") == ""
    assert len(mask_id("52010219850312123X")) == 18


def test_names_keep_only_the_surname():
    assert mask_name("张三") == "张**"
    assert mask_name("张三丰") == "张**"          # the mask does not reveal the length
    assert mask_name("欧阳娜娜") == "欧阳**"       # compound surname kept whole
    assert mask_name("王<b>小明</b>") == "王**"    # markup in a name goes with the name
    assert mask_name(float("nan")) == ""


def test_phones():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138 1234 5678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("0851-86801234") == "0851-****1234"


def test_gps_coarsened_to_a_tenth_of_a_degree():
    assert coarsen_gps(26.64712) == 26.6
    assert coarsen_gps(106.65) == 106.7             # half-up, not banker's rounding
    assert coarsen_gps(None) is None


def test_free_text_scrubbed():
    text = "户主张三丰，身份证52010219850312123X，电话13812345678/0851-86801234，户编号5201020010010007"
    out = scrub_text(text, names=["张三丰"])
    assert "张三丰" not in out and "张**" in out
    assert "52010219850312123X" not in out and "520102********123X" in out
    assert "13812345678" not in out and "138****5678" in out
    assert "0851-86801234" not in out
    assert "5201020010010007" in out                 # a household code is not personal data
    assert find_personal_data(out) == []


def test_find_personal_data_flags_full_numbers_only():
    assert find_personal_data("身份证 52010219850312123X") == ["52010219850312123X"]
    assert find_personal_data("电话 139 8765 4321") == ["139 8765 4321"]
    # person_id = household_id + member number: 18 digits but no birth date in it
    assert find_personal_data("520102001001000701") == []
    assert find_personal_data("520102********123X 138****5678") == []


def test_mask_record_is_complete_and_idempotent():
    raw = {"head_name": "李四", "head_id_number": "520102197002023456", "phone": "15900001111",
           "gps_lat": 26.6471, "gps_lon": 106.6302, "comment": "李四说电话15900001111", "reasons": ["李四 收入低"]}
    once = mask_record(raw)
    assert once["head_name"] == "李**" and once["head_id_number"] == "520102********3456"
    assert once["phone"] == "159****1111" and once["gps_lat"] == 26.6 and once["gps_lon"] == 106.6
    assert "李四" not in once["comment"] and "15900001111" not in once["comment"]
    assert once["reasons"] == ["李** 收入低"]
    assert mask_record(once) == once
    assert raw["head_name"] == "李四"                 # the input is not modified


@pytest.mark.parametrize("value, text", [
    (0.00125, "0.13%"),        # Python round(0.125, 2) gives 0.12: half-up must give 0.13
    (0.0002675, "0.03%"),
    (0.02, "2.00%"),
    (0.9, "90.00%"),
    (0.0, "0.00%"),
    (-0.0, "0.00%"),
    (None, "—"),
    (float("nan"), "—"),
])
def test_percent_half_up(value, text):
    assert pct(value) == text


def test_numbers_and_helpers():
    assert half_up(2.675, 2) == Decimal("2.68")      # binary 2.67499… but its shortest repr is 2.675
    assert num(12345.675, 2) == "12,345.68"
    assert count(7650) == "7,650" and count(12.5) == "12.50"
    assert threshold_text("<=", 0.02) == "≤ 2.00%" and threshold_text(">=", None) == "—"
    assert interval_text(0.001, 0.0234) == "[0.10%, 2.34%]"
    assert zero_display(0.0029) == "0（95%置信上限 0.29%）"
    ind = {"numerator": 0.0, "official": 0.0, "zero_upper": 0.0036789}
    assert official_display(ind) == "0（95%置信上限 0.37%）"
    assert official_display({"numerator": 3.0, "official": 0.00125, "zero_upper": None}) == "0.13%"
