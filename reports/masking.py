"""Masking of personal data in everything meant for leadership (SPEC §8).

* resident ID numbers → region (first 6 digits) and the last 4: ``520102********123X``;
* names → surname plus mask: ``张**`` (compound surnames such as 欧阳 kept whole: ``欧阳**``);
* phone numbers → ``138****5678`` (mobile) or ``0851-****5678`` (fixed line);
* GPS points → coarsened to 0.1° (about 10 km);
* free text (comments, reasons) → every ID-like or phone-like number in it masked, and any known name replaced.

``find_personal_data(text)`` lists what is left unmasked in a text: the renderer runs it over every document
before writing it, and the tests over the text read back from every PDF.
"""
from __future__ import annotations

import math
import re

MASK = "*"
NAME_MASK = "**"
GPS_DECIMALS = 1

# 复姓: kept whole so that the given name is never half shown
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离 端木 独孤 南宫 西门 "
    "百里 呼延 万俟 闻人 澹台 公冶 宗政 濮阳 太叔 申屠 仲孙 单于 赫连 东郭 第五 拓跋 完颜 "
    "司空 闾丘 子车 亓官 巫马 公西 颛孙 壤驷 公良 漆雕 乐正 宰父 谷梁 段干 东门 梁丘 左丘 羊舌 微生".split())

# 18-character resident ID (17 digits + digit/X) or the old 15-digit form, not inside a longer number
_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3})([\dXx])(?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{6})(\d{3})(?![0-9A-Za-z])")
# mobile numbers, optionally +86 and separated by spaces or hyphens; fixed lines with an area code
# (not inside a longer run of letters and digits: a hash or a code is no phone number)
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9A-Za-z])")
_LANDLINE = re.compile(r"(?<![0-9A-Za-z])(0\d{2,3})[ -](\d{3,4})(\d{4})(?![0-9A-Za-z])")


def _plausible_birth(yyyymmdd: str) -> bool:
    y, m, d = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    return 1880 <= y <= 2030 and 1 <= m <= 12 and 1 <= d <= 31


def _plausible_birth15(yymmdd: str) -> bool:
    m, d = int(yymmdd[2:4]), int(yymmdd[4:6])
    return 1 <= m <= 12 and 1 <= d <= 31


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def mask_id(value) -> str:
    """A resident ID number reduced to its region (first 6) and last 4 characters."""
    if _blank(value):
        return ""
    text = str(value).strip()
    if len(text) <= 10:
        return MASK * len(text)
    return text[:6] + MASK * (len(text) - 10) + text[-4:]


def mask_name(value) -> str:
    """Surname plus mask: 张三丰 → 张**, 欧阳修 → 欧阳**. A name written in Latin letters keeps its initial."""
    if _blank(value):
        return ""
    text = str(value).strip()
    if text[:2] in COMPOUND_SURNAMES and len(text) > 2:
        return text[:2] + NAME_MASK
    return text[:1] + NAME_MASK


def mask_phone(value) -> str:
    """138 1234 5678 → 138****5678; 0851-86801234 → 0851-****1234; other digit strings keep the last 4."""
    if _blank(value):
        return ""
    text = str(value).strip()
    digits = re.sub(r"\D", "", text)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return digits[:3] + MASK * 4 + digits[-4:]
    m = _LANDLINE.search(text)
    if m:
        return f"{m.group(1)}-{MASK * 4}{m.group(3)}"
    if len(digits) <= 4:
        return MASK * len(digits)
    return MASK * 4 + digits[-4:]


def coarsen_gps(value, decimals: int = GPS_DECIMALS):
    """A latitude or longitude rounded to ``decimals`` places (0.1° ≈ 10 km); None stays None."""
    if _blank(value):
        return None
    from .formatting import half_up

    return float(half_up(float(value), decimals))


def scrub_text(text, names=()) -> str:
    """Free text with every ID number and phone number masked and the given names replaced."""
    if _blank(text):
        return "" if text is None or (isinstance(text, float)) else str(text)
    out = str(text)
    for name in sorted({str(n).strip() for n in names if not _blank(n) and len(str(n).strip()) >= 2},
                       key=len, reverse=True):
        out = out.replace(name, mask_name(name))

    def _id18(m):
        if _plausible_birth(m.group(2)):
            return m.group(1) + MASK * 8 + m.group(0)[-4:]
        return m.group(0)

    def _id15(m):
        if _plausible_birth15(m.group(2)):
            return m.group(1) + MASK * 5 + m.group(0)[-4:]
        return m.group(0)

    out = _ID18.sub(_id18, out)
    out = _ID15.sub(_id15, out)
    out = _MOBILE.sub(lambda m: m.group(1) + MASK * 4 + m.group(3), out)
    out = _LANDLINE.sub(lambda m: f"{m.group(1)}-{MASK * 4}{m.group(3)}", out)
    return out


def find_personal_data(text: str) -> list[str]:
    """Unmasked ID numbers and phone numbers in ``text`` (what a leadership document must never contain)."""
    found = []
    for m in _ID18.finditer(text):
        if _plausible_birth(m.group(2)):
            found.append(m.group(0))
    for m in _ID15.finditer(text):
        if _plausible_birth15(m.group(2)):
            found.append(m.group(0))
    found += [m.group(0) for m in _MOBILE.finditer(text)]
    found += [m.group(0) for m in _LANDLINE.finditer(text)]
    return found


# Fields of a case record (problem list) and how each is masked
NAME_FIELDS = ("head_name", "name", "respondent", "enumerator_1", "enumerator_2")
ID_FIELDS = ("head_id_number", "id_number")
PHONE_FIELDS = ("phone", "mobile", "telephone")
GPS_FIELDS = ("gps_lat", "gps_lon", "lat", "lon")
TEXT_FIELDS = ("comment", "reasons_text", "address", "note", "review_comment")


def mask_record(record: dict, extra_names=()) -> dict:
    """A copy of one record (a problem case, a quality issue) with its personal fields masked.

    Idempotent: masking a masked record changes nothing.
    """
    out = dict(record)
    names = [out.get(f) for f in NAME_FIELDS if not _blank(out.get(f))] + list(extra_names)
    for f in NAME_FIELDS:
        if f in out and not _blank(out[f]) and not str(out[f]).endswith(NAME_MASK):
            out[f] = mask_name(out[f])
    for f in ID_FIELDS:
        if f in out and not _blank(out[f]) and MASK not in str(out[f]):
            out[f] = mask_id(out[f])
    for f in PHONE_FIELDS:
        if f in out and not _blank(out[f]) and MASK not in str(out[f]):
            out[f] = mask_phone(out[f])
    for f in GPS_FIELDS:
        if f in out:
            out[f] = coarsen_gps(out[f])
    for f in TEXT_FIELDS:
        if f in out and not _blank(out[f]):
            out[f] = scrub_text(out[f], names)
    if isinstance(out.get("reasons"), list):
        out["reasons"] = [scrub_text(r, names) if isinstance(r, str) else r for r in out["reasons"]]
    return out
