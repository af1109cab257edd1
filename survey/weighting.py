"""Weighting: non-response adjustment, post-stratification, raking, linear calibration, trimming (SPEC §9).

Each adjustment of a ``Design`` returns a new ``Design`` with the new weights and, where R's ``survey`` does so,
the information its variance needs (``svyrecvar`` with ``postStrata``):

* ``post_stratify(design, by, population)``: R ``postStratify`` (weights × N_c / N̂_c within each cell; the
  variance works on residuals from the cell means);
* ``rake(design, margins)``: R ``rake`` (iterative post-stratification over the margins, ``maxit = 10``,
  ``epsilon = 1`` on the weighted cross-table; the variance uses R's ten back-fitting sweeps);
* ``calibrate(design, population, by=..., numeric=...)``: R ``calibrate(calfun = "linear")`` without bounds
  (GREG; variance on the residuals of the weighted regression on the calibration variables);
* ``trim_weights(design, lower, upper)``: R ``trimWeights`` (weights outside the bounds are set to them and
  the amount trimmed is shared equally by the others; the design is otherwise unchanged);
* ``nonresponse_adjust(data, weight, cells, responded)``: the weighting-class adjustment, respondents carry
  the weight of the non-respondents of their cell.

Known totals are given as a mapping ``{category: total}`` (e.g. register counts per county), a pandas Series,
or a DataFrame with the category column(s) and ``Freq`` (as R).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .design import Design, _scalar
from .errors import EstimationError


# --------------------------------------------------------------------------- variance residualisers
class _PostStrat:
    def __init__(self, codes, psw, oldw):
        psw = psw.copy()
        psw[(psw == 0) & (oldw == 0)] = 1.0
        self.codes, self.psw, self.oldw = codes, psw, oldw
        self.k = int(codes.max()) + 1
        self.den = np.bincount(codes, weights=oldw, minlength=self.k)

    def residualise(self, U):
        out = np.empty_like(U)
        for j in range(U.shape[1]):
            num = np.bincount(self.codes, weights=U[:, j] * self.oldw / self.psw, minlength=self.k)
            with np.errstate(divide="ignore", invalid="ignore"):
                means = np.where(self.den > 0, num / self.den, 0.0)
            out[:, j] = U[:, j] - means[self.codes] * self.psw
        return out


class _Raking:
    def __init__(self, margins):
        # margins: list of (codes, psw) from the last raking sweep
        self.margins = [(c, w, int(c.max()) + 1, np.bincount(c, minlength=int(c.max()) + 1)) for c, w in margins]

    def residualise(self, U):
        U = U.copy()
        for _ in range(10):                       # as R svyrecvar: ten back-fitting sweeps
            for codes, psw, k, cnt in self.margins:
                for j in range(U.shape[1]):
                    with np.errstate(divide="ignore", invalid="ignore"):
                        x = np.where(psw != 0, U[:, j] / psw, 0.0)
                    ave = np.bincount(codes, weights=x, minlength=k) / np.maximum(cnt, 1)
                    U[:, j] = U[:, j] - psw * ave[codes]
        return U


class _Greg:
    def __init__(self, X, whalf, g):
        self.A = X * whalf[:, None]
        self.scale = g * whalf

    def residualise(self, U):
        with np.errstate(divide="ignore", invalid="ignore"):
            Y = np.where(self.scale[:, None] != 0, U / self.scale[:, None], 0.0)
        coef, *_ = np.linalg.lstsq(self.A, Y, rcond=None)
        return (Y - self.A @ coef) * self.scale[:, None]


def _reweighted(design: Design, new_w: np.ndarray, calib=None) -> Design:
    new = design._copy()
    new._w = np.asarray(new_w, dtype=float)
    if calib is not None:
        new._calib = list(design._calib) + [calib]
    return new


# --------------------------------------------------------------------------- helpers
def _cells(design: Design, by) -> tuple[np.ndarray, list, list[str]]:
    cols = [by] if isinstance(by, str) else list(by)
    for c in cols:
        if c not in design.data.columns:
            raise EstimationError(f"column {c!r} is not in the data", code="no_column", column=c,
                                  fix="name an existing column for the weighting cells")
        if design.data[c].isna().any():
            raise EstimationError(f"column {c!r} has {int(design.data[c].isna().sum())} missing value(s)",
                                  code="missing_values", column=c,
                                  fix="every row needs its weighting cell; fill in or recode the missing values")
    keys = list(zip(*[design.data[c].to_numpy() for c in cols]))
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    labels = [k if len(cols) > 1 else k[0] for k in uniques]
    return codes.astype(np.int64), labels, cols


def _population_map(population, cols) -> dict:
    if isinstance(population, pd.DataFrame):
        if "Freq" not in population.columns:
            raise EstimationError("population table has no 'Freq' column", code="bad_argument",
                                  fix="give a DataFrame with the cell column(s) and Freq, or a dict {cell: total}")
        keys = list(zip(*[population[c].to_numpy() for c in cols]))
        keys = [k if len(cols) > 1 else k[0] for k in keys]
        return {_key(k): float(v) for k, v in zip(keys, population["Freq"].to_numpy())}
    if isinstance(population, pd.Series):
        return {_key(k): float(v) for k, v in population.items()}
    return {_key(k): float(v) for k, v in dict(population).items()}


def _key(k):
    if isinstance(k, tuple):
        return tuple(str(_scalar(x)) for x in k)
    return str(_scalar(k))


def _cell_totals(codes, labels, pop: dict, what: str, partial=False):
    totals = np.full(len(labels), np.nan)
    for i, lab in enumerate(labels):
        key = _key(lab)
        if key in pop:
            totals[i] = pop[key]
    missing = [labels[i] for i in np.flatnonzero(np.isnan(totals))]
    if missing:
        raise EstimationError(f"{what}: no population total for cell(s) {', '.join(map(repr, missing[:5]))}",
                              code="missing_population_total",
                              fix="give a known total for every cell present in the sample")
    sample_keys = {_key(l) for l in labels}
    absent = [k for k, v in pop.items() if k not in sample_keys and v > 0]
    if absent and not partial:
        raise EstimationError(f"{what}: cell(s) {', '.join(map(repr, absent[:5]))} have a population total but no "
                              "sampled rows", code="empty_cell",
                              fix="collapse those cells with neighbours, or pass partial=True to ignore them")
    return totals


# --------------------------------------------------------------------------- adjustments
def post_stratify(design: Design, by, population, *, partial: bool = False) -> Design:
    """R ``postStratify``: weights scaled so that each cell's weighted count equals its known total."""
    codes, labels, cols = _cells(design, by)
    totals = _cell_totals(codes, labels, _population_map(population, cols), "post_stratify", partial)
    oldw = design._w
    est = np.bincount(codes, weights=oldw, minlength=len(labels))
    if np.any(est <= 0):
        bad = labels[int(np.flatnonzero(est <= 0)[0])]
        raise EstimationError(f"post_stratify: cell {bad!r} has no weight in the sample", code="empty_cell",
                              fix="collapse the cell with a neighbour")
    neww = oldw * (totals / est)[codes]
    return _reweighted(design, neww, _PostStrat(codes, neww, oldw))


