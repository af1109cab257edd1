"""The 22 assessed provinces (中西部22省) with their GB/T 2260 codes and region (SPEC §3)."""
from __future__ import annotations

from .errors import SamplingError

# code: (full name, short name, region); west = 3% incidence threshold, central = 2%
PROVINCES: dict[str, tuple[str, str, str]] = {
    "130000": ("河北省", "河北", "central"),
    "140000": ("山西省", "山西", "central"),
    "150000": ("内蒙古自治区", "内蒙古", "west"),
    "220000": ("吉林省", "吉林", "central"),
    "230000": ("黑龙江省", "黑龙江", "central"),
    "340000": ("安徽省", "安徽", "central"),
    "360000": ("江西省", "江西", "central"),
    "410000": ("河南省", "河南", "central"),
    "420000": ("湖北省", "湖北", "central"),
    "430000": ("湖南省", "湖南", "central"),
    "450000": ("广西壮族自治区", "广西", "west"),
    "460000": ("海南省", "海南", "central"),
    "500000": ("重庆市", "重庆", "west"),
    "510000": ("四川省", "四川", "west"),
    "520000": ("贵州省", "贵州", "west"),
    "530000": ("云南省", "云南", "west"),
    "540000": ("西藏自治区", "西藏", "west"),
    "610000": ("陕西省", "陕西", "west"),
    "620000": ("甘肃省", "甘肃", "west"),
    "630000": ("青海省", "青海", "west"),
    "640000": ("宁夏回族自治区", "宁夏", "west"),
    "650000": ("新疆维吾尔自治区", "新疆", "west"),
}


def province_name(code: str, short: bool = False) -> str:
    entry = PROVINCES.get(str(code)[:2] + "0000")
    if entry is None:
        return str(code)
    return entry[1] if short else entry[0]


def region(code: str, counties_as_west=()) -> str:
    """'west' or 'central' for a province or county code; counties treated as western count as west."""
    code = str(code)
    if code[:6] in {str(c) for c in counties_as_west}:
        return "west"
    entry = PROVINCES.get(code[:2] + "0000")
    return entry[2] if entry else "central"


def resolve_province(value) -> str:
    """A province given by code ('520000', '52') or name ('贵州', '贵州省') → its 6-digit code."""
    text = str(value).strip()
    if text.isdigit():
        code = text[:2] + "0000"
        if code in PROVINCES:
            return code
    for code, (full, short, _) in PROVINCES.items():
        if text in (full, short):
            return code
    raise SamplingError(f"unknown province {value!r}", code="unknown_province",
                        fix="give one of the 22 assessed provinces by 6-digit code (e.g. 520000) or name (e.g. 贵州)")


def resolve_provinces(values) -> list[str]:
    return sorted({resolve_province(v) for v in values})
