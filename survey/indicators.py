"""Indicators of the assessment regime (SPEC §2) for each county or province, official and design-based.

``indicators_from_scores(scores, sample, rules, by, populations)`` is pure (no workspace): the tests and the
coverage study call it directly. ``compute_indicators(ws, by)`` reads the stored scores, the latest draw, the
register populations, the current review verdicts and the appeals, and calls it.

For each indicator and place:

* **official** = the unweighted sample ratio (every sampled household counts, purposive ones included), as
  the assessments published it; the **verdict** (``passed``) compares the unrounded official value with the
  threshold (exactly at the threshold passes); the display rounds half-up to 2 decimals.
* **estimate**, **se**, **ci_low/ci_high**, **df**, **deff**: the design-based ratio Σw·y / Σw·x over the
  probability sample (purposive households left out), Taylor-linearised as R's ``svyratio``; intervals are
  every rate is a proportion (of persons or households), and its interval follows ``estimation.rate_ci``:
  ``logit-truncated`` (default: the ``svyciprop`` logit interval with the design effect truncated at 1,
  i.e. the variance at least the binomial variance p(1−p)/n of the n sampled households, as Korn & Graubard
  (1998) truncate it), ``korn-graubard-truncated`` / ``wilson-truncated`` (the same floor under those
  intervals), ``logit``, ``wilson``, ``clopper-pearson``, ``wald`` (as ``svyciprop``) or ``t``
  (``estimate ± t(df)·se`` as ``confint(svyratio)``); limits clipped to [0, 1]. Why the floor: in the
  coverage study (tests/test_coverage.py, exit-check preset, 2,000 samples) the t, logit and Korn–Graubard
  intervals of 错退率 (a handful of cases per county) covered 85%, 90% and 91%; with the floor 95–97%.
  ``distance_se`` = (threshold − estimate)/se, signed so that positive is the passing side.
* **zero count**: when the count is 0 (or every unit counts) the variance is 0 and says nothing; the bound is
  Clopper–Pearson on the n sampled households of the denominator, 1 − (α/2)^(1/n) (0.025 at 95%), shown as
  ``0（95%置信上限 x.xx%）``.
* **cases**: numerators count confirmed cases only (see ``survey.review``); ``suspected`` counts the suspected
  ones (in the indicator's unit), shown separately.

Design (module choice, following docs/CONTRACTS.md "Draw"):

* county: strata = ``village_stratum``, PSU = ``village_code``, weights = ``weight``; a village drawn with
  certainty (``pi_village`` ≥ 1 or a take-all village) is a stratum of its own whose PSUs are households.
* province: if every county of the province was taken (``pi_county`` = 1, the exit check) strata =
  county × ``village_stratum`` and PSU = village; if counties were sampled (annual 考核) PSU = county (the
  first stage, with-replacement approximation). No fpc by default; lonely PSUs as ``estimation.lonely_psu``.

Indicators (persons or households per ``assessment.units``):

* 脱贫人口错退率: y = persons of confirmed 错退 households, x = persons of sampled 已脱贫 households.
* 贫困人口漏评率: y = confirmed 漏评 persons (``missed_persons``, missing members included); x = the
  non-registered people of the sampled villages (``persons_nonregistered`` of the village register /
  questionnaire; in the weighted estimate each village's count enters at its village weight, i.e. the ratio
  Σw_i·y_i / Σ_v w_v·N_v) or, with ``missed_denominator = "surveyed_nonregistered"``, the persons of the
  surveyed non-registered households.
* 群众认可度: y = recognising households, x = households with an applicable item.
* 综合贫困发生率 = (R + 漏评率·N_nonreg + 错退率·N_exited) / D with R the remaining registered poor
  (``persons_not_exited``), N from the register and D the configured denominator column; its linearised
  variable is (N_nonreg·z_漏评 + N_exited·z_错退)/D over the one design, so their covariance is included.
  Interval: estimate ± t(df)·se, floored at R/D; a term with a zero count adds its exact upper bound. The
  scaled-up terms (official and weighted) are on the indicator as ``.terms`` (outside the dataclass fields,
  so ``asdict`` keeps the contract's shape; ``tpa indicators --json`` adds them as ``terms``). At province
  and national level the rates are pooled over the level's sample and the register populations summed.
* 建档立卡贫困发生率 gate: R / D from the register (no sampling error).
* 识别准确率 = 1 − (错评 + 漏评)/persons checked (all surveyed); 退出准确率 = 1 − 错退率;
  满意度 = 认可 rate, weighted across household types by ``satisfaction.type_weights`` (keys = register_status).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from sampling.errors import TpaError

from .errors import ScoringError
from .rules import NONREGISTERED, NOT_EXITED, Rules

__all__ = ["Indicator", "indicators_from_scores", "compute_indicators", "indicator_inputs", "zero_upper_bound",
           "format_percent", "NAMES_ZH"]

NAMES_ZH = {
    "incidence": "综合贫困发生率",
    "wrongly_exited_rate": "脱贫人口错退率",
    "missed_rate": "贫困人口漏评率",
    "recognition_rate": "群众认可度",
    "identification_accuracy": "贫困人口识别准确率",
    "exit_accuracy": "贫困人口退出准确率",
    "satisfaction": "因村因户帮扶工作群众满意度",
    "registered_rate_gate": "建档立卡贫困发生率（退出门槛）",
}


@dataclass
class Indicator:
    key: str
    name_zh: str
    level: str
    province_code: str | None
    county_code: str | None
    unit: str
    numerator: float
    denominator: float
    official: float | None
    estimate: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    df: float | None
    deff: float | None
    threshold: float | None
    direction: str
    passed: bool | None
    distance_se: float | None
    zero_upper: float | None
    suspected: float
    display: str

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- small pieces
def zero_upper_bound(n: int, level: float = 0.95) -> float:
    """Clopper–Pearson upper bound for 0 events in n: 1 − (α/2)^(1/n)."""
    if n <= 0:
        return 1.0
    return 1.0 - ((1.0 - level) / 2.0) ** (1.0 / n)


def format_percent(value, decimals: int = 2) -> str:
    """A proportion as a percentage, rounded half-up (from the shortest decimal repr of the float)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    d = (Decimal(repr(float(value))) * 100).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return f"{d}%"


