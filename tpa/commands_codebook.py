"""CLI verbs of the codebook part. Heavy libraries are imported inside the commands to keep start-up fast."""
from __future__ import annotations

import click

from .clitools import emit_json, info, json_option

_INSTRUMENTS = ("hh_registered", "hh_nonregistered", "village")   # survey.codebook.INSTRUMENTS (not imported here)


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""
    cli.add_command(codebook)


@click.group("codebook")
def codebook():
    """Questionnaire codebooks: variables, value labels, skip logic and consistency rules."""


@codebook.command("export")
@click.option("--instrument", "instruments", multiple=True,
              help=f"Shipped instrument ({', '.join(_INSTRUMENTS)}) or a codebook file (.yaml); repeatable. "
                   "Default: all three instruments.")
@click.option("--xlsform", "xlsform", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Build the codebook from this XLSForm instead.")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "xlsform", "both"]), default="both", show_default=True,
              help="xlsx = the codebook workbook enumerators are trained on; xlsform = an XLSForm for ODK/Kobo.")
@json_option
def export_cmd(instruments, xlsform, out, fmt, as_json):
    """Write codebooks as XLSX (变量表) and/or XLSForm."""
    from pathlib import Path

    from survey.codebook import load_codebook
    from survey.errors import CodebookError
    from survey.xlsform import codebook_from_xlsform, write_codebook_xlsx, write_xlsform

    if xlsform and instruments:
        raise CodebookError("give either --instrument or --xlsform, not both",
                            fix="run the command once for each source")
    books = [codebook_from_xlsform(xlsform)] if xlsform else [load_codebook(n) for n in
                                                               (instruments or _INSTRUMENTS)]
    out = Path(out)
    written = []
    for cb in books:
        if fmt in ("xlsx", "both"):
            written.append(str(write_codebook_xlsx(cb, out / f"{cb.name}_codebook.xlsx")))
        if fmt in ("xlsform", "both"):
            written.append(str(write_xlsform(cb, out / f"{cb.name}_xlsform.xlsx")))
        for note in cb.notes:
            info(f"note ({cb.name}): {note}")
    if as_json:
        emit_json({"written": written, "codebooks": [cb.name for cb in books]})
    else:
        for path in written:
            info(f"written: {path}")


@codebook.command("show")
@click.argument("name")
@json_option
def show_cmd(name, as_json):
    """Show a codebook: NAME is an instrument, a codebook .yaml or an XLSForm .xlsx."""
    from survey.codebook import TYPE_ZH, load_codebook

    cb = load_codebook(name)
    if as_json:
        emit_json(cb.to_dict())
        return
    click.echo(f"{cb.label_zh} ({cb.name})  key: {cb.key}  source: {cb.source}")
    tables = [("main", "主表", cb.variables)] + [(g.name, f"{g.label_zh}（键 {', '.join(g.key)}）", g.variables)
                                                 for g in cb.repeats.values()]
    for _, title, variables in tables:
        click.echo(f"\n[{title}] {len(variables)} 个变量")
        for v in variables.values():
            flags = "".join([" 必答" if v.required else "", " 个人信息" if v.personal else ""])
            extra = f"  跳转: {v.relevant}" if v.relevant else ""
            extra += f"  约束: {v.constraint}" if v.constraint else ""
            rng = v.range_text()
            rng = (rng[:60] + "…") if len(rng) > 60 else rng
            click.echo(f"  {v.name:<24} {TYPE_ZH.get(v.type, v.type):<4} {v.label_zh}"
                       f"{'  [' + rng + ']' if rng else ''}{flags}{extra}")
    if cb.rules:
        click.echo(f"\n[一致性规则] {len(cb.rules)} 条")
        for r in cb.rules:
            sev = "错误" if r.severity == "error" else "警告"
            click.echo(f"  {r.id:<34} {sev}  {r.rule_zh}")
    for note in cb.notes:
        click.echo(f"note: {note}", err=True)
