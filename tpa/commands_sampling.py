"""CLI verbs of the sampling part: `tpa population generate`, `tpa frame build`, `tpa frame check`.

Heavy libraries are imported inside the commands to keep start-up fast.
"""
from __future__ import annotations

import click

from .clitools import emit_json, info, json_option, progress


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""
    cli.add_command(population)
    cli.add_command(frame)


def _parse_pairs(values, what: str) -> dict:
    from sampling.errors import SamplingError

    out = {}
    for item in values:
        if "=" not in item:
            raise SamplingError(f"{what} {item!r} is not KEY=VALUE", code="bad_argument",
                                fix=f"write it as KEY=VALUE, e.g. {'missed=0.02' if what == '--error-rate' else '村代码=village_code'}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@click.group("population")
def population():
    """Synthetic national population (模拟人口) for testing and demonstration."""


@population.command("generate")
@click.option("--provinces", "provinces", multiple=True, help="Province code or name (repeatable), e.g. 贵州 or 520000.")
@click.option("--all", "all_provinces", is_flag=True, help="All 22 assessed provinces.")
@click.option("--counties-per-province", type=click.IntRange(1, 693), default=None,
              help="Counties per province (default: the real number, 2,166 in all).")
@click.option("--villages-per-county", type=click.IntRange(1, 1800), default=None,
              help="Villages per county (default: drawn around the province's real mean, ~500k villages in all).")
@click.option("--seed", type=click.IntRange(0), default=1, show_default=True, help="Random seed.")
@click.option("--year", type=click.IntRange(2014, 2020), default=2019, show_default=True, help="Assessed year.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--format", "formats", multiple=True, default=("parquet",), show_default=True,
              type=click.Choice(["parquet", "csv", "xlsx", "sav", "dta"]), help="Output format (repeatable).")
@click.option("--villages-only", is_flag=True, help="Write only the village frame (fast at national scale).")
@click.option("--error-rate", "error_rates", multiple=True, metavar="KIND=RATE",
              help="Planted register errors: wrongly_exited, missed, wrongly_included (shares of households).")
@json_option
def generate_cmd(provinces, all_provinces, counties_per_province, villages_per_county, seed, year, out_dir, formats,
                 villages_only, error_rates, as_json):
    """Generate villages, households and persons with planted register errors and the known truth."""
    from sampling.errors import SamplingError
    from sampling.population import generate_population

    if all_provinces == bool(provinces):
        raise SamplingError("give --provinces (repeatable) or --all, not both and not neither", code="bad_argument",
                            fix="e.g. --provinces 贵州 --provinces 410000, or --all")
    rates = {}
    for k, v in _parse_pairs(error_rates, "--error-rate").items():
        try:
            rates[k] = float(v)
        except ValueError:
            raise SamplingError(f"--error-rate {k}={v}: not a number", code="bad_argument",
                                fix="give a share between 0 and 1, e.g. missed=0.02") from None
    summary = generate_population(out_dir, "all" if all_provinces else list(provinces), seed,
                                  counties_per_province=counties_per_province,
                                  villages_per_county=villages_per_county, formats=formats, year=year,
                                  error_rates=rates or None, villages_only=villages_only, progress=progress)
    if as_json:
        emit_json(summary)
        return
    info(f"{summary['villages']:,} villages in {summary['counties']:,} counties "
         f"({summary['poor_counties']:,} poor) of {len(summary['provinces'])} province(s); "
         f"{summary['households']:,} households, {summary['persons']:,} persons"
         + (" (village frame only)" if villages_only else "") + f"; {summary['seconds']:.1f} s")
    if not villages_only:
        t = summary["truth_households"]
        info(f"planted (households): 错退 {t['true_wrongly_exited']:,}, 漏评 {t['true_missed']:,}, "
             f"错评 {t['true_wrongly_included']:,}")
    for f in summary["files"]:
        click.echo(f)


@click.group("frame")
def frame():
    """Sampling frames (抽样框): build from a household register, check before drawing."""


def _read(path, mapping, encoding=None, sheet=None):
    from sampling.readers import CODE_COLUMNS, _code_to_text, is_code_column, read_table

    if path is None:
        return None
    extra = tuple(theirs for theirs, ours in mapping.items() if is_code_column(ours))
    df = read_table(path, encoding=encoding, sheet=sheet, dtype_str=CODE_COLUMNS + extra)
    present = {k: v for k, v in mapping.items() if k in df.columns}
    if present:
        attrs = dict(df.attrs)
        df = df.rename(columns=present)
        for ours in present.values():
            if is_code_column(ours):
                df[ours] = _code_to_text(df[ours])
        df.attrs.update(attrs)
    return df


@frame.command("build")
@click.option("--households", "households_path", required=True, type=click.Path(dir_okay=False),
              help="Household register (one row per household).")
@click.option("--persons", "persons_path", type=click.Path(dir_okay=False), help="Persons table (optional).")
@click.option("--villages", "villages_path", type=click.Path(dir_okay=False),
              help="Village list with names and flags (optional).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Frame file to write (.parquet, .csv, .xlsx, .sav, .dta).")
@click.option("--map", "mappings", multiple=True, metavar="THEIRS=OURS", help="Column name mapping (repeatable).")
@json_option
def build_cmd(households_path, persons_path, villages_path, out_path, mappings, as_json):
    """Aggregate a household register into a village frame and print a summary per county."""
    from pathlib import Path

    from sampling.frames import build_village_frame
    from sampling.readers import write_table

    mapping = _parse_pairs(mappings, "--map")
    hh = _read(households_path, mapping)
    ps = _read(persons_path, mapping)
    vl = _read(villages_path, mapping)
    fr, summary = build_village_frame(hh, vl, persons=ps)
    import pandas as pd

    mism = pd.DataFrame(summary.attrs.get("mismatches", []))
    write_table(fr, out_path)
    mism_path = None
    if mism is not None and len(mism):
        mism_path = Path(out_path).with_name(Path(out_path).stem + ".mismatches.csv")
        write_table(mism, mism_path, bom=True)
        info(f"warning: {mism['village_code'].nunique():,} village(s) disagree between the village list and the "
             f"register (the frame keeps the register's figures); see {mism_path}")
    for note in fr.attrs.get("notes", []):
        info(f"note: {note}")
    if as_json:
        emit_json({"frame": str(out_path), "villages": len(fr), "mismatches": str(mism_path) if mism_path else None,
                   "counties": summary.to_dict("records")})
        return
    info(f"frame written: {out_path} ({len(fr):,} villages)")
    show = summary.copy()
    show["registered_rate"] = (show["registered_rate"] * 100).round(2).astype(str) + "%"
    click.echo(show.to_string(index=False))


@frame.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--kind", type=click.Choice(["village", "household", "person"]), default="village", show_default=True,
              help="Village frame, household register, or persons table.")
@click.option("--map", "mappings", multiple=True, metavar="THEIRS=OURS", help="Column name mapping (repeatable).")
@click.option("--strata", "strata", multiple=True, help="Stratum column(s) of the design.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the problem list (.xlsx, .csv or .parquet).")
@click.option("--encoding", default=None, help="CSV encoding (detected when not given).")
@click.option("--sheet", default=None, help="XLSX sheet name or number.")
@json_option
def check_cmd(file, kind, mappings, strata, report_path, encoding, sheet, as_json):
    """Check a frame; exits with status 2 when it has errors (nothing is drawn from a bad frame)."""
    from sampling.frames import check_frame

    report = check_frame(file, kind, mapping=_parse_pairs(mappings, "--map"), strata=list(strata) or None,
                         encoding=encoding, sheet=sheet)
    if report_path:
        report.write(report_path)
    if as_json:
        doc = report.to_dict()
        doc["report"] = report_path
        emit_json(doc)
    else:
        info(report.summary())
        if report_path:
            info(f"report written: {report_path}")
    report.raise_if_errors()
