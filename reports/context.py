"""Assembling a province's report context from a workspace (the workspace part of the reports stage).

``load_shared(ws)`` reads everything once (scores, indicators by county and by province, the latest draw, the
store, the audit log, cases); ``build_province_context(ws, code, shared=shared)`` cuts out one province. A
province without enough data gets a context with ``status = "insufficient"`` and the reasons, never an
exception: its report says 数据不足.

The context is plain data (dicts, lists, str, float, int, bool, None): it crosses process boundaries and is
what ``reports.render.render_province`` consumes. Personal data (names, ID numbers, phones) are carried only
for the problem cases and are masked by the renderer (``masking.mask_record``) before any template sees them.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, is_dataclass

from sampling.geography import PROVINCES, province_name, region, resolve_province

STATUS_ZH = {1: "已脱贫", 2: "未脱贫", 3: "当年拟脱贫", 4: "监测户", 5: "一般户", 6: "边缘户"}
GUARANTEES = [("food_ok", "不愁吃"), ("clothing_ok", "不愁穿"), ("education_ok", "义务教育保障"),
              ("medical_ok", "基本医疗保障"), ("housing_ok", "住房安全保障"), ("water_ok", "饮水安全")]
SAT_LABELS = {"sat_policy": "政策认可", "sat_measures": "帮扶措施", "sat_results": "帮扶成效", "sat_exit": "脱贫退出",
              "sat_cadres": "驻村工作队和帮扶责任人"}
MEASURES = ["产业", "就业", "易地搬迁", "教育", "健康", "兜底", "生态", "金融", "光伏", "危房改造", "资产收益"]
CASE_KINDS = {"wrongly_exited": "错退", "missed": "漏评", "wrongly_included": "错评", "fell_back": "返贫"}
MAX_CASES = 200
METHOD_ZH = {"take_all": "全部入样", "srs": "简单随机抽样", "systematic": "等距抽样", "pps_systematic": "系统PPS抽样",
             "pps_brewer": "πps抽样（Brewer）", "pps_sampford": "πps抽样（Sampford）", "brewer": "πps抽样（Brewer）",
             "sampford": "πps抽样（Sampford）", "purposive": "立意抽样（不计入加权估计）", "pps": "PPS抽样"}
LABEL_ZH = {"all": "全部"}


def _f(v):
    """A plain float (None for missing/NaN)."""
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _plain(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, (bool, str)) or v is None:
            out[k] = v
        elif hasattr(v, "item"):
            out[k] = v.item()
        else:
            out[k] = v
    return out


def _try(reasons: list, what: str, fn, *args, **kw):
    """Call an upstream reader; a stage not run yet (a TpaError, a missing table) becomes a note, not a crash.
    Anything else is a bug and propagates."""
    import sqlite3

    from sampling.errors import TpaError

    try:
        return fn(*args, **kw)
    except (TpaError, sqlite3.OperationalError, FileNotFoundError) as exc:
        reasons.append(f"{what}：{getattr(exc, 'message', None) or exc}")
        return None


def load_shared(ws) -> dict:
    """Everything the province contexts need, read once from the workspace."""
    import pandas as pd

    from sampling import draw as draw_mod
    from survey import store

    notes: list[str] = []
    shared: dict = {"notes": notes}
    shared["draw"] = _try(notes, "尚无抽样记录", draw_mod.latest_draw, ws)
    shared["sample"] = _try(notes, "尚无抽样记录", draw_mod.sample_households, ws) if shared["draw"] else None
    shared["sample_villages"] = _try(notes, "尚无抽样记录", draw_mod.sample_villages, ws) if shared["draw"] else None
    from survey.score import read_scores

    shared["scores"] = _try(notes, "尚未评分", read_scores, ws)
    shared["households"] = _try(notes, "尚未导入问卷", store.read_households, ws)
    shared["imports"] = _try(notes, "无导入记录", store.read_imports, ws)
    shared["issues"] = _try(notes, "无校验记录", store.read_issues, ws)
    shared["import_provinces"] = _try(notes, "无导入记录", _import_provinces, ws)
    if shared["scores"] is not None and len(shared["scores"]):
        from survey.review import current_reviews, list_cases

        shared["reviews"] = _try(notes, "审核记录无法读取", current_reviews, ws)
        before = len(notes)
        inputs = _try(notes, "分县指标无法计算", _indicator_inputs, ws, shared)
        if inputs is None and len(notes) > before:       # both levels fail for the same reason
            notes.append(notes[-1].replace("分县指标无法计算", "全省指标无法计算", 1))
        county = _try(notes, "分县指标无法计算", _indicators, inputs, "county") if inputs else None
        prov = _try(notes, "全省指标无法计算", _indicators, inputs, "province") if inputs else None
        shared["ind_county"] = [_plain(asdict(i)) if is_dataclass(i) else dict(i) for i in county or []]
        shared["ind_province"] = [_plain(asdict(i)) if is_dataclass(i) else dict(i) for i in prov or []]
        shared["cases"] = _try(notes, "问题户清单无法读取", list_cases, ws)
    else:
        shared["ind_county"], shared["ind_province"], shared["cases"], shared["reviews"] = [], [], None, None
    shared["frame"] = _try(notes, "抽样框无法读取", _village_frame, ws, shared["draw"])
    if shared["frame"] is None:
        shared["frame"] = pd.DataFrame()
    # each table cut into provinces once, not filtered again for every province
    hh = shared["households"]
    shared["by_province"] = {
        "scores": _by_province(shared["scores"], "province_code"),
        "sample": _by_province(shared["sample"], "province_code"),
        "households": _by_province(hh, "province_code" if hh is not None and "province_code" in hh
                                   else "household_id"),
        "sample_villages": _by_province(shared["sample_villages"], "province_code"),
        "frame": _by_province(shared["frame"], "county_code"),
        "cases": _by_province(shared["cases"], "county_code"),
    }
    shared["top_problems"] = _top_problems(shared.get("issues"))
    return shared


def _by_province(df, col) -> dict:
    """``{two-digit province prefix: rows}`` (empty when the table or the column is missing)."""
    if df is None or len(df) == 0 or col not in df:
        return {}
    return {str(k): g for k, g in df.groupby(df[col].astype(str).str[:2], sort=False)}


def _indicator_inputs(ws, shared) -> dict:
    """The indicators' inputs, read once for both levels (county, province), reusing what is already loaded."""
    from survey.indicators import indicator_inputs

    return indicator_inputs(ws, scores=shared["scores"], sample=shared["sample"], reviews=shared.get("reviews"))


