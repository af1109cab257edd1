"""Resident ID numbers (居民身份证号码, GB 11643-1999): 18 characters.

Layout: 6-digit region code (the county of first registration), 8-digit birth date YYYYMMDD, 3-digit sequence
number (odd for men, even for women), and a check character: ISO 7064 MOD 11-2 over the first 17 digits with
weights 2^(17-i) mod 11, the remainder mapped through "10X98765432".

Everything that runs over a register (millions of rows) is vectorised on fixed-width byte arrays.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_MAP = "10X98765432"
_CHECK_BYTES = np.frombuffer(CHECK_MAP.encode("ascii"), dtype=np.uint8)

# Birth years outside this window are typing errors (GB 11643 itself prints an example born in 1880).
MIN_BIRTH_YEAR = 1800
MAX_BIRTH_YEAR = 2030

PROBLEM_TEXT_ZH = {
    "missing": "身份证号码为空",
    "length": "身份证号码长度不是18位",
    "characters": "身份证号码含非法字符（前17位须为数字，末位为数字或X）",
    "birth_date": "身份证号码中的出生日期无效",
    "check_digit": "身份证号码校验位错误",
}
FIX_TEXT_ZH = {
    "missing": "补填18位身份证号码",
    "length": "核对并补全18位身份证号码（15位旧号码须升位）",
    "characters": "核对身份证号码，删除空格、全角字符等；末位小写x改为大写X",
    "birth_date": "核对身份证号码第7至14位的出生日期",
    "check_digit": "逐位核对身份证号码，可能有一位录错",
}


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"need exactly 17 ASCII digits, got {first17!r}")
    total = sum(int(c) * int(w) for c, w in zip(first17, WEIGHTS))
    return CHECK_MAP[total % 11]


def is_valid_id_number(s) -> bool:
    """True when ``s`` is an 18-character resident ID number with a valid birth date and check digit."""
    if not isinstance(s, str):
        return False
    return id_number_problems(pd.Series([s], dtype=object)).iloc[0] is None


def _as_bytes_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of ASCII strings of exactly ``width`` characters."""
    fixed = values.astype(f"S{width}")
    return np.frombuffer(fixed.tobytes(), dtype=np.uint8).reshape(len(values), width)


# Problem codes of id_number_problem_codes, in the order they are checked (0: valid).
PROBLEMS = (None, "missing", "length", "characters", "birth_date", "check_digit")
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int16)


def id_number_problems(series: pd.Series) -> pd.Series:
    """Per row None (valid) or the first problem: "missing", "length", "characters", "birth_date", "check_digit".

    Lower-case "x" as the last character counts as a problem of "characters": the standard prescribes a capital X,
    and registers that mix both defeat duplicate checks.
    """
    series = pd.Series(series)
    codes = id_number_problem_codes(series)
    return pd.Series(np.array(PROBLEMS, dtype=object)[codes], index=series.index, dtype=object)