def rake(design: Design, margins: dict, *, maxit: int = 10, epsilon: float = 1.0) -> Design:
    """R ``rake``: iterative post-stratification over ``margins`` = {column: {category: total}}.

    Stops when the weighted cross-table of all margin columns moves by less than ``epsilon`` (R's default 1;
    below 1 it is a fraction of the total weight) or after ``maxit`` sweeps (a warning in R; here an error
    unless ``maxit`` is raised)."""
    if not margins:
        raise EstimationError("rake needs at least one margin", code="bad_argument",
                              fix="give margins={column: {category: total}}")
    cells = []
    for col, pop in margins.items():
        codes, labels, cols = _cells(design, col)
        totals = _cell_totals(codes, labels, _population_map(pop, cols), f"rake margin {col!r}")
        cells.append((codes, totals, len(labels)))
    cross, _ = pd.factorize(pd.Series(list(zip(*[c for c, _, _ in cells])), dtype=object))
    ncross = int(cross.max()) + 1
    w = design._w.copy()
    eps = epsilon * w.sum() if epsilon < 1 else epsilon
    old = np.bincount(cross, weights=w, minlength=ncross)
    converged = False
    last = None
    for _ in range(maxit):
        last = []
        for codes, totals, k in cells:
            est = np.bincount(codes, weights=w, minlength=k)
            w = w * (totals / est)[codes]
            last.append((codes, w.copy()))
        new = np.bincount(cross, weights=w, minlength=ncross)
        if np.max(np.abs(old - new)) < eps:
            converged = True
            break
        old = new
    if not converged:
        raise EstimationError(f"raking did not converge in {maxit} sweeps", code="rake_not_converged",
                              fix="check that the margins agree on the grand total, or raise maxit")
    return _reweighted(design, w, _Raking(last))


