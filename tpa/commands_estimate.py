"""CLI verbs of the estimate part. Heavy libraries are imported inside the commands to keep start-up fast.

``tpa estimate DATA --weight COL ...`` estimates means, totals, proportions and ratios from any survey file
(CSV, Parquet, SAV, DTA, XLSX) under a stratified multi-stage design, as R's ``survey`` package does
(survey.design). Without ``--weight`` every row gets weight 1 and a note says so on standard error (R's
``svydesign`` does the same with a warning).
"""
from __future__ import annotations

import click

from .clitools import emit_json, info, json_option

CI_METHODS = ["logit", "wilson", "clopper-pearson", "wald"]
LONELY = ["fail", "remove", "certainty", "adjust", "average"]


def _finite(x):
    import math

    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    return f if math.isfinite(f) else None


def _plain(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    return v


def estimates_to_json(design, table) -> dict:
    """The ``tpa estimate --json`` document for a Design and a result table of Design.estimate."""
    out = []
    for row in table.itertuples(index=False):
        item = {"statistic": row.statistic, "variable": row.variable, "level": _plain(row.level),
                "domain": None if row.domain is None else {k: _plain(v) for k, v in row.domain.items()},
                "estimate": _finite(row.estimate), "se": _finite(row.se), "ci_low": _finite(row.ci_low),
                "ci_high": _finite(row.ci_high), "df": int(row.df), "deff": _finite(row.deff), "n": int(row.n)}
        if isinstance(row.note, str) and row.note:
            item["note"] = row.note
        out.append(item)
    return {"design": design.summary(), "estimates": out}


def _print_table(design, table) -> None:
    s = design.summary()
    click.echo(f"design: n={s['n']} strata={s['strata']} PSUs={s['psus']} df={s['df']}")
    if table.empty:
        return
    lines = []
    for row in table.itertuples(index=False):
        dom = "" if row.domain is None else ", ".join(f"{k}={v}" for k, v in row.domain.items())
        var = row.variable if row.level is None else f"{row.variable}={row.level}"
        lines.append([row.statistic, var, dom, f"{row.estimate:.6g}", f"{row.se:.4g}",
                      f"[{row.ci_low:.6g}, {row.ci_high:.6g}]", str(row.df),
                      "" if row.deff != row.deff else f"{row.deff:.3f}", str(row.n),
                      row.note if isinstance(row.note, str) else ""])
    head = ["statistic", "variable", "domain", "estimate", "SE", "CI", "df", "deff", "n", "note"]
    widths = [max(len(str(x[i])) for x in lines + [head]) for i in range(len(head))]
    click.echo("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for x in lines:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(x, widths)).rstrip())


def _prefetch() -> None:
    try:
        import scipy.special  # noqa: F401
    except Exception:  # the main thread reports any real problem when it needs the module
        pass


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""

    @cli.command("estimate")
    @click.argument("data", type=click.Path(dir_okay=False))
    @click.option("--weight", "weight", default=None,
                  help="Weight column (sampling weight = 1/π). Without it every row weighs 1 (a note is printed).")
    @click.option("--strata", default=None, help="Stratum column of the first stage.")
    @click.option("--psu", default=None, help="PSU column; 'A+B' for two stages (e.g. county+village).")
    @click.option("--fpc", default=None,
                  help="Population size (or sampling fraction) column per stage, 'N1+N2' for two stages; "
                       "with sizes at every stage the full multi-stage variance is used.")
    @click.option("--nest", is_flag=True, help="PSU codes are only unique within strata (R nest=TRUE).")
    @click.option("--mean", "means", multiple=True, help="Numeric column: weighted mean (repeatable).")
    @click.option("--total", "totals", multiple=True, help="Numeric column: weighted total (repeatable).")
    @click.option("--prop", "props", multiple=True,
                  help="Categorical column: one proportion per category (repeatable).")
    @click.option("--ratio", "ratios", multiple=True, help="NUM:DEN ratio of weighted totals (repeatable).")
    @click.option("--by", default=None,
                  help="Domain column: one estimate per value (a subpopulation); 'A+B' for crossed domains.")
    @click.option("--ci", "ci_method", type=click.Choice(CI_METHODS), default="logit", show_default=True,
                  help="Interval for proportions (clopper-pearson is Korn–Graubard, R svyciprop method='beta').")
    @click.option("--level", type=float, default=0.95, show_default=True, help="Confidence level.")
    @click.option("--df-normal", is_flag=True, help="Normal quantiles instead of t on the design df.")
    @click.option("--lonely-psu", type=click.Choice(LONELY), default="fail", show_default=True,
                  help="Strata with a single PSU: fail, or remove/certainty/adjust/average as R survey.")
    @click.option("--na-rm", is_flag=True,
                  help="Leave rows with a missing value out of that estimate (R na.rm=TRUE); default: error.")
    @click.option("--encoding", default=None, help="Text encoding of a CSV (detected when not given).")
    @json_option
    def estimate_cmd(data, weight, strata, psu, fpc, nest, means, totals, props, ratios, by, ci_method, level,
                     df_normal, lonely_psu, na_rm, encoding, as_json):
        """Design-based estimates from a survey file DATA (CSV, Parquet, SAV, DTA, XLSX).

        Example: tpa estimate households.csv --weight weight --strata county_code --psu village_code
        --prop recognises --by county_code --ci clopper-pearson --json
        """
        import threading

        # scipy.special (quantiles) loads while the file is read: start-up time counts on large runs
        threading.Thread(target=_prefetch, daemon=True).start()
        from sampling.readers import read_table
        from survey.design import Design, _split_plus
        from survey.errors import EstimationError

        if not (means or totals or props or ratios):
            raise EstimationError("nothing to estimate", code="bad_argument",
                                  fix="give at least one of --mean COL, --total COL, --prop COL, --ratio NUM:DEN")
        for r in ratios:
            if ":" not in r:
                raise EstimationError(f"--ratio {r!r} is not NUM:DEN", code="bad_argument",
                                      fix="write a ratio as numerator:denominator, e.g. --ratio wrongly_exited:exited")
        needed = []
        for c in ([weight, strata] + _split_plus(by) + _split_plus(psu) + _split_plus(fpc) + list(means) + list(totals)
                  + list(props) + [x for r in ratios for x in r.split(":", 1)]):
            if c and c not in needed:
                needed.append(c)
        from sampling.errors import FrameError

        try:   # read only the columns used: much faster on large files
            frame = read_table(data, encoding=encoding, columns=needed)
        except FrameError as exc:
            if exc.code != "corrupt_file":
                raise
            frame = read_table(data, encoding=encoding)   # a missing column: read all to name it
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise EstimationError(f"column {missing[0]!r} is not in the file", code="no_column", file=data,
                                  column=missing[0],
                                  fix="columns in the file: " + ", ".join(map(str, list(frame.columns)[:40])))
        frame = frame[needed]
        if weight is None:
            import numpy as np

            info("note: no --weight given: every row weighs 1 (an unweighted, equal-probability analysis)")
            weight = "__tpa_weight_1__"
            frame = frame.assign(**{weight: np.ones(len(frame))})
        design = Design(frame, weights=weight, strata=strata, ids=psu, fpc=fpc, lonely_psu=lonely_psu, nest=nest)
        table = design.estimate(means=means, totals=totals, props=props, ratios=ratios, by=by, method=ci_method,
                                level=level, df_normal=df_normal, na_rm=na_rm)
        if as_json:
            emit_json(estimates_to_json(design, table))
        else:
            _print_table(design, table)
