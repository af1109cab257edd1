"""The national summary: provinces compared in one table and one chart, an optional confidential band.

``national_context(province_contexts, band=False)`` is pure. The band (好 / 较好 / 一般 / 较差) is internal
(SPEC §2: only 好, 一般, 较差 are confirmed nationally; the rule below is the shipped default and is printed
with the table so that the reader knows how it was made):

* 好: every province-level indicator passes and every county passes;
* 较好: every province-level indicator passes, some county fails;
* 一般: one province-level indicator fails, or more than a quarter of the counties fail;
* 较差: two or more province-level indicators fail, or more than half of the counties fail.
"""
from __future__ import annotations

BAND_RULE = ("好：全省各项指标均达标且各县均达标；较好：全省各项指标均达标，但有县未达标；"
             "一般：全省有1项指标未达标，或超过四分之一的县未达标；较差：全省有2项及以上指标未达标，或超过半数的县未达标。"
             "数据不足的省份不评等次。")


def band_of(province_fails: int, counties: int, counties_fail: int) -> str:
    share = counties_fail / counties if counties else 0.0
    if province_fails >= 2 or share > 0.5:
        return "较差"
    if province_fails == 1 or share > 0.25:
        return "一般"
    if counties_fail:
        return "较好"
    return "好"


def national_context(province_contexts: list[dict], *, band: bool = False, assessment: dict | None = None) -> dict:
    rows = []
    for ctx in province_contexts:
        inds = ctx.get("indicators") or []
        by_county: dict[str, list] = {}
        for i in ctx.get("county_indicators") or []:
            by_county.setdefault(i["county_code"], []).append(i.get("passed"))
        counties = len(by_county)
        counties_fail = sum(1 for v in by_county.values() if any(p is False for p in v))
        fails = sum(1 for i in inds if i.get("passed") is False)
        ok = ctx.get("status", "ok") == "ok"
        rows.append({"code": ctx["province"]["code"], "name": ctx["province"]["name"],
                     "short": ctx["province"].get("short") or ctx["province"]["name"], "status": ctx.get("status", "ok"),
                     "indicators": inds, "counties": counties, "counties_fail": counties_fail,
                     "province_fails": fails, "band": band_of(fails, counties, counties_fail) if (band and ok) else None})
    a = dict(assessment or (province_contexts[0]["assessment"] if province_contexts else {}))
    return {"kind": "national", "assessment": a, "provinces": rows, "band": bool(band), "band_rule": BAND_RULE}