def _indicators(inputs, by):
    from survey.indicators import indicators_from_scores

    return indicators_from_scores(inputs["scores"], inputs["sample"], inputs["rules"], by=by,
                                  populations=inputs["populations"])


def _top_problems(issues) -> dict:
    """``{import_id: [{"rule", "count"}, ...]}``: the three most frequent problems of each imported file."""
    if issues is None or not len(issues):
        return {}
    label = issues["rule_zh"].where(issues["rule_zh"].notna() & (issues["rule_zh"] != ""), issues["rule"])
    out = {}
    for iid, g in label.groupby(issues["import_id"], sort=False):
        out[int(iid)] = [{"rule": str(k), "count": int(v)} for k, v in g.value_counts().head(3).items()]
    return out


def _village_frame(ws, draw):
    import pandas as pd

    from sampling.readers import read_table

    path = None
    if draw:
        info = (draw.get("frames") or {}).get("villages") or {}
        if info.get("path"):
            path = info["path"]
    if path is None:
        for ext in (".parquet", ".csv", ".xlsx"):
            p = ws.path / "frames" / f"villages{ext}"
            if p.is_file():
                path = p
                break
    if path is None:
        return pd.DataFrame()
    cols = ["village_code", "village_name", "county_code", "county_name", "poor_village", "remote"]
    df = read_table(path)
    return df[[c for c in cols if c in df.columns]].copy()


def _import_provinces(ws):
    """{import_id: set of province prefixes} of the accepted household rows of each import."""
    from survey import store

    keys = store.read_keys(ws, "households", history=True)
    out: dict = {}
    for imp, p in zip(keys["import_id"].tolist(), keys["household_id"].astype(str).str[:2].tolist()):
        out.setdefault(int(imp), set()).add(p)
    return out


