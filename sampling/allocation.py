"""Allocation of a total sample size n across strata (分层样本量分配, SPEC §5).

``allocate(population_sizes, n, method, ...)`` returns integer n_h with Σ n_h = n exactly,
``min_n ≤ n_h ≤ max_n`` and n_h ≤ N_h. Methods (w_h is the share before constraints):

- ``proportional``: w_h ∝ N_h;
- ``equal``: the same n_h in every stratum;
- ``neyman``: w_h ∝ N_h·S_h (Neyman 1934; ``sd`` gives S_h);
- ``sqrt``: w_h ∝ √N_h;
- ``power``: w_h ∝ N_h^q (Bankier 1988; q = 0 is equal, q = 1 proportional; ``q`` default 0.5);
- ``kish``: w_h ∝ √(W_h² + I/H²) with W_h = N_h/N and I = ``kish_weight`` (Kish 1976, "Optima and proxima
  in linear sample designs", JRSS A 139; I = 0 is proportional, large I tends to equal allocation).

The constrained continuous allocation is x_h = clip(λ·w_h, L_h, U_h) with λ chosen so that Σx_h = n (the
same capping-and-rescaling idea as certainty units in πps), L_h = min(min_n_h, N_h) and
U_h = min(max_n_h, N_h). It is then rounded by largest remainders within the bounds, ties broken by stratum
order. A stratum smaller than ``min_n`` is taken whole (take-all, 全抽), which is how the exit checks treat
small townships or villages. If the strata with a positive share are all full before n is reached (Neyman
with S_h = 0 in the other strata), the remainder goes to the zero-share strata in proportion to N_h.
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import SamplingError, check_arg
from .probabilities import _as_count

__all__ = ["allocate", "ALLOCATION_METHODS"]

ALLOCATION_METHODS = ("proportional", "equal", "neyman", "sqrt", "power", "kish")


def _per_stratum(value, name: str, H: int, index, *, integer: bool, default=None) -> np.ndarray | None:
    """A scalar, an array of length H, or a pandas Series aligned on the strata's index."""
    if value is None:
        return default
    if index is not None and hasattr(value, "reindex") and hasattr(value, "index"):
        missing = [k for k in index if k not in value.index]
        if missing:
            raise SamplingError(f"argument {name!r}: no value for stratum {missing[0]!r}", code="bad_argument",
                                fix=f"give {name} for every stratum of population_sizes")
        value = value.reindex(index).to_numpy()
    if np.ndim(value) == 0:
        check_arg(isinstance(value, numbers.Real) and not isinstance(value, bool), name,
                  f"must be a number or one number per stratum, got {value!r}")
        arr = np.full(H, float(value))
    else:
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise SamplingError(f"argument {name!r}: must be numbers", code="bad_argument") from None
        check_arg(arr.ndim == 1 and arr.size == H, name, f"needs one value per stratum ({H}), got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise SamplingError(f"argument {name!r}: value {arr[k]!r} for stratum {_label(index, k)} must be finite "
                            f"and >= 0", code="bad_argument", row=k)
    if integer:
        frac = arr != np.floor(arr)
        if frac.any():
            k = int(np.flatnonzero(frac)[0])
            raise SamplingError(f"argument {name!r}: value {arr[k]!r} for stratum {_label(index, k)} must be a "
                                f"whole number", code="bad_argument", row=k)
    return arr


def _label(index, k: int) -> str:
    return repr(index[k]) if index is not None else f"at position {k}"


def _weights(method: str, N: np.ndarray, sd, q: float, kish_weight: float) -> np.ndarray:
    if method == "proportional":
        return N.copy()
    if method == "equal":
        return np.ones_like(N)
    if method == "neyman":
        return N * sd
    if method == "sqrt":
        return np.sqrt(N)
    if method == "power":
        return N ** q
    W = N / N.sum() if N.sum() > 0 else N
    return np.sqrt(W ** 2 + kish_weight / N.size ** 2)


def _continuous(weights: np.ndarray, low: np.ndarray, high: np.ndarray, n: float) -> np.ndarray:
    """x_h = clip(λ·w_h, L_h, U_h) with Σx = n (λ ≥ 0). Σclip(λ·w) is non-decreasing and piecewise linear in
    λ with kinks at L_h/w_h and U_h/w_h: a binary search over the sorted kinks finds the bracket, where λ is
    solved exactly. O(H log H), so it scales to thousands of strata."""
    pos = weights > 0
    if not pos.any():
        return low.astype(float)
    kinks = np.unique(np.concatenate(([0.0], low[pos] / weights[pos], high[pos] / weights[pos])))
    kinks = kinks[np.isfinite(kinks)]

    def f(lam):
        return np.clip(lam * weights, low, high).sum()

    lo, hi = 0, kinks.size - 1                              # invariant: f(kinks[lo]) <= n or lo = 0
    if f(kinks[hi]) <= n:
        lam = kinks[hi]
        return np.clip(lam * weights, low, high)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(kinks[mid]) <= n:
            lo = mid
        else:
            hi = mid
    # Inside (kinks[lo], kinks[hi]) the set of strata strictly between their bounds is fixed: solve linearly.
    probe = 0.5 * (kinks[lo] + kinks[hi])
    free = pos & (probe * weights > low) & (probe * weights < high)
    fixed_total = np.clip(probe * weights, low, high)[~free].sum()
    lam = (n - fixed_total) / weights[free].sum() if free.any() else kinks[lo]
    return np.clip(lam * weights, low, high)