def _clip(v):
    return None if v is None else min(1.0, max(0.0, float(v)))


def _tq(level: float, df, normal: bool) -> float:
    from .intervals import quantile

    return float(quantile(level, df if df is not None else np.inf, normal)[0])


def _to_bool(s: pd.Series) -> np.ndarray:
    return pd.array(s, dtype="boolean").fillna(False).to_numpy(dtype=bool)


# ---------------------------------------------------------------------------------------------- the design
def _build_design(rows: pd.DataFrame, level_kind: str, rules: Rules):
    from .design import Design

    d = rows.copy()
    cert = np.zeros(len(d), dtype=bool)
    if "pi_village" in d:
        cert |= pd.to_numeric(d["pi_village"], errors="coerce").fillna(0).to_numpy() >= 1 - 1e-12
    vstrat = d["village_stratum"].astype(str) if "village_stratum" in d else pd.Series("all", index=d.index)
    if level_kind in ("province", "national") and "pi_county" in d and \
            (pd.to_numeric(d["pi_county"], errors="coerce").fillna(1).to_numpy() < 1 - 1e-12).any():
        d["_psu"] = d["county_code"].astype(str)
        strata = None
        if level_kind == "national":
            d["_stratum"] = d["province_code"].astype(str)
            strata = "_stratum"
        return Design(d, weights="weight", strata=strata, ids="_psu", lonely_psu=rules.lonely_psu), d
    prefix = d["county_code"].astype(str) + "|" if level_kind != "county" else ""
    d["_stratum"] = np.where(cert, prefix + "cert|" + d["village_code"].astype(str), prefix + vstrat)
    d["_psu"] = np.where(cert, d["household_id"].astype(str), d["village_code"].astype(str))
    return Design(d, weights="weight", strata="_stratum", ids="_psu", lonely_psu=rules.lonely_psu), d


def _ratio(design, num: str, den: str, mask=None):
    """(estimate, z, variance) of Σw·num / Σw·den via the design engine's linearisation (z already weighted)."""
    est, z = design.ratio_linearized(num, den, mask)
    z = np.asarray(z, dtype=float)
    return float(est), z, float(design.variance(z, mask))


