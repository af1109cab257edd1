"""The synthetic national village frame: provinces → cities → counties → townships → villages, with sizes.

Built vectorised from the village counts down; households are not materialised. Each province uses its own
random streams, so a province's villages are the same whichever other provinces are asked for. The sizes of
each village (households and persons by register group) are drawn here, and ``village_households`` later
produces exactly those households and persons.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SamplingError, check_arg
from ..geography import PROVINCES, resolve_provinces
from . import profiles as P
from . import text as T

FRAME_COLUMNS = [
    "province_code", "province_name", "region", "city_code", "county_code", "county_name", "township_code",
    "township_name", "village_code", "village_name", "poor_village", "village_exit_year", "remote", "terrain",
    "n_groups", "households", "persons", "hh_registered", "hh_exited", "hh_not_exited", "hh_nonregistered",
    "persons_registered", "persons_exited", "persons_not_exited", "persons_nonregistered", "rural_population",
]
# ID-number slots (see households._id_numbers) need township numbers ≤ 60 and village numbers ≤ 30 per township.
MAX_TOWNSHIPS = 60
MAX_VILLAGES_PER_TOWNSHIP = 30
MAX_VILLAGES_PER_COUNTY = MAX_TOWNSHIPS * MAX_VILLAGES_PER_TOWNSHIP
TOWNSHIP_BASE = 100     # township codes 101… (镇 range of the statistical codes)
VILLAGE_BASE = 200      # village codes 201… (村委会 range)
MIN_YEAR, MAX_YEAR = 2014, 2020


def _place_names(rng, n: int, suffix_bytes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(n, 9) UTF-8 matrix of two-character place names plus a one-character suffix, distinct while pairs last."""
    k = len(table)
    if n <= k * k // 2:
        pairs = rng.choice(k * k, size=n, replace=False)
    else:
        pairs = rng.integers(0, k * k, size=n)
    return np.hstack([table[pairs // k], table[pairs % k], np.broadcast_to(suffix_bytes, (n, 3))])


def _province_frame(code: str, seed: int, counties_per_province, villages_per_county, year: int) -> dict:
    prof = P.PROFILES[code]
    full_name, _, region = PROVINCES[code]
    table = T.char_table(P.names()["place"])
    suffix = T.char_table(["县", "镇", "乡", "村"])
    rng = np.random.default_rng([seed, int(code)])                # structure: same in every year
    yrng = np.random.default_rng([seed, int(code), year])         # register state of the assessed year

    n_c = int(counties_per_province) if counties_per_province else prof["counties"]
    if counties_per_province:
        n_poor = min(n_c, max(1, int(round(n_c * prof["poor"] / prof["counties"]))))
    else:
        n_poor = prof["poor"]
    poor_county = np.zeros(n_c, dtype=bool)
    poor_county[rng.choice(n_c, size=n_poor, replace=False)] = True
    n_city = -(-n_c // 10)
    city_idx = np.arange(n_c) * n_city // n_c
    in_city = np.arange(n_c) - np.searchsorted(city_idx, city_idx)   # rank of the county within its city
    p2 = int(code[:2])
    city_num = p2 * 10000 + (city_idx + 1) * 100
    county_num = city_num + 21 + in_city
    county_names = _place_names(rng, n_c, suffix[0], table)

    if villages_per_county:
        vpc = np.full(n_c, int(villages_per_county))
    else:
        mean = prof["vpc"] * P.VILLAGE_SCALE
        vpc = np.clip(np.round(mean * rng.lognormal(-0.045, 0.3, n_c)), 20, MAX_VILLAGES_PER_COUNTY).astype(int)
    n_town = np.minimum(MAX_TOWNSHIPS, -(-vpc // 15))
    nv = int(vpc.sum())
    cidx = np.repeat(np.arange(n_c), vpc)
    starts = np.repeat(np.cumsum(vpc) - vpc, vpc)
    i_in_county = np.arange(nv) - starts
    t = i_in_county * n_town[cidx] // vpc[cidx]                      # 0-based township within the county
    tkey = cidx.astype(np.int64) * 1000 + t
    first_of_town = np.r_[True, tkey[1:] != tkey[:-1]]
    town_start = np.flatnonzero(first_of_town)
    k = np.arange(nv) - np.repeat(town_start, np.diff(np.r_[town_start, nv]))   # 0-based village within township

    n_towns_total = len(town_start)
    town_names = _place_names(rng, n_towns_total, suffix[1], table)
    town_names[:, 6:] = suffix[np.where(rng.random(n_towns_total) < 0.55, 1, 2)]
    township_name = np.repeat(town_names, np.diff(np.r_[town_start, nv]), axis=0)
    village_name = _place_names(rng, nv, suffix[3], table)

    terrain_idx = np.searchsorted(np.cumsum(prof["terrain"]), rng.random(nv) * sum(prof["terrain"]), side="right")
    terrain_idx = np.minimum(terrain_idx, 2)
    pc = poor_county[cidx]
    poor_village = rng.random(nv) < np.where(pc, 0.45, 0.06)
    remote = rng.random(nv) < 0.10 + 0.10 * (terrain_idx == 0) + 0.05 * poor_village
    households = np.clip(np.round(280 * rng.lognormal(-0.1, 0.45, nv)), 40, 1500).astype(np.int64)
    n_groups = np.clip(np.round(households / 45 * rng.uniform(0.7, 1.3, nv)), 2, 20).astype(np.int64)
    planned_exit = P.VILLAGE_EXIT_YEARS[
        np.minimum(np.searchsorted(np.cumsum(P.VILLAGE_EXIT_SHARES), rng.random(nv), side="right"), 5)]

    # register state in the assessed year
    mean_share = np.where(pc, np.where(poor_village, 0.32, 0.14), np.where(poor_village, 0.20, 0.05))
    kappa = 20.0
    share = yrng.beta(mean_share * kappa, (1 - mean_share) * kappa)
    hh_registered = yrng.binomial(households, share)
    exited_village = poor_village & (planned_exit <= year)
    es = np.clip(P.EXIT_SHARE[year] + 0.04 * exited_village - 0.04 * (poor_village & ~exited_village), 0.001, 0.999)
    es_v = yrng.beta(es * 30, (1 - es) * 30)
    hh_exited = yrng.binomial(hh_registered, es_v)
    hh_not_exited = hh_registered - hh_exited
    hh_nonreg = households - hh_registered
    sizes = P.MEAN_SIZE[region]
    persons_exited = hh_exited + yrng.poisson((sizes["exited"] - 1) * hh_exited)
    persons_not_exited = hh_not_exited + yrng.poisson((sizes["not_exited"] - 1) * hh_not_exited)
    persons_nonreg = hh_nonreg + yrng.poisson((sizes["nonregistered"] - 1) * hh_nonreg)
    persons_registered = persons_exited + persons_not_exited
    persons = persons_registered + persons_nonreg
    exit_year = pd.array(np.where(exited_village, planned_exit, 0), dtype="Int64")
    exit_year[~exited_village] = pd.NA

    county_digits = T.digits(county_num, 6)
    return {
        "province_code": T.const(code, nv),
        "province_name": T.const(full_name, nv),
        "region": T.const(region, nv),
        "city_code": T.digits(city_num, 6)[cidx],
        "county_code": county_digits[cidx],
        "county_name": county_names[cidx],
        "township_code": np.hstack([county_digits[cidx], T.digits(TOWNSHIP_BASE + 1 + t, 3), T.const("000", nv)]),
        "township_name": township_name,
        "village_code": np.hstack([county_digits[cidx], T.digits(TOWNSHIP_BASE + 1 + t, 3),
                                   T.digits(VILLAGE_BASE + 1 + k, 3)]),
        "village_name": village_name,
        "poor_village": poor_village.astype(np.int8),
        "village_exit_year": exit_year,
        "remote": remote.astype(np.int8),
        "terrain": terrain_idx,
        "n_groups": n_groups,
        "households": households,
        "persons": persons,
        "hh_registered": hh_registered,
        "hh_exited": hh_exited,
        "hh_not_exited": hh_not_exited,
        "hh_nonregistered": hh_nonreg,
        "persons_registered": persons_registered,
        "persons_exited": persons_exited,
        "persons_not_exited": persons_not_exited,
        "persons_nonregistered": persons_nonreg,
        "rural_population": persons.copy(),
        "_poor_county": poor_county[cidx],
    }


def village_frame(provinces, seed: int, *, counties_per_province=None, villages_per_county=None,
                  year: int = 2019, with_poor_county: bool = False) -> pd.DataFrame:
    """The synthetic village frame (columns of docs/CONTRACTS.md) for the given provinces.

    provinces: codes or names (``"all"`` or None for the 22). Defaults give the national scale: the real number
    of counties per province (2,166 in all, 832 poor) and about 500,000 villages. ``with_poor_county`` adds a
    column ``poor_county`` (0/1, the national poverty counties) that is not part of the contract.
    """
    check_arg(isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0, "seed",
              "must be a non-negative integer")
    check_arg(MIN_YEAR <= int(year) <= MAX_YEAR, "year", f"must be between {MIN_YEAR} and {MAX_YEAR}")
    check_arg(counties_per_province is None or int(counties_per_province) >= 1, "counties_per_province",
              "must be at least 1")
    check_arg(counties_per_province is None or int(counties_per_province) <= 99 * 7, "counties_per_province",
              "must be at most 693 (county codes have two digits per city)")
    check_arg(villages_per_county is None or 1 <= int(villages_per_county) <= MAX_VILLAGES_PER_COUNTY,
              "villages_per_county", f"must be between 1 and {MAX_VILLAGES_PER_COUNTY}")
    if provinces is None or provinces == "all" or (not isinstance(provinces, str) and list(provinces) == ["all"]):
        codes = sorted(PROVINCES)
    else:
        codes = resolve_provinces([provinces] if isinstance(provinces, str) else provinces)
    if not codes:
        raise SamplingError("no province given", code="bad_argument", fix="name at least one province, or all")
    parts = [_province_frame(c, int(seed), counties_per_province, villages_per_county, int(year)) for c in codes]
    data = {}
    for col in FRAME_COLUMNS + ["_poor_county"]:
        vals = [p[col] for p in parts]
        if col == "village_exit_year":
            data[col] = pd.array(np.concatenate([v.to_numpy(dtype="float64", na_value=np.nan) for v in vals]),
                                 dtype="Int64")
        elif col in ("province_code", "province_name", "region"):
            data[col] = T.from_small([p[col][0].tobytes().decode("utf-8") for p in parts],
                                     np.repeat(np.arange(len(parts)), [len(p["households"]) for p in parts]))
        elif col == "terrain":
            data[col] = T.from_small(P.TERRAINS, np.concatenate(vals))
        elif isinstance(vals[0], np.ndarray) and vals[0].ndim == 2:
            data[col] = T.to_str(np.concatenate(vals))
        else:
            data[col] = np.concatenate(vals)
    df = pd.DataFrame({c: data[c] for c in FRAME_COLUMNS})
    if with_poor_county:
        df["poor_county"] = data["_poor_county"].astype(np.int8)
    df.attrs["year"] = int(year)
    df.attrs["seed"] = int(seed)
    return df
