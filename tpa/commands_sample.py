"""CLI verbs of the sample-drawing part (`tpa sample ...`). Heavy libraries are imported inside the commands."""
from __future__ import annotations

import click

from .clitools import emit_json, info, json_option, open_workspace, workspace_option


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""
    cli.add_command(sample)


@click.group("sample")
def sample():
    """Designs and selection: draw, summarise, verify and seal samples (抽样)."""


@sample.command("presets")
@json_option
def presets_cmd(as_json):
    """List the shipped design presets."""
    from sampling.design import load_design, preset_names

    rows = []
    for name in preset_names():
        d = load_design(name)
        rows.append({"name": name, "title": d.title, "pattern": d.pattern, "source": d.source})
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<22}{r['title']}")


@sample.command("design")
@click.argument("design")
@json_option
def design_cmd(design, as_json):
    """Check a design file (or preset) and show it as the draw will record it."""
    from sampling.design import load_design

    d = load_design(design)
    if as_json:
        emit_json(d.to_dict())
        return
    click.echo(f"{d.name}: {d.title} — valid")
    for st in d.stages:
        extra = f", size {st.size}" if st.size else ""
        extra += f", by {', '.join(st.by)}" if st.by else ""
        extra += f", n {st.n} ({st.allocation})" if st.n is not None else ""
        extra += f", reserve {st.reserve}" if st.reserve else ""
        click.echo(f"  {st.level}: {st.method}{extra}")
        for s in st.strata:
            size = ("take all" + (f" in {s.groups} whole 村民小组" if s.groups else "") if st.method_of(s) == "take_all"
                    else "purposive " + ", ".join(s.units) if s.purposive
                    else f"n = {s.n}" if s.n is not None else f"rate {s.rate}" if s.rate is not None
                    else f"n_rule {s.n_rule}" if s.n_rule else f"target {s.target}" if s.target else "allocated")
            click.echo(f"    {s.name:<16}{size:<32}{s.label}")


@sample.command("draw")
@click.option("--design", "design", required=True, help="Design file (.toml/.yaml) or preset name.")
@click.option("--seed", type=int, required=True, help="Random seed (recorded; the same seed gives the same sample).")
@click.option("--villages", type=click.Path(dir_okay=False), default=None,
              help="Village frame (default: frames/villages.* in the workspace).")
@click.option("--households", default=None,
              help="Household register file (Parquet is read only for the sampled villages), or "
                   "synthetic:SEED for the synthetic population (default: frames/households.*).")
@click.option("--county", "counties", multiple=True, help="Draw only in this county (6-digit code; repeatable).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the field lists (default: samples/<draw_id> in the workspace).")
@click.option("--no-lists", is_flag=True, help="Record the draw without writing field lists.")
@click.option("--no-check", is_flag=True, help="Skip the frame checks before drawing (not recommended).")
@workspace_option
@json_option
def draw_cmd(design, seed, villages, households, counties, out, no_lists, no_check, workspace, as_json):
    """Draw a multi-stage sample into the workspace and write the field lists."""
    from sampling.draw import draw_sample, format_summary

    ws = open_workspace(workspace)
    if households and households.startswith("synthetic:") and households.count(":") == 1:
        households += f":{ws.config['assessment']['year']}"      # the synthetic population of the assessed year
    info(f"drawing with design {design}, seed {seed} …")
    rec = draw_sample(ws, design, seed, villages=villages, households=households, counties=list(counties) or None,
                      out=out, write_lists=not no_lists, check=not no_check)
    if as_json:
        emit_json(rec)
        return
    click.echo(format_summary(rec["summary"]))
    click.echo(f"draw {rec['draw_id']} recorded; {len(rec['files'])} list files in {rec['list_dir']}")


@sample.command("summary")
@click.option("--draw", "draw_id", default=None, help="Draw id (default: the latest draw).")
@click.option("--all", "all_draws", is_flag=True, help="List every draw of the workspace instead.")
@workspace_option
@json_option
def summary_cmd(draw_id, all_draws, workspace, as_json):
    """Show the design summary of a draw: sizes per stratum, π and weight ranges, expected precision."""
    from sampling.draw import format_summary, get_draw, list_draws

    ws = open_workspace(workspace)
    if all_draws:
        df = list_draws(ws)
        if as_json:
            emit_json(df.to_dict(orient="records"))
        else:
            click.echo(df.to_string(index=False))
        return
    row = get_draw(ws, draw_id)
    if as_json:
        emit_json({"draw_id": row["draw_id"], "created": row["created"], "seed": row["seed"],
                   "software_version": row["software_version"], "frames": row["frames"],
                   "summary": row["summary"]})
        return
    click.echo(f"draw {row['draw_id']} created {row['created']} with tpa {row['software_version']}")
    click.echo(format_summary(row["summary"]))


@sample.command("verify")
@click.option("--draw", "draw_id", default=None, help="Draw id (default: the latest draw).")
@click.option("--villages", type=click.Path(dir_okay=False), default=None,
              help="Village frame, if it has moved since the draw (its content must be unchanged).")
@click.option("--households", default=None, help="Household register, if it has moved since the draw.")
@click.option("--seal", default=None, help="A published seal (SHA-256) to check the re-drawn lists against.")
@click.option("--archive", type=click.Path(dir_okay=False), default=None,
              help="With --seal: check this sealed archive (full_lists.zip) instead of re-drawing.")
@workspace_option
@json_option
def verify_cmd(draw_id, villages, households, seal, archive, workspace, as_json):
    """Re-draw from the recorded design, seed and frames and confirm identical samples and lists."""
    if archive:
        if not seal:
            raise click.UsageError("--archive needs --seal DIGEST")
        from sampling.seal import check_archive

        report = check_archive(archive, seal)
        report["checks"] = [{"check": "archive against seal", "ok": report["ok"],
                             "detail": "; ".join(report["problems"]) or f"{report['files']} files match"}]
    else:
        from sampling.draw import verify_draw

        ws = open_workspace(workspace)
        report = verify_draw(ws, draw_id, villages=villages, households=households, seal=seal)
    if as_json:
        emit_json(report)
    else:
        for c in report["checks"]:
            click.echo(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
        click.echo("verified" if report["ok"] else "NOT verified")
    if not report["ok"]:
        from sampling.errors import SamplingError

        failed = [c["check"] for c in report["checks"] if not c["ok"]]
        raise SamplingError(f"the draw did not verify ({', '.join(failed)})", code="not_verified",
                            fix="see the checks above; a changed list or frame must be restored, or the draw "
                                "repeated and re-sealed")


@sample.command("seal")
@click.option("--draw", "draw_id", default=None, help="Draw id (default: the latest draw).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the sealed export (default: samples/<draw_id>/sealed).")
@workspace_option
@json_option
def seal_cmd(draw_id, out, workspace, as_json):
    """Seal a draw's lists: one archive, a SHA-256 manifest, its digest (the seal), per-county folders."""
    from sampling.seal import seal_draw

    ws = open_workspace(workspace)
    rec = seal_draw(ws, draw_id, out=out)
    if as_json:
        emit_json(rec)
        return
    click.echo(f"SEAL {rec['seal']}")
    info(f"draw {rec['draw_id']}: {rec['files']} files in {rec['archive']}; manifest {rec['manifest']}; "
         f"{len(rec['county_folders'])} county folders. Publish the seal before fieldwork; check it afterwards "
         f"with `tpa sample verify --seal {rec['seal']}`.")