# ---------------------------------------------------------------------------------------------- main
def _prepare(scores: pd.DataFrame, sample: pd.DataFrame, rules: Rules, populations) -> pd.DataFrame:
    from .review import case_flags

    s = scores.copy()
    s["household_id"] = s["household_id"].astype(str)
    if "confirmed_wrongly_exited" not in s:
        flags = case_flags(s, rules)
        for c in flags.columns:
            if c.startswith(("confirmed_", "suspected_")):
                s[c] = flags[c].to_numpy()
    need = ["household_id", "weight"]
    miss = [c for c in need if c not in sample.columns]
    if miss:
        raise ScoringError(f"the sample table lacks {', '.join(miss)}", column=miss[0],
                           fix="draw the sample with `tpa sample draw` (sample_households carries weights)")
    smp = sample.copy()
    smp["household_id"] = smp["household_id"].astype(str)
    smp = smp.drop_duplicates("household_id", keep="first")
    keep = [c for c in ("household_id", "village_stratum", "hh_stratum", "weight", "purposive", "take_all",
                        "pi_county", "pi_village", "pi_household", "pi") if c in smp.columns]
    drop = [c for c in keep if c != "household_id" and c in s.columns]
    df = s.drop(columns=drop).merge(smp[keep], on="household_id", how="left", validate="one_to_one",
                                    indicator="_in_sample")
    lost = (df.pop("_in_sample") == "left_only").to_numpy()
    if lost.any():
        raise ScoringError(f"{int(lost.sum())} scored household(s) are not in the sample, e.g. "
                           f"{df.loc[lost, 'household_id'].iloc[0]}", column="household_id",
                           fix="score only sampled households, or re-import the questionnaires of the current draw")
    df["purposive"] = pd.to_numeric(df["purposive"], errors="coerce").fillna(0).astype(int) \
        if "purposive" in df else 0
    df["weight"] = pd.to_numeric(df["weight"], errors="coerce")
    bad = (df["purposive"] == 0) & ~(df["weight"] > 0)
    if bad.any():
        raise ScoringError(f"household {df.loc[bad, 'household_id'].iloc[0]} has no positive weight but is not "
                           "purposive", column="weight", fix="use the draw's sample_households table unchanged")
    for c in ("county_code", "province_code", "village_code"):
        df[c] = df[c].astype(str)
    return df


def _village_counts(populations, col: str) -> dict:
    if populations is None or col not in populations:
        return {}
    v = populations.dropna(subset=[col])
    return dict(zip(v["village_code"].astype(str), pd.to_numeric(v[col], errors="coerce")))


def indicators_from_scores(scores: pd.DataFrame, sample: pd.DataFrame, rules: Rules, by: str = "county",
                           populations: pd.DataFrame | None = None, keys=None) -> list[Indicator]:
    """Indicators of ``rules.indicators`` (or ``keys``) for each county or province.

    ``scores``: household scores (``score_households`` output) with optional ``review`` or precomputed
    ``confirmed_*``/``suspected_*`` columns. ``sample``: the draw's household rows (household_id, village_code,
    village_stratum, weight, purposive, pi_county, pi_village). ``populations``: the register's village table
    (village_code, county_code, persons_not_exited, persons_exited, persons_nonregistered, hh_nonregistered
    and the incidence denominator column), needed for 综合贫困发生率, the gate and the village denominator.
    """
    if by not in ("county", "province", "national"):
        raise ScoringError(f"unknown level {by!r}", column="by",
                           fix="use --by county, --by province or --by national")
    keys = tuple(keys or rules.indicators)
    df = _prepare(scores, sample, rules, populations)
    if populations is not None:
        populations = populations.copy()
        for c in ("village_code", "county_code"):
            if c in populations:
                populations[c] = populations[c].astype(str)
        if "province_code" not in populations and "county_code" in populations:
            populations["province_code"] = populations["county_code"].str[:2] + "0000"
    group_col = {"county": "county_code", "province": "province_code", "national": "_national"}[by]
    df["_national"] = "000000"
    out: list[Indicator] = []
    for code, rows in df.groupby(group_col, sort=True):
        out.extend(_unit_indicators(rows, code, by, rules, populations, keys))
    return out


