"""CLI verbs of the score part: `tpa score`, `tpa cases`, `tpa review ...`, `tpa appeal ...`, `tpa indicators`.

Heavy libraries are imported inside the commands to keep start-up fast.
"""
from __future__ import annotations

import json

import click

from .clitools import emit_json, info, json_option, open_workspace, workspace_option


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""
    cli.add_command(score_cmd)
    cli.add_command(cases_cmd)
    cli.add_command(review)
    cli.add_command(appeal)
    cli.add_command(indicators_cmd)


def _records(df):
    import pandas as pd

    out = df.astype(object).where(pd.notna(df), None)
    return out.to_dict("records")


@click.command("score")
@workspace_option
@json_option
def score_cmd(workspace, as_json):
    """Score every imported household under the workspace's rules (错退, 漏评, 错评, 认可 with reasons)."""
    from survey.score import score_workspace

    ws = open_workspace(workspace)
    scores = score_workspace(ws)
    summary = {
        "households": int(len(scores)),
        "rules_hash": scores["rules_hash"].iloc[0] if len(scores) else None,
        "run_id": scores.attrs.get("run_id"),
        "wrongly_exited_households": int(scores["wrongly_exited"].sum()),
        "wrongly_exited_persons": float(scores.loc[scores["wrongly_exited"], "size"].sum()),
        "missed_households": int(scores["missed"].sum()),
        "missed_persons": int(scores["missed_persons"].sum()),
        "wrongly_included_households": int(scores["wrongly_included"].sum()),
        "fell_back_households": int(scores["fell_back"].sum()),
        "near_line": int(scores["near_line"].sum()),
        "between_lines": int(scores["between_lines"].sum()),
        "recognising": int(scores["recognises"].fillna(False).sum()),
        "recognition_answered": int(scores["recognises"].notna().sum()),
    }
    if as_json:
        emit_json(summary)
        return
    click.echo(f"已评分 {summary['households']} 户（规则 {summary['rules_hash']}）")
    click.echo(f"  错退 {summary['wrongly_exited_households']} 户 {summary['wrongly_exited_persons']:.0f} 人；"
               f"漏评 {summary['missed_households']} 户 {summary['missed_persons']} 人；"
               f"错评 {summary['wrongly_included_households']} 户；返贫 {summary['fell_back_households']} 户")
    click.echo(f"  收入接近贫困线 {summary['near_line']} 户；介于两种口径贫困线之间 {summary['between_lines']} 户")
    info("next: `tpa cases --county CODE` lists the cases with reasons; `tpa indicators` computes the rates")


@click.command("cases")
@click.option("--county", "county", default=None, help="6-digit county code (all counties if omitted).")
@click.option("--kind", "kinds", multiple=True,
              type=click.Choice(["wrongly_exited", "missed", "wrongly_included", "fell_back"]),
              help="Only these kinds of case (repeatable).")
@workspace_option
@json_option
def cases_cmd(county, kinds, workspace, as_json):
    """List the problem cases (疑似错退 / 漏评 / 错评 / 返贫) of a county with their reasons."""
    from survey.review import list_cases

    ws = open_workspace(workspace)
    kinds = kinds or ("wrongly_exited", "missed", "wrongly_included", "fell_back")
    cases = list_cases(ws, county, kinds)
    if as_json:
        rows = _records(cases)
        for r in rows:
            r["reasons"] = json.loads(r["reasons"]) if r["reasons"] else []
        emit_json({"county_code": county, "cases": rows})
        return
    if cases.empty:
        click.echo("没有问题案例" + (f"（{county}）" if county else ""))
        return
    status_zh = {"confirmed": "确认", "suspected": "疑似", "overturned": "申诉成立已撤销"}
    for r in _records(cases):
        click.echo(f"{r['household_id']}  {r['kind_zh']}（{status_zh[r['status']]}）  {r['persons']:.0f}人"
                   + (f"  审核：{r['review']}" if r["review"] else "")
                   + (f"  申诉：{r['appeal']}" if r["appeal"] else ""))
        for reason in json.loads(r["reasons"] or "[]"):
            click.echo(f"    - {reason['message_zh']}")
    click.echo(f"共 {len(cases)} 个案例")


@click.group("review")
def review():
    """Supervisors' verdicts: 审核通过 / 疑似漏评 / 疑似错退 / 其他问题 (history kept)."""


@review.command("set")
@click.argument("household")
@click.argument("verdict")
@click.option("--comment", default=None, help="Why (required for every verdict but 审核通过).")
@click.option("--reviewer", default=None, help="Who reviewed.")
@workspace_option
@json_option
def review_set(household, verdict, comment, reviewer, workspace, as_json):
    """Record VERDICT for HOUSEHOLD (审核通过, 疑似漏评, 疑似错退, 其他问题)."""
    from survey.review import set_review

    ws = open_workspace(workspace)
    row = set_review(ws, household, verdict, comment, reviewer=reviewer)
    if as_json:
        emit_json(row)
        return
    click.echo(f"{row['household_id']}: {row['verdict']}" + (f"（{row['comment']}）" if row["comment"] else ""))