def provinces_in(ws, shared: dict | None = None) -> list[str]:
    """The provinces of the assessment: the configuration's list, else those in the draw or the scores."""
    conf = [str(c) for c in (ws.config.get("assessment", {}).get("provinces") or [])]
    if conf:
        return sorted(resolve_province(c) for c in conf)
    shared = shared or {}
    found = set()
    for key in ("sample", "scores"):
        df = shared.get(key)
        if df is not None and len(df) and "province_code" in df:
            found |= {str(c)[:2] + "0000" for c in df["province_code"].astype(str).unique()}
    return sorted(c for c in found if c in PROVINCES) or sorted(found)


def _assessment(ws, scores_p) -> dict:
    cfg = ws.config
    a = cfg.get("assessment", {})
    line = other = None
    if scores_p is not None and len(scores_p):
        line = _f(scores_p["line"].median()) if "line" in scores_p else None
        other = _f(scores_p["line_other_series"].median()) if "line_other_series" in scores_p else None
    return {"name": a.get("name", ""), "year": a.get("year"), "regime": a.get("regime"),
            "evaluator": a.get("evaluator", ""), "date": _dt.date.today().isoformat(),
            "level": float(cfg.get("estimation", {}).get("level", 0.95)), "line": line,
            "line_series": cfg.get("poverty_line", {}).get("series"), "line_other": other}


def build_province_context(ws, province_code, *, shared: dict | None = None) -> dict:
    """The report context of one province (``status`` "ok" or "insufficient" with reasons)."""
    import pandas as pd

    code = resolve_province(province_code)
    shared = shared if shared is not None else load_shared(ws)
    p2 = code[:2]
    name = province_name(code)
    reasons: list[str] = []

    parts = shared.get("by_province") or {}

    def sel(key, col="province_code"):
        if key in parts:
            out = parts[key].get(p2)
        else:                   # a shared dict made by hand, without the partitions
            df = shared.get(key)
            if key == "households" and df is not None and "province_code" not in df:
                col = "household_id"
            if df is None or len(df) == 0 or col not in df:
                return None
            out = df[df[col].astype(str).str[:2] == p2]
        return out if out is not None and len(out) else None

    scores = sel("scores")
    sample = sel("sample")
    hh = sel("households")
    ind_p = [i for i in shared.get("ind_province") or [] if str(i.get("province_code"))[:2] == p2]
    ind_c = [i for i in shared.get("ind_county") or [] if str(i.get("county_code") or "")[:2] == p2]
    if sample is None:
        reasons.append("本省没有抽样记录（未抽样或不在本次抽样范围内）")
    if hh is None:
        reasons.append("尚未导入本省的住户问卷")
    if scores is None:
        reasons.append("本省尚无住户评分结果（请先运行评分）")
    if scores is not None and not ind_p:
        reasons.append("本省评估指标无法计算：" + "；".join(n for n in shared.get("notes", []) if "指标" in n)
                       if any("指标" in n for n in shared.get("notes", [])) else "本省评估指标无法计算")
    status = "ok" if (scores is not None and ind_p) else "insufficient"

    frame = shared.get("frame")
    county_names = {}
    village_names = {}
    if frame is not None and len(frame):
        if "frame" in parts:
            f = parts["frame"].get(p2, frame.iloc[0:0])
        else:
            f = frame[frame["county_code"].astype(str).str[:2] == p2] if "county_code" in frame else frame.iloc[0:0]
        if "county_name" in f:
            county_names = dict(zip(f["county_code"].astype(str), f["county_name"].astype(str)))
        if "village_name" in f:
            village_names = dict(zip(f["village_code"].astype(str), f["village_name"].astype(str)))
    for i in ind_c:
        county_names.setdefault(str(i["county_code"]), str(i["county_code"]))

    ctx = {
        "kind": "province", "status": status, "insufficient_reasons": reasons if status != "ok" else [],
        "province": {"code": code, "name": name, "short": PROVINCES.get(code, (name, name))[1],
                     "region": region(code)},
        "assessment": _assessment(ws, scores),
        "indicators": ind_p, "county_indicators": ind_c, "county_names": county_names,
        "design": _design(shared, scores),
        "fieldwork": _fieldwork(hh),
        "sample": _sample(shared, sample, scores, p2),
        "guarantees": _guarantees(scores),
        "income": _income(hh, scores),
        "satisfaction": _satisfaction(ws, hh),
        "measures": _measures(hh),
        "cases": _cases(shared, hh, p2, county_names, village_names),
        "data_quality": _quality(shared, p2),
        "texts": {"summary_text": ws.config.get("report", {}).get("summary_text", ""),
                  "recommendations": ws.config.get("report", {}).get("recommendations", "")},
    }
    if status != "ok":
        ctx["indicators"], ctx["county_indicators"] = [], []
    del pd
    return ctx