def _columns(rows: pd.DataFrame, rules: Rules, populations, keys) -> pd.DataFrame:
    """The per-household y/x columns of every rate, in the configured units."""
    r = rows.copy()
    size = r["size"].fillna(0).to_numpy(dtype=float)
    status = r["register_status"].to_numpy(dtype=int)
    exited = status == 1
    nonreg = np.isin(status, NONREGISTERED)
    cw, sw = r["confirmed_wrongly_exited"].to_numpy(bool), r["suspected_wrongly_exited"].to_numpy(bool)
    cm, sm = r["confirmed_missed"].to_numpy(bool), r["suspected_missed"].to_numpy(bool)
    ci, si = r["confirmed_wrongly_included"].to_numpy(bool), r["suspected_wrongly_included"].to_numpy(bool)
    mp = r["missed_persons"].fillna(0).to_numpy(dtype=float)
    pers = lambda k: rules.unit(k) == "persons"  # noqa: E731
    # 错退
    u = size if pers("wrongly_exited_rate") else np.ones(len(r))
    r["y_we"], r["x_we"], r["s_we"] = u * (exited & cw), u * exited, u * (exited & sw)
    # 漏评 (numerator: persons missed, or households with a missed case)
    if pers("missed_rate"):
        r["y_mi"], r["s_mi"] = mp * cm, np.where(sm, np.where(mp > 0, mp, size), 0)
    else:
        r["y_mi"], r["s_mi"] = (cm & (mp > 0)).astype(float), sm.astype(float)
    r["x_mi_surveyed"] = (size if pers("missed_rate") else np.ones(len(r))) * nonreg
    # 认可度
    rec = pd.array(r["recognises"], dtype="boolean")
    known = ~np.asarray(rec.isna(), dtype=bool)
    recv = rec.fillna(False).to_numpy(dtype=bool)
    for k, tag in (("recognition_rate", "rc"), ("satisfaction", "sa")):
        u = size if pers(k) else np.ones(len(r))
        r[f"y_{tag}"], r[f"x_{tag}"] = u * (known & recv), u * known
    # 识别准确率: errors (错评 + 漏评) over all checked
    if pers("identification_accuracy"):
        r["y_id"] = size * ci + mp * cm
        r["s_id"] = size * si + np.where(sm, np.where(mp > 0, mp, size), 0)
        r["x_id"] = size + np.where(~nonreg, mp, 0) * cm  # missing members join the checked
    else:
        r["y_id"] = (ci | (cm & (mp > 0))).astype(float)
        r["s_id"] = (si | sm).astype(float)
        r["x_id"] = np.ones(len(r))
    return r


def _rate(key, rows, drows, design, dd, ycol, xcol, rules, *, official_den=None, n_den=None, n_den_design=None,
          proportion=False, complement=False, suspected=0.0):
    """One rate indicator's numbers (a dict of Indicator fields without the place)."""
    level = rules.level
    num = float(rows[ycol].sum())
    den = float(rows[xcol].sum()) if official_den is None else float(official_den)
    official = num / den if den > 0 else None
    est = se = lo = hi = dfv = deff = None
    zero_upper = None
    z = None
    if design is not None and float(dd[xcol].sum()) > 0:
        from .intervals import prop_interval

        r = design.ratio(ycol, xcol, level=level, df_normal=rules.df_normal).iloc[0]
        est, se, dfv = float(r["estimate"]), float(r["se"]), float(r["df"])
        deff = None if pd.isna(r["deff"]) else float(r["deff"])
        _, z = design.ratio_linearized(ycol, xcol)
        z = np.asarray(z, dtype=float)
        n_design = int(n_den_design) if n_den_design is not None else int((dd[xcol] > 0).sum())
        ynum = float(dd[ycol].sum())
        if proportion:
            # a proportion over the households with x > 0: a domain (df and deff counted within it, as
            # svyciprop / svymean on subset(design, ...))
            dom = design.subset((dd[xcol] > 0).to_numpy())
            dfv = float(dom.df)
            rd = dom.ratio(ycol, xcol, level=level, df_normal=rules.df_normal).iloc[0]
            deff = None if pd.isna(rd["deff"]) else float(rd["deff"])
        method = rules.rate_ci
        if ynum == 0:                        # zero count: exact upper bound on the households (SPEC §2)
            lo, hi = 0.0, zero_upper_bound(n_design, level)
        elif ynum >= float(dd[xcol].sum()):  # every unit counts: the mirror bound
            lo, hi = ((1 - level) / 2) ** (1 / max(n_design, 1)), 1.0
        elif method == "t" or se == 0:
            t = _tq(level, dfv, rules.df_normal)
            lo, hi = est - t * se, est + t * se
        else:
            p = min(max(est, 0.0), 1.0)
            var = se * se
            if method.endswith("-truncated"):
                # the design effect truncated at 1 (Korn & Graubard 1998): the variance is at least the binomial
                # variance of the n sampled households, p(1−p)/n — with a handful of cases the estimated
                # variance is itself too small exactly when the estimate is low
                var = max(var, p * (1 - p) / max(n_design, 1))
                method = method[: -len("-truncated")]
            if method == "korn-graubard":
                method = "clopper-pearson"     # R svyciprop(method = "beta"): t-adjusted effective sample size
            lo, hi, _ = prop_interval(p, var, dfv, n_design, method, level, rules.df_normal)
            lo, hi = float(lo[0]), float(hi[0])
        lo, hi = _clip(lo), _clip(hi)
    n_off = int(n_den) if n_den is not None else int((rows[xcol] > 0).sum())
    if num == 0 and den > 0:
        zero_upper = zero_upper_bound(n_off, level)
    if complement:
        official = None if official is None else 1 - official
        if est is not None:
            est = 1 - est
            lo, hi = 1 - hi, 1 - lo
        num = den - num
    return dict(numerator=num, denominator=den, official=official, estimate=est, se=se, ci_low=lo, ci_high=hi,
                df=dfv, deff=deff, zero_upper=None if complement else zero_upper, suspected=float(suspected),
                _z=z, _zero=(dd is not None and float(dd[ycol].sum()) == 0))


