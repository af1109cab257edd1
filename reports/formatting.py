"""Number formatting of the reports: percentages and numbers rounded half-up (SPEC §2, §7), never Python round.

Every function takes ``None``/NaN and returns "—", so templates never print "nan" or "None".
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

DASH = "—"


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, float) and math.isnan(value) or (hasattr(value, "__float__")
                                                                   and math.isnan(float(value)))
    except (TypeError, ValueError):
        return True


def half_up(value, decimals: int = 2) -> Decimal:
    """``value`` rounded half-up to ``decimals`` places, from the shortest decimal repr of the float."""
    d = Decimal(repr(float(value))) if not isinstance(value, Decimal) else value
    return d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def pct(value, decimals: int = 2) -> str:
    """A proportion as a percentage: 0.012345 → '1.23%'."""
    if _missing(value):
        return DASH
    d = half_up(Decimal(repr(float(value))) * 100, decimals)
    if d == 0:
        d = abs(d)          # no "-0.00%"
    return f"{d}%"


def pct_plain(value, decimals: int = 2) -> str:
    """A proportion as a percentage without the sign (for table cells headed "%")."""
    return pct(value, decimals).rstrip("%")


def num(value, decimals: int = 0, *, thousands: bool = True) -> str:
    """A number with fixed decimals, half-up, optional thousands separator: 12345.678 → '12,345.68'."""
    if _missing(value):
        return DASH
    d = half_up(value, decimals)
    if d == 0:
        d = abs(d)
    text = f"{d:,}" if thousands else f"{d}"
    return text


def count(value) -> str:
    """A count (persons, households): integers without decimals; a fractional count keeps 2 decimals."""
    if _missing(value):
        return DASH
    v = float(value)
    return num(v, 0) if v.is_integer() else num(v, 2)


def threshold_text(direction: str | None, threshold) -> str:
    """'≤ 2.00%' / '≥ 90.00%' / '—' (no threshold: estimate shown without a verdict)."""
    if threshold is None or _missing(threshold):
        return DASH
    sign = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}.get(direction or "", direction or "")
    return f"{sign} {pct(threshold)}"


def verdict_text(passed) -> str:
    if passed is None:
        return "不作判定"
    return "达标" if passed else "未达标"


def interval_text(low, high, decimals: int = 2) -> str:
    """'[0.12%, 1.34%]'."""
    if _missing(low) or _missing(high):
        return DASH
    return f"[{pct(low, decimals)}, {pct(high, decimals)}]"


def zero_display(upper, level: float = 0.95) -> str:
    """A zero count with its exact upper bound: '0（95%置信上限 0.30%）' (SPEC §2)."""
    return f"0（{int(half_up(level * 100, 0))}%置信上限 {pct(upper)}）"


def official_display(ind: dict, level: float = 0.95) -> str:
    """The official ratio as printed: the zero-count form when the count is 0, else the percentage."""
    if ind.get("official") is None or _missing(ind.get("official")):
        return DASH
    if ind.get("zero_upper") is not None and not _missing(ind.get("zero_upper")) and float(ind.get("numerator") or 0) == 0:
        return zero_display(ind["zero_upper"], level)
    return pct(ind["official"])


def yuan(value) -> str:
    return num(value, 0)


def date_zh(value) -> str:
    """'2019-12-05' or a date/datetime → '2019年12月5日'."""
    import datetime as dt

    if value is None or value == "":
        return DASH
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    return f"{value.year}年{value.month}月{value.day}日"
