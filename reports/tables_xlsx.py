"""The indicator tables as one XLSX workbook (for leadership staff who work in Excel).

Sheets: 省级指标, 县级指标, 样本构成, 两不愁三保障, 收入, 认可度, 帮扶措施, 问题户 (masked), 数据质量, and 等次
when the confidential band is asked for. Proportions are stored as numbers with a percent format; the column
显示值 carries the exact text printed in the PDF (half-up rounding), so nobody has to trust Excel's rounding.
"""
from __future__ import annotations

from pathlib import Path

from .formatting import official_display, threshold_text, verdict_text
from .masking import mask_record, scrub_text

IND_COLS = [("省份", "province"), ("县代码", "county_code"), ("县", "county"), ("指标", "name_zh"),
            ("口径", "unit_zh"), ("样本分子", "numerator"), ("样本分母", "denominator"), ("样本比率", "official"),
            ("显示值", "display"), ("加权估计", "estimate"), ("标准误", "se"), ("置信下限", "ci_low"),
            ("置信上限", "ci_high"), ("自由度", "df"), ("设计效应", "deff"), ("标准", "threshold_text"),
            ("结论", "verdict"), ("距标准（标准误倍数）", "distance_se"), ("零计数置信上限", "zero_upper"),
            ("疑似数", "suspected")]
PCT_KEYS = {"official", "estimate", "se", "ci_low", "ci_high", "zero_upper", "share", "response_rate"}


def _ind_row(ctx, ind, level):
    d = dict(ind)
    d["province"] = ctx["province"]["name"]
    d["county"] = (ctx.get("county_names") or {}).get(ind.get("county_code"), ind.get("county_code") or "")
    d["unit_zh"] = {"persons": "人", "households": "户"}.get(ind.get("unit"), ind.get("unit"))
    d["display"] = official_display(ind, level)
    d["threshold_text"] = threshold_text(ind.get("direction"), ind.get("threshold"))
    d["verdict"] = verdict_text(ind.get("passed"))
    return d


def write_indicator_tables(contexts: list[dict], path, *, national: dict | None = None) -> Path:
    """Write every indicator table of the given province contexts to one workbook."""
    import xlsxwriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.xlsx")
    wb = xlsxwriter.Workbook(str(tmp), {"nan_inf_to_errors": True})
    head = wb.add_format({"bold": True, "bg_color": "#E8EEF5", "border": 1, "text_wrap": True})
    pctf = wb.add_format({"num_format": "0.00%"})
    numf = wb.add_format({"num_format": "#,##0.##"})

    def sheet(name, columns, rows):
        ws = wb.add_worksheet(name)
        for j, (title, _) in enumerate(columns):
            ws.write(0, j, title, head)
            ws.set_column(j, j, max(10, len(title) * 2 + 2))
        for i, r in enumerate(rows, start=1):
            for j, (_, key) in enumerate(columns):
                v = r.get(key)
                if v is None:
                    continue
                if isinstance(v, bool):
                    ws.write_string(i, j, "是" if v else "否")
                elif isinstance(v, (int, float)):
                    ws.write_number(i, j, float(v), pctf if key in PCT_KEYS else numf)
                else:
                    ws.write_string(i, j, str(v))
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)

    prov_rows, county_rows, sample_rows, g_rows, inc_rows, sat_rows, m_rows, case_rows, q_rows = ([] for _ in range(9))
    for ctx in contexts:
        level = ctx.get("assessment", {}).get("level", 0.95)
        pname = ctx["province"]["name"]
        prov_rows += [_ind_row(ctx, i, level) for i in ctx.get("indicators") or []]
        county_rows += [_ind_row(ctx, i, level) for i in ctx.get("county_indicators") or []]
        s = ctx.get("sample") or {}
        for r in s.get("by_status") or []:
            sample_rows.append(dict(r, province=pname))
        for r in ctx.get("guarantees") or []:
            g_rows.append(dict(r, province=pname))
        inc = ctx.get("income") or {}
        for r in inc.get("components") or []:
            inc_rows.append({"province": pname, "label": r["label"], "value": r.get("mean"), "share": r.get("share")})
        for r in inc.get("lines") or []:
            inc_rows.append({"province": pname, "label": r["label"], "value": r.get("line"), "count": r.get("below"),
                             "share": r.get("share")})
        sat = ctx.get("satisfaction") or {}
        for r in sat.get("rows") or []:
            for it, rate in zip(sat.get("items") or [], r.get("rates") or []):
                sat_rows.append({"province": pname, "type": r["label"], "n": r["n"], "item": it["label"], "share": rate})
        for r in ctx.get("measures") or []:
            m_rows.append(dict(r, province=pname))
        for c in ctx.get("cases") or []:
            m = mask_record(c)
            case_rows.append({"province": pname, "county": m.get("county"), "village": m.get("village"),
                              "kind": m.get("kind"), "status": "确认" if m.get("confirmed") else "疑似",
                              "head_name": m.get("head_name"), "head_id_number": m.get("head_id_number"),
                              "phone": m.get("phone"), "reasons": "；".join(m.get("reasons") or []),
                              "review": m.get("review")})
        for f in ctx.get("data_quality") or []:
            q_rows.append({"province": pname, **{k: f.get(k) for k in ("rows_in", "accepted", "quarantined",
                                                                          "errors", "warnings")},
                           "file": scrub_text(f.get("file", "")),
                           "top": scrub_text("；".join(f"{p['rule']}（{p['count']}）" for p in f.get("top_problems") or []))})
    sheet("省级指标", [c for c in IND_COLS if c[1] not in ("county_code", "county")], prov_rows)
    sheet("县级指标", IND_COLS, county_rows)
    sheet("样本构成", [("省份", "province"), ("户类型", "label"), ("抽取户数", "sampled"), ("完成户数", "interviewed"),
                   ("涉及人数", "persons")], sample_rows)
    sheet("两不愁三保障", [("省份", "province"), ("项目", "label"), ("核查户数", "checked"), ("未达标户数", "failed"),
                     ("未达标比例", "share")], g_rows)
    sheet("收入", [("省份", "province"), ("项目", "label"), ("元", "value"), ("户数", "count"), ("占比", "share")], inc_rows)
    sheet("认可度", [("省份", "province"), ("户类型", "type"), ("户数", "n"), ("项目", "item"), ("认可比例", "share")],
          sat_rows)
    sheet("帮扶措施", [("省份", "province"), ("措施", "label"), ("享受户数", "households"), ("占比", "share")], m_rows)
    sheet("问题户", [("省份", "province"), ("县", "county"), ("村", "village"), ("类型", "kind"), ("状态", "status"),
                  ("户主", "head_name"), ("身份证号", "head_id_number"), ("联系电话", "phone"), ("原因", "reasons"),
                  ("审核", "review")], case_rows)
    sheet("数据质量", [("省份", "province"), ("文件", "file"), ("读入行数", "rows_in"), ("接受", "accepted"),
                   ("隔离", "quarantined"), ("错误", "errors"), ("警告", "warnings"), ("主要问题", "top")], q_rows)
    if national and national.get("band"):
        sheet("等次（内部）", [("省份", "name"), ("全省未达标指标数", "province_fails"), ("评估县", "counties"),
                          ("未达标县", "counties_fail"), ("等次", "band")], national.get("provinces") or [])
    wb.close()
    tmp.replace(path)
    return path