def _finish(key, fields, rules, code, level_kind, province, county) -> Indicator:
    # the incidence threshold depends on the region: none for the nation as a whole
    thr = None if (level_kind == "national" and key == "incidence") else rules.threshold(key, code)
    direction = thr[0] if thr else ("<=" if key in ("incidence", "wrongly_exited_rate", "missed_rate",
                                                    "registered_rate_gate") else ">=")
    value = thr[1] if thr else None
    official, est, se = fields["official"], fields["estimate"], fields["se"]
    passed = None
    if thr is not None and official is not None:
        passed = bool(official <= value) if direction == "<=" else bool(official >= value)
    distance = None
    if thr is not None and est is not None and se and se > 0:
        distance = (value - est) / se if direction == "<=" else (est - value) / se
    zu = fields.get("zero_upper")
    if official is None:
        display = "—"
    elif zu is not None and fields["numerator"] == 0:
        display = f"0（{int(round(rules.level * 100))}%置信上限 {format_percent(zu)}）"
    elif key == "incidence" and zu is not None:
        display = f"{format_percent(official)}（{int(round(rules.level * 100))}%置信上限 {format_percent(zu)}）"
    elif key in ("exit_accuracy", "identification_accuracy") and fields.get("_zero"):
        display = f"{format_percent(official)}（{int(round(rules.level * 100))}%置信下限 " \
                  f"{format_percent(fields['ci_low'])}）" if fields["ci_low"] is not None else format_percent(official)
    else:
        display = format_percent(official)
    return Indicator(key=key, name_zh=NAMES_ZH[key], level=level_kind, province_code=province,
                     county_code=county, unit=rules.unit(key) if key not in ("incidence", "registered_rate_gate")
                     else "persons", numerator=fields["numerator"], denominator=fields["denominator"],
                     official=official, estimate=est, se=se, ci_low=fields["ci_low"], ci_high=fields["ci_high"],
                     df=fields["df"], deff=fields["deff"], threshold=value, direction=direction, passed=passed,
                     distance_se=distance, zero_upper=zu, suspected=fields["suspected"], display=display)