@review.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@workspace_option
@json_option
def review_import(file, workspace, as_json):
    """Import verdicts from a table with columns household_id, verdict, comment[, reviewer]."""
    from survey.review import import_reviews

    ws = open_workspace(workspace)
    rows = import_reviews(ws, file)
    if as_json:
        emit_json({"imported": int(len(rows)), "verdicts": rows["verdict"].value_counts().to_dict()})
        return
    click.echo(f"导入审核意见 {len(rows)} 条：" + "，".join(f"{k} {v}" for k, v in
                                                     rows["verdict"].value_counts().items()))


@review.command("history")
@click.argument("household", required=False)
@workspace_option
@json_option
def review_history_cmd(household, workspace, as_json):
    """Every verdict recorded (for one HOUSEHOLD, or all)."""
    from survey.review import review_history

    ws = open_workspace(workspace)
    rows = _records(review_history(ws, household))
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['created']}  {r['household_id']}  {r['verdict']}  {r['comment'] or ''}  {r['reviewer'] or ''}")


@click.group("appeal")
def appeal():
    """Counties' appeals against verdicts, with evidence (recorded, never overwritten)."""


@appeal.command("add")
@click.argument("household")
@click.option("--evidence", required=True, help="The evidence the county brings.")
@click.option("--outcome", default="pending", show_default=True,
              type=click.Choice(["pending", "accepted", "rejected"]),
              help="accepted (申诉成立) overturns the verdict; the score and the verdicts stay on record.")
@click.option("--by", "submitted_by", default=None, help="Who submitted it.")
@workspace_option
@json_option
def appeal_add(household, evidence, outcome, submitted_by, workspace, as_json):
    """Record a county's appeal for HOUSEHOLD."""
    from survey.review import add_appeal

    ws = open_workspace(workspace)
    row = add_appeal(ws, household, evidence, outcome=outcome, submitted_by=submitted_by)
    if as_json:
        emit_json(row)
        return
    click.echo(f"申诉 {row['appeal_id']}：{row['household_id']} {row['outcome_zh']}")


@appeal.command("decide")
@click.argument("appeal_id", type=int)
@click.argument("outcome", type=click.Choice(["pending", "accepted", "rejected"]))
@click.option("--comment", default=None)
@click.option("--by", "decided_by", default=None)
@workspace_option
@json_option
def appeal_decide(appeal_id, outcome, comment, decided_by, workspace, as_json):
    """Record a decision on an appeal (earlier decisions stay)."""
    from survey.review import decide_appeal

    ws = open_workspace(workspace)
    row = decide_appeal(ws, appeal_id, outcome, comment, decided_by=decided_by)
    if as_json:
        emit_json(row)
        return
    click.echo(f"申诉 {row['appeal_id']}：{row['outcome_zh']}")


@appeal.command("list")
@workspace_option
@json_option
def appeal_list(workspace, as_json):
    """Every appeal with its current outcome."""
    from survey.review import APPEAL_OUTCOMES, appeals

    ws = open_workspace(workspace)
    rows = _records(appeals(ws))
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['appeal_id']}  {r['household_id']}  {APPEAL_OUTCOMES.get(r['outcome'], r['outcome'])}  "
                   f"{r['evidence']}")


@click.command("indicators")
@click.option("--by", "by", type=click.Choice(["county", "province", "national"]), default="county",
              show_default=True)
@workspace_option
@json_option
def indicators_cmd(by, workspace, as_json):
    """The regime's indicators per county or province: official ratio, weighted estimate, CI, verdict."""
    from dataclasses import asdict

    from survey.indicators import compute_indicators, format_percent

    ws = open_workspace(workspace)
    inds = compute_indicators(ws, by=by)
    if as_json:
        rows = []
        for i in inds:
            row = asdict(i)
            if getattr(i, "terms", None):
                row["terms"] = i.terms
            rows.append(row)
        emit_json(rows)
        return
    verdict = {True: "通过", False: "未通过", None: "—"}
    last = None
    for i in inds:
        place = i.county_code if by == "county" else i.province_code if by == "province" else "全国"
        if place != last:
            click.echo(f"{place}")
            last = place
        est = "—" if i.estimate is None else (
            f"{format_percent(i.estimate)} [{format_percent(i.ci_low)}, {format_percent(i.ci_high)}]")
        thr = "" if i.threshold is None else f"{i.direction}{format_percent(i.threshold)}"
        sus = f"  疑似 {i.suspected:g}" if i.suspected else ""
        click.echo(f"  {i.name_zh:<14} 官方 {i.display:<24} 加权 {est:<30} {thr:<8} {verdict[i.passed]}{sus}")
        terms = getattr(i, "terms", None)
        if terms:
            o = terms["official"]
            click.echo(f"      = (建档立卡未脱贫 {terms['remaining_registered']:.0f} + 漏评率 {format_percent(o['missed_rate'])}"
                       f" × 非建档立卡人口 {terms['nonregistered_population']:.0f} + 错退率 "
                       f"{format_percent(o['wrongly_exited_rate'])} × 脱贫人口 {terms['exited_population']:.0f})"
                       f" / {terms['denominator']:.0f}（{terms['denominator_column']}）")
