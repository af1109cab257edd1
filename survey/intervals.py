"""Confidence intervals for design-based estimates (SPEC §9), written to agree with R's `survey`.

* means, totals, ratios: ``estimate ± q · SE`` with ``q`` the t quantile on the design degrees of freedom, or the
  normal quantile on request (``confint(..., df = degf(design))`` in R);
* proportions (R ``svyciprop``):
  - ``logit`` (the default): the interval of the intercept of a quasi-binomial ``svyglm`` back-transformed,
    i.e. ``expit(logit(p) ± q · SE / (p(1 − p)))``;
  - ``wald``: ``p ± q · SE`` (``method = "mean"``);
  - ``clopper-pearson`` = Korn–Graubard (``method = "beta"``): effective sample size
    ``n_eff = p(1 − p)/V · (t_{n−1}/t_df)²`` (n rows of the (sub)design), limits
    ``qbeta(α/2, n_eff·p, n_eff·(1 − p) + 1)`` and ``qbeta(1 − α/2, n_eff·p + 1, n_eff·(1 − p))``;
  - ``wilson`` (R ≥ 4.5): the score interval with n replaced by ``n_eff = p(1 − p)/V`` and z by the t quantile.

Edge cases have defined answers and a note instead of a silent NaN:

* ``df <= 0`` (a domain with a single PSU, or one PSU per stratum): the t quantile is infinite and the SE
  carries no information. Means, totals and ratios get the interval ``(-inf, inf)`` (``null`` in JSON);
  proportions ``[0, 1]``; the note says why. ``df_normal`` gives the normal interval instead.
* ``p = 0`` or ``p = 1``: the design variance is 0 and ``p(1 − p)/V`` is 0/0. Clopper–Pearson and Wilson then
  use ``n_eff = n`` (the rows of the domain, design effect taken as 1), which gives the exact one-sided bound
  ``1 − (α/2)^(1/n)`` at p = 0 (SPEC §2). Logit and Wald have no width at the boundary: the interval is
  ``[p, p]`` with a note pointing at ``clopper-pearson``.
* ``0 < p < 1`` with variance 0 (every PSU has the same share): ``n_eff`` is infinite and every method gives
  ``[p, p]``.
"""
from __future__ import annotations

import numpy as np

PROP_METHODS = ("logit", "wilson", "clopper-pearson", "wald")
_ALIASES = {"beta": "clopper-pearson", "korn-graubard": "clopper-pearson", "kg": "clopper-pearson",
            "cp": "clopper-pearson", "mean": "wald", "xlogit": "logit"}


def normalise_method(method: str) -> str:
    from .errors import EstimationError

    m = str(method).strip().lower()
    m = _ALIASES.get(m, m)
    if m not in PROP_METHODS:
        raise EstimationError(f"unknown interval method {method!r} for proportions", code="bad_argument",
                              fix="use one of logit, wilson, clopper-pearson (Korn–Graubard, R method='beta'), wald")
    return m


def check_level(level: float) -> float:
    from .errors import EstimationError

    try:
        level = float(level)
    except (TypeError, ValueError):
        level = float("nan")
    if not (0.0 < level < 1.0):
        raise EstimationError(f"confidence level {level!r} is not between 0 and 1", code="bad_argument",
                              fix="give the level as a fraction, e.g. 0.95 for a 95% interval")
    return level


def _tq(p, df):
    """t quantile (scipy.special is much lighter to import than scipy.stats: the CLI starts faster)."""
    from scipy import special

    return special.stdtrit(df, p)


def _zq(p):
    from scipy import special

    return special.ndtri(p)


def _betaq(q, a, b):
    from scipy import special

    return special.betaincinv(a, b, q)


def quantile(level: float, df, normal: bool = False) -> np.ndarray:
    """Upper (1 − α/2) quantile: t on ``df`` (inf where df <= 0), or normal."""

    df = np.atleast_1d(np.asarray(df, dtype=float))
    p = 1.0 - (1.0 - level) / 2.0
    if normal:
        return np.full(df.shape, _zq(p))
    q = np.full(df.shape, np.inf)
    ok = (df > 0) & np.isfinite(df)
    q[ok] = _tq(p, df[ok])
    q[np.isinf(df)] = _zq(p)
    return q