def _unit_indicators(rows, code, by, rules: Rules, populations, keys) -> list[Indicator]:
    province = str(rows["province_code"].iloc[0]) if by != "national" else None
    county = str(code) if by == "county" else None
    rows = _columns(rows, rules, populations, keys)
    # village denominator of 漏评率
    village_den = rules.missed_denominator == "village_nonregistered"
    if village_den and ("missed_rate" in keys or "incidence" in keys):
        vcol = "persons_nonregistered" if rules.unit("missed_rate") == "persons" else "hh_nonregistered"
        if populations is not None and "village_" + vcol in populations:
            vcol = "village_" + vcol          # the village questionnaire's count, where given
        counts = _village_counts(populations, vcol)
        villages = rows["village_code"].unique()
        missing = [v for v in villages if v not in counts or not np.isfinite(counts[v])]
        if missing:
            raise ScoringError(f"no {vcol} for sampled village {missing[0]}"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                               column=vcol, fix="import the village questionnaires or the village register, or set "
                                                'incidence.missed_denominator = "surveyed_nonregistered"')
        # official: Σ over sampled villages (all, purposive included) of N_v, entered once per village
        first = ~rows["village_code"].duplicated()
        rows["x_mi_official"] = np.where(first, rows["village_code"].map(counts).astype(float), 0.0)
    design = dd = None
    prob = rows[rows["purposive"] == 0].copy()
    if len(prob):
        if village_den and ("missed_rate" in keys or "incidence" in keys):
            # spread each village's count over its sampled rows so that Σ_i w_i x_i = w_v·N_v
            wv = _village_weight(prob)
            m = prob.groupby("village_code")["household_id"].transform("size").to_numpy(dtype=float)
            prob["x_mi"] = prob["village_code"].map(counts).astype(float).to_numpy() * wv / (
                prob["weight"].to_numpy(dtype=float) * m)
        else:
            prob["x_mi"] = prob["x_mi_surveyed"]
        try:
            design, dd = _build_design(prob, by, rules)
        except TpaError as exc:
            raise ScoringError(f"{by if by != 'national' else 'the national sample'}"
                               f"{' ' + str(code) if by != 'national' else ''}: {exc.message}",
                               column=exc.column, fix=exc.fix) from None
    if not village_den:
        rows["x_mi_official"] = rows["x_mi_surveyed"]
    res: dict[str, dict] = {}
    n_nonreg = int(np.isin(rows["register_status"], NONREGISTERED).sum())
    n_nonreg_d = int(np.isin(prob["register_status"], NONREGISTERED).sum()) if len(prob) else 0
    if {"wrongly_exited_rate", "exit_accuracy", "incidence"} & set(keys):
        res["wrongly_exited_rate"] = _rate("wrongly_exited_rate", rows, prob, design, dd, "y_we", "x_we", rules,
                                           suspected=rows["s_we"].sum(),
                                           n_den=int((rows["register_status"] == 1).sum()),
                                           n_den_design=int((prob["register_status"] == 1).sum()) if len(prob) else 0)
    if {"missed_rate", "incidence"} & set(keys):
        if design is not None:
            dd["x_mi_official"] = 0.0
        res["missed_rate"] = _rate("missed_rate", rows, prob, design, dd, "y_mi", "x_mi", rules,
                                   official_den=rows["x_mi_official"].sum(), suspected=rows["s_mi"].sum(),
                                   n_den=n_nonreg, n_den_design=n_nonreg_d)
    out = []
    for key in keys:
        if key == "wrongly_exited_rate":
            f = res[key]
        elif key == "exit_accuracy":
            f = dict(res["wrongly_exited_rate"])
            f = _complement(f)
        elif key == "missed_rate":
            f = res[key]
        elif key == "recognition_rate":
            f = _rate(key, rows, prob, design, dd, "y_rc", "x_rc", rules,
                      proportion=rules.unit(key) == "households")
        elif key == "satisfaction":
            f = _satisfaction(rows, prob, design, dd, rules)
        elif key == "identification_accuracy":
            f = _complement(_rate(key, rows, prob, design, dd, "y_id", "x_id", rules, suspected=rows["s_id"].sum()))
        elif key in ("incidence", "registered_rate_gate"):
            f = _incidence(key, rows, code, by, rules, populations, res, design, dd)
            if f is None:
                continue
            if f.get("_terms"):
                ind = _finish(key, f, rules, code if by == "county" else province, by, province, county)
                ind.terms = f["_terms"]       # the scaled-up terms (an attribute outside the contract's fields)
                out.append(ind)
                continue
        else:
            continue
        out.append(_finish(key, f, rules, code if by == "county" else province, by, province, county))
    return out


def _complement(f: dict) -> dict:
    g = dict(f)
    g["official"] = None if f["official"] is None else 1 - f["official"]
    if f["estimate"] is not None:
        g["estimate"] = 1 - f["estimate"]
        g["ci_low"], g["ci_high"] = 1 - f["ci_high"], 1 - f["ci_low"]
    g["numerator"] = f["denominator"] - f["numerator"]
    g["zero_upper"] = None
    return g


def _village_weight(prob: pd.DataFrame) -> np.ndarray:
    """Village-stage weight 1/(π_county·π_village), or weight·π_household when those are not given."""
    if "pi_village" in prob:
        pv = pd.to_numeric(prob["pi_village"], errors="coerce").to_numpy(dtype=float)
        pc = pd.to_numeric(prob["pi_county"], errors="coerce").fillna(1).to_numpy(dtype=float) \
            if "pi_county" in prob else np.ones(len(prob))
        if np.isfinite(pv).all() and (pv > 0).all():
            return 1.0 / (pv * pc)
    if "pi_household" in prob:
        return prob["weight"].to_numpy(dtype=float) * pd.to_numeric(prob["pi_household"]).to_numpy(dtype=float)
    raise ScoringError("the sample lacks pi_village (and pi_household) to weight the village denominator",
                       column="pi_village", fix="use a draw from `tpa sample draw`, or set "
                                                'incidence.missed_denominator = "surveyed_nonregistered"')


