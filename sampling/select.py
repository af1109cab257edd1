"""Selection algorithms of the sampling stage (SPEC §5), pinned to R's ``sampling`` package.

- ``select_srs``: simple random sampling without replacement (简单随机抽样).
- ``select_systematic``: equal-probability systematic sampling (等距抽样) with a random start and the
  fractional interval N/n, so every unit has probability exactly n/N.
- ``select_pps``: fixed-size πps (按规模大小成比例的概率抽样) by R's ``UPsystematic``, ``UPbrewer`` or
  ``UPsampford`` applied to ``inclusion_probabilities(sizes, n)``.
- ``select_pps_grouped``: the same within many groups at once (villages within counties); systematic PPS is
  one vectorised numpy pass over all units.

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
# πps designs on given inclusion probabilities (one group)
# --------------------------------------------------------------------------------------------------------

def _systematic_from_pi(pik: np.ndarray, u: float) -> np.ndarray:
    """R ``UPsystematic`` on π (in the given order) with random start u: boolean selection mask."""
    certain = pik >= 1 - CERTAINTY_TOLERANCE
    mask = certain.copy()
    draw = (~certain) & (pik > 0)
    p = pik[draw]
    m = int(round(p.sum()))
    if m == 0:
        return mask
    c = np.empty(p.size + 1)
    c[0] = 0.0
    np.cumsum(p, out=c[1:])
    c[1:] *= m / c[-1]
    c[-1] = m                                              # exactly m crossings, see _systematic_mask
    mask[draw] = _systematic_mask(c, u)
    return mask


def _systematic_mask(c: np.ndarray, u: float) -> np.ndarray:
    """Units whose cumulative interval (c[k], c[k+1]] holds a point u + integer (R: the fractional part of
    c − u drops). With c[0] = 0 and c[-1] = m exactly the telescoping count is exactly m."""
    f = np.floor(c - u)
    return f[1:] > f[:-1]


def _brewer_from_pi(pik: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """R ``UPbrewer``: n draw-by-draw steps, step i picking unit j with probability ∝
    (1 − s_j)·π_j·((n − a) − π_j) / ((n − a) − π_j·(n − i + 1)), a = Σ π of the units already taken."""
    certain = pik >= 1 - CERTAINTY_TOLERANCE
    mask = certain.copy()
    draw_idx = np.flatnonzero((~certain) & (pik > 0))
    p = pik[draw_idx]
    n = int(round(p.sum()))
    if n == 0:
        return mask
    taken = np.zeros(p.size, dtype=bool)
    a = 0.0
    for i in range(1, n + 1):
        rest = n - a
        w = np.where(taken, 0.0, p * (rest - p) / (rest - p * (n - i + 1)))
        w = np.clip(w, 0.0, None)                          # rounding can leave −0 on exhausted units
        cw = np.cumsum(w)
        j = int(np.searchsorted(cw, rng.random() * cw[-1], side="right"))
        j = min(j, p.size - 1)
        while taken[j] or w[j] <= 0:                       # pragma: no cover - only at a rounding edge
            j = (j + 1) % p.size
        taken[j] = True
        a += p[j]
    mask[draw_idx[taken]] = True
    return mask


def _sampford_from_pi(pik: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """R ``UPsampford`` (Sampford 1967, rejective): one unit drawn with probability π/n, n − 1 more with
    replacement with probability ∝ π/(1 − π); accepted when all n are distinct. Trials run in vectorised
    batches; certainty units are removed first, which is what keeps the acceptance rate workable."""
    certain = pik >= 1 - CERTAINTY_TOLERANCE
    mask = certain.copy()
    draw_idx = np.flatnonzero((~certain) & (pik > 0))
    p = pik[draw_idx]
    n = int(round(p.sum()))
    if n == 0:
        return mask
    if n == p.size:                                        # pragma: no cover - Σπ = N forces π = 1
        mask[draw_idx] = True
        return mask
    first_p = np.cumsum(p / p.sum())
    odds = p / (1 - p)
    rest_p = np.cumsum(odds / odds.sum())
    first_p[-1] = rest_p[-1] = 1.0
    trials = 0
    while trials < _SAMPFORD_MAX_TRIALS:
        b = _SAMPFORD_BATCH
        first = np.searchsorted(first_p, rng.random(b), side="right")
        rest = np.searchsorted(rest_p, rng.random((b, n - 1)), side="right")
        s = np.sort(np.column_stack([first, rest]), axis=1)
        ok = np.all(s[:, 1:] != s[:, :-1], axis=1) if n > 1 else np.ones(b, dtype=bool)
        hit = np.flatnonzero(ok)
        if hit.size:
            mask[draw_idx[s[hit[0]]]] = True
            return mask
        trials += b
    raise SamplingError(
        f"argument 'method': Sampford's rejective draw found no sample of {n} distinct units in "
        f"{_SAMPFORD_MAX_TRIALS} trials (inclusion probabilities too close to 1)", code="sampford_rejected",
        fix="use method='brewer', which gives the same inclusion probabilities without rejection")


_DRAWERS = {"brewer": _brewer_from_pi, "sampford": _sampford_from_pi}


def select_pps(sizes, n, method: str = "systematic", seed=None) -> np.ndarray:
    """Fixed-size πps sample of n units with π = ``inclusion_probabilities(sizes, n)``.

    ``method``: "systematic" (R ``UPsystematic``: systematic on the cumulated π in the given order, random
    start), "brewer" (R ``UPbrewer``) or "sampford" (R ``UPsampford``). Units with π = 1 are always taken.
    Returns n distinct sorted 0-based positions into ``sizes``.
    """
    method = _check_method(method)
    pik = inclusion_probabilities(sizes, n)
    rng = _rng(seed)
    if method == "systematic":
        mask = _systematic_from_pi(pik, rng.random())
    else:
        mask = _DRAWERS[method](pik, rng)
    return np.flatnonzero(mask).astype(np.int64)


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

    Systematic PPS is vectorised over groups: one start u_g per group (drawn in the order of the sorted group
    labels) and one cumulative sum over all units. Brewer and Sampford loop over groups.
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
    if method != "systematic":
        mask = np.zeros(a.size, dtype=bool)
        order = _group_order(codes, G)
        order = np.arange(codes.size) if order is None else order
        bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=G))))
        for g in range(G):
            idx = order[bounds[g]:bounds[g + 1]]
            mask[idx] = _DRAWERS[method](pi[idx], rng)
        return np.flatnonzero(mask).astype(np.int64), pi
    u = rng.random(G)
    certain = pi >= 1 - CERTAINTY_TOLERANCE
    draw = (~certain) & live
    order = _group_order(codes, G)
    if order is None and draw.all():                        # grouped frame, no certainty unit: no gathering
        idx, gc, p = None, codes, pi
    else:
        idx = np.flatnonzero(draw) if order is None else order[draw[order]]
        gc, p = codes[idx], pi[idx]                         # groups contiguous, given order kept inside
    # Per-group cumulative π from one global cumsum; each group is then re-anchored to start at exactly 0 and
    # end at exactly its integer m_g, so the floor-crossing count below is exactly m_g in every group.
    per_group = np.bincount(gc, minlength=G)
    nonempty = per_group > 0
    last = np.cumsum(per_group)[nonempty] - 1
    first = last - per_group[nonempty] + 1
    m_g = (n_g - np.bincount(codes[certain], minlength=G)).astype(float)
    csum = np.cumsum(p)
    base = np.zeros(G)
    base[nonempty] = csum[first] - p[first]
    group_total = np.zeros(G)
    group_total[nonempty] = csum[last] - base[nonempty]
    scale = np.divide(m_g, group_total, out=np.zeros(G), where=group_total > 0)
    # gc is sorted, so repeating per-group values is the same as indexing by gc, and cheaper.
    local = csum - np.repeat(base, per_group)
    local *= np.repeat(scale, per_group)
    local[last] = m_g[nonempty]
    # Unit k of group g is taken when ⌊c_k − u_g⌋ > ⌊c_{k−1} − u_g⌋ (R: the fractional part of the cumulated π
    # minus the start drops), with c = 0 before a group's first unit.
    local -= np.repeat(u, per_group)
    f = np.floor(local, out=local)
    taken = np.empty(f.size, dtype=bool)
    taken[1:] = f[1:] > f[:-1]
    taken[first] = f[first] > np.floor(-u[nonempty])
    mask = certain.copy()
    mask[taken if idx is None else idx[taken]] = True
    return np.flatnonzero(mask).astype(np.int64), pi


def _group_order(codes: np.ndarray, G: int) -> np.ndarray:
    """Stable order that makes groups contiguous; None when the input is already grouped (sorted codes)."""
    if codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1])):
        return None
    if G <= np.iinfo(np.uint16).max:
        # numpy's stable sort is a radix sort on 16-bit keys: linear, ~4× faster than on intp.
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.argsort(codes, kind="stable")
