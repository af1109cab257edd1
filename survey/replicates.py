"""Replicate-weight variance: delete-one jackknife (R ``as.svrepdesign(type = "JK1" | "JKn")``).

``ReplicateDesign.jackknife(design, type="JK1"|"JKn")`` builds the jackknife from a ``Design``'s first stage:

* JK1 (unstratified): replicate r drops PSU r, the others × n/(n − 1); scale (n − 1)/n (× (N − n)/N with a
  first-stage fpc);
* JKn (stratified): replicate r drops PSU r of stratum h, the other PSUs of h × n_h/(n_h − 1), other strata
  unchanged; rscales (n_h − 1)/n_h (× the stratum fpc); strata with one PSU follow the design's lonely-PSU rule
  as R's ``jknweights`` (fail, or left out).

The variance is R's ``svrVar``: Σ_r rscale_r (θ_r − θ̄)² × scale, centred at the mean of the replicates
(``survey.replicates.mse = FALSE``, R's default), or at the full-sample estimate with ``mse=True``.

``ReplicateDesign.from_columns(data, weights=, repweights=[...], scale=, rscales=)`` takes replicate weights
delivered with the data (R ``svrepdesign``).

Replicate estimates are computed from PSU totals (a jackknife replicate weight depends on the PSU only), so
no n × R matrix is formed. Domains (``by=``) are subpopulations as for ``Design``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .design import Design, result_frame
from .errors import EstimationError
from . import intervals as _iv


class ReplicateDesign:
    def __init__(self, design: Design, *, kind: str, factors: np.ndarray, rep_psu: np.ndarray,
                 scale: float, rscales: np.ndarray, mse: bool = False):
        # factors: (C, R) multiplier of PSU c's weight in replicate r
        self.design = design
        self.kind = kind
        self.factors = factors
        self.rep_psu = rep_psu
        self.scale = float(scale)
        self.rscales = np.asarray(rscales, dtype=float)
        self.mse = bool(mse)

    @property
    def n_replicates(self) -> int:
        return self.factors.shape[1]

    @classmethod
    def jackknife(cls, design: Design, type: str = "auto", mse: bool = False) -> "ReplicateDesign":
        st0 = design._stages[0]
        kind = type.upper() if type != "auto" else ("JKN" if design._has_strata else "JK1")
        C = st0.n_cl
        n_h = st0.n_units
        N_h = st0.popsize
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(np.isinf(N_h), 1.0, (N_h - n_h) / np.where(np.isinf(N_h), 1.0, N_h))
        if kind == "JK1":
            if design._has_strata:
                raise EstimationError("JK1 is for unstratified designs", code="bad_argument",
                                      fix="use type='JKn' for a stratified design")
            n = C
            factors = np.full((C, C), n / (n - 1))
            np.fill_diagonal(factors, 0.0)
            return cls(design, kind="JK1", factors=factors, rep_psu=np.arange(C), scale=f[0] * (n - 1) / n,
                       rscales=np.ones(C), mse=mse)
        if kind != "JKN":
            raise EstimationError(f"unknown replicate type {type!r}", code="bad_argument", fix="use JK1 or JKn")
        cl_st = st0.cl_st
        lonely = n_h[cl_st] == 1
        keep = ~lonely | (f[cl_st] == 0)
        if lonely.any() and design.lonely_psu == "fail" and np.any(lonely & (f[cl_st] != 0)):
            s = int(cl_st[np.flatnonzero(lonely)[0]])
            raise EstimationError(f"stratum {design._stratum_name(0, s)} has only one PSU", code="lonely_psu",
                                  fix="set lonely_psu on the design (remove, certainty, average) or collapse strata")
        reps = np.flatnonzero(keep & (n_h[cl_st] > 1))
        R = len(reps)
        factors = np.ones((C, R))
        for j, c in enumerate(reps):          # R replicates × C PSUs: building the factor table only
            h = cl_st[c]
            members = cl_st == h
            factors[members, j] = n_h[h] / (n_h[h] - 1)
            factors[c, j] = 0.0
        rscales = f[cl_st[reps]] * (n_h[cl_st[reps]] - 1) / n_h[cl_st[reps]]
        scale = 1.0
        if R < C and design.lonely_psu == "average":
            scale = C / R
        return cls(design, kind="JKn", factors=factors, rep_psu=reps, scale=scale, rscales=rscales, mse=mse)

    @classmethod
    def from_columns(cls, data: pd.DataFrame, *, weights: str, repweights: list[str], scale: float,
                     rscales=None, mse: bool = False, df: int | None = None) -> "ReplicateDesign":
        """Replicate weights supplied as columns (e.g. a jackknife delivered with the data): R
        ``svrepdesign(weights=, repweights=, scale=, rscales=)``. Intervals use t on ``df`` (default: the
        number of replicates − 1)."""
        cols = list(repweights)
        if not cols:
            raise EstimationError("no replicate weight columns given", code="bad_argument",
                                  fix="name the replicate weight columns")
        design = Design(data, weights=weights, lonely_psu="remove")
        w = design._w
        R = np.column_stack([design._numeric(c, "repweights") for c in cols])
        with np.errstate(divide="ignore", invalid="ignore"):
            factors = np.where(w[:, None] != 0, R / w[:, None], 0.0)
        bad = (w == 0) & (R != 0).any(axis=1)
        if bad.any():
            raise EstimationError("a row with full-sample weight 0 has a nonzero replicate weight",
                                  code="bad_weights", row=int(np.flatnonzero(bad)[0]),
                                  fix="check the weight and replicate weight columns")
        rs = np.ones(len(cols)) if rscales is None else np.asarray(rscales, dtype=float)
        out = cls(design, kind="columns", factors=factors, rep_psu=np.arange(len(cols)), scale=scale,
                  rscales=rs, mse=mse)
        out._df = len(cols) - 1 if df is None else int(df)
        return out

    # ------------------------------------------------------------------ estimation
    def _var(self, thetas, full):
        # thetas: (R, K)
        centre = full if self.mse else thetas[self.rscales > 0].mean(axis=0)
        return ((thetas - centre) ** 2 * self.rscales[:, None]).sum(axis=0) * self.scale

    def _psu_sums(self, values, g, K):
        st0 = self.design._stages[0]
        ok = g >= 0
        return np.bincount(st0.cl[ok] * K + g[ok], weights=values[ok],
                           minlength=st0.n_cl * K).reshape(st0.n_cl, K)

    def _run(self, stat, var, den, by, level, na_rm):
        d = self.design
        y, my = d._values(var, na_rm)
        miss = my
        if den is not None:
            x, mx = d._values(den, na_rm)
            miss = my | mx
        g, K, domains = d._domains(by, miss, na_rm, var)
        y = np.where(miss, 0.0, y)
        w = d._w
        Ty = self._psu_sums(w * y, g, K)
        full_y = Ty.sum(axis=0)
        rep_y = self.factors.T @ Ty
        if stat == "total":
            full, reps = full_y, rep_y
        else:
            if stat == "mean":
                Tx = self._psu_sums(w, g, K)
            else:
                x = np.where(miss, 0.0, x)
                Tx = self._psu_sums(w * x, g, K)
            with np.errstate(divide="ignore", invalid="ignore"):
                full = full_y / Tx.sum(axis=0)
                reps = rep_y / (self.factors.T @ Tx)
        V = self._var(reps, full)
        n, nobs, df = d._domain_counts(g, K)
        if getattr(self, "_df", None) is not None:
            df = np.full(K, self._df)
        se = np.sqrt(V)
        lo, hi, notes = _iv.t_interval(full, se, df, level, False)
        label = var if den is None else f"{var}:{den}"
        rows = [(stat, label, None, domains[k], full[k], se[k], lo[k], hi[k], int(df[k]), np.nan, int(n[k]),
                 notes[k]) for k in range(K)]
        return result_frame(rows)

    def mean(self, var, *, by=None, level=0.95, na_rm=False):
        return self._run("mean", var, None, by, _iv.check_level(level), na_rm)

    def total(self, var, *, by=None, level=0.95, na_rm=False):
        return self._run("total", var, None, by, _iv.check_level(level), na_rm)

    def ratio(self, num, den, *, by=None, level=0.95, na_rm=False):
        return self._run("ratio", num, den, by, _iv.check_level(level), na_rm)
