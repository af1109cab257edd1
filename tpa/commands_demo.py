"""CLI verb `tpa demo`: the whole assessment in one command (reports.demo.run_demo)."""
from __future__ import annotations

import json

import click

from .clitools import info


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""
    cli.add_command(demo_cmd)


@click.command("demo")
@click.option("--provinces", "provinces", multiple=True, metavar="N|NAME",
              help="A number N (the first N of the 22 provinces) or province names/codes (repeatable). "
                   "Default: all 22.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the population, draw and fieldwork.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo-out", show_default=True,
              help="Folder for the workspace, field files and reports.")
@click.option("--villages-per-county", type=click.IntRange(5, 1800), default=None,
              help="Villages per synthetic county (default: 60).")
@click.option("--workers", type=int, default=None, help="Worker processes (default: the number of CPUs).")
@click.option("--no-reports", is_flag=True, help="Stop after the indicators (no PDFs).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on standard output.")
def demo_cmd(provinces, seed, out_dir, villages_per_county, workers, no_reports, as_json):
    """Run the whole assessment on a synthetic population: generate → frames → check → draw (exit-check preset)
    → simulated field files with mistakes → import → score → indicators → PDF reports; then print each
    province's indicators beside the population's true values."""
    from reports.demo import DEMO_VILLAGES_PER_COUNTY, format_comparison, run_demo
    from sampling.geography import PROVINCES

    chosen = list(provinces)
    if len(chosen) == 1 and chosen[0].isdigit() and len(chosen[0]) <= 2:
        n = int(chosen[0])
        if not 1 <= n <= len(PROVINCES):
            raise click.BadParameter(f"give a number from 1 to {len(PROVINCES)}", param_hint="--provinces")
        chosen = sorted(PROVINCES)[:n]
    result = run_demo(out_dir, provinces=chosen or None, seed=seed,
                      villages_per_county=villages_per_county or DEMO_VILLAGES_PER_COUNTY, workers=workers,
                      reports=not no_reports, log=info)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
        return
    click.echo("")
    click.echo("Indicators beside the synthetic population's true values (persons; 认可度 households):")
    click.echo(format_comparison(result.comparison))
    click.echo("")
    total = sum(s["seconds"] for s in result.steps)
    click.echo(f"done in {total:.0f} s. Outputs:")
    for key, value in result.outputs.items():
        click.echo(f"  {key:<20} {value}")