def calibrate(design: Design, population: dict, *, by: str | None = None, numeric: dict | None = None) -> Design:
    """R ``calibrate(calfun = "linear")`` (GREG) to known totals.

    ``by`` with ``population={category: total}`` calibrates to the counts of a categorical column;
    ``numeric={column: total}`` adds numeric totals (e.g. the register's population of the sampled counties).
    """
    blocks, targets = [], []
    if by is not None:
        codes, labels, cols = _cells(design, by)
        totals = _cell_totals(codes, labels, _population_map(population, cols), "calibrate")
        X = np.zeros((design._n_all, len(labels)))
        X[np.arange(design._n_all), codes] = 1.0
        blocks.append(X)
        targets.extend(totals)
    for col, tot in (numeric or {}).items():
        v, miss = design._values(col, False)
        if miss.any():
            raise EstimationError(f"calibration column {col!r} has missing values", code="missing_values",
                                  column=col, fix="fill them in")
        blocks.append(v[:, None])
        targets.append(float(tot))
    if not blocks:
        raise EstimationError("nothing to calibrate to", code="bad_argument",
                              fix="give by= with population totals, or numeric={column: total}")
    X = np.hstack(blocks)
    w = design._w
    T = np.asarray(targets)
    M = X.T @ (X * w[:, None])
    try:
        lam = np.linalg.solve(M, T - X.T @ w)
    except np.linalg.LinAlgError:
        raise EstimationError("calibration variables are collinear", code="calibration_singular",
                              fix="drop a redundant calibration variable or merge empty categories") from None
    g = 1.0 + X @ lam
    return _reweighted(design, w * g, _Greg(X, np.sqrt(w), g))


def trim_weights(design: Design, *, lower: float = -np.inf, upper: float = np.inf) -> Design:
    """R ``trimWeights``: weights outside [lower, upper] are set to the bound; the amount trimmed is shared
    equally among the weights inside, so the total weight is kept."""
    w = design._w
    outside = (w < lower) | (w > upper)
    if not outside.any():
        return design
    if outside.all():
        raise EstimationError("every weight is outside the trimming bounds", code="bad_argument",
                              fix="widen lower/upper")
    neww = np.clip(w, lower, upper)
    trimmed = w - neww
    neww[~outside] += trimmed.sum() / (~outside).sum()
    return _reweighted(design, neww)


def nonresponse_adjust(data: pd.DataFrame, weight: str, cells, responded: str) -> np.ndarray:
    """Weighting-class non-response adjustment: within each cell, respondents' weights are multiplied by
    Σ w (all sampled) / Σ w (respondents); non-respondents get weight 0. Returns the new weights."""
    cols = [cells] if isinstance(cells, str) else list(cells)
    for c in cols + [weight, responded]:
        if c not in data.columns:
            raise EstimationError(f"column {c!r} is not in the data", code="no_column", column=c,
                                  fix="name an existing column")
    w = pd.to_numeric(data[weight], errors="coerce").to_numpy(dtype=float)
    if np.isnan(w).any():
        raise EstimationError(f"weight column {weight!r} has missing or non-numeric values", code="bad_weights",
                              column=weight, fix="every sampled unit needs its design weight")
    r = data[responded]
    if r.isna().any():
        raise EstimationError(f"response indicator {responded!r} has missing values", code="missing_values",
                              column=responded, fix="mark every sampled unit as responded (1) or not (0)")
    resp = r.astype(float).to_numpy() != 0
    keys = list(zip(*[data[c].to_numpy() for c in cols]))
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object))
    k = len(uniques)
    allw = np.bincount(codes, weights=w, minlength=k)
    rw = np.bincount(codes, weights=w * resp, minlength=k)
    empty = (allw > 0) & (rw == 0)
    if empty.any():
        bad = uniques[int(np.flatnonzero(empty)[0])]
        raise EstimationError(f"cell {bad if len(cols) > 1 else bad[0]!r} has no respondents", code="empty_cell",
                              column=cols[0], fix="collapse it with a similar cell (e.g. the same county or type)")
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(rw > 0, allw / rw, 0.0)
    return np.where(resp, w * factor[codes], 0.0)
