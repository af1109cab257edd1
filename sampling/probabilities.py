"""Inclusion probabilities of fixed-size πps designs (SPEC §5), pinned to R's ``sampling`` package.

``inclusion_probabilities(sizes, n)`` returns what ``sampling::inclusionprobabilities(a, n)`` returns:
π_k = n·a_k / Σa, and while some π_k ≥ 1 those units are set to 1 (certainty units, 必选单位) and the
rest re-scaled to sum to n minus their number. Zero sizes stay at π = 0.

The grouped variant does the same for many groups at once (the village stage: 25 villages in each of 832
counties) with one numpy pass per capping round instead of a Python loop over groups.
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import SamplingError, check_arg

__all__ = ["inclusion_probabilities"]


def _as_sizes(sizes, argument: str = "sizes") -> np.ndarray:
    try:
        a = np.asarray(sizes, dtype=float)
    except (TypeError, ValueError):
        raise SamplingError(f"argument {argument!r}: sizes must be numbers", code="bad_argument",
                            fix="pass a 1-d array of non-negative measures of size") from None
    check_arg(a.ndim == 1, argument, f"must be one-dimensional, got shape {a.shape}")
    finite = np.isfinite(a)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        raise SamplingError(f"argument {argument!r}: size at position {k} is {a[k]!r}; sizes must be finite",
                            code="bad_argument", row=k,
                            fix="fill or drop units with a missing measure of size")
    negative = a < 0
    if negative.any():
        k = int(np.flatnonzero(negative)[0])
        # R shifts negative sizes to 0 with a warning; a negative count of households is a frame error here.
        raise SamplingError(f"argument {argument!r}: size at position {k} is {a[k]!r}; sizes must be >= 0",
                            code="bad_argument", row=k, fix="correct the negative measure of size in the frame")
    return a


def _as_count(n, argument: str = "n") -> int:
    ok = isinstance(n, numbers.Integral) and not isinstance(n, bool)
    if not ok and isinstance(n, numbers.Real) and not isinstance(n, bool):
        ok = float(n).is_integer()
    check_arg(ok, argument, f"must be a whole number, got {n!r}")
    n = int(n)
    check_arg(n >= 0, argument, f"must be >= 0, got {n}")
    return n


def inclusion_probabilities(sizes, n) -> np.ndarray:
    """First-order inclusion probabilities proportional to size, with certainty units capped at 1.

    Equal to R ``sampling::inclusionprobabilities(sizes, n)``: π = n·a/Σa; units with π ≥ 1 are set to 1
    and the others re-scaled to n − (number of certainty units), repeated until no new unit reaches 1.
    Zero sizes keep π = 0. Σπ = n exactly up to rounding.

    ``sizes``: non-negative finite measures of size (1-d). ``n``: sample size, a whole number with
    0 ≤ n ≤ number of positive sizes.
    """
    a = _as_sizes(sizes)
    n = _as_count(n)
    positive = int(np.count_nonzero(a > 0))
    check_arg(n <= positive, "n",
              f"is {n} but only {positive} unit(s) have a positive size; a fixed-size sample cannot hold more "
              f"distinct units than that (reduce n, or give the zero-size units a measure of size)")
    if n == 0 or positive == 0:
        return np.zeros(a.shape, dtype=float)
    # R's procedure; each round re-scales from the sizes themselves (not the previous π, as R does), which is
    # the same number up to rounding and keeps a unit positive when n·a/Σa underflows.
    live = a > 0
    ak = a[live]
    pk = n * ak / ak.sum()
    capped = pk >= 1
    count = int(capped.sum())
    previous = -1
    while count and count != previous:
        rest = ak[~capped]
        if rest.size:
            pk[~capped] = (n - count) * (rest / rest.sum())
        pk[capped] = 1.0
        previous = count
        capped = pk >= 1
        count = int(capped.sum())
    pik = np.zeros(a.shape, dtype=float)
    pik[live] = pk
    return pik


def grouped_inclusion_probabilities(codes: np.ndarray, sizes: np.ndarray, n_by_group: np.ndarray) -> np.ndarray:
    """``inclusion_probabilities`` applied within each group, vectorised over groups.

    ``codes``: integer group index 0..G-1 of every unit; ``sizes``: validated sizes; ``n_by_group``: the
    sample size of each group (validated by the caller against the positive counts). Each capping round is a
    few ``bincount`` passes over all units; the number of rounds is the largest number of rounds any one group
    needs (rarely more than 3).
    """
    G = len(n_by_group)
    nf = n_by_group.astype(float)
    live = sizes > 0
    total = np.bincount(codes, weights=sizes, minlength=G)
    scale = np.divide(nf, total, out=np.zeros(G), where=total > 0)
    pik = sizes * scale[codes]
    capped = pik >= 1
    if not capped.any():
        return pik
    count = np.bincount(codes, weights=capped, minlength=G)
    previous = np.full(G, -1.0)
    while np.any(count != previous):
        rest = live & ~capped
        rest_total = np.bincount(codes[rest], weights=sizes[rest], minlength=G)
        ratio = np.divide(nf - count, rest_total, out=np.zeros(G), where=rest_total > 0)
        pik[rest] = sizes[rest] * ratio[codes[rest]]
        pik[capped] = 1.0
        previous = count
        capped = pik >= 1
        count = np.bincount(codes, weights=capped, minlength=G)
    return pik
