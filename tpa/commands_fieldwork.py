"""CLI verbs of the fieldwork-simulation part: `tpa fieldwork simulate`.

`tpa fieldwork simulate --json` prints one JSON document: {"out_dir", "draw_id", "seed", "truth", "files": [{"path",
"file", "format", "encoding", "team", "team_format", "county_code", "instrument", "households", "main_rows",
"roster_rows", "mistakes"}], "mistakes": [{"kind", "file", "instrument", "household_id", "true_household_id",
"sheet", "field", "member_no", "value", "rule"}], "refusals": [{"household_id", "village_code", "hh_stratum",
"replaced_by", "reserve_order"}], "mistake_counts", "reserves_used", "notes", "answer_key"}.
Heavy libraries are imported inside the commands to keep start-up fast.
"""
from __future__ import annotations

import click

from .clitools import emit_json, info, json_option, open_workspace, progress, workspace_option


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""

    @cli.group("fieldwork")
    def fieldwork():
        """Simulated fieldwork (模拟入户调查) for demonstrations and tests."""

    @fieldwork.command("simulate")
    @workspace_option
    @click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                  help="Empty or new folder for the teams' files.")
    @click.option("--population", default=None, type=click.Path(file_okay=False),
                  help="Folder of the synthetic population the draw was made from (villages, households, persons "
                       "files). Default: found from what the draw recorded.")
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
    @click.option("--mistakes/--no-mistakes", default=True, show_default=True,
                  help="Plant the mistakes real teams make (ID typos, out-of-range values, duplicates, ...).")
    @click.option("--mistakes-per-kind", type=click.IntRange(min=1), default=None,
                  help="How many of each kind of mistake (default: one per 200 interviewed households, at least one).")
    @click.option("--refusal-rate", type=float, default=0.03, show_default=True,
                  help="Share of sampled households that refuse (replaced by the next reserve).")
    @click.option("--teams-per-county", type=int, default=4, show_default=True,
                  help="Teams per county; formats rotate over teams: SAV, XLSX, GBK CSV, ODK ZIP.")
    @click.option("--workers", type=click.IntRange(1, 64), default=None,
                  help="Processes that write the files (default: the number of CPUs); the files do not depend on it.")
    @json_option
    def simulate_cmd(workspace, out_dir, population, seed, mistakes, mistakes_per_kind, refusal_rate, teams_per_county,
                     workers, as_json):
        """Write the files field teams would send for the latest draw, answered from the synthetic population.

        Import them with `tpa import OUT/*`; the planted mistakes (the answer key) are listed with --json and
        in the workspace's fieldwork/ folder, not in OUT.
        """
        from survey.fieldwork import MISTAKE_KINDS, simulate_fieldwork

        ws = open_workspace(workspace)
        if mistakes and mistakes_per_kind:
            mistakes = {k: mistakes_per_kind for k in MISTAKE_KINDS}
        s = simulate_fieldwork(ws, out_dir, population=population, seed=seed, mistakes=mistakes,
                               refusal_rate=refusal_rate, teams_per_county=teams_per_county, progress=progress,
                               workers=workers)
        if as_json:
            emit_json(s.to_json())
            return
        click.echo(f"draw {s.draw_id}: {len(s.files)} files in {s.out_dir} (answers from {s.truth})")
        for f in s.files:
            mk = ", ".join(f"{k} {v}" for k, v in sorted(f.mistakes.items()))
            enc = f" {f.encoding}" if f.format == "csv" else ""
            click.echo(f"  {f.file}: {f.format}{enc}, team {f.team}, {f.instrument}, {f.households:,} units, "
                       f"{f.main_rows:,} rows + {f.roster_rows:,} roster rows" + (f"; planted: {mk}" if mk else ""))
        replaced = len(s.reserves_used)
        click.echo(f"refusals: {len(s.refusals)} ({replaced} replaced by reserves, "
                   f"{len(s.refusals) - replaced} not replaced)")
        counts = s.mistake_counts()
        click.echo("planted mistakes: " + (", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "none"))
        for n in s.notes:
            info(f"note: {n}")
        info(f"answer key: {s.answer_key}")
