"""CLI verbs of the report part. Heavy libraries are imported inside the commands to keep start-up fast."""
from __future__ import annotations

import time

import click

from .clitools import emit_json, info, json_option, open_workspace, progress, workspace_option


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""
    cli.add_command(report_cmd)


@click.command("report")
@workspace_option
@click.option("--province", "provinces", multiple=True, metavar="NAME|CODE",
              help="Province by name (贵州) or code (520000); repeatable.")
@click.option("--all", "all_provinces", is_flag=True, help="Every province of the assessment.")
@click.option("--national", is_flag=True, help="Also the national summary (PDF) and the XLSX of every indicator table.")
@click.option("--band/--no-band", default=None,
              help="Confidential band 好/较好/一般/较差 in the national summary (default: report.confidential_band).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: WORKSPACE/reports).")
@click.option("--workers", type=int, default=None, help="Worker processes (default: the number of CPUs).")
@json_option
def report_cmd(workspace, provinces, all_provinces, national, band, out_dir, workers, as_json):
    """Render the leadership PDF reports (one per province, in Chinese) from the workspace.

    Provinces render in parallel worker processes. A province without enough data gets a report that says
    数据不足. Personal data are masked in every document (SPEC §8).
    """
    from reports.errors import ReportError
    from reports.run import report_workspace

    if not provinces and not all_provinces and not national:
        raise ReportError("say which reports to render", code="bad_argument",
                          fix="give --province NAME (repeatable), --all, and/or --national")
    ws = open_workspace(workspace)
    t0 = time.perf_counter()
    bar = progress(total=None, desc="reports", unit="doc")

    def done(res):
        bar.update(1)
        if not as_json:
            tag = "" if res.get("status", "ok") == "ok" else " (数据不足 / insufficient data)"
            bar.clear()
            click.echo(f"{res['path']}  {res['pages']} pages{tag}")
            bar.refresh()

    try:
        out = report_workspace(ws, provinces, all_provinces=all_provinces, national=national, out_dir=out_dir,
                               workers=workers, band=band, on_done=done)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    if as_json:
        out["seconds"] = seconds
        emit_json(out)
        return
    if out["xlsx"]:
        info(f"{out['xlsx']}  indicator tables")
    n = len(out["provinces"]) + (1 if out["national"] else 0)
    info(f"{n} report(s) in {out['out_dir']} ({seconds:.1f} s)")
    click.echo(f"SECONDS={seconds:.3f}") if _bench() else None


def _bench() -> bool:
    import os

    return bool(os.environ.get("TPA_BENCH"))
