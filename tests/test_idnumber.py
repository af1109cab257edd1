import numpy as np
import pandas as pd
import pytest

from sampling.idnumber import check_digit, id_number_problems, is_valid_id_number, make_id_numbers

# The two examples printed in GB 11643-1999. Check digits by hand:
# 11010519491231002: Σ digit×weight = 167, 167 mod 11 = 2 → "X";
# 44052418800101001: Σ = 195, 195 mod 11 = 8 → "4".
EXAMPLES = ["11010519491231002X", "440524188001010014"]


def test_check_digit_of_published_examples():
    assert check_digit("11010519491231002") == "X"
    assert check_digit("44052418800101001") == "4"


def test_check_digit_rejects_non_digits():
    with pytest.raises(ValueError):
        check_digit("1101051949123100")
    with pytest.raises(ValueError):
        check_digit("1101051949123100A")


def test_published_examples_are_valid():
    for s in EXAMPLES:
        assert is_valid_id_number(s)
    assert not is_valid_id_number(None)
    assert not is_valid_id_number(110105194912310021)


def test_mutations_are_caught_with_the_right_code():
    cases = {
        "11010519491231002X": None,
        "110105194912310021": "check_digit",       # wrong check character
        "11010519491231003X": "check_digit",       # one digit changed
        "11010519491231002x": "characters",        # lower-case x
        "1101051949123100": "length",
        "11010519491231002XX": "length",
        "11O10519491231002X": "characters",        # letter O for zero
        "１１０１０５１９４９１２３１００２Ｘ": "characters",  # full-width digits
        "110105194913310028": "birth_date",        # month 13
        "110105190002290015": "birth_date",        # 1900 was not a leap year
        "": "missing",
    }
    got = id_number_problems(pd.Series(list(cases), index=range(10, 10 + len(cases))))
    assert list(got.index) == list(range(10, 10 + len(cases)))
    assert list(got) == list(cases.values())
    assert id_number_problems(pd.Series([None, np.nan], dtype=object)).tolist() == ["missing", "missing"]


def test_leap_day_accepted():
    first = "11010520000229001"
    assert is_valid_id_number(first + check_digit(first))


def test_make_id_numbers_valid_and_parity_follows_sex():
    rng = np.random.default_rng(5)
    n = 2000
    regions = np.array(["520102", "410522"] * (n // 2))
    births = pd.to_datetime("1930-01-01") + pd.to_timedelta(rng.integers(0, 32000, n), unit="D")
    sex = rng.integers(1, 3, n)
    ids = make_id_numbers(regions, births.to_numpy(), rng=rng, sex=sex)
    assert id_number_problems(pd.Series(ids)).isna().all()
    assert all(i[:6] == r for i, r in zip(ids, regions))
    assert all(i[6:14] == b.strftime("%Y%m%d") for i, b in zip(ids, births))
    parity = np.array([int(i[16]) % 2 for i in ids])
    assert np.array_equal(parity == 1, sex == 1)


def test_make_id_numbers_with_explicit_sequence_reproduces_example():
    ids = make_id_numbers(["110105"], ["19491231"], seq=[2])
    assert list(ids) == ["11010519491231002X"]
