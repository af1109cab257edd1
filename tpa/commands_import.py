"""CLI verbs of the import part: `tpa import FILE...` and `tpa import status`.

`tpa import --json` prints a JSON list with one object per file, in the order given:
{"file", "sha256", "rows_in", "accepted", "quarantined", "duplicates_skipped", "errors", "warnings", "status",
 "instrument", "format", "import_id", "superseded", "report", "messages", "error", "tables"}
(`errors`/`warnings` are counts of validation problems; `status` is imported | unchanged | rejected; `error` is the
file-level error of a rejected file, else null). The exit status is 2 when any file was rejected.
"""
from __future__ import annotations

from pathlib import Path

import click

from .clitools import emit_json, info, json_option, open_workspace, progress, workspace_option


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""

    @cli.command("import")
    @click.argument("files", nargs=-1, required=True)
    @workspace_option
    @click.option("--instrument", default=None,
                  help="hh_registered, hh_nonregistered, village, or a codebook file (default: detected from "
                       "the columns).")
    @click.option("--encoding", default=None, help="Text encoding of CSV/tab files (default: detected: UTF-8, "
                                                   "UTF-8 BOM, GBK/GB18030); or the character set of old SAV files.")
    @click.option("--workers", type=click.IntRange(1, 64), default=None,
                  help="Processes working on a long file, this one included (default: the CPU count, at most 3).")
    @json_option
    def import_cmd(files, workspace, instrument, encoding, workers, as_json):
        """Import questionnaire files (CSV, XLSX, SAV/ZSAV, DTA, ODK/Kobo ZIP, Survey Solutions ZIP).

        `tpa import status` lists what has come in per county and village against the sample.
        """
        if files == ("status",) and not Path("status").exists():
            return _status(workspace, as_json)
        from survey.errors import ImportFileError
        from survey.importer import import_files

        ws = open_workspace(workspace)
        bars = {}

        def on_progress(name, rows):
            bar = bars.get(name)
            if bar is None:
                bar = bars[name] = progress(desc=name, unit=" rows")
                bar.n0 = 0
            bar.update(rows - bar.n0)
            bar.n0 = rows

        try:
            results = import_files(ws, files, instrument=instrument, encoding=encoding, progress=on_progress,
                                   workers=workers)
        finally:
            for bar in bars.values():
                bar.close()
        rejected = [r for r in results if r.status == "rejected"]
        if as_json:
            emit_json([r.to_json() for r in results])
        else:
            for r in results:
                if r.status == "rejected":
                    continue
                _print_result(r)
        if not rejected:
            return
        if len(results) == 1:
            raise _as_error(rejected[0], ImportFileError)
        for r in rejected:
            info(f"error: {r.messages[0] if r.messages else r.file + ': rejected'}")
        raise ImportFileError(f"{len(rejected)} of {len(results)} files rejected (see above); the others were "
                              "imported", code="rejected_files",
                              fix="correct the files named and import them again")


def _as_error(result, cls):
    e = result.error or {}
    return cls(e.get("message") or "file rejected", code=e.get("code"), file=e.get("file") or result.file,
               row=e.get("row"), column=e.get("column"), fix=e.get("fix"))


def _print_result(r) -> None:
    ok = "OK " if r.reconciles else "MISMATCH "
    head = {"imported": f"imported as {r.instrument} (import {r.import_id})",
            "unchanged": f"unchanged (import {r.import_id})"}.get(r.status, r.status)
    click.echo(f"{r.file}: {head}")
    click.echo(f"  {ok}{r.reconciliation()}")
    if len(r.tables) > 1:
        for name, c in r.tables.items():
            click.echo(f"    {name}: rows in {c['rows_in']:,} = accepted {c['accepted']:,} + quarantined "
                       f"{c['quarantined']:,} + duplicates skipped {c['duplicates_skipped']:,}")
    if r.status == "imported":
        click.echo(f"  problems: {r.errors:,} errors, {r.warnings:,} warnings; superseded earlier versions: "
                   f"{r.superseded:,}")
        if r.report:
            click.echo(f"  validation report: {r.report}")
    for m in r.messages:
        click.echo(f"  note: {m}")


def _status(workspace, as_json) -> None:
    from survey.importer import import_status

    ws = open_workspace(workspace)
    table = import_status(ws)
    if as_json:
        emit_json(table.astype(object).where(table.notna(), None).to_dict(orient="records"))
        return
    if table.empty:
        click.echo("nothing imported yet")
        return
    click.echo(table.to_string(index=False))