def _design(shared, scores) -> dict | None:
    d = shared.get("draw")
    if not d:
        return None
    design = d.get("design") or {}
    summary = d.get("summary") or {}
    strata = []
    level_zh = {"county": "县", "village": "村", "household": "户"}
    for level, st in (summary.get("stages") or {}).items():
        for r in st.get("strata", []):
            label = r.get("label") or r.get("stratum")
            method = r.get("method")
            strata.append({"level": level_zh.get(level, level), "label": LABEL_ZH.get(label, label),
                           "method": METHOD_ZH.get(method, method)})
    order = {"县": 0, "村": 1, "户": 2}
    strata.sort(key=lambda r: order.get(r["level"], 9))
    frames = d.get("frames") or {}
    rules_hash = None
    if scores is not None and "rules_hash" in scores and len(scores):
        rules_hash = str(scores["rules_hash"].iloc[0])
    return {"name": design.get("name") or summary.get("design"), "title": design.get("title") or summary.get("title"),
            "seed": d.get("seed"), "draw_id": d.get("draw_id"), "created": d.get("created"),
            "frame_hashes": {k: (v.get("sha256") or "")[:16] for k, v in frames.items() if isinstance(v, dict)},
            "software_version": d.get("software_version"), "rules_hash": rules_hash, "strata": strata}


def _fieldwork(hh) -> dict:
    import pandas as pd

    if hh is None or "interview_start" not in hh:
        return {"start": None, "end": None}
    t = pd.to_datetime(hh["interview_start"], errors="coerce")
    e = pd.to_datetime(hh.get("interview_end", hh["interview_start"]), errors="coerce")
    return {"start": None if t.isna().all() else t.min().date().isoformat(),
            "end": None if e.isna().all() else e.max().date().isoformat()}


def _sample(shared, sample, scores, p2) -> dict:
    import pandas as pd

    if sample is None:
        return {}
    s = sample[sample["role"] == "sample"] if "role" in sample else sample
    reserves = sample[sample["role"] == "reserve"] if "role" in sample else sample.iloc[0:0]
    interviewed_ids = set(scores["household_id"].astype(str)) if scores is not None else set()
    if "sample_villages" in (shared.get("by_province") or {}):
        sv = shared["by_province"]["sample_villages"].get(p2)
    else:
        sv = shared.get("sample_villages")
        sv = sv[sv["province_code"].astype(str).str[:2] == p2] if sv is not None and len(sv) else None
    labels = {}
    draw = shared.get("draw") or {}
    for st in ((draw.get("summary") or {}).get("stages") or {}).get("village", {}).get("strata", []):
        labels[st.get("stratum")] = st.get("label") or st.get("stratum")
    by_vt = []
    if sv is not None:
        s_villages = s["village_code"].astype(str)
        for stratum, g in sv.groupby("stratum", sort=True):
            vcodes = set(g["village_code"].astype(str))
            by_vt.append({"label": labels.get(stratum, stratum), "villages": int(len(g)),
                          "households": int(s_villages.isin(vcodes).sum())})
    by_status = []
    done_n, done_persons = {}, {}
    if scores is not None:
        sc_status = pd.to_numeric(scores["register_status"], errors="coerce")
        done_n = sc_status.value_counts().to_dict()
        done_persons = pd.to_numeric(scores["size"], errors="coerce").groupby(sc_status).sum().to_dict()
    for st, g in s.groupby(pd.to_numeric(s["register_status"], errors="coerce"), sort=True):
        st_int = int(st)
        by_status.append({"label": STATUS_ZH.get(st_int, str(st_int)), "sampled": int(len(g)),
                          "interviewed": int(done_n.get(st_int, 0)), "persons": int(done_persons.get(st_int, 0))})
    interviewed = len(interviewed_ids & set(sample["household_id"].astype(str)))
    reserves_used = len(interviewed_ids & set(reserves["household_id"].astype(str)))
    return {"counties": int(s["county_code"].nunique()), "villages": int(s["village_code"].nunique()),
            "by_village_type": by_vt, "by_status": by_status, "sampled": int(len(s)), "interviewed": int(interviewed),
            "response_rate": interviewed / len(s) if len(s) else None, "reserves_drawn": int(len(reserves)),
            "reserves_used": int(reserves_used)}