def _satisfaction(rows, prob, design, dd, rules: Rules) -> dict:
    f = _rate("satisfaction", rows, prob, design, dd, "y_sa", "x_sa", rules,
              proportion=rules.unit("satisfaction") == "households")
    if not rules.type_weights:
        return f
    # weighted across household types: Σ a_t p_t / Σ a_t over the types present
    st = rows["register_status"].astype(int).astype(str)
    parts, z_total, num, den = [], None, 0.0, 0.0
    a_sum = 0.0
    official = est = 0.0
    for t, a in rules.type_weights.items():
        mask = (st == t).to_numpy()
        if not mask.any() or rows.loc[mask, "x_sa"].sum() == 0:
            continue
        a_sum += a
        official += a * rows.loc[mask, "y_sa"].sum() / rows.loc[mask, "x_sa"].sum()
        if design is not None:
            dmask = (dd["register_status"].astype(int).astype(str) == t).to_numpy()
            if dd.loc[dmask, "x_sa"].sum() > 0:
                e, z, _ = _ratio(design, "y_sa", "x_sa", dmask)
                est += a * e
                z_total = a * z if z_total is None else z_total + a * z
    if a_sum == 0:
        return f
    f = dict(f)
    f["official"] = official / a_sum
    if design is not None and z_total is not None:
        z_total = z_total / a_sum
        var = float(design.variance(z_total))  # noqa: F841
        se = math.sqrt(max(var, 0))
        t = _tq(rules.level, design.df, rules.df_normal)
        f.update(estimate=est / a_sum, se=se, ci_low=_clip(est / a_sum - t * se), ci_high=_clip(est / a_sum + t * se),
                 deff=None)
    return f


def _register_totals(populations, rows, by, code):
    if populations is None:
        return None
    if by == "national":
        return populations
    col = "county_code" if by == "county" else "province_code"
    sel = populations[populations[col].astype(str) == str(code)]
    return sel if len(sel) else None


def _incidence(key, rows, code, by, rules: Rules, populations, res, design, dd):
    pop = _register_totals(populations, rows, by, code)
    dcol = rules.incidence_denominator
    need = ["persons_not_exited", dcol] + (["persons_nonregistered", "persons_exited"] if key == "incidence" else [])
    if pop is None or any(c not in pop for c in need):
        what = "no register populations" if pop is None else \
            f"the register lacks {', '.join(c for c in need if pop is None or c not in pop)}"
        raise ScoringError(f"{NAMES_ZH[key]} of {code}: {what}", column=dcol if pop is not None else None,
                           fix="give the village frame of the register (tpa frame import) with these columns, or "
                               "set incidence.denominator to a column it has")
    R = float(pd.to_numeric(pop["persons_not_exited"]).sum())
    D = float(pd.to_numeric(pop[dcol]).sum())
    if D <= 0:
        raise ScoringError(f"{NAMES_ZH[key]} of {code}: the denominator {dcol} is 0", column=dcol,
                           fix="check the register's population figures")
    if key == "registered_rate_gate":
        v = R / D
        return dict(numerator=R, denominator=D, official=v, estimate=v, se=0.0, ci_low=v, ci_high=v, df=None,
                    deff=None, zero_upper=None, suspected=0.0)
    Nn = float(pd.to_numeric(pop["persons_nonregistered"]).sum())
    Ne = float(pd.to_numeric(pop["persons_exited"]).sum())
    m, e = res["missed_rate"], res["wrongly_exited_rate"]
    if m["official"] is None or e["official"] is None:
        return dict(numerator=float("nan"), denominator=D, official=None, estimate=None, se=None, ci_low=None,
                    ci_high=None, df=None, deff=None, zero_upper=None, suspected=0.0)
    num = R + m["official"] * Nn + e["official"] * Ne
    terms = {"denominator_column": rules.incidence_denominator, "denominator": D, "remaining_registered": R,
             "nonregistered_population": Nn, "exited_population": Ne,
             "official": {"missed_rate": m["official"], "missed_scaled": m["official"] * Nn,
                          "wrongly_exited_rate": e["official"], "wrongly_exited_scaled": e["official"] * Ne}}
    f = dict(numerator=num, denominator=D, official=num / D, estimate=None, se=None, ci_low=None, ci_high=None,
             df=None, deff=None, zero_upper=None, suspected=float(m["suspected"] + e["suspected"]), _terms=terms)
    if design is not None and m["estimate"] is not None and e["estimate"] is not None:
        est = (R + m["estimate"] * Nn + e["estimate"] * Ne) / D
        # one linearised variable over the one design: the covariance of the two terms is included
        z = (Nn / D) * m["_z"] + (Ne / D) * e["_z"]
        var = float(design.variance(z))
        se = math.sqrt(max(var, 0.0))
        t = _tq(rules.level, design.df, rules.df_normal)
        hi = est + t * se
        # a term with a zero count has no variance: its exact upper bound is added instead
        if m["_zero"]:
            hi += m["ci_high"] * Nn / D
        if e["_zero"]:
            hi += e["ci_high"] * Ne / D
        f.update(estimate=est, se=se, ci_low=max(R / D, est - t * se), ci_high=min(1.0, hi),
                 df=float(design.df), deff=None)
        terms["estimate"] = {"missed_rate": m["estimate"], "missed_scaled": m["estimate"] * Nn,
                             "wrongly_exited_rate": e["estimate"], "wrongly_exited_scaled": e["estimate"] * Ne}
        if m["_zero"] or e["_zero"]:
            f["zero_upper"] = f["ci_high"]
    return f


