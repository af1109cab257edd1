"""Selection algorithms of the sampling stage (SPEC §5), pinned to R's ``sampling`` package.

- ``select_srs``: simple random sampling without replacement (简单随机抽样).
- ``select_systematic``: equal-probability systematic sampling (等距抽样) with a random start and the
  fractional interval N/n, so every unit has probability exactly n/N.
- ``select_pps``: fixed-size πps (按规模大小成比例的概率抽样) by R's ``UPsystematic``, ``UPbrewer`` or
  ``UPsampford`` applied to ``inclusion_probabilities(sizes, n)``.
- ``select_pps_grouped``: the same within many groups at once (villages within counties), vectorised over
  groups for all three methods; systematic PPS is one numpy pass over all units (the village stage of a
  national draw, 832 counties × 25 of 500k villages, takes a few hundredths of a second).

All return sorted 0-based positions into the input. ``seed`` may be an int, None or a ``numpy.random.Generator``;
the same seed and input give the same sample. The random streams are numpy's, so samples are not the ones
R would draw with ``set.seed``; what is pinned to R are the inclusion probabilities, and the designs are
checked statistically against them.

Certainty units: units whose π is within ``CERTAINTY_TOLERANCE`` of 1 are taken first and the draw is made
among the others, as R's ``UP*`` functions leave units with π ≥ 1 − eps (eps = 1e-6) out of the draw. The
smaller tolerance here changes no probability by more than 1e-9 and guarantees that the floating-point
systematic draw can never place two selection points in one unit.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from .errors import SamplingError, check_arg
from .probabilities import _as_count, _as_sizes, grouped_inclusion_probabilities, inclusion_probabilities

__all__ = ["select_srs", "select_systematic", "select_pps", "select_pps_grouped", "PPS_METHODS"]

PPS_METHODS = ("systematic", "brewer", "sampford")
CERTAINTY_TOLERANCE = 1e-9
# Sampford's rejective draw: trials per vectorised batch and the cap after which we stop instead of hanging.
_SAMPFORD_BATCH = 256
_SAMPFORD_MAX_TRIALS = 1_000_000


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    ok = seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool))
    check_arg(ok, "seed", f"must be an int, None or a numpy Generator, got {type(seed).__name__}")
    if seed is not None:
        check_arg(int(seed) >= 0, "seed", f"must be >= 0, got {seed}")
    return np.random.default_rng(seed)


def _check_method(method) -> str:
    check_arg(method in PPS_METHODS, "method", f"must be one of {', '.join(PPS_METHODS)}; got {method!r}")
    return method


# --------------------------------------------------------------------------------------------------------
# Equal-probability designs
# --------------------------------------------------------------------------------------------------------

def _population_and_n(N, n):
    N = _as_count(N, "N")
    n = _as_count(n, "n")
    check_arg(n <= N, "n", f"is {n} but the population has only N = {N} units (a sample without "
                            f"replacement cannot be larger than the population)")
    return N, n


def select_srs(N, n, seed=None) -> np.ndarray:
    """Simple random sample without replacement of n out of N units: sorted 0-based positions."""
    N, n = _population_and_n(N, n)
    rng = _rng(seed)
    return np.sort(rng.choice(N, size=n, replace=False)).astype(np.int64)


def select_systematic(N, n, seed=None) -> np.ndarray:
    """Equal-probability systematic sample: random start in [0, k), interval k = N/n (fractional).

    Position j is ⌊(u + j)·N/n⌋ for u ~ U[0, 1) and j = 0..n−1, so each unit is hit with probability
    exactly n/N (Madow's fractional-interval method) and the sample size is always n.
    """
    N, n = _population_and_n(N, n)
    if n == N:
        return np.arange(N, dtype=np.int64)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    rng = _rng(seed)
    u = rng.random()
    # Integer part of the start kept apart from the fraction so that u + j never rounds up to j + 1.
    j = np.arange(n, dtype=np.int64)
    step_int, step_frac = divmod(N, n)                     # N/n = step_int + step_frac/n
    # (u + j)·N/n = j·step_int + (j·step_frac + u·N)/n, the second term exact in integers except u·N.
    pos = j * step_int + np.floor((j * step_frac + u * N) / n).astype(np.int64)
    pos = np.minimum(pos, N - 1)
    if np.any(np.diff(pos) <= 0):                          # pragma: no cover - floating-point safety net
        pos = np.floor(j * (N / n)).astype(np.int64)
    return pos


# --------------------------------------------------------------------------------------------------------
# πps designs on given inclusion probabilities, vectorised over contiguous groups
#
# The kernels below take the drawable units only (0 < π < 1 − tolerance), sorted so that each group is one
# contiguous run in the units' given order: ``p`` their π, ``gc`` their group code (non-decreasing), ``m`` the
# number of units to draw in each group (Σπ of the run, an integer). They return a boolean mask over ``p``.
# --------------------------------------------------------------------------------------------------------

class _Runs:
    """Where each group's run of units starts and ends in the sorted arrays."""

    def __init__(self, gc: np.ndarray, G: int):
        self.G = G
        self.count = np.bincount(gc, minlength=G)
        self.end = np.cumsum(self.count)                    # one past the last unit
        self.start = self.end - self.count
        self.nonempty = self.count > 0


def _systematic_kernel(p, gc, runs: _Runs, m, rng) -> np.ndarray:
    """R ``UPsystematic`` in each group: points u_g, u_g + 1, …, u_g + m_g − 1 on the cumulated π of the run."""
    u = rng.random(runs.G)
    ne = runs.nonempty
    last = runs.end[ne] - 1
    first = runs.start[ne]
    # Per-group cumulative π from one global cumsum; each group is then re-anchored to start at exactly 0 and
    # end at exactly its integer m_g, so the floor-crossing count below is exactly m_g in every group.
    csum = np.cumsum(p)
    base = np.zeros(runs.G)
    base[ne] = csum[first] - p[first]
    total = np.zeros(runs.G)
    total[ne] = csum[last] - base[ne]
    scale = np.divide(m, total, out=np.zeros(runs.G), where=total > 0)
    # gc is sorted, so repeating per-group values equals indexing by gc, and is cheaper.
    local = csum - np.repeat(base, runs.count)
    local *= np.repeat(scale, runs.count)
    local[last] = m[ne]
    # Unit k of group g is taken when ⌊c_k − u_g⌋ > ⌊c_{k−1} − u_g⌋ (R: the fractional part of the cumulated π
    # minus the start drops), with c = 0 before a group's first unit.
    local -= np.repeat(u, runs.count)
    f = np.floor(local, out=local)
    taken = np.empty(f.size, dtype=bool)
    taken[1:] = f[1:] > f[:-1]
    taken[first] = f[first] > np.floor(-u[ne])
    return taken


def _normalised_cumsum(w, gc, runs: _Runs):
    """Cumulated w/Σ_g w within each run, laid end to end: run g spans (g', g' + 1] where g' counts the
    non-empty runs before it. Keeping every run's total at 1 keeps the precision of a choice within a run at
    ~G·1e-16 whatever the weights' scale."""
    totals = np.bincount(gc, weights=w, minlength=runs.G)
    c = np.cumsum(w / np.repeat(np.where(totals > 0, totals, 1.0), runs.count))
    before = np.zeros(runs.G)
    ne = runs.nonempty
    before[ne] = c[runs.start[ne]] - (w[runs.start[ne]] / np.where(totals > 0, totals, 1.0)[ne])
    return c, before, totals


def _choose(c, before, w, runs: _Runs, groups, uniforms) -> np.ndarray:
    """One unit per entry of ``groups`` with probability ∝ w within that group's run (inverse cdf on the
    run's normalised cumsum). Never returns a zero-weight unit: a target at the run's top edge (rounding)
    falls back to the run's last positive-weight unit."""
    j = np.searchsorted(c, before[groups] + uniforms, side="right")
    j = np.clip(j, runs.start[groups], runs.end[groups] - 1)
    bad = w[j] <= 0
    if bad.any():                                           # pragma: no cover - rounding edge only
        positive_pos = np.where(w > 0, np.arange(w.size), -1)
        last_positive = np.maximum.accumulate(positive_pos)
        j[bad] = last_positive[runs.end[groups[bad]] - 1]
    return j


def _brewer_kernel(p, gc, runs: _Runs, m, rng) -> np.ndarray:
    """R ``UPbrewer`` in each group: m_g draw-by-draw steps; step i takes unit j with probability ∝
    (1 − s_j)·π_j·((m − a) − π_j) / ((m − a) − π_j·(m − i + 1)), a = Σπ of the units already taken.
    Step i runs for all groups with m_g ≥ i at once: ~10 passes over the units per step.

    The choice inside a group is an inverse cdf on one global cumsum of the weights, so a unit's selection
    probability carries an absolute rounding error of about 1e-16 × Σ(all weights), ~1e-12 at the scale
    of a national village frame: far below anything a test or an estimate can see."""
    taken = np.zeros(p.size, dtype=bool)
    taken_idx = []
    a = np.zeros(runs.G)
    mi = m.astype(np.int64)
    ne = runs.nonempty
    prev = runs.start[ne] - 1                               # index before each run (−1 for the first)
    last = runs.end[ne] - 1
    for i in range(1, int(mi.max(initial=0)) + 1):
        active_g = mi >= i
        active = np.flatnonzero(active_g)
        rest = np.repeat(m - a, runs.count)
        w = rest - p
        w *= p
        den = np.repeat(m - i + 1, runs.count)
        den *= p
        np.subtract(rest, den, out=den)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(w, den, out=w)
        np.fmax(w, 0.0, out=w)                              # NaN and rounding negatives → 0
        if taken_idx:
            w[np.concatenate(taken_idx)] = 0.0
        if active.size < runs.G:
            w[np.repeat(~active_g, runs.count)] = 0.0
        c = np.cumsum(w)
        if c.size and not np.isfinite(c[-1]):              # pragma: no cover - 0 denominators only
            w[~np.isfinite(w)] = 0.0
            c = np.cumsum(w)
        before = np.zeros(runs.G)
        before[ne] = np.where(prev >= 0, c[np.maximum(prev, 0)], 0.0)
        total = np.zeros(runs.G)
        total[ne] = c[last] - before[ne]
        if np.any(total[active] <= 0):                      # pragma: no cover - degenerate rounding only
            w = np.where(taken | ~np.repeat(active_g, runs.count), 0.0, p)
            c = np.cumsum(w)
            before[ne] = np.where(prev >= 0, c[np.maximum(prev, 0)], 0.0)
            total[ne] = c[last] - before[ne]
        target = before[active] + rng.random(active.size) * total[active]
        j = np.searchsorted(c, target, side="right")
        j = np.clip(j, runs.start[active], runs.end[active] - 1)
        bad = w[j] <= 0
        if bad.any():                                       # pragma: no cover - rounding edge only
            last_positive = np.maximum.accumulate(np.where(w > 0, np.arange(w.size), -1))
            j[bad] = last_positive[runs.end[active[bad]] - 1]
        taken[j] = True
        taken_idx.append(j)
        a[active] += p[j]
    return taken


def _sampford_kernel(p, gc, runs: _Runs, m, rng) -> np.ndarray:
    """R ``UPsampford`` (Sampford 1967, rejective) in each group: one unit with probability π/m, m − 1 more
    with replacement with probability ∝ π/(1 − π); the trial is accepted when all m are distinct. Trials run
    in batches for all unfinished groups at once; certainty units were removed before, which is what keeps
    the acceptance rate workable (R's UPsampford leaves them out of the draw the same way)."""
    taken = np.zeros(p.size, dtype=bool)
    mi = m.astype(np.int64)
    c1, b1, _ = _normalised_cumsum(p, gc, runs)
    odds = p / (1 - p)
    c2, b2, _ = _normalised_cumsum(odds, gc, runs)
    pending = np.flatnonzero(mi > 0)
    trials = np.zeros(runs.G, dtype=np.int64)
    batch = 4
    while pending.size:
        over = trials[pending] >= _SAMPFORD_MAX_TRIALS
        if over.any():
            g = int(pending[np.flatnonzero(over)[0]])
            raise SamplingError(
                f"argument 'method': Sampford's rejective draw found no sample of {int(mi[g])} distinct units "
                f"in {_SAMPFORD_MAX_TRIALS} trials (inclusion probabilities too close to 1)",
                code="sampford_rejected",
                fix="use method='brewer', which gives the same inclusion probabilities without rejection")
        b = int(min(batch, _SAMPFORD_BATCH, _SAMPFORD_MAX_TRIALS))
        # Rows = (group, trial); row r draws m_g units: its first by π, the others by the odds.
        row_group = np.repeat(pending, b)
        row_m = mi[row_group]
        first = _choose(c1, b1, p, runs, row_group, rng.random(row_group.size))
        extra_group = np.repeat(row_group, row_m - 1)
        extra = _choose(c2, b2, odds, runs, extra_group, rng.random(extra_group.size))
        row_of_extra = np.repeat(np.arange(row_group.size), row_m - 1)
        rows = np.concatenate([np.arange(row_group.size), row_of_extra])
        units = np.concatenate([first, extra])
        key = np.sort(rows.astype(np.int64) * p.size + units)
        dup_rows = np.unique(key[1:][key[1:] == key[:-1]] // p.size)
        ok = np.ones(row_group.size, dtype=bool)
        ok[dup_rows] = False
        # The first accepted trial of each group is its sample.
        ok2 = ok.reshape(pending.size, b)
        accepted = ok2.any(axis=1)
        first_ok = np.argmax(ok2, axis=1)
        chosen_rows = (np.arange(pending.size) * b + first_ok)[accepted]
        in_chosen = np.zeros(row_group.size, dtype=bool)
        in_chosen[chosen_rows] = True
        taken[units[in_chosen[rows]]] = True
        trials[pending] += b
        pending = pending[~accepted]
        batch *= 2
    return taken


_KERNELS = {"systematic": _systematic_kernel, "brewer": _brewer_kernel, "sampford": _sampford_kernel}


def _draw(pi: np.ndarray, codes: np.ndarray, G: int, n_g: np.ndarray, method: str, rng) -> np.ndarray:
    """Positions selected by ``method`` within each group, given π (Σπ = n_g in each group)."""
    certain = pi >= 1 - CERTAINTY_TOLERANCE
    draw = (~certain) & (pi > 0)
    order = _group_order(codes, G)
    if order is None and draw.all():                        # grouped input, no certainty unit: no gathering
        idx, gc, p = None, codes, pi
    else:
        idx = np.flatnonzero(draw) if order is None else order[draw[order]]
        gc, p = codes[idx], pi[idx]                         # groups contiguous, given order kept inside
    m = (n_g - np.bincount(codes[certain], minlength=G)).astype(float)
    taken = _KERNELS[method](p, gc, _Runs(gc, G), m, rng)
    mask = certain.copy()
    mask[taken if idx is None else idx[taken]] = True
    return np.flatnonzero(mask).astype(np.int64)


def select_pps(sizes, n, method: str = "systematic", seed=None) -> np.ndarray:
    """Fixed-size πps sample of n units with π = ``inclusion_probabilities(sizes, n)``.

    ``method``: "systematic" (R ``UPsystematic``: systematic on the cumulated π in the given order, random
    start), "brewer" (R ``UPbrewer``) or "sampford" (R ``UPsampford``). Units with π = 1 are always taken.
    Returns n distinct sorted 0-based positions into ``sizes``.
    """
    method = _check_method(method)
    pik = inclusion_probabilities(sizes, n)
    rng = _rng(seed)
    return _draw(pik, np.zeros(pik.size, dtype=np.intp), 1, np.array([int(n)]), method, rng)


# --------------------------------------------------------------------------------------------------------
# Many groups at once
# --------------------------------------------------------------------------------------------------------

def _group_codes(groups, size: int):
    """Integer code 0..G−1 of each unit's group (codes follow the sorted labels, so a group's random start does
    not depend on the row order), the sorted distinct labels, and G."""
    import pandas as pd

    check_arg(np.ndim(groups) == 1, "groups", "must be one-dimensional (one group label per unit)")
    check_arg(len(groups) == size, "groups",
              f"has {len(groups)} labels but 'sizes' has {size} units; give one group label per unit")
    values = groups if isinstance(groups, (pd.Series, pd.Index)) else np.asarray(groups)
    if isinstance(values, (pd.Series, pd.Index)) and values.dtype.kind in "iu":
        values = values.to_numpy()
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu" and values.size:
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= max(4 * values.size, 1 << 20):
            # Integer codes (e.g. 6-digit county codes): a lookup table beats hashing by ~5×.
            present = np.zeros(hi - lo + 1, dtype=bool)
            shifted = values - lo
            present[shifted] = True
            table = np.cumsum(present, dtype=np.intp) - 1
            labels = np.flatnonzero(present) + lo
            return table[shifted], labels.astype(values.dtype), labels.size
    # Factorise the Series itself: converting an Arrow-backed string column to numpy first costs more.
    codes, labels = pd.factorize(values, sort=True)
    missing = codes < 0
    if missing.any():
        k = int(np.flatnonzero(missing)[0])
        raise SamplingError(f"argument 'groups': the group label at position {k} is missing", code="bad_argument",
                            row=k, fix="give every unit its group (e.g. its county_code)")
    return codes.astype(np.intp, copy=False), np.asarray(labels), len(labels)


def _n_per_group(n, labels: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
    import pandas as pd

    G = len(labels)
    if isinstance(n, numbers.Real) and not isinstance(n, bool):
        return np.full(G, _as_count(n), dtype=np.int64)
    if isinstance(n, (Mapping, pd.Series)):
        lookup = n if isinstance(n, Mapping) else n.to_dict()
        out = np.empty(G, dtype=np.int64)
        for g, label in enumerate(labels):
            key = label.item() if isinstance(label, np.generic) else label
            if key not in lookup:
                raise SamplingError(f"argument 'n': no sample size given for group {key!r}", code="bad_argument",
                                    fix="give a sample size for every group label in 'groups' (0 to skip one)")
            out[g] = _as_count(lookup[key], f"n[{key!r}]")
        return out
    arr = np.asarray(n)
    check_arg(arr.ndim == 1 and len(arr) == size, "n",
              "must be an int, a mapping (or Series) from group label to size, or an array with one value "
              f"per unit (length {size}); got {type(n).__name__} of shape {arr.shape}")
    check_arg(np.issubdtype(arr.dtype, np.number) and np.all(np.isfinite(arr)) and np.all(arr == np.floor(arr)),
              "n", "per-unit sample sizes must be whole numbers")
    arr = arr.astype(np.int64)
    G_first = np.full(G, -1, dtype=np.int64)
    G_first[codes[::-1]] = arr[::-1]
    bad = arr != G_first[codes]
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise SamplingError(f"argument 'n': units of group {labels[codes[k]]!r} carry different sample sizes "
                            f"(position {k} has {arr[k]}, another unit {G_first[codes[k]]})", code="bad_argument",
                            row=k, fix="give the same n to every unit of a group")
    check_arg(np.all(G_first >= 0), "n", "sample sizes must be >= 0")
    return G_first


def select_pps_grouped(groups, sizes, n, method: str = "systematic", seed=None):
    """πps sample of n_g units within each group g; returns ``(positions, pi)``.

    ``groups``: a group label per unit (any order, e.g. county_code per village); ``sizes``: measures of size;
    ``n``: an int for every group, a mapping / pandas Series from group label to n_g, or an array with one
    value per unit (constant within a group). Within each group π = ``inclusion_probabilities`` of its sizes
    and the draw follows ``method`` in the units' given order. ``positions`` are sorted 0-based positions into
    the input; ``pi`` is the inclusion probability of every input unit (full length).

    All three methods are vectorised over groups. Systematic: one start u_g per group (drawn in the order of
    the sorted group labels) and one cumulative sum over all units. Brewer: step i for every group at once.
    Sampford: batches of trials for every group not yet accepted.
    """
    method = _check_method(method)
    a = _as_sizes(sizes)
    codes, labels, G = _group_codes(groups, a.size)
    n_g = _n_per_group(n, labels, codes, a.size)
    live = a > 0
    positive = np.bincount(codes, minlength=G) if live.all() else np.bincount(codes[live], minlength=G)
    over = n_g > positive
    if over.any():
        g = int(np.flatnonzero(over)[0])
        raise SamplingError(
            f"argument 'n': group {labels[g]!r} needs {n_g[g]} units but has only {int(positive[g])} with a "
            f"positive size", code="bad_argument",
            fix="reduce that group's n, or take the group whole (take-all stratum)")
    rng = _rng(seed)
    pi = grouped_inclusion_probabilities(codes, a, n_g)
    return _draw(pi, codes, G, n_g, method, rng), pi


def _group_order(codes: np.ndarray, G: int) -> np.ndarray:
    """Stable order that makes groups contiguous; None when the input is already grouped (sorted codes)."""
    if codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1])):
        return None
    if G <= np.iinfo(np.uint16).max:
        # numpy's stable sort is a radix sort on 16-bit keys: linear, ~4× faster than on intp.
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.argsort(codes, kind="stable")
