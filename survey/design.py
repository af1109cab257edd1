"""Survey designs and design-based estimation in the way of R's ``survey`` package (SPEC §9).

``Design`` is the equivalent of ``svydesign(ids = ~psu + ssu, strata = ~stratum, weights = ~w, fpc = ~N1 + N2)``:

* Taylor linearisation; with-replacement approximation at the first stage when no ``fpc`` is given;
  a first-stage finite-population correction where given (population sizes, or sampling fractions when
  every value is <= 1, as R reads ``fpc``); with population sizes at every stage, the full multi-stage
  variance R's ``svyrecvar`` computes (later stages weighted by the sampling fractions above them).
  When ``fpc`` names fewer stages than ``ids`` (R refuses this), only the stages that have one are used.
* Domains are subpopulations: ``subset`` and ``by=`` keep the whole design; rows outside a domain contribute
  zero, strata and PSUs keep their design counts (R ``subset.survey.design2``). Domain degrees of freedom are
  counted within the domain (``degf(subset(design, ...))``), as is the domain ``n``.
* Lonely PSUs (a stratum with one sampled PSU that is not a certainty unit by its fpc): ``fail`` (default,
  a loud error naming the stratum), ``remove`` / ``certainty`` (no contribution), ``adjust`` (the lonely PSU
  total is centred at the average PSU total of its stage, R >= 4.4: for means this is R's long-standing
  result, for totals it is the 4.4 fix of the older "centre at zero"), ``average`` (the variance is scaled
  by strata / strata-with-variance, R ``onestage``). As in R, a stratum is only looked at when the domain
  has rows in it.
* Design effects as ``deff = TRUE``: the design variance over the variance of a simple random sample without
  replacement of the same size from a population of Σw units.

Missing values: R's default ``na.rm = FALSE`` makes a missing value an error. Here too: an estimate over a
variable with missing values in the rows it uses raises ``EstimationError`` naming the column and the count;
``na_rm=True`` treats those rows as outside the domain (R's ``na.rm = TRUE``).

Everything is vectorised: group sums are ``np.bincount`` over integer codes; a ``by=`` estimate for all
domains is one pass over the rows per statistic.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import EstimationError
from . import intervals as _iv

LONELY_PSU = ("fail", "remove", "certainty", "adjust", "average")
RESULT_COLUMNS = ["statistic", "variable", "level", "domain", "estimate", "se", "ci_low", "ci_high", "df",
                  "deff", "n", "note"]


def _split_plus(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        parts = [p.strip() for p in value.split("+")]
        return [p for p in parts if p]
    return [str(v) for v in value]


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), len(uniques)


def _combine(a: np.ndarray, b: np.ndarray, nb: int) -> tuple[np.ndarray, int]:
    return _codes(a * np.int64(nb) + b)


def _scalar(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


class _Stage:
    """Codes of one sampling stage: clusters, strata, design counts, population sizes."""

    __slots__ = ("cl", "st", "n_cl", "n_st", "cl_st", "n_units", "popsize", "parent", "mult", "st_label")

    def __init__(self, cl, st, n_cl, n_st, cl_st, n_units, popsize, parent, mult, st_label):
        self.cl, self.st, self.n_cl, self.n_st = cl, st, n_cl, n_st
        self.cl_st, self.n_units, self.popsize = cl_st, n_units, popsize
        self.parent, self.mult, self.st_label = parent, mult, st_label


class Design:
    """A survey design over a DataFrame (R ``svydesign``). See the module docstring for the conventions."""

    def __init__(self, data: pd.DataFrame, *, weights: str, strata: str | None = None,
                 ids: str | list[str] | None = None, fpc: str | list[str] | None = None,
                 lonely_psu: str = "fail", nest: bool = False):
        if not isinstance(data, pd.DataFrame):
            raise EstimationError("data must be a pandas DataFrame", code="bad_argument",
                                  fix="read the file with sampling.readers.read_table first")
        if len(data) == 0:
            raise EstimationError("the data has no rows", code="empty_data", fix="check the input file")
        self.data = data
        self.lonely_psu = self._check_lonely(lonely_psu)
        self.nest = bool(nest)
        self.weights_col = weights
        self.strata_col = strata
        self.ids_cols = [c for c in _split_plus(ids) if c != "1"]
        self.fpc_cols = _split_plus(fpc)
        for arg, cols in (("weights", [weights]), ("strata", [strata] if strata else []),
                          ("ids", self.ids_cols), ("fpc", self.fpc_cols)):
            for c in cols:
                if c not in data.columns:
                    raise EstimationError(f"argument {arg!r}: column {c!r} is not in the data", code="no_column",
                                          column=c, fix=f"give one of the columns: {', '.join(map(str, data.columns[:30]))}")
        if len(self.fpc_cols) > max(len(self.ids_cols), 1):
            raise EstimationError(f"fpc names {len(self.fpc_cols)} stages but ids only {max(len(self.ids_cols), 1)}",
                                  code="bad_argument", fix="give one population size column per stage of ids")
        self._w = self._numeric(weights, "weights")
        if np.any(self._w < 0):
            raise EstimationError(f"negative weights in column {weights!r} (first at row {int(np.argmax(self._w < 0))})",
                                  code="bad_weights", column=weights, fix="weights must be >= 0")
        n = len(data)
        self._n_all = n
        self._mask = None          # None = the whole design; else a boolean array (a domain)
        self._calib = []           # calibration residualisers, applied in order (R postStrata)
        self._cache = {}           # domain codes and index arrays, reused across estimates
        self._build_stages()

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _check_lonely(value):
        v = str(value).strip().lower()
        if v not in LONELY_PSU:
            raise EstimationError(f"unknown lonely_psu option {value!r}", code="bad_argument",
                                  fix="use one of " + ", ".join(LONELY_PSU))
        return v

    def _numeric(self, col, arg):
        s = self.data[col]
        try:
            v = pd.to_numeric(s, errors="raise").to_numpy(dtype=float, na_value=np.nan)
        except (ValueError, TypeError):
            bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else None
            raise EstimationError(f"argument {arg!r}: column {col!r} is not numeric"
                                  + (f" (value {s.iloc[row]!r})" if row is not None else ""),
                                  code="not_numeric", column=col, row=row,
                                  fix="give a numeric column") from None
        if np.isnan(v).any():
            k = int(np.isnan(v).sum())
            raise EstimationError(f"argument {arg!r}: column {col!r} has {k} missing value(s)",
                                  code="missing_design_values", column=col, row=int(np.flatnonzero(np.isnan(v))[0]),
                                  fix="fill them in or drop those rows before estimation: design columns may not be missing")
        if not np.all(np.isfinite(v)):
            raise EstimationError(f"argument {arg!r}: column {col!r} has infinite values", code="bad_value",
                                  column=col, fix="give finite numbers")
        return v

    def _design_codes(self, col, arg):
        s = self.data[col]
        if s.isna().any():
            k = int(s.isna().sum())
            raise EstimationError(f"argument {arg!r}: column {col!r} has {k} missing value(s)",
                                  code="missing_design_values", column=col, row=int(np.flatnonzero(s.isna().to_numpy())[0]),
                                  fix="every row needs its stratum and PSU codes")
        codes, uniques = pd.factorize(s, sort=True)
        return codes.astype(np.int64), len(uniques), uniques

    def _build_stages(self):
        n = self._n_all
        if self.strata_col:
            st1, n_st1, st_labels = self._design_codes(self.strata_col, "strata")
        else:
            st1, n_st1, st_labels = np.zeros(n, np.int64), 1, pd.Index([None])
        self._has_strata = bool(self.strata_col)
        id_codes = []
        if self.ids_cols:
            for c in self.ids_cols:
                id_codes.append(self._design_codes(c, "ids")[:2])
        else:
            id_codes.append((np.arange(n, dtype=np.int64), n))
        # nested cluster codes (R: ids[, i] <- interaction(ids[, 1:i]); nest=TRUE also with strata)
        clusters = []
        prev, nprev = None, 0
        for k, (c, nc) in enumerate(id_codes):
            if prev is None:
                cur, ncur = c, nc
                if self.nest and self._has_strata:
                    cur, ncur = _combine(st1, cur, ncur)
            else:
                cur, ncur = _combine(prev, c, nc)
            clusters.append((cur, ncur))
            prev, nprev = cur, ncur
        c1, nc1 = clusters[0]
        if nc1 == 1 and not (self.nest and self._has_strata):
            raise EstimationError("the design has only one primary sampling unit", code="one_psu",
                                  column=self.ids_cols[0] if self.ids_cols else None,
                                  fix="a variance needs at least two PSUs; check the --psu column")
        if self._has_strata and not self.nest:
            # clusters nested in strata at the first stage (R check.strata)
            st_of_cl = np.empty(nc1, np.int64)
            st_of_cl[c1] = st1
            mism = st_of_cl[c1] != st1
            if mism.any():
                row = int(np.flatnonzero(mism)[0])
                raise EstimationError(
                    f"PSU {self.data[self.ids_cols[0]].iloc[row]!r} appears in more than one stratum",
                    code="psu_not_nested", column=self.ids_cols[0], row=row,
                    fix="PSU codes must be unique within strata; use nest=True (R nest=TRUE) if the codes are "
                        "only unique within each stratum")
        # fpc values per stage
        fpcv = [self._numeric(c, "fpc") for c in self.fpc_cols]
        if fpcv:
            allv = np.concatenate(fpcv)
            if np.any(allv <= 0):
                raise EstimationError("fpc values must be positive", code="bad_fpc", column=self.fpc_cols[0],
                                      fix="give population sizes (counts) or sampling fractions in (0, 1]")
            is_size = bool(np.any(allv > 1))
            if is_size and not np.all(allv >= 1):
                raise EstimationError("fpc mixes population sizes (> 1) and sampling fractions (< 1)",
                                      code="bad_fpc", column=self.fpc_cols[0],
                                      fix="give all fpc columns as population sizes or all as fractions")
        self._fpc_is_size = bool(fpcv) and is_size
        n_var_stages = max(1, len(fpcv)) if fpcv else 1
        self._stages = []
        st_prev_codes = st1
        mult_row = np.ones(n)
        for k in range(n_var_stages):
            cl, ncl = clusters[k]
            if k == 0:
                st, nst = st1, n_st1
                parent_of_st = np.zeros(nst, np.int64)
            else:
                pcl, npcl = clusters[k - 1]
                st, nst = _combine(st1, pcl, npcl)
                parent_of_st = np.zeros(nst, np.int64)
                parent_of_st[st] = pcl
            cl_st = np.zeros(ncl, np.int64)
            cl_st[cl] = st
            n_units = np.bincount(cl_st, minlength=nst).astype(float)
            if k < len(fpcv):
                v = fpcv[k]
                first = np.full(nst, np.nan)
                first[st[::-1]] = v[::-1]
                if np.any(np.abs(v - first[st]) > 1e-9 * np.maximum(1.0, np.abs(v))):
                    row = int(np.flatnonzero(np.abs(v - first[st]) > 1e-9 * np.maximum(1.0, np.abs(v)))[0])
                    raise EstimationError(f"fpc varies within a stratum at stage {k + 1}", code="bad_fpc",
                                          column=self.fpc_cols[k], row=row,
                                          fix="the population size must be the same for every row of a stratum "
                                              "(at stage 2 and below: of the same parent unit)")
                popsize = first if self._fpc_is_size else n_units / first
                if np.any(popsize < n_units - 1e-9):
                    s = int(np.flatnonzero(popsize < n_units - 1e-9)[0])
                    row = int(np.flatnonzero(st == s)[0])
                    raise EstimationError(
                        f"fpc implies more than 100% sampling at stage {k + 1}: {int(n_units[s])} units sampled "
                        f"from a population of {popsize[s]:g}", code="bad_fpc", column=self.fpc_cols[k], row=row,
                        fix="the fpc column must hold the number of units in the population of the stratum")
            else:
                popsize = np.full(nst, np.inf)
            mult = np.ones(nst)
            mult[st] = mult_row
            label = None
            if k == 0:
                label = st_labels
            self._stages.append(_Stage(cl, st, ncl, nst, cl_st, n_units, popsize, parent_of_st, mult, label))
            # the sampling fraction of this stage multiplies the variance of the next (R multistage)
            frac = np.where(np.isinf(popsize), 0.0, n_units / np.where(np.isinf(popsize), 1.0, popsize))
            mult_row = mult_row * frac[st]
        self._n_strata_design = n_st1
        self._n_psu_design = nc1

    # ------------------------------------------------------------------ domains
    def _copy(self) -> "Design":
        new = object.__new__(Design)
        new.__dict__.update(self.__dict__)
        new._calib = list(self._calib)
        new._cache = {}
        return new

    def subset(self, mask_or_query) -> "Design":
        """A domain (R ``subset(design, ...)``): the design is kept whole, rows outside contribute zero."""
        if isinstance(mask_or_query, str):
            try:
                m = self.data.eval(mask_or_query)
            except Exception as exc:  # pandas raises many kinds
                raise EstimationError(f"cannot evaluate the domain condition {mask_or_query!r}: {exc}",
                                      code="bad_domain", fix="write it as a pandas expression, e.g. \"county == '520102'\"") from None
        else:
            m = mask_or_query
        m = np.asarray(m)
        if m.shape != (self._n_all,):
            raise EstimationError(f"domain mask has shape {m.shape}, expected ({self._n_all},)", code="bad_domain",
                                  fix="give one True/False per row of the data")
        if m.dtype != bool:
            if pd.isna(m).any():
                m = np.where(pd.isna(m), False, m)
            m = m.astype(bool)
        new = self._copy()
        new._mask = m if self._mask is None else (self._mask & m)
        return new

    @property
    def mask(self) -> np.ndarray:
        return np.ones(self._n_all, bool) if self._mask is None else self._mask

    @property
    def weights(self) -> np.ndarray:
        """Analysis weights, zero outside the domain."""
        return self._w if self._mask is None else np.where(self._mask, self._w, 0.0)

    def _in_design(self):
        m = self.mask & (self._w != 0)
        return m

    @property
    def n(self) -> int:
        return int(self.mask.sum())

    @property
    def n_psu(self) -> int:
        st = self._stages[0]
        return int(np.count_nonzero(np.bincount(st.cl, weights=self._in_design(), minlength=st.n_cl)))

    @property
    def n_strata(self) -> int:
        st = self._stages[0]
        return int(np.count_nonzero(np.bincount(st.st, weights=self._in_design(), minlength=st.n_st)))

    @property
    def df(self) -> int:
        """Design degrees of freedom, PSUs − strata within the domain (R ``degf``)."""
        return self.n_psu - self.n_strata

    def __repr__(self):
        return (f"Design(n={self.n}, strata={self.n_strata}, psus={self.n_psu}, df={self.df}, "
                f"stages={len(self._stages)}, lonely_psu={self.lonely_psu!r}"
                + (", domain" if self._mask is not None else "") + ")")

    def summary(self) -> dict:
        return {"n": self.n, "strata": self.n_strata, "psus": self.n_psu, "df": self.df}

    # ------------------------------------------------------------------ variance kernel
    def variance(self, z, mask=None) -> float:
        """Design variance of the weighted total Σ wᵢ zᵢ for per-row values z (zeros outside a domain; rows
        outside this design's own domain count as zero), honouring strata, PSUs, fpc, all stages with fpc and
        the lonely-PSU rule. For a linearised statistic pass its (unweighted) linearisation values, e.g. the
        z of ``ratio_linearized``.

        ``mask`` (optional) marks the rows of the domain: it decides, as R does, which strata are looked at
        for the lonely-PSU rule; default the design's own domain.
        """
        z = np.asarray(z, dtype=float)
        if z.shape != (self._n_all,):
            raise EstimationError(f"z has shape {z.shape}, expected ({self._n_all},)", code="bad_argument",
                                  fix="give one value per row of the design's data")
        if np.isnan(z).any():
            raise EstimationError(f"z has {int(np.isnan(z).sum())} missing value(s)", code="missing_values",
                                  row=int(np.flatnonzero(np.isnan(z))[0]),
                                  fix="set z to 0 for rows outside the domain, and fill in or exclude missing values")
        present = self.mask if mask is None else (self.mask & np.asarray(mask, bool))
        U = (self.weights * z)[:, None]
        if self._calib:
            U = self._residualise(U)
            present = np.ones(self._n_all, bool)
        return float(self._variance_dense(U, present[:, None])[0])

    def _residualise(self, U):
        for cal in self._calib:
            U = cal.residualise(U)
        return U

    def _variance_dense(self, U, P) -> np.ndarray:
        """Variances of the column totals of U (n × K); P (n × K or n × 1) marks rows present per column."""
        K = U.shape[1]
        totals, pres = [], []
        for stage in self._stages:
            T = np.empty((stage.n_cl, K))
            for j in range(K):
                T[:, j] = np.bincount(stage.cl, weights=U[:, j], minlength=stage.n_cl)
            Pp = np.empty((stage.n_st, K), bool)
            for j in range(K):
                pj = P[:, j] if P.shape[1] > 1 else P[:, 0]
                Pp[:, j] = np.bincount(stage.st, weights=pj, minlength=stage.n_st) > 0
            totals.append(T)
            pres.append(Pp)
        return self._kernel(totals, pres)

    def _index(self, g, K):
        """Cached per-domain-coding arrays: rows kept, and per stage the cluster index and stratum presence."""
        ent = self._cache.get(("index", K))
        if ent is not None and ent["g"] is g:
            return ent
        keep = g >= 0
        all_in = bool(keep.all())
        gk = g if all_in else g[keep]
        cl_idx, pres = [], []
        for stage in self._stages:
            cl = stage.cl if all_in else stage.cl[keep]
            st = stage.st if all_in else stage.st[keep]
            cl_idx.append(cl * K + gk if K > 1 else cl)
            pres.append(np.bincount(st * K + gk, minlength=stage.n_st * K).reshape(stage.n_st, K) > 0)
        ent = {"g": g, "keep": None if all_in else keep, "gk": gk, "cl_idx": cl_idx, "pres": pres}
        self._cache[("index", K)] = ent
        return ent

    def _variance_disjoint(self, u, g, K) -> np.ndarray:
        """Variances for K disjoint domains: row i belongs to domain g[i] (−1: none), with value u[i]."""
        if self._calib:
            U = np.zeros((self._n_all, K))
            P = np.zeros((self._n_all, K), bool)
            rows = np.flatnonzero(g >= 0)
            U[rows, g[rows]] = u[rows]
            P[:] = True
            U = self._residualise(U)
            return self._variance_dense(U, P)
        ent = self._index(g, K)
        uk = u if ent["keep"] is None else u[ent["keep"]]
        totals = []
        for stage, idx in zip(self._stages, ent["cl_idx"]):
            totals.append(np.bincount(idx, weights=uk, minlength=stage.n_cl * K).reshape(stage.n_cl, K))
        return self._kernel(totals, ent["pres"])

    def _kernel(self, totals, pres) -> np.ndarray:
        K = totals[0].shape[1]
        V = np.zeros(K)
        for k, (stage, T, Pp) in enumerate(zip(self._stages, totals, pres)):
            n_h = stage.n_units
            N_h = stage.popsize
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(np.isinf(N_h), 1.0, (N_h - n_h) / np.where(np.isinf(N_h), 1.0, N_h))
            certain = f < 1e-7
            lonely = (n_h == 1) & ~certain
            st_sum = np.empty((stage.n_st, K))
            for j in range(K):
                st_sum[:, j] = np.bincount(stage.cl_st, weights=T[:, j], minlength=stage.n_st)
            mean = st_sum / n_h[:, None]
            dev = T - mean[stage.cl_st]
            SS = np.empty((stage.n_st, K))
            for j in range(K):
                SS[:, j] = np.bincount(stage.cl_st, weights=dev[:, j] ** 2, minlength=stage.n_st)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(n_h > 1, f * n_h / (n_h - 1), f)
            contrib = SS * scale[:, None]
            contrib[certain] = 0.0
            if lonely.any():
                lp = lonely[:, None] & Pp
                if self.lonely_psu == "fail" and lp.any():
                    s = int(np.flatnonzero(lp.any(axis=1))[0])
                    raise EstimationError(
                        f"stratum {self._stratum_name(k, s)} has only one PSU at stage {k + 1}",
                        code="lonely_psu", column=self.strata_col,
                        fix="choose a lonely-PSU rule (lonely_psu / --lonely-psu remove, certainty, adjust or "
                            "average), or collapse the stratum with a neighbouring one")
                if self.lonely_psu in ("remove", "certainty", "fail"):
                    contrib[lonely] = 0.0
                elif self.lonely_psu == "adjust":
                    # centre at the average PSU total of the stage (over the strata the domain touches)
                    n_par = int(stage.parent.max()) + 1
                    gsum = np.empty((n_par, K))
                    gcnt = np.empty((n_par, K))
                    for j in range(K):
                        gsum[:, j] = np.bincount(stage.parent, weights=st_sum[:, j] * Pp[:, j], minlength=n_par)
                        gcnt[:, j] = np.bincount(stage.parent, weights=n_h * Pp[:, j], minlength=n_par)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        tbar = np.where(gcnt > 0, gsum / gcnt, 0.0)
                    # a lonely stratum has one cluster whose total is the stratum sum
                    lon = np.flatnonzero(lonely)
                    contrib[lon] = f[lon, None] * (st_sum[lon] - tbar[stage.parent[lon]]) ** 2
                elif self.lonely_psu == "average":
                    contrib[lonely] = 0.0
            contrib = np.where(Pp, contrib, 0.0) * stage.mult[:, None]
            if self.lonely_psu == "average" and lonely.any():
                n_par = int(stage.parent.max()) + 1
                Vs = np.empty((n_par, K))
                for j in range(K):
                    Vs[:, j] = np.bincount(stage.parent, weights=contrib[:, j], minlength=n_par)
                    nstrat = np.bincount(stage.parent, weights=Pp[:, j], minlength=n_par)
                    nok = np.bincount(stage.parent, weights=Pp[:, j] & ~lonely, minlength=n_par)
                    if np.any((nstrat > 0) & (nok == 0)):
                        raise EstimationError(
                            f"lonely_psu='average' at stage {k + 1}: every stratum the domain touches has one PSU, "
                            "there is no variance to average", code="lonely_psu",
                            fix="use lonely_psu='adjust' or 'remove', or collapse strata")
                    with np.errstate(divide="ignore", invalid="ignore"):
                        Vs[:, j] *= np.where(nok > 0, nstrat / np.where(nok > 0, nok, 1), 0.0)
                V += Vs.sum(axis=0)
            else:
                V += contrib.sum(axis=0)
        return V

    def _stratum_name(self, k, s):
        st = self._stages[k]
        if k == 0 and self._has_strata:
            return repr(_scalar(st.st_label[s]))
        if k == 0:
            return "(the whole sample)"
        row = int(np.flatnonzero(st.st == s)[0])
        where = ", ".join(f"{c}={_scalar(self.data[c].iloc[row])!r}" for c in self.ids_cols[:k])
        return f"({where})"

    # ------------------------------------------------------------------ helpers for estimators
    def _values(self, var, na_rm, *, numeric=True):
        if var not in self.data.columns:
            raise EstimationError(f"variable {var!r} is not in the data", code="no_column", column=var,
                                  fix=f"give one of the columns: {', '.join(map(str, self.data.columns[:30]))}")
        s = self.data[var]
        if numeric:
            if s.dtype == bool:
                v = s.to_numpy(dtype=float)
            else:
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                bad = np.isnan(v) & s.notna().to_numpy()
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    raise EstimationError(f"variable {var!r} is not numeric (value {s.iloc[row]!r})",
                                          code="not_numeric", column=var, row=row,
                                          fix="use --prop for a categorical variable, or recode it to numbers")
            missing = np.isnan(v)
        else:
            v = s
            missing = s.isna().to_numpy()
        return v, missing

    def _domains(self, by, extra_missing=None, na_rm=False, var=None):
        """Domain codes g (−1 = not in any domain), number of domains, list of domain dicts (or [None])."""
        base = self.mask.copy()
        if extra_missing is not None and extra_missing.any():
            inside = base & extra_missing
            if inside.any():
                if not na_rm:
                    raise EstimationError(
                        f"variable {var!r} has {int(inside.sum())} missing value(s) in the rows estimated",
                        code="missing_values", column=var, row=int(np.flatnonzero(inside)[0]),
                        fix="fill them in, or pass na_rm=True / --na-rm to leave those rows out of the domain "
                            "(R na.rm = TRUE)")
                base &= ~extra_missing
        by_cols = _split_plus(by) if isinstance(by, str) else ([] if by is None else list(by))
        key = ("domains", tuple(by_cols), int(base.sum()))
        cacheable = extra_missing is None or not (self.mask & extra_missing).any()
        if cacheable and key in self._cache:
            return self._cache[key]
        if not by_cols:
            g = np.where(base, 0, -1).astype(np.int64)
            out = (g, 1, [None])
            if cacheable:
                self._cache[key] = out
            return out
        codes_list, uniq_list = [], []
        for c in by_cols:
            if c not in self.data.columns:
                raise EstimationError(f"by column {c!r} is not in the data", code="no_column", column=c,
                                      fix="give an existing column for --by")
            codes, uniques = pd.factorize(self.data[c], sort=True)
            codes_list.append(codes.astype(np.int64))
            uniq_list.append(uniques)
        comb = codes_list[0]
        bad = comb < 0
        total = len(uniq_list[0])
        for codes, uniques in zip(codes_list[1:], uniq_list[1:]):
            bad = bad | (codes < 0)
            comb = comb * np.int64(len(uniques)) + codes
            total *= len(uniques)
        drop = bad | ~base
        if drop.any():
            comb = np.where(drop, -1, comb)
        present = np.bincount(comb[comb >= 0] if drop.any() else comb, minlength=total) > 0
        used = np.flatnonzero(present)        # sorted: lexicographic in the by columns' sorted levels
        remap = np.cumsum(present) - 1
        g = remap[comb] if not drop.any() else np.where(comb >= 0, remap[np.maximum(comb, 0)], -1)
        g = g.astype(np.int64)
        domains = []
        for key_code in used:
            parts = []
            rest = int(key_code)
            for uniques in reversed(uniq_list):
                parts.append(uniques[rest % len(uniques)])
                rest //= len(uniques)
            parts.reverse()
            domains.append({c: _scalar(v) for c, v in zip(by_cols, parts)})
        out = (g, len(used), domains)
        if cacheable:
            self._cache[key] = out
        return out

    def _domain_counts(self, g, K):
        """Per domain: rows n, rows with nonzero weight, PSUs and strata (with nonzero weight), df."""
        ent = self._cache.get(("counts", K))
        if ent is not None and ent[0] is g:
            return ent[1]
        ix = self._index(g, K)
        keep = ix["keep"]
        gg = ix["gk"]
        n = np.bincount(gg, minlength=K)
        wnz = (self._w if keep is None else self._w[keep]) != 0
        nobs = np.bincount(gg, weights=wnz, minlength=K)
        st0 = self._stages[0]
        st = st0.st if keep is None else st0.st[keep]
        pcl = np.bincount(ix["cl_idx"][0], weights=wnz, minlength=st0.n_cl * K).reshape(st0.n_cl, K) > 0
        pst = np.bincount(st * K + gg, weights=wnz, minlength=st0.n_st * K).reshape(st0.n_st, K) > 0
        df = pcl.sum(axis=0) - pst.sum(axis=0)
        self._cache[("counts", K)] = (g, (n, nobs, df))
        return n, nobs, df

    def _frame(self, rows):
        return result_frame(rows)

    @staticmethod
    def _normal(ci, df_normal):
        if df_normal:
            return True
        c = str(ci).lower()
        if c in ("t", "df"):
            return False
        if c in ("normal", "z", "wald"):
            return True
        raise EstimationError(f"unknown interval kind {ci!r}", code="bad_argument",
                              fix="use ci='t' (design degrees of freedom) or ci='normal'")

    # ------------------------------------------------------------------ estimators
    def _mean_core(self, y, g, K):
        ix = self._index(g, K)
        keep = ix["keep"]
        gg = ix["gk"]
        wv = self._w if keep is None else self._w[keep]
        yv = y if keep is None else y[keep]
        W = np.bincount(gg, weights=wv, minlength=K)
        wy = wv * yv
        WY = np.bincount(gg, weights=wy, minlength=K)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = WY / W
            dev = yv - mean[gg] if K > 1 else yv - mean[0]
            uk = wv * dev / (W[gg] if K > 1 else W[0])
        if keep is None:
            u = uk
        else:
            u = np.zeros(self._n_all)
            u[keep] = uk
        V = self._variance_disjoint(u, g, K)
        S2 = np.bincount(gg, weights=wv * dev ** 2, minlength=K)
        return mean, V, W, S2

    def _numeric_in_domains(self, var, by, na_rm):
        """A numeric column (missing values zero: they are outside every domain) and its domain codes."""
        y, missing = self._values(var, na_rm)
        g, K, domains = self._domains(by, missing, na_rm, var)
        return np.where(missing, 0.0, y), g, K, domains

    def _svyvar(self, S2, W, nobs):
        """R svyvar: Σw(x − x̄)²/Σw · n/(n − 1)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return S2 / W * nobs / (nobs - 1)

    def mean(self, var: str, *, by=None, ci: str = "t", level: float = 0.95, df_normal: bool = False,
             na_rm: bool = False) -> pd.DataFrame:
        """Weighted mean (R ``svymean``), one row per domain."""
        level = _iv.check_level(level)
        normal = self._normal(ci, df_normal)
        y, g, K, domains = self._numeric_in_domains(var, by, na_rm)
        mean, V, W, S2 = self._mean_core(y, g, K)
        n, nobs, df = self._domain_counts(g, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            vsrs = self._svyvar(S2, W, nobs) * (W - nobs) / (W * nobs)
            deff = np.where(W <= nobs, np.nan, V / vsrs)
        se = np.sqrt(V)
        lo, hi, notes = _iv.t_interval(mean, se, df, level, normal)
        rows = []
        for d in range(K):
            note = notes[d]
            if W[d] <= nobs[d]:
                note = _join(note, _DEFF_NOTE)
            rows.append(("mean", var, None, domains[d], mean[d], se[d], lo[d], hi[d], int(df[d]),
                         deff[d], int(n[d]), note))
        return self._frame(rows)

    def total(self, var: str, *, by=None, ci: str = "t", level: float = 0.95, df_normal: bool = False,
              na_rm: bool = False) -> pd.DataFrame:
        """Weighted total (R ``svytotal``), one row per domain."""
        level = _iv.check_level(level)
        normal = self._normal(ci, df_normal)
        y, g, K, domains = self._numeric_in_domains(var, by, na_rm)
        ok = g >= 0
        gg = g[ok]
        wv = self._w[ok]
        yv = y[ok]
        W = np.bincount(gg, weights=wv, minlength=K)
        tot = np.bincount(gg, weights=wv * yv, minlength=K)
        u = np.zeros(self._n_all)
        u[ok] = wv * yv
        V = self._variance_disjoint(u, g, K)
        n, nobs, df = self._domain_counts(g, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = tot / W
            S2 = np.bincount(gg, weights=wv * (yv - mean[gg]) ** 2, minlength=K)
            vsrs = self._svyvar(S2, W, nobs) * W ** 2 * (W - nobs) / (W * nobs)
            deff = np.where(W <= nobs, np.nan, V / vsrs)
        se = np.sqrt(V)
        lo, hi, notes = _iv.t_interval(tot, se, df, level, normal)
        rows = [("total", var, None, domains[d], tot[d], se[d], lo[d], hi[d], int(df[d]), deff[d], int(n[d]),
                 _join(notes[d], _DEFF_NOTE) if W[d] <= nobs[d] else notes[d]) for d in range(K)]
        return self._frame(rows)

    def prop(self, var: str, *, by=None, method: str = "logit", level: float = 0.95, df_normal: bool = False,
             na_rm: bool = False, ci: str = "t") -> pd.DataFrame:
        """Proportions of each category of ``var`` (estimate and SE as R ``svymean`` on a factor, interval as
        ``svyciprop`` with ``method``); one row per domain and category, categories in sorted order.
        ``ci="normal"`` (or ``df_normal``) uses normal instead of t quantiles (svyciprop with df = Inf)."""
        level = _iv.check_level(level)
        df_normal = self._normal(ci, df_normal)
        method = _iv.normalise_method(method)
        s, missing = self._values(var, na_rm, numeric=False)
        g, K, domains = self._domains(by, missing, na_rm, var)
        codes, cats = pd.factorize(s, sort=True)
        codes = codes.astype(np.int64)
        inplay = g >= 0
        sel = codes[inplay & (codes >= 0)]
        used = np.flatnonzero(np.bincount(sel, minlength=len(cats)) > 0) if len(sel) else np.array([], np.int64)
        n, nobs, df = self._domain_counts(g, K)
        rows_by_cat = []
        first = None
        for c in used:
            if len(used) == 2 and first is not None:
                # binary: the second indicator is 1 − the first on every row in play (same variance and deff)
                p1, V, W, S2 = first
                p = 1.0 - p1
            else:
                y = (codes == c).astype(float)
                p, V, W, S2 = self._mean_core(y, g, K)
                first = (p, V, W, S2)
            with np.errstate(divide="ignore", invalid="ignore"):
                vsrs = self._svyvar(S2, W, nobs) * (W - nobs) / (W * nobs)
                deff = np.where(W <= nobs, np.nan, V / vsrs)
            lo, hi, notes = _iv.prop_interval(p, V, df, n, method, level, normal=df_normal)
            notes = np.array([_join(nt, _DEFF_NOTE) if W[d] <= nobs[d] else nt for d, nt in enumerate(notes)],
                             dtype=object)
            rows_by_cat.append((_scalar(cats[c]), p, np.sqrt(V), lo, hi, deff, notes))
        rows = []
        for d in range(K):
            for level_value, p, se, lo, hi, deff, notes in rows_by_cat:
                rows.append(("prop", var, level_value, domains[d], p[d], se[d], lo[d], hi[d], int(df[d]),
                             deff[d], int(n[d]), notes[d]))
        return self._frame(rows)

    def ratio(self, num: str, den: str, *, by=None, ci: str = "t", level: float = 0.95, df_normal: bool = False,
              na_rm: bool = False) -> pd.DataFrame:
        """Ratio of weighted totals Σw·num / Σw·den (R ``svyratio``), one row per domain."""
        level = _iv.check_level(level)
        normal = self._normal(ci, df_normal)
        y, my = self._values(num, na_rm)
        x, mx = self._values(den, na_rm)
        label = f"{num}:{den}"
        g, K, domains = self._domains(by, my | mx, na_rm, f"{num} or {den}")
        y = np.where(my | mx, 0.0, y)
        x = np.where(my | mx, 0.0, x)
        ok = g >= 0
        gg = g[ok]
        wv = self._w[ok]
        Y = np.bincount(gg, weights=wv * y[ok], minlength=K)
        X = np.bincount(gg, weights=wv * x[ok], minlength=K)
        W = np.bincount(gg, weights=wv, minlength=K)
        with np.errstate(divide="ignore", invalid="ignore"):
            R = Y / X
            r = (y[ok] - R[gg] * x[ok]) / X[gg]
        u = np.zeros(self._n_all)
        u[ok] = wv * r
        V = self._variance_disjoint(u, g, K)
        n, nobs, df = self._domain_counts(g, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            rbar = np.bincount(gg, weights=wv * r, minlength=K) / W
            S2 = np.bincount(gg, weights=wv * (r - rbar[gg]) ** 2, minlength=K)
            vsrs = self._svyvar(S2, W, nobs) * W ** 2 * (W - nobs) / (W * nobs)
            deff = np.where(W <= nobs, np.nan, V / vsrs)
        se = np.sqrt(V)
        lo, hi, notes = _iv.t_interval(R, se, df, level, normal)
        rows = []
        for d in range(K):
            note = notes[d]
            if W[d] <= nobs[d]:
                note = _join(note, _DEFF_NOTE)
            if X[d] == 0:
                note = _join(note, f"the denominator {den!r} totals 0 in this domain: the ratio is not defined")
            rows.append(("ratio", label, None, domains[d], R[d], se[d], lo[d], hi[d], int(df[d]), deff[d],
                         int(n[d]), note))
        return self._frame(rows)

    def ratio_linearized(self, num: str, den: str, mask=None):
        """(ratio, z) with ``self.variance(z, mask)`` the linearised variance of the ratio (R ``svyratio``):
        zᵢ = (numᵢ − R·denᵢ) / Σ w·den inside the domain ``mask``, 0 outside. Missing values in the domain
        raise, as with ``na_rm=False``."""
        y, my = self._values(num, False)
        x, mx = self._values(den, False)
        m = self.mask if mask is None else (self.mask & np.asarray(mask, bool))
        bad = m & (my | mx)
        if bad.any():
            raise EstimationError(f"{num!r} or {den!r} has {int(bad.sum())} missing value(s) in the domain",
                                  code="missing_values", row=int(np.flatnonzero(bad)[0]),
                                  fix="fill them in or leave those rows out of the domain")
        w = np.where(m, self._w, 0.0)
        y = np.where(m, y, 0.0)
        x = np.where(m, x, 0.0)
        X = float(np.dot(w, x))
        if X == 0:
            raise EstimationError(f"the denominator {den!r} totals 0 in the domain", code="zero_denominator",
                                  column=den, fix="check the domain and the denominator column")
        R = float(np.dot(w, y)) / X
        z = np.where(m, (y - R * x) / X, 0.0)
        return R, z

    def estimate(self, *, means=(), totals=(), props=(), ratios=(), by=None, method="logit", level=0.95,
                 df_normal=False, na_rm=False) -> pd.DataFrame:
        """Several estimates in one table (the order: means, totals, proportions, ratios)."""
        parts = []
        for v in means:
            parts.append(self.mean(v, by=by, level=level, df_normal=df_normal, na_rm=na_rm))
        for v in totals:
            parts.append(self.total(v, by=by, level=level, df_normal=df_normal, na_rm=na_rm))
        for v in props:
            parts.append(self.prop(v, by=by, method=method, level=level, df_normal=df_normal, na_rm=na_rm))
        for r in ratios:
            if isinstance(r, str):
                if ":" not in r:
                    raise EstimationError(f"ratio {r!r} is not NUM:DEN", code="bad_argument",
                                          fix="write a ratio as numerator:denominator, e.g. wrongly_exited:exited")
                a, b = r.split(":", 1)
            else:
                a, b = r
            parts.append(self.ratio(a, b, by=by, level=level, df_normal=df_normal, na_rm=na_rm))
        if not parts:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        return pd.concat(parts, ignore_index=True)


def result_frame(rows) -> pd.DataFrame:
    """The result table; ``level``, ``domain`` and ``note`` stay Python objects with None for "none"."""
    cols = list(zip(*rows)) if rows else [[] for _ in RESULT_COLUMNS]
    data = {}
    for name, values in zip(RESULT_COLUMNS, cols):
        if name in ("statistic", "variable", "level", "domain", "note"):
            data[name] = pd.Series(list(values), dtype=object)
        else:
            data[name] = pd.Series(list(values))
    return pd.DataFrame(data, columns=RESULT_COLUMNS)


_DEFF_NOTE = ("deff not defined: the weights sum to no more than the sample size (are they 1/probability "
              "weights?)")


def _join(a, b):
    if a is None:
        return b
    return f"{a}; {b}"