# ---------------------------------------------------------------------------------------------- workspace
def indicator_inputs(ws, *, scores: pd.DataFrame | None = None, sample: pd.DataFrame | None = None,
                     reviews: pd.DataFrame | None = None) -> dict:
    """What the indicators read from the workspace, read once (a report needs them at two levels): stored scores
    with the review flags, the latest draw, the rules, register populations. ``scores``, ``sample``, ``reviews``:
    give them when already loaded (they are not modified)."""
    from sampling.draw import sample_households

    from .review import case_flags, current_reviews, overturned_households
    from .score import read_scores

    rules = Rules.from_config(ws.config)
    scores = read_scores(ws) if scores is None else scores.copy()
    sample = sample_households(ws) if sample is None else sample
    reviews = current_reviews(ws) if reviews is None else reviews
    flags = case_flags(scores, rules, reviews, overturned_households(ws))
    for c in flags.columns:
        if c.startswith(("confirmed_", "suspected_")):
            scores[c] = flags[c].to_numpy()
    return {"scores": scores, "sample": sample, "rules": rules, "populations": _workspace_populations(ws)}


def compute_indicators(ws, by: str = "county", inputs: dict | None = None) -> list[Indicator]:
    """Indicators from the workspace: stored scores, the latest draw, register populations, reviews, appeals.
    ``inputs``: from indicator_inputs(ws), to compute several levels from one reading."""
    inputs = inputs if inputs is not None else indicator_inputs(ws)
    return indicators_from_scores(inputs["scores"], inputs["sample"], inputs["rules"], by=by,
                                  populations=inputs["populations"])


def _workspace_populations(ws) -> pd.DataFrame | None:
    """The register's village table: the village frame the latest draw used (or ``frames/villages.*``), with
    ``village_persons_nonregistered`` from the village questionnaire where it was answered."""
    from sampling.readers import read_table

    frame = None
    path = None
    try:
        from sampling.draw import latest_draw

        info = latest_draw(ws).get("frames", {}).get("villages", {})
        if info.get("kind") == "file" and info.get("path"):
            path = info["path"]
    except Exception:  # no draw yet
        path = None
    if path is None:
        for ext in (".parquet", ".csv", ".xlsx", ".sav", ".dta"):
            p = ws.path / "frames" / f"villages{ext}"
            if p.is_file():
                path = p
                break
    if path is not None:
        frame = read_table(path)
    try:
        from . import store

        villages = store.read_villages(ws)
    except Exception:  # no store yet, or no village questionnaires imported
        villages = None
    if frame is None and (villages is None or len(villages) == 0):
        return None
    if frame is None:
        return villages
    if villages is not None and len(villages) and "persons_nonregistered" in villages:
        # 漏评率 denominator: the village questionnaire's count where given, the register's otherwise;
        # the incidence keeps the register's totals
        q = villages.drop_duplicates("village_code", keep="last")
        q = pd.to_numeric(q.set_index(q["village_code"].astype(str))["persons_nonregistered"], errors="coerce")
        frame = frame.copy()
        frame["village_persons_nonregistered"] = frame["village_code"].astype(str).map(q).fillna(
            pd.to_numeric(frame["persons_nonregistered"], errors="coerce"))
    return frame


def exit_verdicts(indicators: list[Indicator]) -> dict:
    """Per place (county, or province/national code): True when every indicator with a threshold passed
    (三率一度 and the registered-rate gate in the exit check), False when one failed, None when none has a
    verdict. ``{code: {"passed": ..., "failed": [keys]}}``."""
    out: dict = {}
    for i in indicators:
        code = i.county_code or i.province_code or "national"
        entry = out.setdefault(code, {"passed": None, "failed": []})
        if i.passed is None:
            continue
        if i.passed is False:
            entry["failed"].append(i.key)
            entry["passed"] = False
        elif entry["passed"] is None:
            entry["passed"] = True
    return out