def t_interval(estimate, se, df, level: float = 0.95, normal: bool = False):
    """``estimate ± q · se``; returns (low, high, notes)."""
    est = np.atleast_1d(np.asarray(estimate, dtype=float))
    se = np.atleast_1d(np.asarray(se, dtype=float))
    df = np.broadcast_to(np.asarray(df, dtype=float), est.shape)
    q = quantile(level, df, normal)
    with np.errstate(invalid="ignore"):
        half = np.where(se == 0, 0.0, q * se)
    low, high = est - half, est + half
    notes = np.full(est.shape, None, dtype=object)
    if not normal:
        bad = df <= 0
        low[bad] = -np.inf
        high[bad] = np.inf
        notes[bad] = ("df = 0 (one PSU in the domain or in each stratum): the variance cannot be estimated "
                      "and the t interval is unbounded")
    return low, high, notes


def prop_interval(p, var, df, n, method: str = "logit", level: float = 0.95, normal: bool = False):
    """Interval for proportions ``p`` with design variances ``var`` (arrays); returns (low, high, notes)."""

    method = normalise_method(method)
    p = np.atleast_1d(np.asarray(p, dtype=float))
    var = np.atleast_1d(np.asarray(var, dtype=float))
    shape = p.shape
    df = np.broadcast_to(np.asarray(df, dtype=float), shape).astype(float)
    n = np.broadcast_to(np.asarray(n, dtype=float), shape).astype(float)
    if normal:
        df = np.full(shape, np.inf)
    alpha = 1.0 - level
    q = quantile(level, df, normal=False)
    low = np.full(shape, np.nan)
    high = np.full(shape, np.nan)
    notes = np.full(shape, None, dtype=object)
    se = np.sqrt(np.maximum(var, 0.0))
    boundary = (p <= 0) | (p >= 1)
    zero_var = (var <= 0) & ~boundary
    dfzero = df <= 0
    inner = ~boundary & ~zero_var & ~dfzero

    if method == "logit":
        i = inner
        lg = np.log(p[i] / (1 - p[i]))
        h = q[i] * se[i] / (p[i] * (1 - p[i]))
        low[i] = _expit(lg - h)
        high[i] = _expit(lg + h)
    elif method == "wald":
        i = inner
        low[i] = p[i] - q[i] * se[i]
        high[i] = p[i] + q[i] * se[i]
    else:
        i = (inner | boundary) & ~dfzero
        with np.errstate(divide="ignore", invalid="ignore"):
            neff = np.where(boundary, n, p * (1 - p) / np.where(var > 0, var, 1.0))
        if method == "clopper-pearson":
            # Korn–Graubard df adjustment (R svyciprop(method = "beta")); not applied at the boundary, where
            # n_eff is the plain number of rows
            adj = np.ones(shape)
            j = inner & (n > 1)
            if np.any(j):
                adj[j] = (_tq(alpha / 2, n[j] - 1) / _lower_t(alpha / 2, df[j])) ** 2
            neff = neff * adj
            a = neff * p
            b = neff * (1 - p)
            lo = np.zeros(shape)
            hi = np.ones(shape)
            k = i & (a > 0)
            lo[k] = _betaq(alpha / 2, a[k], b[k] + 1)
            k = i & (b > 0)
            hi[k] = _betaq(1 - alpha / 2, a[k] + 1, b[k])
            low[i], high[i] = lo[i], hi[i]
        else:  # wilson
            z = q
            with np.errstate(divide="ignore", invalid="ignore"):
                z2n = z ** 2 / neff
                centre = (p + z2n / 2) / (1 + z2n)
                half = z / (1 + z2n) * np.sqrt(p * (1 - p) / neff + z ** 2 / (4 * neff ** 2))
            low[i] = np.maximum(centre[i] - half[i], 0.0)
            high[i] = np.minimum(centre[i] + half[i], 1.0)
            low[boundary & (p <= 0)] = 0.0
            high[boundary & (p >= 1)] = 1.0
        nb = boundary & ~dfzero
        notes[nb & (n > 0)] = "p at 0 or 1: variance 0, effective sample size taken as the rows in the domain"
        notes[nb & (n <= 0)] = "no rows in the domain"
    if method in ("logit", "wald"):
        b = boundary & ~dfzero
        low[b] = p[b]
        high[b] = p[b]
        notes[b] = ("p at 0 or 1: the design variance is 0 and a logit/Wald interval has no width; "
                    "use clopper-pearson for an exact bound")
    zv = zero_var & ~dfzero
    low[zv] = p[zv]
    high[zv] = p[zv]
    notes[zv] = "design variance 0: interval has no width"
    low[dfzero] = 0.0
    high[dfzero] = 1.0
    notes[dfzero] = "df = 0 (one PSU in the domain or in each stratum): interval is [0, 1]"
    return low, high, notes


def _lower_t(a, df):
    out = np.where(np.isinf(df), _zq(a), 0.0)
    fin = ~np.isinf(df)
    out[fin] = _tq(a, df[fin])
    return out


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))