def id_number_problem_codes(series: pd.Series) -> np.ndarray:
    """id_number_problems as int8 positions in PROBLEMS (0 = valid): no Python object per row, so a caller can
    test the usual all-valid case with one comparison."""
    series = pd.Series(series)
    out = np.zeros(len(series), dtype=np.int8)
    if len(series) == 0:
        return out
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = series.isna().to_numpy().copy()
    # Arrow kernels for trimming, length and ASCII: Python loops over a million IDs cost ~0.7 s
    pa_arr = getattr(series.array, "_pa_array", None)
    if pa_arr is not None and (pa.types.is_string(pa_arr.type) or pa.types.is_large_string(pa_arr.type)):
        arr = pa_arr.combine_chunks()
    else:
        arr = pa.array(series.astype("string").to_numpy(dtype=object, na_value=None), type=pa.string())
    arr = pc.utf8_trim_whitespace(pc.fill_null(arr.cast(pa.string()), ""))
    lengths = pc.utf8_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    ascii_ok = pc.string_is_ascii(arr).to_numpy(zero_copy_only=False)
    missing |= lengths == 0
    out[missing] = 1
    length_bad = ~missing & (lengths != 18)
    out[length_bad] = 2
    cand = ~missing & ~length_bad
    non_ascii = cand & ~ascii_ok
    out[non_ascii] = 3
    cand &= ascii_ok
    idx = np.flatnonzero(cand)
    if len(idx) == 0:
        return out
    picked = arr.filter(pa.array(cand)) if len(idx) < len(arr) else arr
    offsets = np.frombuffer(picked.buffers()[1], dtype=np.int32)[picked.offset:picked.offset + len(picked) + 1]
    data = np.frombuffer(picked.buffers()[2], dtype=np.uint8)
    mat = data[offsets[0]:offsets[-1]].reshape(len(idx), 18)   # all picked values are 18 ASCII bytes
    # digit values in uint8: anything but '0'..'9' wraps to 10 or more
    body = mat[:, :17] - np.uint8(48)
    last = mat[:, 17]
    body_digits = (body <= 9).all(axis=1)
    last_ok = (last - np.uint8(48) <= 9) | (last == ord("X"))
    chars_bad = ~(body_digits & last_ok)
    out[idx[chars_bad]] = 3
    if chars_bad.any():
        ok = ~chars_bad
        idx2, body, last = idx[ok], body[ok], last[ok]
    else:
        idx2 = idx
    b = body.astype(np.int16)
    year = b[:, 6] * 1000 + b[:, 7] * 100 + b[:, 8] * 10 + b[:, 9]
    month = b[:, 10] * 10 + b[:, 11]
    day = b[:, 12] * 10 + b[:, 13]
    date_ok = (year >= MIN_BIRTH_YEAR) & (year <= MAX_BIRTH_YEAR) & (month >= 1) & (month <= 12) & (day >= 1)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    max_day = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    date_ok &= day <= max_day
    out[idx2[~date_ok]] = 4
    # the weighted sum is at most 17 * 9 * 10: exact in float32, and BLAS does the product
    total = (body.astype(np.float32) @ WEIGHTS.astype(np.float32)).astype(np.int64)
    expected = _CHECK_BYTES[total % 11]
    check_bad = date_ok & (expected != last)
    out[idx2[check_bad]] = 5
    return out


def make_id_numbers(region_codes, birth_dates, seq=None, rng=None, *, sex=None) -> np.ndarray:
    """Vectorised valid ID numbers.

    region_codes: 6-digit strings (the county code); birth_dates: datetime64 values or 'YYYYMMDD' strings;
    seq: 3-digit sequence numbers 0..999 (drawn with ``rng`` when None; when ``sex`` (1 male, 2 female) is
    given the drawn numbers get the matching parity: odd for men, even for women).
    Returns an object array of 18-character strings.
    """
    regions = np.asarray(region_codes).astype("U6")
    n = len(regions)
    dates = np.asarray(birth_dates)
    if np.issubdtype(dates.dtype, np.datetime64):
        ymd = pd.DatetimeIndex(dates).strftime("%Y%m%d").to_numpy(dtype="U8")
    else:
        ymd = dates.astype("U8")
    if seq is None:
        if rng is None:
            raise ValueError("give seq or rng")
        seq = rng.integers(0, 500, size=n) * 2
        if sex is not None:
            seq = seq + (np.asarray(sex) == 1)
    seq = np.asarray(seq, dtype=np.int64) % 1000
    first = np.char.add(np.char.add(regions, ymd), np.char.zfill(seq.astype("U3"), 3))
    mat = _as_bytes_matrix(first, 17).astype(np.int64) - 48
    checks = np.array(list(CHECK_MAP), dtype="U1")[(mat @ WEIGHTS) % 11]
    return np.char.add(first, checks).astype(object)