def _guarantees(scores) -> list:
    if scores is None:
        return []
    out = []
    for col, label in GUARANTEES:
        if col not in scores:
            continue
        v = scores[col]
        checked = int(v.notna().sum())
        failed = int((v.astype("boolean") == False).sum())  # noqa: E712
        out.append({"key": col, "label": label, "checked": checked, "failed": failed,
                    "share": failed / checked if checked else None})
    return out


def _income(hh, scores) -> dict:
    import numpy as np
    import pandas as pd

    if scores is None or "per_capita_income" not in scores:
        return {}
    pc = pd.to_numeric(scores["per_capita_income"], errors="coerce")
    n = int(pc.notna().sum())
    if not n:
        return {}
    comps = []
    if hh is not None:
        size = pd.to_numeric(hh.get("size", hh.get("declared_size")), errors="coerce") if (
            "size" in hh or "declared_size" in hh) else None
        if size is not None:
            size = size.where(size > 0)
            num = lambda c: pd.to_numeric(hh[c], errors="coerce").fillna(0) if c in hh else 0  # noqa: E731
            parts = [("工资性收入", num("wage_income")),
                     ("经营性净收入", num("business_income") - num("business_cost")),
                     ("财产性收入", num("property_income")), ("转移性收入", num("transfer_income"))]
            means = [(lab, float(np.nanmean(v / size)) if len(hh) else 0.0) for lab, v in parts]
            total = sum(m for _, m in means)
            comps = [{"label": lab, "mean": m, "share": m / total if total else None} for lab, m in means]
    line = pd.to_numeric(scores.get("line"), errors="coerce")
    other = pd.to_numeric(scores.get("line_other_series"), errors="coerce")
    known = pc.notna()
    lines = [{"label": "所用贫困线", "line": _f(line.median()), "below": int(((pc <= line) & known).sum()),
              "share": float(((pc <= line) & known).sum() / n)}]
    if other.notna().any():
        lines.append({"label": "另一口径贫困线", "line": _f(other.median()), "below": int(((pc <= other) & known).sum()),
                      "share": float(((pc <= other) & known).sum() / n)})
    if "near_line" in scores:
        near = scores["near_line"].astype(bool)
        lines.append({"label": "贫困线以上临界户", "line": None, "below": int(near.sum()), "share": float(near.sum() / n)})
    return {"n": n, "mean_pc": float(pc.mean()), "components": comps, "lines": lines}


def _satisfaction(ws, hh) -> dict:
    import pandas as pd

    if hh is None:
        return {}
    cfg = ws.config.get("satisfaction", {})
    items = [c for c in cfg.get("items", list(SAT_LABELS)) if c in hh]
    if not items:
        return {}
    top = int(cfg.get("top_box", 2))
    rows = []
    status = pd.to_numeric(hh["register_status"], errors="coerce")
    # 1.0 / 0.0 for an answer at or above the top box, NaN for no answer: the mean by status is the rate
    hits = pd.DataFrame({c: pd.to_numeric(hh[c], errors="coerce") for c in items})
    hits = (hits <= top).astype(float).where(hits.notna())
    means = hits.groupby(status).mean()
    sizes = status.value_counts()
    for st in sorted(status.dropna().unique()):
        rates = [None if math.isnan(x) else float(x) for x in means.loc[st, items]]
        rows.append({"label": STATUS_ZH.get(int(st), str(st)), "n": int(sizes[st]), "rates": rates})
    return {"items": [{"key": c, "label": SAT_LABELS.get(c, c)} for c in items], "rows": rows}


