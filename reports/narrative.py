"""The generated texts of the reports: 综合评价 and 处理建议 from the verdicts (SPEC §7).

Texts set in the configuration (``[report] summary_text`` / ``recommendations``) replace the generated ones;
blank lines separate paragraphs.
"""
from __future__ import annotations

from .formatting import count, interval_text, official_display, pct, threshold_text

REGIME_NAMES = {"A": "成效考核第三方评估", "B": "贫困县退出专项评估检查", "C": "省级第三方评估"}
UNIT_ZH = {"persons": "人", "households": "户"}


def paragraphs(text: str | None) -> list[str]:
    if not text or not str(text).strip():
        return []
    return [p.strip().replace("\n", "") for p in str(text).replace("\r\n", "\n").split("\n\n") if p.strip()]


def indicator_sentence(ind: dict, level: float = 0.95) -> str:
    head = f"{ind['name_zh']}为{official_display(ind, level)}"
    if ind.get("estimate") is not None:
        head += f"（加权估计{pct(ind['estimate'])}，{int(round(level * 100))}%置信区间" \
                f"{interval_text(ind.get('ci_low'), ind.get('ci_high'))}）"
    if ind.get("threshold") is None or ind.get("passed") is None:
        return head + "，本次评估未设判定标准。"
    verb = "达到" if ind["passed"] else "未达到"
    return head + f"，{verb}{threshold_text(ind.get('direction'), ind.get('threshold'))}的标准。"


def failing_counties(county_indicators: list[dict], names: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ind in county_indicators:
        if ind.get("passed") is False:
            out.setdefault(ind["county_code"], []).append(ind["name_zh"])
    return {names.get(c, c): v for c, v in sorted(out.items())}


def summary_paragraphs(view: dict) -> list[str]:
    """综合评价 generated from the verdicts."""
    ctx = view
    level = ctx["assessment"].get("level", 0.95)
    s = ctx.get("sample", {})
    out = []
    if ctx.get("status") != "ok":
        return ["本省评估数据不足，暂不能形成综合评价。" + "；".join(ctx.get("insufficient_reasons", [])) + "。"]
    out.append(f"本次{REGIME_NAMES.get(ctx['assessment'].get('regime'), '第三方评估')}在{ctx['province']['name']}"
               f"抽取{count(s.get('counties'))}个县、{count(s.get('villages'))}个行政村、{count(s.get('sampled'))}户，"
               f"实际完成入户调查{count(s.get('interviewed'))}户，完成率{pct(s.get('response_rate'))}。")
    out.append("".join(indicator_sentence(i, level) for i in ctx.get("indicators", [])))
    total = len({i["county_code"] for i in ctx.get("county_indicators", [])})
    fails = failing_counties(ctx.get("county_indicators", []), ctx.get("county_names", {}))
    if total:
        if fails:
            listed = "；".join(f"{c}（{'、'.join(v)}）" for c, v in fails.items())
            out.append(f"在{total}个评估县中，{total - len(fails)}个县各项指标均达到标准，{len(fails)}个县有指标未达到标准：{listed}。")
        else:
            out.append(f"{total}个评估县各项指标均达到标准。")
    suspected = sum(1 for c in ctx.get("cases", []) if not c.get("confirmed"))
    confirmed = sum(1 for c in ctx.get("cases", []) if c.get("confirmed"))
    if confirmed or suspected:
        out.append(f"经审核确认的问题户{confirmed}户，另有疑似问题户{suspected}户尚待核实，核实结果可能影响相关指标。")
    return out


def recommendation_paragraphs(view: dict) -> list[str]:
    """处理建议 generated from the verdicts and the problem cases."""
    ctx = view
    if ctx.get("status") != "ok":
        return ["尽快完成本省样本户问卷的导入、核查与评分，数据齐备后重新生成本报告。"]
    out = []
    fails = failing_counties(ctx.get("county_indicators", []), ctx.get("county_names", {}))
    for county, names in fails.items():
        out.append(f"{county}{'、'.join(names)}未达到标准，建议暂缓退出，逐户核实整改后重新评估。")
    kinds = {}
    for c in ctx.get("cases", []):
        if c.get("confirmed"):
            kinds[c.get("kind")] = kinds.get(c.get("kind"), 0) + 1
    if kinds.get("错退"):
        out.append(f"对确认的错退户{kinds['错退']}户，恢复其建档立卡贫困户身份，落实帮扶措施，达到脱贫标准后再履行退出程序。")
    if kinds.get("漏评"):
        out.append(f"对确认的漏评户{kinds['漏评']}户，按程序纳入建档立卡，落实精准帮扶。")
    if kinds.get("错评"):
        out.append(f"对确认的错评户{kinds['错评']}户，按程序予以清退，并追查识别环节责任。")
    short = [g for g in ctx.get("guarantees", []) if g.get("failed")]
    if short:
        worst = sorted(short, key=lambda g: -(g.get("share") or 0))[:3]
        out.append("两不愁三保障方面，" + "、".join(f"{g['label']}未达标{count(g['failed'])}户" for g in worst)
                   + "，建议逐户建立台账，限期解决。")
    suspected = sum(1 for c in ctx.get("cases", []) if not c.get("confirmed"))
    if suspected:
        out.append(f"疑似问题户{suspected}户由县级在规定期限内提供佐证材料，评估组复核后确定最终结论。")
    if not out:
        out.append("各项指标均达到标准，建议巩固脱贫成果，加强对边缘户和监测户的动态监测，防止返贫和产生新的贫困。")
    return out