def _round_largest_remainder(x: np.ndarray, low: np.ndarray, high: np.ndarray, n: int) -> np.ndarray:
    base = np.clip(np.floor(x + 1e-9), low, high)           # 2.9999999999 from rounding counts as 3
    short = n - int(base.sum())
    frac = x - base
    if short > 0:
        room = np.flatnonzero(base < high)
        # largest remainder first; ties by stratum order (stable sort on the negated remainder)
        take = room[np.argsort(-frac[room], kind="stable")][:short]
        base[take] += 1
        short = n - int(base.sum())
    elif short < 0:
        room = np.flatnonzero(base > low)
        take = room[np.argsort(frac[room], kind="stable")][:-short]
        base[take] -= 1
        short = n - int(base.sum())
    if short != 0:                                          # pragma: no cover - bounds checked beforehand
        raise SamplingError(f"argument 'n': cannot place {n} units within the stratum bounds", code="allocation")
    return base.astype(np.int64)


def allocate(population_sizes, n, method: str = "proportional", *, sd=None, q: float = 0.5, min_n=None,
             max_n=None, kish_weight: float = 1.0):
    """Integer sample sizes per stratum summing exactly to ``n``.

    ``population_sizes``: N_h per stratum (array-like, or a pandas Series whose index names the strata; the
    result is then a Series on the same index). ``method``: one of ``ALLOCATION_METHODS`` (see the module
    docstring). ``sd``: S_h for Neyman (scalar, array or Series). ``q``: exponent of the power allocation.
    ``min_n`` / ``max_n``: bounds per stratum (scalar, array or Series); a stratum with fewer than ``min_n``
    units is taken whole. ``kish_weight``: I of the Kish compromise. Raises ``SamplingError`` naming the
    constraint when no allocation satisfies it.
    """
    import pandas as pd

    index = population_sizes.index if isinstance(population_sizes, pd.Series) else None
    check_arg(method in ALLOCATION_METHODS, "method",
              f"must be one of {', '.join(ALLOCATION_METHODS)}; got {method!r}")
    values = population_sizes.to_numpy() if index is not None else population_sizes
    check_arg(np.ndim(values) == 1 and len(values) > 0, "population_sizes",
              "must be a non-empty one-dimensional list of stratum population sizes")
    N = _per_stratum(values, "population_sizes", len(values), None, integer=True)
    H = N.size
    n = _as_count(n)
    sd_arr = None
    if method == "neyman":
        check_arg(sd is not None, "sd", "is required by method='neyman' (the standard deviation S_h per stratum)")
        sd_arr = _per_stratum(sd, "sd", H, index, integer=False)
    check_arg(isinstance(q, numbers.Real) and np.isfinite(q) and q >= 0, "q", f"must be a number >= 0, got {q!r}")
    check_arg(isinstance(kish_weight, numbers.Real) and np.isfinite(kish_weight) and kish_weight >= 0,
              "kish_weight", f"must be a number >= 0, got {kish_weight!r}")
    mins = _per_stratum(min_n, "min_n", H, index, integer=True, default=np.zeros(H))
    maxs = _per_stratum(max_n, "max_n", H, index, integer=True, default=np.full(H, np.inf))
    conflict = mins > maxs
    if conflict.any():
        k = int(np.flatnonzero(conflict)[0])
        raise SamplingError(f"argument 'min_n': {mins[k]:g} is above max_n {maxs[k]:g} for stratum "
                            f"{_label(index, k)}", code="allocation", row=k, fix="make min_n <= max_n")
    low = np.minimum(mins, N)
    high = np.minimum(maxs, N)
    total_low, total_high = low.sum(), high.sum()
    if n < total_low:
        raise SamplingError(
            f"argument 'n': {n} is below the {int(total_low)} units that min_n requires across {H} strata",
            code="allocation_infeasible", fix="raise n or lower min_n")
    if n > total_high:
        limit = "max_n and the stratum sizes" if max_n is not None else "the population (Σ N_h)"
        raise SamplingError(
            f"argument 'n': {n} is above the {int(total_high)} units allowed by {limit}",
            code="allocation_infeasible",
            fix="lower n" + (" or raise max_n" if max_n is not None else ""))
    w = _weights(method, N, sd_arr, float(q), float(kish_weight))
    w = np.where(N > 0, w, 0.0)
    if method == "neyman" and not np.any(w > 0) and n > total_low:
        raise SamplingError("argument 'sd': every stratum has N_h·S_h = 0, so Neyman allocation is undefined",
                            code="bad_argument", fix="give positive standard deviations, or use 'proportional'")
    x = _continuous(w, low, high, float(n))
    if x.sum() < n - 1e-9:
        # Every stratum with a positive share is full (e.g. Neyman with S_h = 0 elsewhere): the rest goes to the
        # zero-share strata in proportion to N_h rather than failing an allocation the bounds allow.
        x = _continuous(np.where(w > 0, 0.0, N), x, high, float(n))
    out = _round_largest_remainder(x, low, high, n)
    if index is not None:
        return pd.Series(out, index=index, name="n")
    return out