def _measures(hh) -> list:
    import pandas as pd

    if hh is None or "measures" not in hh:
        return []
    status = pd.to_numeric(hh["register_status"], errors="coerce")
    reg = hh[status.isin([1, 2, 3, 4])]
    if not len(reg):
        return []
    counts: dict = {}
    for text in reg["measures"].fillna("").astype(str):
        for m in set(text.split()):
            counts[m] = counts.get(m, 0) + 1
    out = []
    for m in MEASURES:
        n = int(counts.get(m, 0))
        out.append({"label": m, "households": n, "share": n / len(reg)})
    return out


def _reason_texts(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return [str(value)]
    return [str(r.get("message_zh") or r.get("test")) if isinstance(r, dict) else str(r) for r in items or []]


def _cases(shared, hh, p2, county_names, village_names) -> list:
    cases = shared.get("cases")
    if cases is None or not len(cases):
        return []
    if "cases" in (shared.get("by_province") or {}):
        c = shared["by_province"]["cases"].get(p2, cases.iloc[0:0])
        c = c[c["status"] != "overturned"]
    else:
        c = cases[(cases["county_code"].astype(str).str[:2] == p2) & (cases["status"] != "overturned")]
    if not len(c):
        return []
    c = c.assign(_o=(c["status"] != "confirmed")).sort_values(["_o", "kind", "household_id"], kind="stable")
    c = c.head(MAX_CASES)
    info = {}
    if hh is not None:
        cols = [x for x in ("head_name", "head_id_number", "phone") if x in hh]
        if cols:
            ids = hh["household_id"].astype(str)
            listed = ids.isin(set(c["household_id"].astype(str)))
            h = hh.loc[listed.to_numpy(), cols].set_index(ids[listed.to_numpy()])
            info = h[~h.index.duplicated(keep="last")].to_dict("index")
    reviews = shared.get("reviews")
    comments = {}
    if reviews is not None and len(reviews) and "comment" in reviews:
        comments = dict(zip(reviews["household_id"].astype(str), reviews["comment"]))
    out = []
    for r in c.itertuples(index=False):
        hid = str(r.household_id)
        extra = info.get(hid, {})
        comment = comments.get(hid)
        out.append({"kind": CASE_KINDS.get(r.kind, str(r.kind_zh)), "confirmed": r.status == "confirmed",
                    "county_code": str(r.county_code), "county": county_names.get(str(r.county_code), str(r.county_code)),
                    "village": village_names.get(str(r.village_code), str(r.village_code)), "household_id": hid,
                    "head_name": extra.get("head_name"), "head_id_number": extra.get("head_id_number"),
                    "phone": extra.get("phone"),
                    "register_status": STATUS_ZH.get(int(r.register_status), "") if r.register_status == r.register_status else "",
                    "size": _f(r.persons), "reasons": _reason_texts(r.reasons),
                    "review": r.review if isinstance(r.review, str) else None,
                    "comment": comment if isinstance(comment, str) else ""})
    return out


def _quality(shared, p2) -> list:
    imports = shared.get("imports")
    if imports is None or not len(imports):
        return []
    provs = shared.get("import_provinces") or {}
    issues = shared.get("issues")
    out = []
    for r in imports.itertuples(index=False):
        iid = int(r.import_id)
        if p2 not in provs.get(iid, set()):
            continue
        if "top_problems" not in shared:
            shared["top_problems"] = _top_problems(issues)
        top = [dict(p) for p in shared["top_problems"].get(iid, [])]
        out.append({"file": str(r.file), "instrument": r.instrument, "rows_in": _f(r.rows_in), "accepted": _f(r.accepted),
                    "quarantined": _f(r.quarantined), "errors": _f(r.errors), "warnings": _f(r.warnings),
                    "top_problems": top})
    return out
