"""Per-province figures that make the synthetic population plausible (SPEC §3, §3.1).

counties: county-level divisions of the province (about the 2019 count); poor: national poverty counties
(the 832, 国家扶贫开发工作重点县 and 片区县, by province, as published); vpc: mean administrative villages per
county, scaled so that the 22 provinces hold about 500,000 villages at the default settings; box: latitude and
longitude range (a rough rectangle inside the province); terrain: shares of 山区, 丘陵, 平原; minorities:
(ethnicity, share of households), the rest 汉族.
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

import numpy as np

TERRAINS = ("山区", "丘陵", "平原")

PROFILES: dict[str, dict] = {
    "130000": dict(counties=168, poor=45, vpc=290, box=(36.5, 41.5, 114.0, 118.5), terrain=(.35, .25, .40),
                   minorities=[("满族", .04), ("回族", .01)]),
    "140000": dict(counties=117, poor=36, vpc=220, box=(35.3, 40.3, 111.0, 113.8), terrain=(.60, .30, .10),
                   minorities=[]),
    "150000": dict(counties=103, poor=31, vpc=110, box=(40.5, 45.0, 108.0, 120.0), terrain=(.30, .30, .40),
                   minorities=[("蒙古族", .18), ("满族", .02), ("回族", .01)]),
    "220000": dict(counties=60, poor=8, vpc=155, box=(42.2, 45.3, 123.5, 129.5), terrain=(.30, .30, .40),
                   minorities=[("朝鲜族", .04), ("满族", .03)]),
    "230000": dict(counties=121, poor=20, vpc=75, box=(44.8, 49.0, 125.0, 131.5), terrain=(.20, .30, .50),
                   minorities=[("满族", .03), ("朝鲜族", .01)]),
    "340000": dict(counties=104, poor=20, vpc=150, box=(30.2, 34.3, 115.5, 118.8), terrain=(.20, .35, .45),
                   minorities=[("回族", .005)]),
    "360000": dict(counties=100, poor=24, vpc=170, box=(25.5, 29.5, 114.0, 117.5), terrain=(.40, .45, .15),
                   minorities=[]),
    "410000": dict(counties=157, poor=38, vpc=290, box=(32.2, 36.0, 111.5, 115.8), terrain=(.20, .25, .55),
                   minorities=[("回族", .01)]),
    "420000": dict(counties=103, poor=28, vpc=230, box=(29.5, 32.5, 109.5, 115.8), terrain=(.45, .35, .20),
                   minorities=[("土家族", .04), ("苗族", .005)]),
    "430000": dict(counties=122, poor=40, vpc=195, box=(25.5, 29.5, 109.5, 113.5), terrain=(.45, .40, .15),
                   minorities=[("土家族", .04), ("苗族", .03), ("侗族", .01)]),
    "450000": dict(counties=111, poor=33, vpc=130, box=(22.2, 25.8, 105.8, 111.3), terrain=(.50, .35, .15),
                   minorities=[("壮族", .32), ("瑶族", .03), ("苗族", .01)]),
    "460000": dict(counties=23, poor=5, vpc=120, box=(18.5, 19.9, 108.8, 110.9), terrain=(.30, .40, .30),
                   minorities=[("黎族", .15), ("苗族", .01)]),
    "500000": dict(counties=38, poor=14, vpc=220, box=(28.6, 31.4, 105.8, 109.5), terrain=(.70, .25, .05),
                   minorities=[("土家族", .05), ("苗族", .02)]),
    "510000": dict(counties=183, poor=66, vpc=250, box=(28.0, 32.5, 101.5, 107.5), terrain=(.60, .25, .15),
                   minorities=[("彝族", .03), ("藏族", .02)]),
    "520000": dict(counties=88, poor=66, vpc=190, box=(25.0, 28.8, 104.2, 109.0), terrain=(.85, .13, .02),
                   minorities=[("苗族", .12), ("布依族", .07), ("侗族", .04), ("土家族", .04), ("彝族", .02)]),
    "530000": dict(counties=129, poor=88, vpc=110, box=(22.5, 27.5, 99.0, 104.5), terrain=(.80, .15, .05),
                   minorities=[("彝族", .11), ("哈尼族", .04), ("白族", .03), ("傣族", .03), ("壮族", .03)]),
    "540000": dict(counties=74, poor=74, vpc=75, box=(29.0, 32.0, 85.0, 95.0), terrain=(.90, .08, .02),
                   minorities=[("藏族", .90)]),
    "610000": dict(counties=107, poor=56, vpc=160, box=(32.8, 38.5, 106.5, 110.3), terrain=(.50, .30, .20),
                   minorities=[]),
    "620000": dict(counties=86, poor=58, vpc=185, box=(34.0, 39.0, 99.0, 106.0), terrain=(.60, .30, .10),
                   minorities=[("回族", .05), ("藏族", .02), ("东乡族", .01)]),
    "630000": dict(counties=44, poor=42, vpc=95, box=(33.5, 38.0, 94.0, 102.0), terrain=(.70, .20, .10),
                   minorities=[("藏族", .25), ("回族", .15), ("土族", .03), ("撒拉族", .02)]),
    "640000": dict(counties=22, poor=8, vpc=100, box=(35.6, 38.8, 105.3, 106.8), terrain=(.50, .30, .20),
                   minorities=[("回族", .36)]),
    "650000": dict(counties=106, poor=32, vpc=85, box=(37.0, 46.0, 76.0, 93.0), terrain=(.30, .30, .40),
                   minorities=[("维吾尔族", .45), ("哈萨克族", .07), ("回族", .04)]),
}
# the means above sum to ~386,000 villages; real counts include merged villages and 自然村 splits vary, and the
# issue asks for a national frame of about 500,000 villages
VILLAGE_SCALE = 1.3

# Household income, yuan per person per year (SPEC §3.1): registered households ~1,900 in 2014 rising to
# ~11,000 in 2020 (34 % a year), non-registered households higher and growing like rural incomes (9 % a year).
REGISTERED_PC_2014 = 1900.0
REGISTERED_GROWTH = 1.34
NONREGISTERED_PC_2014 = 8500.0
NONREGISTERED_GROWTH = 1.09

# Share of the registered households that have exited by the end of each year (cumulative).
EXIT_SHARE = {2014: 0.04, 2015: 0.20, 2016: 0.38, 2017: 0.56, 2018: 0.76, 2019: 0.92, 2020: 0.995}
# Poor villages' exit (出列) years and their shares.
VILLAGE_EXIT_YEARS = np.array([2015, 2016, 2017, 2018, 2019, 2020])
VILLAGE_EXIT_SHARES = np.array([0.05, 0.12, 0.20, 0.25, 0.28, 0.10])

# Mean persons per household by register group (SPEC §3.1: registered 1.6–2.9 central, 3.5–3.8 west).
MEAN_SIZE = {"west": {"exited": 3.6, "not_exited": 3.4, "nonregistered": 3.7},
             "central": {"exited": 2.7, "not_exited": 2.4, "nonregistered": 3.1}}

DEFAULT_ERROR_RATES = {"wrongly_exited": 0.01, "missed": 0.01, "wrongly_included": 0.05}

CAUSES = ("因病", "因残", "因学", "因灾", "缺土地", "缺水", "缺技术", "缺劳力", "缺资金", "交通条件落后", "自身发展动力不足")
MEASURES = ("产业", "就业", "易地搬迁", "教育", "健康", "兜底", "生态", "金融", "光伏", "危房改造", "资产收益")

STATUS_ZH = {1: "已脱贫", 2: "未脱贫", 3: "当年拟脱贫", 4: "监测户", 5: "一般户", 6: "边缘户"}


@lru_cache(maxsize=1)
def names() -> dict:
    text = resources.files("sampling").joinpath("data/names.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    out = {k: np.array(list("".join(v.split())), dtype="U1") for k, v in raw.items()}
    # Zipf-like weights for surnames: the top 3 (王李张) cover ~20 % as in the census
    ranks = np.arange(1, len(out["surnames"]) + 1)
    w = 1.0 / ranks ** 0.9
    out["surname_p"] = w / w.sum()
    return out


@lru_cache(maxsize=None)
def poverty_lines() -> dict[int, float]:
    """The planning series (2014 line × 1.06^n) of the shipped configuration: the line the truth columns use."""
    from ..workspace import default_config

    cfg = default_config()
    return {int(k): float(v) for k, v in cfg["poverty_line"]["planning"].items()}
