"""The multi-stage draw (county → village → household) with reserves, records and verification (SPEC §5).

``select_sample(design, villages, households, seed)`` is the pure draw: frames in, selected units out, nothing
written. ``draw_sample(ws, ...)`` runs it, writes the field lists to ``ws.dir("samples")/<draw_id>/`` and
records the draw in the tables of docs/CONTRACTS.md inside one transaction. ``verify_draw`` re-draws from the
recorded design, seed and frames and confirms identical tables and byte-identical lists.

Probabilities. Every stage is drawn within groups (county stage: the ``by`` columns, e.g. province; village
stage: within county; household stage: within village) and, inside a group, within strata. ``pi_county``,
``pi_village`` (given the county) and ``pi_household`` (given the village) are the stage-wise inclusion
probabilities, ``pi`` their product and ``weight = 1/pi``. Take-all units have π = 1 at their stage; the
households of a take-all stratum drawn in whole 村民小组 have π = groups taken / groups in the village.
Purposive (hand-named) villages keep ``purposive = 1`` and NULL ``pi_village``, ``pi``, ``weight`` (and
their households too): they are out of every weighted estimate and count only in the official ratios.

Reserves. For each village and household stratum, ``reserve`` extra households are drawn after the sample, in
a random order (``reserve_order`` 1..k), from the households not in the sample. They carry the stratum's π and
weight, which are theirs when reserve j replaces a sampled household that could not be interviewed: for SRS
the sample followed by the reserves is one random ordering of the stratum.

Reproducibility. The frames are sorted by their codes before anything is drawn, so the row order of the
files does not matter; each stage uses its own random stream spawned from the seed. Same frames, design and
seed give the same sample and byte-identical lists.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .design import PARENT_COLUMN, UNIT_COLUMN, Design, Stage, design_from_json, load_design
from .errors import DesignError, FrameError, SamplingError

COUNTY_ATTRS = ("province_code", "province_name", "region", "city_code", "county_name")
VILLAGE_KEEP = ("province_code", "province_name", "city_code", "county_code", "county_name", "township_code",
                "township_name", "village_code", "village_name", "poor_village", "remote", "n_groups", "households")
# SQLite column names ignore case, so the N_ (population) columns of CONTRACTS.md are stored as pop_ and
# renamed back by the readers below (sample_households(), sample_villages()).
_DB_NAMES = {"N_villages_stratum": "pop_villages_stratum", "N_hh_stratum": "pop_hh_stratum"}
HOUSEHOLD_KEEP = ("household_id", "village_code", "township_code", "county_code", "province_code", "group_no",
                  "head_name", "phone", "address", "register_status", "size")

_DDL = [
    """CREATE TABLE IF NOT EXISTS draws (draw_id TEXT PRIMARY KEY, created TEXT NOT NULL, seed INTEGER NOT NULL,
       design_json TEXT NOT NULL, frame_hashes_json TEXT NOT NULL, software_version TEXT NOT NULL,
       summary_json TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sample_villages (draw_id TEXT NOT NULL, province_code TEXT, county_code TEXT,
       village_code TEXT NOT NULL, stratum TEXT, pi_county REAL, pi_village REAL, weight_village REAL,
       purposive INTEGER, take_all INTEGER, n_villages_stratum INTEGER, pop_villages_stratum INTEGER,
       village_name TEXT, county_name TEXT, PRIMARY KEY (draw_id, village_code))""",
    """CREATE TABLE IF NOT EXISTS sample_households (draw_id TEXT NOT NULL, household_id TEXT NOT NULL,
       village_code TEXT, township_code TEXT, county_code TEXT, province_code TEXT, village_stratum TEXT,
       hh_stratum TEXT, role TEXT NOT NULL, reserve_order INTEGER, pi_county REAL, pi_village REAL,
       pi_household REAL, pi REAL, weight REAL, purposive INTEGER, take_all INTEGER, register_status INTEGER,
       head_name TEXT, address TEXT, size INTEGER, pop_hh_stratum INTEGER, n_hh_stratum INTEGER,
       PRIMARY KEY (draw_id, household_id))""",
    "CREATE INDEX IF NOT EXISTS sample_households_village ON sample_households (draw_id, village_code)",
]
VILLAGE_COLUMNS = ["province_code", "county_code", "village_code", "stratum", "pi_county", "pi_village",
                   "weight_village", "purposive", "take_all", "n_villages_stratum", "N_villages_stratum",
                   "village_name", "county_name"]
HOUSEHOLD_COLUMNS = ["household_id", "village_code", "township_code", "county_code", "province_code",
                     "village_stratum", "hh_stratum", "role", "reserve_order", "pi_county", "pi_village",
                     "pi_household", "pi", "weight", "purposive", "take_all", "register_status", "head_name",
                     "address", "size", "N_hh_stratum", "n_hh_stratum"]


# ------------------------------------------------------------------------------------------------------------
# Frames
# ------------------------------------------------------------------------------------------------------------

def frame_digest(df: pd.DataFrame) -> str:
    """A content hash of an in-memory frame: column names, then each column's values in row order.

    Numbers are hashed as float64 bytes (NaN for missing) and everything else as text, so the digest does not
    depend on whether codes are held as Arrow or Python strings.
    """
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in df.columns], ensure_ascii=False).encode())
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            h.update(b"n" + np.ascontiguousarray(s.to_numpy(dtype=float, na_value=np.nan)).tobytes())
        else:
            h.update(b"s")
            for part in _text_bytes(s):
                h.update(part)
    return h.hexdigest()


def _text_bytes(s: pd.Series):
    """Offsets and UTF-8 bytes of a text column (missing = NUL) through Arrow, without a Python loop."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        a = pa.array(s, from_pandas=True)
        if isinstance(a, pa.ChunkedArray):
            a = a.combine_chunks()
        a = pc.fill_null(a.cast(pa.large_string()), "\x00")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        a = pa.array([None if v is None or v is pd.NA or v != v else str(v) for v in s.astype(object)],
                     type=pa.large_string())
        a = pc.fill_null(a, "\x00")
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int64)[a.offset:a.offset + len(a) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    return (offsets - start).tobytes(), memoryview(a.buffers()[2])[start:end] if end > start else b""


def _int_codes(s: pd.Series) -> np.ndarray:
    """Sortable int64 keys of a code column: the code's value when it is all digits (12-digit village codes,
    16-digit household IDs fit), else its rank among the distinct values."""
    if pd.api.types.is_integer_dtype(s) and not s.hasnans:
        return s.to_numpy(dtype=np.int64)
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        a = pa.array(s, from_pandas=True)
        if not (pa.types.is_string(a.type) or pa.types.is_large_string(a.type)):
            raise TypeError
        return pc.cast(a, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        return pd.factorize(s.astype(str), sort=True)[0].astype(np.int64)


def _sort_keys(df: pd.DataFrame, cols) -> list[np.ndarray]:
    keys = []
    for c in cols:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            keys.append(s.to_numpy(dtype=float, na_value=np.inf))
        else:
            keys.append(_int_codes(s))
    return keys


def _sorted(df: pd.DataFrame, cols) -> pd.DataFrame:
    """``df`` sorted by ``cols`` (stable; codes compared as numbers), with a fresh 0..n−1 index."""
    if len(df) == 0:
        return df.reset_index(drop=True)
    keys = _sort_keys(df, list(dict.fromkeys(cols)))
    order = np.lexsort(keys[::-1])
    if np.array_equal(order, np.arange(len(df))):
        return df.reset_index(drop=True)
    return df.take(order).reset_index(drop=True)


def _lookup(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in ``keys`` (unique int64) of each value of ``wanted`` (all present)."""
    order = np.argsort(keys, kind="stable")
    return order[np.searchsorted(keys[order], wanted)]


def _norm_codes(df: pd.DataFrame) -> pd.DataFrame:
    for c in df.columns:
        if (c.endswith("_code") or c == "household_id") and not pd.api.types.is_string_dtype(df[c]):
            df[c] = df[c].astype(str)
    return df


def read_village_frame(spec) -> tuple[pd.DataFrame, dict]:
    """The village frame and how to find it again: a path (hash of its bytes) or a DataFrame."""
    if isinstance(spec, pd.DataFrame):
        return spec, {"kind": "dataframe", "sha256": frame_digest(spec), "rows": int(len(spec))}
    from .readers import content_hash, read_table

    path = Path(spec)
    df = read_table(path)
    return df, {"kind": "file", "path": str(path.resolve()), "sha256": content_hash(path), "rows": int(len(df))}


class HouseholdSource:
    """Where the household stage gets the households of the sampled villages."""

    kind = "none"

    def fetch(self, villages: pd.DataFrame) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def info(self, fetched: pd.DataFrame) -> dict:
        return {"kind": self.kind, "sha256": frame_digest(fetched), "rows": int(len(fetched))}


class RegisterFile(HouseholdSource):
    """A household register file; Parquet is read with a filter on the sampled villages only."""

    kind = "file"

    def __init__(self, path):
        self.path = Path(path)
        self._hash = None

    def fetch(self, villages):
        from .readers import content_hash, read_table

        self._hash = content_hash(self.path)
        codes = sorted(villages["village_code"].astype(str).unique())
        if self.path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(self.path, filters=[("village_code", "in", codes)])
            except Exception as exc:
                raise FrameError(f"cannot read the household register: {type(exc).__name__}: {exc}",
                                 file=self.path, code="corrupt_file",
                                 fix="check that it is a Parquet file with a village_code column") from exc
            df = _norm_codes(table.to_pandas())
        else:
            df = read_table(self.path)
            if "village_code" not in df.columns:
                raise FrameError("the household register has no village_code column", file=self.path,
                                 column="village_code", fix="add the 12-digit village code of every household")
            df = df[df["village_code"].astype(str).isin(codes)]
        return df

    def info(self, fetched):
        return {"kind": "file", "path": str(self.path.resolve()), "sha256": self._hash, "rows_fetched": int(len(fetched))}


class RegisterFrame(HouseholdSource):
    kind = "dataframe"

    def __init__(self, df: pd.DataFrame):
        self.df = df

    def fetch(self, villages):
        codes = villages["village_code"].astype(str).unique()
        return self.df[self.df["village_code"].astype(str).isin(codes)]


class HouseholdCallable(HouseholdSource):
    """Households produced on demand, one village at a time (the synthetic population)."""

    kind = "callable"

    def __init__(self, fn, description: dict | None = None, *, batch: bool = False):
        self.fn = fn
        self.description = description or {}
        self.batch = batch            # fn takes all sampled village rows at once (a DataFrame)

    def fetch(self, villages):
        if self.batch:
            out = self.fn(villages)
            return out[0] if isinstance(out, tuple) else out
        parts = [self.fn(row) for row in villages.itertuples(index=False)]
        parts = [p[0] if isinstance(p, tuple) else p for p in parts]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(HOUSEHOLD_KEEP))

    def info(self, fetched):
        return {**self.description, "kind": self.description.get("kind", "callable"),
                "sha256": frame_digest(fetched), "rows_fetched": int(len(fetched))}


def synthetic_households(population_seed: int, year: int = 2019) -> HouseholdCallable:
    """Households of ``sampling.population.village_households(seed, village_row)``, made only when needed."""
    from . import population

    def make(villages):
        # one vectorised call for all sampled villages; the generator is deterministic per village
        return population.county_households(population_seed, villages, year=year)[0]

    return HouseholdCallable(make, {"kind": "synthetic", "population_seed": int(population_seed), "year": int(year)},
                             batch=True)


def household_source(spec) -> HouseholdSource:
    if isinstance(spec, HouseholdSource):
        return spec
    if isinstance(spec, pd.DataFrame):
        return RegisterFrame(spec)
    if callable(spec):
        return HouseholdCallable(spec)
    text = str(spec)
    if text.startswith("synthetic:"):
        parts = text.split(":")
        try:
            seed = int(parts[1])
            year = int(parts[2]) if len(parts) > 2 else 2019
        except (ValueError, IndexError):
            raise FrameError(f"{text!r}: the synthetic population needs an integer seed", column="households",
                             fix="write synthetic:SEED (or synthetic:SEED:YEAR), e.g. synthetic:2019") from None
        return synthetic_households(seed, year)
    return RegisterFile(text)


def _require_columns(df: pd.DataFrame, cols, what: str, design_part: str, file=None):
    missing = sorted(set(cols) - set(df.columns))
    if missing:
        raise FrameError(f"the {what} frame lacks column {missing[0]!r}, which the design's {design_part} reads",
                         code="missing_column", file=file, column=missing[0],
                         fix=f"add {missing[0]} to the {what} frame (see docs/CONTRACTS.md), or change the design")


# ------------------------------------------------------------------------------------------------------------
# One stage
# ------------------------------------------------------------------------------------------------------------

@dataclass
class StageResult:
    units: pd.DataFrame        # every in-scope unit with stratum, pi, selected, reserve_order, flags
    cells: pd.DataFrame        # one row per (group, stratum): N, n, method, shortfall
    out_of_scope: int = 0
    extra: dict = field(default_factory=dict)


def _round_half_up(x):
    return np.floor(np.round(np.asarray(x, dtype=float), 9) + 0.5).astype(np.int64)


def _match(df: pd.DataFrame, where: dict, any_flag: list) -> np.ndarray:
    ok = np.ones(len(df), dtype=bool)
    for col, values in where.items():
        s = df[col]
        if pd.api.types.is_numeric_dtype(s):
            try:
                vals = [float(v) for v in values]
            except ValueError:
                vals = values
            ok &= s.isin(vals).to_numpy(dtype=bool, na_value=False)
        else:
            ok &= s.astype(str).isin([str(v) for v in values]).to_numpy(dtype=bool, na_value=False)
    if any_flag:
        hit = np.zeros(len(df), dtype=bool)
        for col in any_flag:
            hit |= pd.to_numeric(df[col], errors="coerce").fillna(0).to_numpy() == 1
        ok &= hit
    return ok


def _group_rank(cell: np.ndarray, key: np.ndarray, sub: np.ndarray | None = None) -> np.ndarray:
    """Rank (0-based) of each unit by ``key`` (uniform in [0, 1)) within its cell (and within ``sub``)."""
    major = cell if sub is None else cell * 2 + sub
    # one float sort instead of a lexsort: the integer part orders the cells, the key orders inside a cell
    order = np.argsort(major.astype(np.float64) + key, kind="stable")
    c = major[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    run_start = np.repeat(starts, np.diff(np.append(starts, len(c))))
    rank = np.empty(len(c), dtype=np.int64)
    rank[order] = np.arange(len(c)) - run_start
    return rank


def _run_stage(stage: Stage, units: pd.DataFrame, group_cols: list, rng: np.random.Generator, *,
               group_values=None, household_groups=False) -> StageResult:
    """Draw one stage. ``units`` is sorted (group, order, code); returns per-unit probabilities and flags.

    ``group_values(column) -> Series indexed by group key``: the value an ``n_rule`` compares (summed over
    the county at the village stage, the village's own at the household stage).
    """
    level = stage.level
    unit_col = UNIT_COLUMN[level]
    S = len(stage.strata)
    stratum = np.full(len(units), -1, dtype=np.int64)
    codes = None
    if any(s.purposive for s in stage.strata):
        codes = units[unit_col].astype(str).to_numpy(dtype=object)
    for k, s in enumerate(stage.strata):                       # hand-named units first: out of other strata
        if s.purposive:
            stratum[(stratum < 0) & np.isin(codes, s.units)] = k
    for k, s in enumerate(stage.strata):
        if not s.purposive:
            hit = (stratum < 0) & _match(units, s.where, s.any_flag)
            stratum[hit] = k
    for k, s in enumerate(stage.strata):
        if s.purposive:
            missing = sorted(set(s.units) - set(codes[stratum == k]))
            if missing:
                raise DesignError(f"hand-named {level} {missing[0]} of stratum {s.name!r} is not in the frame",
                                  code="unknown_unit", column=f"{level}.strata.{s.name}.units",
                                  fix=f"check the {unit_col}, or remove it from units")
    in_scope = stratum >= 0
    out_of_scope = int((~in_scope).sum())
    units = units.loc[in_scope].reset_index(drop=True)
    stratum = stratum[in_scope]
    n_units = len(units)

    if group_cols and n_units:
        # units arrive sorted by the group columns, so groups are runs
        gkeys = _sort_keys(units, group_cols)
        change = np.zeros(n_units, dtype=bool)
        change[0] = True
        for k in gkeys:
            change[1:] |= k[1:] != k[:-1]
        gcode = np.cumsum(change) - 1
        first = np.flatnonzero(change)
        heads = units.iloc[first]
        label = heads[group_cols[0]].astype(str).to_numpy(dtype=object)
        for c in group_cols[1:]:
            label = label + "\x1f" + heads[c].astype(str).to_numpy(dtype=object)
        glabels = pd.Index(label)
    elif group_cols:
        gcode, glabels = np.zeros(0, dtype=np.int64), pd.Index([])
    else:
        gcode, glabels = np.zeros(n_units, dtype=np.int64), pd.Index(["all"])
    G = len(glabels)
    cell = gcode.astype(np.int64) * S + stratum
    n_cells = G * S
    N_cell = np.bincount(cell, minlength=n_cells)
    size = None
    if stage.size:
        size = pd.to_numeric(units[stage.size], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(size) | (size < 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise FrameError(f"{unit_col} {units[unit_col].iloc[k]} has measure of size {stage.size} = {size[k]!r}",
                             code="bad_size", column=stage.size, row=k,
                             fix="give every unit a non-negative number (0 means the unit cannot be drawn)")
    methods = [stage.method_of(s) for s in stage.strata]
    avail = N_cell.copy()
    if size is not None:
        pos_cell = np.bincount(cell, weights=(size > 0), minlength=n_cells).astype(np.int64)
        for k, m in enumerate(methods):
            if m.startswith("pps"):
                avail[k::S] = pos_cell[k::S]

    # Sample size of every cell
    n_cell = np.zeros(n_cells, dtype=np.int64)
    wanted = np.zeros(n_cells, dtype=np.int64)
    shared = []
    for k, s in enumerate(stage.strata):
        sl = slice(k, None, S)
        Nk = N_cell[sl]
        if methods[k] in ("take_all", "purposive"):
            want = Nk
        elif s.n is not None:
            want = np.full(G, s.n, dtype=np.int64)
        elif s.rate is not None:
            want = _round_half_up(s.rate * Nk)
            if s.min_n is not None:
                want = np.maximum(want, s.min_n)
            if s.max_n is not None:
                want = np.minimum(want, s.max_n)
        elif s.n_rule is not None:
            if group_values is None:
                raise DesignError(f"n_rule is not available at the {level} stage", column=f"{level}.strata.{s.name}",
                                  fix="give the stratum a fixed n")
            vals = group_values(s.n_rule["column"], glabels, group_cols)
            want = np.where(vals >= s.n_rule["at_least"], s.n_rule["n"], s.n_rule["otherwise"]).astype(np.int64)
        elif s.target is not None:
            want = _target_sizes(s.target, Nk, units, gcode, stratum, k, G, level)
        else:
            shared.append(k)
            continue
        wanted[sl] = want
        n_cell[sl] = np.minimum(want, avail[sl])
    if shared:
        from .allocation import allocate

        for g in range(G):
            idx = [g * S + k for k in shared]
            Nh = avail[idx]
            total = int(min(stage.n, _cap_total(Nh, stage.max_n)))
            wanted[idx[0]] += stage.n           # the shortfall is recorded on the group's first shared cell
            if total == 0:
                continue
            sd = [stage.strata[k].sd for k in shared] if stage.allocation == "neyman" else None
            kw = {}
            if stage.q is not None:
                kw["q"] = stage.q
            if stage.kish_weight is not None:
                kw["kish_weight"] = stage.kish_weight
            nh = allocate(Nh, total, stage.allocation, sd=sd, min_n=stage.min_n, max_n=stage.max_n, **kw)
            n_cell[idx] = np.asarray(nh, dtype=np.int64)
            wanted[idx] = np.asarray(nh, dtype=np.int64)
            wanted[idx[0]] += stage.n - total

    # Selection
    selected = np.zeros(n_units, dtype=bool)
    pi = np.zeros(n_units, dtype=float)
    unit_method = np.array(methods, dtype=object)[stratum]
    keys = rng.random(n_units)
    cell_seeds = rng.integers(0, 2**63 - 1, size=n_cells)
    n_unit = n_cell[cell]
    N_unit = N_cell[cell]
    rank = _group_rank(cell, keys)
    take = (unit_method == "take_all") | (unit_method == "purposive")
    selected[take] = True
    pi[take] = 1.0
    srs = unit_method == "srs"
    selected[srs] = rank[srs] < n_unit[srs]
    pi[srs] = n_unit[srs] / np.maximum(N_unit[srs], 1)
    sysm = np.flatnonzero(unit_method == "systematic")
    if sysm.size:
        from .select import select_systematic

        order = sysm[np.argsort(cell[sysm], kind="stable")]       # keeps the (group, order_by) sort inside
        bounds = np.flatnonzero(np.r_[True, cell[order][1:] != cell[order][:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            c = cell[order[a]]
            pos = select_systematic(b - a, int(n_cell[c]), seed=int(cell_seeds[c]))
            selected[order[a:b][pos]] = True
        pi[sysm] = n_unit[sysm] / np.maximum(N_unit[sysm], 1)
    for m in ("pps_systematic", "pps_brewer", "pps_sampford"):
        idx = np.flatnonzero(unit_method == m)
        if not idx.size:
            continue
        from .select import select_pps_grouped

        pos, p = select_pps_grouped(cell[idx], size[idx], n_unit[idx], method=m[4:], seed=rng)
        selected[idx[pos]] = True
        pi[idx] = p

    extra = {}
    if household_groups:
        extra = _household_groups(stage, units, stratum, methods, rng, selected, pi)
        n_cell = np.bincount(cell, weights=selected, minlength=n_cells).astype(np.int64)
        n_unit = n_cell[cell]
        for k, s in enumerate(stage.strata):
            if s.groups:
                wanted[k::S] = n_cell[k::S]        # whole groups: the size is what the groups hold

    # Reserves: among units not selected, by the same random keys, within cell
    reserve_order = np.zeros(n_units, dtype=np.int64)
    k_res = np.array([0 if methods[k] in ("take_all", "purposive") else stage.reserve_of(s)
                      for k, s in enumerate(stage.strata)], dtype=np.int64)
    if k_res.any():
        r2 = _group_rank(cell, keys, sub=selected.astype(np.int64))
        is_res = (~selected) & (r2 < k_res[stratum])
        reserve_order[is_res] = r2[is_res] + 1

    purposive_k = np.array([m == "purposive" for m in methods])
    take_all_k = np.array([m == "take_all" for m in methods])
    out = units.assign(
        stratum=np.array([s.name for s in stage.strata], dtype=object)[stratum],
        stratum_index=stratum, cell=cell, group=np.asarray(glabels, dtype=object)[gcode],
        pi_stage=pi, selected=selected, reserve_order=reserve_order,
        purposive=purposive_k[stratum].astype(np.int64), take_all=take_all_k[stratum].astype(np.int64),
        N_stratum=N_unit, n_stratum=n_unit)
    cells = pd.DataFrame({
        "cell": np.arange(n_cells), "group": np.repeat(np.asarray(glabels, dtype=object), S),
        "stratum": [s.name for s in stage.strata] * G, "method": methods * G,
        "N": N_cell, "n": n_cell, "wanted": wanted})
    cells = cells[(cells["N"] > 0) | (cells["wanted"] > 0)].reset_index(drop=True)
    return StageResult(units=out, cells=cells, out_of_scope=out_of_scope, extra=extra)


def _cap_total(Nh, max_n):
    return int(np.minimum(Nh, max_n).sum()) if max_n is not None else int(np.sum(Nh))


def _target_sizes(target, Nk, units, gcode, stratum, k, G, level):
    from .samplesize import sample_size

    kw = dict(p=target["p"], level=target["level"], deff=target["deff"], response_rate=target["response_rate"])
    out = np.zeros(G, dtype=np.int64)
    if target["per"] == "county" and level == "household":
        county = units["county_code"].astype(str).to_numpy()
        g_county = pd.Series(county).groupby(gcode).first().reindex(range(G)).to_numpy()
        for c in sorted(set(g_county)):
            gs = np.flatnonzero(g_county == c)
            pop = int(Nk[gs].sum())
            if pop == 0:
                continue
            total = sample_size(target["margin"], population=pop, **kw).n
            out[gs] = -(-int(total) // len(gs))                   # ceil: every village its equal share
        return out
    for g in range(G):
        if Nk[g] > 0:
            out[g] = int(sample_size(target["margin"], population=int(Nk[g]), **kw).n)
    return out


def _household_groups(stage, units, stratum, methods, rng, selected, pi):
    """Take-all strata in whole 村民小组: per village draw ``groups`` of its group numbers at random."""
    info = {}
    for k, s in enumerate(stage.strata):
        if not s.groups:
            continue
        if "group_no" not in units.columns:
            raise FrameError("the household register has no group_no column (村民小组)", column="group_no",
                             code="missing_column",
                             fix=f"add group_no, or remove groups = {s.groups} from stratum {s.name!r}")
        # (village, group) pairs as integers: village rank × width + group number, sorted as (village, group)
        vr = np.unique(_int_codes(units["village_code"]), return_inverse=True)[1].astype(np.int64)
        g = pd.to_numeric(units["group_no"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
        width = int(g.max()) + 2 if len(g) else 2
        pair = vr * width + (g + 1)
        uniq, inv = np.unique(pair, return_inverse=True)
        pair_village = uniq // width
        G_v = np.bincount(pair_village)
        key = rng.random(len(uniq))
        r = _group_rank(pair_village, key)
        chosen = r < s.groups
        in_k = stratum == k
        selected[in_k] = chosen[inv][in_k]
        pi[in_k] = (np.minimum(s.groups, G_v) / G_v)[pair_village[inv]][in_k]
        first = np.unique(inv, return_index=True)[1]             # a unit of every pair, for its codes
        vcodes = units["village_code"].to_numpy(dtype=object)[first]
        taken = {}
        for v, grp, c in zip(vcodes, uniq % width - 1, chosen):
            if c:
                taken.setdefault(v, []).append(str(grp))
        info[s.name] = {"groups_taken": {v: " ".join(x) for v, x in taken.items()}}
    return info


# ------------------------------------------------------------------------------------------------------------
# The multi-stage draw
# ------------------------------------------------------------------------------------------------------------

@dataclass
class DrawResult:
    design: Design
    seed: int
    counties: pd.DataFrame         # county stage, every in-scope county with pi_county and selected
    villages: pd.DataFrame         # village stage, every in-scope village of the selected counties
    households: pd.DataFrame       # household stage, every in-scope household of the selected villages
    sample_villages: pd.DataFrame  # CONTRACTS columns (without draw_id) + names
    sample_households: pd.DataFrame  # CONTRACTS columns (without draw_id) + field-list extras
    cells: dict                    # stage -> cells table
    out_of_scope: dict
    extra: dict
    household_info: dict = field(default_factory=dict)


def _county_frame(villages: pd.DataFrame) -> pd.DataFrame:
    numeric = [c for c in villages.columns if c not in UNIT_COLUMN.values() and c not in COUNTY_ATTRS
               and not c.endswith("_code") and not c.endswith("_name") and pd.api.types.is_numeric_dtype(villages[c])]
    g = villages.groupby("county_code", sort=True)
    out = g[numeric].sum()
    attrs = [c for c in COUNTY_ATTRS if c in villages.columns]
    out = g[attrs].first().join(out)
    out["n_villages"] = g.size()
    return out.reset_index()


def select_sample(design, villages, households, seed: int, *, counties=None, describe: bool = True,
                  check: bool = False) -> DrawResult:
    """The pure multi-stage draw: frames, design and seed in; selected units with probabilities out.

    ``villages``: the village frame (DataFrame or file); ``households``: a register file, a DataFrame, a
    callable giving a village's households, a ``HouseholdSource`` or ``"synthetic:SEED"``. ``describe=False``
    skips hashing the households fetched (only needed to record or verify a draw); ``check=True`` runs
    ``sampling.frames.check_frame`` on the households of the sampled villages before they are drawn.
    """
    design = load_design(design)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise SamplingError(f"argument 'seed': must be a whole number >= 0, got {seed!r}", code="bad_argument",
                            fix="pass --seed N (record it: the same seed gives the same sample)")
    seed = int(seed)
    vframe = villages if isinstance(villages, pd.DataFrame) else read_village_frame(villages)[0]
    source = household_source(households)
    need = design.columns_needed()
    hh_rule_cols = {s.n_rule["column"] for s in design.household.strata if s.n_rule}
    _require_columns(vframe, {"county_code", "village_code", "province_code"} | need["county"] | need["village"]
                     | hh_rule_cols, "village", "county and village stages", file=vframe.attrs.get("source_file"))
    rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,))) for k in range(3)]

    # County stage
    # only the columns the draw and the lists read: fewer columns to carry through every sort and filter
    vcols = [c for c in vframe.columns if c in set(VILLAGE_KEEP) | set(COUNTY_ATTRS) | need["county"]
             | need["village"] | hh_rule_cols | {"persons_registered", "hh_registered", "persons"}
             or (c not in VILLAGE_KEEP and c.startswith(("hh_", "persons_")))]
    vframe = _sorted(_norm_codes(vframe[vcols].copy()), ["village_code"])
    cframe = _county_frame(vframe)
    named = list(counties or []) or list(design.county.units)
    if named:
        missing = sorted(set(named) - set(cframe["county_code"]))
        if missing:
            raise FrameError(f"county {missing[0]} is named by the design but has no villages in the frame",
                             code="unknown_county", column="county_code",
                             fix="check the 6-digit county code, or give the frame with that county's villages")
        cframe = cframe[cframe["county_code"].isin(named)].reset_index(drop=True)
    cgroups = list(design.county.by)
    cframe = _sorted(cframe, cgroups + list(design.county.order_by) + ["county_code"])
    cres = _run_stage(design.county, cframe, cgroups, rngs[0])
    cunits = cres.units.rename(columns={"pi_stage": "pi_county"})
    chosen = cunits[cunits["selected"]]
    if chosen.empty:
        raise SamplingError("the county stage selected no county", code="empty_sample",
                            fix="check the county stage of the design and that the frame holds its counties")

    # Village stage, within the selected counties
    vsel = vframe[vframe["county_code"].isin(chosen["county_code"])]
    vgroups = ["county_code"] + list(design.village.by)
    vsel = _sorted(vsel, vgroups + list(design.village.order_by) + ["village_code"])

    def county_values(column, labels, group_cols):
        sums = vsel.groupby("county_code")[column].sum()
        first = pd.Index(labels).str.split("\x1f").str[0]
        return sums.reindex(first).to_numpy(dtype=float)

    vres = _run_stage(design.village, vsel, vgroups, rngs[1], group_values=county_values)
    vunits = vres.units.merge(chosen[["county_code", "pi_county", "stratum"]].rename(
        columns={"stratum": "county_stratum"}), on="county_code", how="left")
    vunits = vunits.rename(columns={"pi_stage": "pi_village"})
    vchosen = vunits[vunits["selected"]].reset_index(drop=True)

    # Household stage, within the selected villages
    hh = source.fetch(vchosen)
    hcols = [c for c in hh.columns if c in set(HOUSEHOLD_KEEP) | need["household"] | set(design.household.by)
             | set(design.household.order_by)]
    hh = _norm_codes(hh[hcols].copy())
    if check and len(hh):
        from .frames import check_frame

        check_frame(hh, "household").raise_if_errors()
    _require_columns(hh, {"household_id", "village_code"} | need["household"] - hh_rule_cols, "household",
                     "household stage")
    dups = pd.Series(_int_codes(hh["household_id"])).duplicated().to_numpy()
    if dups.any():
        dup = hh["household_id"].to_numpy()[dups][0]
        raise FrameError(f"household {dup} appears twice in the household register", code="duplicate_household",
                         column="household_id", fix="remove the duplicate row; every household_id must be unique")
    unknown = ~hh["village_code"].isin(vchosen["village_code"])
    hh = hh.loc[~unknown]
    hgroups = ["village_code"] + list(design.household.by)
    hh = _sorted(hh, hgroups + list(design.household.order_by) + ["household_id"])
    vidx = vchosen.set_index("village_code")

    def village_values(column, labels, group_cols):
        first = pd.Index(labels).str.split("\x1f").str[0]
        return pd.to_numeric(vidx[column], errors="coerce").reindex(first).to_numpy(dtype=float)

    hres = _run_stage(design.household, hh, hgroups, rngs[2], group_values=village_values,
                      household_groups=any(s.groups for s in design.household.strata))
    missing_v = sorted(set(vchosen["village_code"]) - set(hh["village_code"].unique()))
    hunits = hres.units.rename(columns={"pi_stage": "pi_household"})
    at = _lookup(_int_codes(vchosen["village_code"]), _int_codes(hunits["village_code"]))
    hunits = hunits.assign(pi_county=vchosen["pi_county"].to_numpy()[at], pi_village=vchosen["pi_village"].to_numpy()[at],
                           village_stratum=vchosen["stratum"].to_numpy()[at],
                           village_purposive=vchosen["purposive"].to_numpy()[at])

    sv = _sample_villages(vchosen)
    sh = _sample_households(hunits)
    return DrawResult(design=design, seed=seed, counties=cunits, villages=vunits, households=hunits,
                      sample_villages=sv, sample_households=sh,
                      cells={"county": cres.cells, "village": vres.cells, "household": hres.cells},
                      out_of_scope={"county": cres.out_of_scope, "village": vres.out_of_scope,
                                    "household": hres.out_of_scope},
                      extra={"household": hres.extra, "villages_without_households": missing_v},
                      household_info=source.info(hh) if describe else {})


def _sample_villages(v: pd.DataFrame) -> pd.DataFrame:
    purposive = v["purposive"].to_numpy() == 1
    pi_v = v["pi_village"].to_numpy(dtype=float).copy()
    pi_v[purposive] = np.nan
    out = pd.DataFrame({
        "province_code": v["province_code"].astype(str), "county_code": v["county_code"].astype(str),
        "village_code": v["village_code"].astype(str), "stratum": v["stratum"].astype(str),
        "pi_county": v["pi_county"].to_numpy(dtype=float), "pi_village": pi_v,
        "weight_village": 1.0 / (v["pi_county"].to_numpy(dtype=float) * pi_v),
        "purposive": v["purposive"].astype(np.int64), "take_all": v["take_all"].astype(np.int64),
        "n_villages_stratum": v["n_stratum"].astype(np.int64), "N_villages_stratum": v["N_stratum"].astype(np.int64),
        "village_name": v["village_name"].astype(str) if "village_name" in v else v["village_code"].astype(str),
        "county_name": v["county_name"].astype(str) if "county_name" in v else v["county_code"].astype(str)})
    for extra in ("province_name", "township_code", "township_name", "n_groups", "households"):
        if extra in v.columns:
            out["_" + extra] = v[extra].to_numpy()
    return _sorted(out, ["county_code", "village_code"])


def _sample_households(h: pd.DataFrame) -> pd.DataFrame:
    keep = h[h["selected"] | (h["reserve_order"] > 0)]
    purposive = ((keep["purposive"].to_numpy() == 1) | (keep["village_purposive"].to_numpy() == 1))
    pi_v = keep["pi_village"].to_numpy(dtype=float).copy()
    pi_v[keep["village_purposive"].to_numpy() == 1] = np.nan
    pi_h = keep["pi_household"].to_numpy(dtype=float).copy()
    pi_h[keep["purposive"].to_numpy() == 1] = np.nan
    pi = keep["pi_county"].to_numpy(dtype=float) * pi_v * pi_h
    role = np.where(keep["selected"].to_numpy(), "sample", "reserve")
    res = keep["reserve_order"].to_numpy()

    def col(name, default=None):
        return keep[name].to_numpy() if name in keep.columns else np.full(len(keep), default, dtype=object)

    out = pd.DataFrame({
        "household_id": keep["household_id"].astype(str).to_numpy(),
        "village_code": keep["village_code"].astype(str).to_numpy(),
        "township_code": col("township_code"), "county_code": col("county_code"),
        "province_code": col("province_code"),
        "village_stratum": keep["village_stratum"].astype(str).to_numpy(),
        "hh_stratum": keep["stratum"].astype(str).to_numpy(), "role": role,
        "reserve_order": pd.array(np.where(role == "reserve", res, 0), dtype="Int64"),
        "pi_county": keep["pi_county"].to_numpy(dtype=float), "pi_village": pi_v, "pi_household": pi_h,
        "pi": pi, "weight": 1.0 / pi, "purposive": purposive.astype(np.int64),
        "take_all": keep["take_all"].astype(np.int64).to_numpy(),
        "register_status": pd.array(pd.to_numeric(col("register_status"), errors="coerce"), dtype="Int64"),
        "head_name": col("head_name"), "address": col("address"),
        "size": pd.array(pd.to_numeric(col("size"), errors="coerce"), dtype="Int64"),
        "N_hh_stratum": keep["N_stratum"].astype(np.int64).to_numpy(),
        "n_hh_stratum": keep["n_stratum"].astype(np.int64).to_numpy(),
        "_group_no": col("group_no"), "_phone": col("phone")})
    out.loc[out["role"] == "sample", "reserve_order"] = pd.NA
    # Field-list order: village, sample before reserves, stratum order, then household code / reserve order
    out["_role_order"] = (out["role"] == "reserve").astype(np.int64)
    out["_si"] = keep["stratum_index"].to_numpy()
    out["_ro"] = out["reserve_order"].fillna(0).astype(np.int64)
    out = _sorted(out, ["county_code", "village_code", "_role_order", "_si", "_ro", "household_id"])
    return out.drop(columns=["_role_order", "_si", "_ro"])


# ------------------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------------------

def design_summary(result: DrawResult) -> dict:
    """Sizes per stratum, the range of probabilities and weights, and the expected precision."""
    from statistics import NormalDist

    d = result.design
    sh = result.sample_households
    sample = sh[sh["role"] == "sample"]
    stages = {}
    for level, cells in result.cells.items():
        rows = []
        if level == "county":
            units, pcol = result.counties, "pi_county"
        elif level == "village":
            units, pcol = result.villages, "pi_village"
        else:
            units, pcol = result.households, "pi_household"
        for k, s in enumerate(getattr(d, level).strata):
            c = cells[cells["stratum"] == s.name]
            u = units[(units["stratum"] == s.name) & units["selected"]]
            p = u[pcol].to_numpy(dtype=float)
            rows.append({"stratum": s.name, "label": s.label, "method": getattr(d, level).method_of(s),
                         "groups": int((c["N"] > 0).sum()), "N": int(c["N"].sum()), "n": int(c["n"].sum()),
                         "short": int((c["n"] < c["wanted"]).sum()),
                         "pi_min": float(p.min()) if p.size and not s.purposive else None,
                         "pi_max": float(p.max()) if p.size and not s.purposive else None})
        stages[level] = {"strata": rows, "out_of_scope": int(result.out_of_scope[level])}
    w = sample["weight"].dropna().to_numpy(dtype=float)
    pis = sample["pi"].dropna().to_numpy(dtype=float)
    z = NormalDist().inv_cdf(0.5 + d.precision["level"] / 2)
    p, deff, rr = d.precision["p"], d.precision["deff"], d.precision["response_rate"]
    precision = []
    for name, g in sample[sample["purposive"] == 0].groupby("hh_stratum", sort=False):
        per = g.groupby("county_code").agg(n=("weight", "size"), N=("weight", "sum"))
        n_eff = per["n"] * rr
        fpc = (1 - n_eff / per["N"]).clip(lower=0)
        margin = z * np.sqrt(deff * p * (1 - p) / n_eff * fpc)
        precision.append({"hh_stratum": name, "counties": int(len(per)), "n_median": float(per["n"].median()),
                          "margin_median": float(margin.median()), "margin_max": float(margin.max())})
    per_county = sample[sample["purposive"] == 0].groupby("county_code")["weight"].agg(["size", "sum"])
    n_eff = per_county["size"] * rr
    m_all = z * np.sqrt(deff * p * (1 - p) / n_eff * (1 - n_eff / per_county["sum"]).clip(lower=0))
    return {
        "design": d.name, "title": d.title, "seed": result.seed,
        "counts": {"counties": int(result.counties["selected"].sum()),
                   "villages": int(len(result.sample_villages)),
                   "purposive_villages": int(result.sample_villages["purposive"].sum()),
                   "households": int(len(sample)), "reserves": int((sh["role"] == "reserve").sum()),
                   "households_per_county_min": int(sample.groupby("county_code").size().min()) if len(sample) else 0,
                   "households_per_county_max": int(sample.groupby("county_code").size().max()) if len(sample) else 0},
        "stages": stages,
        "pi": {"min": float(pis.min()) if pis.size else None, "max": float(pis.max()) if pis.size else None},
        "weight": {"min": float(w.min()) if w.size else None, "max": float(w.max()) if w.size else None,
                   "sum": float(w.sum())},
        "precision": {"assumed": dict(d.precision), "by_hh_stratum": precision,
                      "all_households_margin_median": float(m_all.median()) if len(m_all) else None,
                      "all_households_margin_max": float(m_all.max()) if len(m_all) else None},
        "villages_without_households": list(result.extra.get("villages_without_households", [])),
    }


def format_summary(summary: dict) -> str:
    """The design summary as text for the terminal (Chinese labels with the stratum names)."""
    lines = [f"设计 {summary['design']}: {summary['title']}  (seed {summary['seed']})"]
    c = summary["counts"]
    lines.append(f"  counties {c['counties']}, villages {c['villages']} (purposive {c['purposive_villages']}), "
                 f"households {c['households']} + reserves {c['reserves']}; per county "
                 f"{c['households_per_county_min']}–{c['households_per_county_max']}")
    for level in [x for x in ("county", "village", "household") if x in summary["stages"]]:
        st = summary["stages"][level]
        lines.append(f"  {level} stage (out of scope: {st['out_of_scope']})")
        lines.append(f"    {'stratum':<16}{'method':<16}{'groups':>7}{'N':>10}{'n':>8}{'short':>7}   π range")
        for r in st["strata"]:
            rng = "purposive (no π)" if r["pi_min"] is None else f"{r['pi_min']:.4g} – {r['pi_max']:.4g}"
            lines.append(f"    {r['stratum']:<16}{r['method']:<16}{r['groups']:>7}{r['N']:>10}{r['n']:>8}"
                         f"{r['short']:>7}   {rng}  {r['label']}")
    if summary["pi"]["min"] is not None:
        lines.append(f"  overall π {summary['pi']['min']:.4g} – {summary['pi']['max']:.4g}; weights "
                     f"{summary['weight']['min']:.4g} – {summary['weight']['max']:.4g} (Σ {summary['weight']['sum']:.0f})")
    pr = summary["precision"]
    a = pr["assumed"]
    lines.append(f"  expected precision per county (p = {a['p']}, deff = {a['deff']}, response {a['response_rate']}, "
                 f"{a['level']:.0%}): all households ± {_pct(pr['all_households_margin_median'])} (median), "
                 f"± {_pct(pr['all_households_margin_max'])} (worst)")
    for r in pr["by_hh_stratum"]:
        lines.append(f"    {r['hh_stratum']:<16} n ≈ {r['n_median']:.0f} per county: ± {_pct(r['margin_median'])} "
                     f"(median), ± {_pct(r['margin_max'])} (worst)")
    if summary["villages_without_households"]:
        lines.append(f"  warning: {len(summary['villages_without_households'])} sampled village(s) have no "
                     f"households in the register, e.g. {summary['villages_without_households'][0]}")
    return "\n".join(lines)


def _pct(x):
    return "-" if x is None else f"{x * 100:.2f}%"


# ------------------------------------------------------------------------------------------------------------
# Draws in the workspace
# ------------------------------------------------------------------------------------------------------------

def _draw_id(design: Design, seed: int, frames: dict, counties) -> str:
    ident = json.dumps({"design": design.digest(), "seed": seed, "villages": frames["villages"]["sha256"],
                        "households": frames["households"]["sha256"], "counties": sorted(counties or [])},
                       sort_keys=True)
    return "D" + hashlib.sha256(ident.encode()).hexdigest()[:12]


def _resolve_frames(ws, villages, households):
    if villages is None:
        villages = _default_frame(ws, "villages")
    if households is None:
        households = _default_frame(ws, "households")
    return villages, households


def _default_frame(ws, kind):
    folder = ws.dir("frames")
    for ext in (".parquet", ".csv", ".xlsx", ".sav", ".dta"):
        p = folder / f"{kind}{ext}"
        if p.is_file():
            return p
    raise FrameError(f"no {kind} frame given and none in {folder}", code="no_frame", file=folder,
                     fix=f"pass --{kind} FILE, or put {kind}.parquet (or .csv/.xlsx/.sav/.dta) in the workspace's "
                         "frames folder" + (" (or --households synthetic:SEED for the synthetic population)"
                                            if kind == "households" else ""))


def draw_sample(ws, design, seed: int, *, villages=None, households=None, counties=None, out=None,
                write_lists: bool = True, check: bool = True) -> dict:
    """Draw, write the field lists and record the draw; returns the record (draw_id, summary, files).

    ``check``: run ``sampling.frames.check_frame`` on the village frame and on the sampled villages'
    households first (nothing is drawn from a frame with errors).
    """
    from .fieldlists import write_field_lists
    from .version import software_version

    design = load_design(design)
    villages, households = _resolve_frames(ws, villages, households)
    vframe, vinfo = read_village_frame(villages)
    if check:
        from .frames import check_frame

        check_frame(vframe, "village").raise_if_errors()
    result = select_sample(design, vframe, households, seed, counties=counties, check=check)
    frames = {"villages": vinfo, "households": result.household_info, "counties": sorted(counties or [])}
    draw_id = _draw_id(design, int(seed), frames, counties)
    existing = ws.table_exists("draws") and not ws.read_sql("SELECT draw_id FROM draws WHERE draw_id = ?",
                                                            (draw_id,)).empty
    if existing:
        raise SamplingError(f"this draw already exists as {draw_id} (same design, seed and frames)",
                            code="draw_exists", fix=f"run `tpa sample verify --draw {draw_id}` to check it, or use "
                                                    "another seed for a new sample")
    summary = design_summary(result)
    summary["draw_id"] = draw_id
    final = Path(out) if out else ws.dir("samples") / draw_id
    if final.exists() and any(final.iterdir()):
        raise SamplingError(f"the output folder {final} is not empty", code="output_exists", file=final,
                            fix="choose an empty folder with --out")
    part = final.with_name("." + final.name + ".part")
    if part.exists():
        shutil.rmtree(part)
    files = {}
    try:
        if write_lists:
            files = write_field_lists(result, draw_id, part, summary=summary)
        else:
            part.mkdir(parents=True)
        summary["files"] = files
        summary["list_dir"] = str(final)
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
        with ws.transaction() as con:
            for ddl in _DDL:
                con.execute(ddl)
            con.execute("INSERT INTO draws VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (draw_id, created, int(seed), design.to_json(), json.dumps(frames, sort_keys=True),
                         software_version(), json.dumps(summary, ensure_ascii=False, sort_keys=True)))
            sv = result.sample_villages[VILLAGE_COLUMNS]
            con.executemany(f"INSERT INTO sample_villages VALUES (?, {', '.join('?' * len(VILLAGE_COLUMNS))})",
                            [(draw_id, *row) for row in _records(sv)])
            sh = result.sample_households[HOUSEHOLD_COLUMNS]
            con.executemany(f"INSERT INTO sample_households VALUES (?, {', '.join('?' * len(HOUSEHOLD_COLUMNS))})",
                            [(draw_id, *row) for row in _records(sh)])
            if final.exists():
                final.rmdir()
            os.replace(part, final)
    except BaseException:
        if part.exists():
            shutil.rmtree(part, ignore_errors=True)
        raise
    return {"draw_id": draw_id, "created": created, "seed": int(seed), "design": design.name,
            "frames": frames, "summary": summary, "list_dir": str(final), "files": files}


def _records(df: pd.DataFrame):
    """Rows as plain Python values for sqlite (None for missing)."""
    cols = []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_float_dtype(s):
            vals = [None if v != v else float(v) for v in s.to_numpy(dtype=float)]
        elif pd.api.types.is_integer_dtype(s):
            vals = [None if (v is None or v is pd.NA) else int(v) for v in s.astype(object)] \
                if s.hasnans else [int(v) for v in s.to_numpy()]
        else:
            vals = [None if (v is None or v is pd.NA or (isinstance(v, float) and v != v)) else str(v)
                    for v in s.astype(object).to_numpy()]
        cols.append(vals)
    return list(zip(*cols))


def _draw_row(ws, draw_id=None) -> dict:
    if not ws.table_exists("draws"):
        raise SamplingError("no sample has been drawn in this workspace", code="no_draw",
                            fix="run `tpa sample draw --design exit_check --seed N` first")
    if draw_id is None:
        df = ws.read_sql("SELECT * FROM draws ORDER BY created DESC, draw_id DESC LIMIT 1")
    else:
        df = ws.read_sql("SELECT * FROM draws WHERE draw_id = ?", (draw_id,))
    if df.empty:
        raise SamplingError(f"no draw {draw_id!r} in this workspace" if draw_id else "no draw in this workspace",
                            code="no_draw", fix="list the draws with `tpa sample summary --json`, or draw first")
    row = df.iloc[0].to_dict()
    row["seed"] = int(row["seed"])
    row["design"] = json.loads(row["design_json"])
    row["frames"] = json.loads(row["frame_hashes_json"])
    row["summary"] = json.loads(row["summary_json"])
    return row


def latest_draw(ws) -> dict:
    """The draw with the greatest ``created`` (dict of the draws row, JSON columns decoded)."""
    return _draw_row(ws)


def get_draw(ws, draw_id=None) -> dict:
    return _draw_row(ws, draw_id)


def list_draws(ws) -> pd.DataFrame:
    if not ws.table_exists("draws"):
        return pd.DataFrame(columns=["draw_id", "created", "seed"])
    return ws.read_sql("SELECT draw_id, created, seed, software_version FROM draws ORDER BY created")


def sample_households(ws, draw_id=None) -> pd.DataFrame:
    """The households of a draw (the latest by default), sample and reserves, in field-list order."""
    row = _draw_row(ws, draw_id)
    df = ws.read_sql("SELECT * FROM sample_households WHERE draw_id = ? ORDER BY rowid", (row["draw_id"],))
    df = df.rename(columns={v: k for k, v in _DB_NAMES.items()})
    for c in ("reserve_order", "register_status", "size"):
        df[c] = pd.array(df[c], dtype="Int64") if len(df) else df[c]
    return df


def sample_villages(ws, draw_id=None) -> pd.DataFrame:
    row = _draw_row(ws, draw_id)
    df = ws.read_sql("SELECT * FROM sample_villages WHERE draw_id = ? ORDER BY rowid", (row["draw_id"],))
    return df.rename(columns={v: k for k, v in _DB_NAMES.items()})


# ------------------------------------------------------------------------------------------------------------
# Verification
# ------------------------------------------------------------------------------------------------------------

def redraw(ws, draw_id=None, *, villages=None, households=None):
    """Draw again from the recorded design, seed and frames; refuses if a frame's content changed."""
    row = _draw_row(ws, draw_id)
    design = design_from_json(row["design_json"])
    frames = row["frames"]
    vrec, hrec = frames["villages"], frames["households"]
    if villages is None:
        if vrec["kind"] != "file":
            raise SamplingError("the village frame of this draw was given in memory, not as a file",
                                code="frame_needed", fix="pass the same village frame again (villages=...)")
        villages = vrec["path"]
    vframe, vinfo = read_village_frame(villages)
    if vinfo["sha256"] != vrec["sha256"]:
        raise FrameError(f"the village frame has changed since draw {row['draw_id']} (recorded sha256 "
                         f"{vrec['sha256'][:12]}…, now {vinfo['sha256'][:12]}…)", code="frame_changed",
                         file=vinfo.get("path"), fix="restore the frame the draw was made from; a changed "
                                                     "frame cannot reproduce the sample")
    if households is None:
        if hrec["kind"] == "file":
            households = hrec["path"]
        elif hrec["kind"] == "synthetic":
            households = synthetic_households(int(hrec["population_seed"]), int(hrec.get("year", 2019)))
        else:
            raise SamplingError("the household register of this draw was given in memory, not as a file",
                                code="frame_needed", fix="pass the same households again (households=...)")
    result = select_sample(design, vframe, households, row["seed"], counties=frames.get("counties") or None)
    if result.household_info.get("sha256") != hrec.get("sha256"):
        raise FrameError(f"the household register has changed since draw {row['draw_id']} (recorded sha256 "
                         f"{str(hrec.get('sha256'))[:12]}…, now {str(result.household_info.get('sha256'))[:12]}…)",
                         code="frame_changed", file=hrec.get("path"),
                         fix="restore the register the draw was made from")
    return row, result


def verify_draw(ws, draw_id=None, *, villages=None, households=None, seal: str | None = None) -> dict:
    """Re-draw and confirm identical tables and byte-identical field lists (and the seal, when given)."""
    import tempfile

    from .fieldlists import write_field_lists
    from .seal import manifest_digest

    row, result = redraw(ws, draw_id, villages=villages, households=households)
    did = row["draw_id"]
    checks = []
    stored_h = sample_households(ws, did)[HOUSEHOLD_COLUMNS]
    stored_v = sample_villages(ws, did)[VILLAGE_COLUMNS]
    checks.append(_compare("sample_households", stored_h, result.sample_households[HOUSEHOLD_COLUMNS]))
    checks.append(_compare("sample_villages", stored_v, result.sample_villages[VILLAGE_COLUMNS]))
    recorded_files = row["summary"].get("files", {})
    with tempfile.TemporaryDirectory() as tmp:
        summary = design_summary(result)
        summary["draw_id"] = did
        files = write_field_lists(result, did, Path(tmp) / "lists", summary=summary)
    diff = sorted(k for k in set(files) | set(recorded_files) if files.get(k) != recorded_files.get(k))
    checks.append({"check": "field lists byte-identical", "ok": not diff,
                   "detail": f"{len(files)} files" if not diff else f"differ: {', '.join(diff[:5])}"})
    report = {"draw_id": did, "seed": row["seed"], "software_version_recorded": row["software_version"],
              "checks": checks}
    if seal is not None:
        digest = manifest_digest(files)
        checks.append({"check": "seal", "ok": digest == seal.strip().lower(),
                       "detail": f"re-drawn lists give seal {digest}"})
    report["ok"] = all(c["ok"] for c in checks)
    return report


def _compare(name, stored: pd.DataFrame, fresh: pd.DataFrame) -> dict:
    a = stored.reset_index(drop=True)
    b = fresh.reset_index(drop=True)
    if len(a) != len(b):
        return {"check": name, "ok": False, "detail": f"{len(a)} rows recorded, {len(b)} re-drawn"}
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_float_dtype(y):
            xa, ya = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
            same = np.array_equal(xa, ya, equal_nan=True)
        else:
            xs = x.astype(object).where(x.notna(), None).map(lambda v: None if v is None else str(v))
            ys = y.astype(object).where(y.notna(), None).map(lambda v: None if v is None else str(v))
            same = xs.tolist() == ys.tolist()
        if not same:
            return {"check": name, "ok": False, "detail": f"column {c} differs"}
    return {"check": name, "ok": True, "detail": f"{len(a)} rows identical"}
