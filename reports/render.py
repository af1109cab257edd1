"""Rendering the leadership PDFs: context dict → masked, formatted view → HTML (Jinja, autoescaped) → PDF.

Pure part (no workspace): ``render_province(context, out_path)``, ``render_national(context, out_path)`` and
``render_many(jobs, workers)`` for several documents in worker processes.

How a run goes (``render_many``):

1. In the parent: each context becomes a *view* (personal data masked, verdict summary, generated texts) and
   is rendered once to HTML without charts. The characters of every document are checked against the CJK
   subset font (``fonts.check_coverage``: a character without a glyph fails loudly, naming it) and against
   leftover personal data (``masking.find_personal_data``: a full ID or phone number fails the document).
2. One font for the run is cut to exactly the characters of all documents (``fonts.run_fonts``) and
   embedded whole in each PDF: a few hundred glyphs, no per-document subsetting of the CJK font.
3. Worker processes (a ``RenderPool``, which ``reports.run`` starts before it reads the workspace) draw the
   charts (hand-written SVG), render the final HTML and write each PDF, longest documents first; each
   worker keeps one font configuration and parsed stylesheet for all its documents.
"""
from __future__ import annotations

import copy
import html as _html
import os
import re
import time
from pathlib import Path

from .errors import ReportError
from .formatting import (count, date_zh, interval_text, num, official_display, pct, threshold_text, verdict_text,
                         yuan)
from .masking import find_personal_data, mask_record, scrub_text
from .narrative import REGIME_NAMES, UNIT_ZH, paragraphs, recommendation_paragraphs, summary_paragraphs

INDICATOR_ORDER = ["incidence", "wrongly_exited_rate", "missed_rate", "recognition_rate", "identification_accuracy",
                   "exit_accuracy", "satisfaction", "registered_rate_gate"]
CASE_KINDS = ["错退", "漏评", "错评", "返贫", "漏退", "其他"]


# ---------------------------------------------------------------------------------------------- the view
def _order(inds):
    return sorted(inds, key=lambda i: (INDICATOR_ORDER.index(i["key"]) if i["key"] in INDICATOR_ORDER else 99))


def prepare_view(context: dict) -> dict:
    """A render-ready copy of a context: personal data masked, indicators ordered, texts generated."""
    view = copy.deepcopy(context)
    view.setdefault("assessment", {})
    view["assessment"].setdefault("level", 0.95)
    view["regime_name"] = REGIME_NAMES.get(view["assessment"].get("regime"), "第三方评估")
    if view.get("kind", "province") == "national":
        return _prepare_national(view)
    view.setdefault("status", "ok")
    view["indicators"] = _order(view.get("indicators") or [])
    names = view.get("county_names") or {}
    cases = [mask_record(c) for c in view.get("cases") or []]
    cases.sort(key=lambda c: (CASE_KINDS.index(c.get("kind")) if c.get("kind") in CASE_KINDS else 99,
                              not c.get("confirmed"), str(c.get("county", "")), str(c.get("household_id", ""))))
    view["cases"] = cases
    view["case_counts"] = [{"kind": k, "confirmed": sum(1 for c in cases if c.get("kind") == k and c.get("confirmed")),
                            "suspected": sum(1 for c in cases if c.get("kind") == k and not c.get("confirmed"))}
                           for k in CASE_KINDS if any(c.get("kind") == k for c in cases)]
    for f in view.get("data_quality") or []:
        f["file"] = scrub_text(f.get("file", ""))
        for p in f.get("top_problems") or []:
            p["rule"] = scrub_text(p.get("rule", ""))
    # counties: one row per county with its indicators by key, and one table per indicator
    keys = [i["key"] for i in view["indicators"]] or sorted(
        {i["key"] for i in view.get("county_indicators") or []}, key=lambda k: INDICATOR_ORDER.index(k)
        if k in INDICATOR_ORDER else 99)
    by_county: dict[str, dict] = {}
    for ind in view.get("county_indicators") or []:
        by_county.setdefault(ind["county_code"], {})[ind["key"]] = ind
    county_rows = []
    for code in sorted(by_county):
        inds = by_county[code]
        verdicts = [inds[k].get("passed") for k in keys if k in inds and inds[k].get("passed") is not None]
        county_rows.append({"code": code, "name": names.get(code, code), "inds": inds,
                            "all_pass": all(verdicts) if verdicts else None,
                            "failed": [inds[k]["name_zh"] for k in keys if k in inds and inds[k].get("passed") is False]})
    view["indicator_keys"] = keys
    view["indicator_names"] = {i["key"]: i["name_zh"] for i in (view["indicators"] or view.get("county_indicators") or [])}
    view["county_rows"] = county_rows
    view["county_tables"] = [{"key": k, "name_zh": view["indicator_names"].get(k, k),
                              "rows": [dict(r["inds"][k], county_name=r["name"]) for r in county_rows if k in r["inds"]]}
                             for k in keys]
    view["counties_pass"] = sum(1 for r in county_rows if r["all_pass"])
    view["counties_fail"] = sum(1 for r in county_rows if r["all_pass"] is False)
    texts = view.get("texts") or {}
    view["summary_paragraphs"] = paragraphs(texts.get("summary_text")) or summary_paragraphs(view)
    view["recommendation_paragraphs"] = paragraphs(texts.get("recommendations")) or recommendation_paragraphs(view)
    view["summary_generated"] = not paragraphs(texts.get("summary_text"))
    view["recommendations_generated"] = not paragraphs(texts.get("recommendations"))
    view["title"] = f"{view['province']['name']}{view['assessment'].get('year', '')}年{view['regime_name']}报告"
    return view


def _prepare_national(view: dict) -> dict:
    rows = view.get("provinces") or []
    for r in rows:
        r["indicators"] = _order(r.get("indicators") or [])
        r["by_key"] = {i["key"]: i for i in r["indicators"]}
    keys = []
    for r in rows:
        for i in r["indicators"]:
            if i["key"] not in keys:
                keys.append(i["key"])
    view["indicator_keys"] = sorted(keys, key=lambda k: INDICATOR_ORDER.index(k) if k in INDICATOR_ORDER else 99)
    view["indicator_names"] = {i["key"]: i["name_zh"] for r in rows for i in r["indicators"]}
    view["title"] = f"{view['assessment'].get('year', '')}年{view['regime_name']}全国汇总报告"
    return view


# ---------------------------------------------------------------------------------------------- HTML
def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape  # noqa: F401

    from templates import TEMPLATE_DIR

    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(["html", "xml"],
                      default_for_string=True, default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, num=num, count=count, interval=interval_text, threshold=threshold_text,
                       verdict=verdict_text, official=official_display, date_zh=date_zh, yuan=yuan,
                       unit_zh=lambda u: UNIT_ZH.get(u, u or ""))
    return env


_ENV = None


def env():
    global _ENV
    if _ENV is None:
        _ENV = _env()
    return _ENV


def render_html(view: dict, charts: dict | None = None) -> str:
    template = "national.html" if view.get("kind") == "national" else "province.html"
    return env().get_template(template).render(v=view, charts=charts or {}, generated=time.strftime("%Y-%m-%d"))


def stylesheet_text() -> str:
    from templates import TEMPLATE_DIR

    return (Path(TEMPLATE_DIR) / "report.css").read_text(encoding="utf-8")


_TAG = re.compile(r"<[^>]*>", re.S)
_STYLE = re.compile(r"<style.*?</style>", re.S)


def visible_text(html: str) -> str:
    """The text a reader sees: tags (and with them embedded chart data) removed, entities decoded."""
    return _html.unescape(_TAG.sub(" ", _STYLE.sub(" ", html)))


def check_document(html: str, fonts, where: str) -> None:
    """Fail loudly on characters without a glyph and on unmasked personal data."""
    from .fonts import check_coverage

    text = visible_text(html)
    check_coverage(text + stylesheet_text(), fonts, where=where)
    leaked = find_personal_data(text)
    if leaked:
        shown = ", ".join(x[:3] + "…" for x in leaked[:3])
        raise ReportError(f"{where} would print {len(leaked)} unmasked ID or phone number(s) ({shown})",
                          code="personal_data", fix="mask the field in reports.masking.mask_record (a bug)")


# ---------------------------------------------------------------------------------------------- charts
def _data_uri(svg: str | None) -> str | None:
    if not svg:
        return None
    import base64

    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def placeholder_charts(view: dict) -> dict:
    """The structure of ``make_charts`` with empty images: phase 1 renders every caption the final one has."""
    blank = "data:,"
    if view.get("kind") == "national":
        return {"combined": blank}
    return {"indicators": blank, "counties": blank, "shortfall": blank, "satisfaction": blank}


def make_charts(view: dict) -> dict:
    """The SVG charts of one document as data URIs (drawn in the worker process)."""
    from . import charts

    if view.get("kind") == "national":
        panels = []
        for k in view["indicator_keys"]:
            rows = []
            thr = direction = None
            for r in view.get("provinces") or []:
                i = r["by_key"].get(k) or {}
                rows.append({"label": r["short"], "official": i.get("official"), "ci_low": i.get("ci_low"),
                             "ci_high": i.get("ci_high"), "passed": i.get("passed")})
                thr = thr if thr is not None else i.get("threshold")
                direction = direction or i.get("direction")
            if k in ("incidence",):
                thr = None       # province thresholds differ (2% / 3%): the colours carry the verdict
            panels.append({"name_zh": view["indicator_names"].get(k, k), "threshold": thr,
                           "direction": direction or "<=", "rows": rows})
        svg = charts.compare_chart(panels, "省")
        return {"combined": _data_uri(svg), "_texts": charts.svg_texts(svg)}
    if view.get("status") != "ok":
        return {}
    svgs = {"indicators": charts.indicator_chart(view["indicators"])}
    panels = []
    for t in view["county_tables"]:
        first = t["rows"][0] if t["rows"] else {}
        rows = [{"label": r["county_name"], "official": r.get("official"), "ci_low": r.get("ci_low"),
                 "ci_high": r.get("ci_high"), "passed": r.get("passed")} for r in t["rows"]]
        thr = first.get("threshold")
        if len({r.get("threshold") for r in t["rows"]}) > 1:
            thr = None           # counties treated as western have another threshold
        panels.append({"name_zh": t["name_zh"], "threshold": thr, "direction": first.get("direction", "<="),
                       "rows": rows})
    # panels list the same counties in the same order
    names = [r["name"] for r in view["county_rows"]]
    for p, t in zip(panels, view["county_tables"]):
        by = {r["label"]: r for r in p["rows"]}
        p["rows"] = [by.get(nm, {"label": nm, "official": None}) for nm in names]
    svgs["counties"] = charts.compare_chart(panels)
    svgs["shortfall"] = charts.shortfall_chart(view.get("guarantees") or [])
    sat = view.get("satisfaction") or {}
    svgs["satisfaction"] = charts.satisfaction_chart(sat.get("items") or [], sat.get("rows") or [])
    out = {k: _data_uri(v) for k, v in svgs.items()}
    out["_texts"] = "".join(charts.svg_texts(v) for v in svgs.values() if v)
    return out


# ---------------------------------------------------------------------------------------------- PDF
_STYLES: dict = {}


def _styles(fonts):
    """The font configuration and parsed stylesheet of a run font, made once per process: a worker renders
    many documents, and a fresh FontConfiguration loads the faces into fontconfig and Pango again and
    empties their caches (about 0.3 s per document)."""
    import weasyprint
    from weasyprint.text.fonts import FontConfiguration

    from .fonts import font_face_css

    sheet = stylesheet_text()
    key = (str(fonts.regular), str(fonts.bold), sheet)
    if key not in _STYLES:
        _STYLES.clear()                       # another run's font: let the old configuration go
        fc = FontConfiguration()
        _STYLES[key] = (fc, weasyprint.CSS(string=font_face_css(fonts) + sheet, font_config=fc))
    return _STYLES[key]


def _write_pdf(html: str, out_path: Path, fonts, title: str) -> dict:
    import weasyprint

    from templates import TEMPLATE_DIR

    fc, css = _styles(fonts)
    t0 = time.perf_counter()
    doc = weasyprint.HTML(string=html, base_url=str(TEMPLATE_DIR)).render(stylesheets=[css], font_config=fc)
    t1 = time.perf_counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + f".tmp{os.getpid()}")
    doc.metadata.title = title
    doc.metadata.authors = ["tpa"]
    # the run font holds only the characters of this run: embedded whole, no per-document subsetting
    doc.write_pdf(str(tmp), full_fonts=True)
    os.replace(tmp, out_path)
    t2 = time.perf_counter()
    return {"path": str(out_path), "pages": len(doc.pages), "layout_seconds": t1 - t0, "write_seconds": t2 - t1}


def _render_one(view: dict, out_path, fonts) -> dict:
    import resource

    t0 = time.perf_counter()
    c0 = time.process_time()
    charts = make_charts(view)
    t1 = time.perf_counter()
    html = render_html(view, charts)
    where = f"the report {view['title']}"
    check_document(html, fonts, where)
    if charts.get("_texts"):
        from .fonts import check_coverage

        check_coverage(charts["_texts"], fonts, where=where + " (charts)")
    res = _write_pdf(html, Path(out_path), fonts, view["title"])
    res.update(chart_seconds=t1 - t0, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
               title=view["title"], status=view.get("status", "ok"), kind=view.get("kind", "province"),
               pid=os.getpid(), peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return res


def _base_checks(views: list[dict], sizes: list | None = None):
    """Phase 1 in the parent: HTML without charts for each view, checked against the base font; returns the
    run font covering every document. ``sizes``, when given, receives each document's HTML length (its
    rendering cost, roughly)."""
    from . import charts
    from .fonts import report_fonts, run_fonts

    base = report_fonts()
    texts = []
    for view in views:
        html = render_html(view, placeholder_charts(view))
        check_document(html, base, f"the report {view['title']}")
        texts.append(visible_text(html))
        if sizes is not None:
            sizes.append(len(html))
    texts.append(charts.chart_texts({}))
    return run_fonts("".join(texts) + stylesheet_text(), base)


def render_province(context: dict, out_path, *, fonts=None) -> dict:
    """Render one province report (or its 数据不足 version) to ``out_path``; returns path, pages, timings."""
    view = prepare_view(context)
    fonts = fonts or _base_checks([view])
    return _render_one(view, out_path, fonts)


def render_national(context: dict, out_path, *, fonts=None) -> dict:
    """Render the national summary (context from ``reports.national.national_context``)."""
    view = prepare_view(dict(context, kind="national"))
    fonts = fonts or _base_checks([view])
    return _render_one(view, out_path, fonts)


def _worker(args):
    view, out_path, fonts = args
    return _render_one(view, out_path, fonts)


def _ready():
    return os.getpid()


# modules the worker processes need, imported once in the forkserver that forks them
PRELOAD = ["reports.render", "reports.charts", "weasyprint"]


class RenderPool:
    """The worker processes that write the PDFs.

    Made before the workspace is read (``with RenderPool(2) as pool: ...``) so that starting the workers
    (a forkserver importing WeasyPrint, then a fork per worker) happens while the parent reads data and
    builds the contexts, not after. With one worker, documents are rendered in the calling process.
    """

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or (os.cpu_count() or 1))
        self.executor = None
        if self.workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # forkserver: workers fork from a clean server process (the parent may hold Arrow/SQLite threads,
            # which make a plain fork unsafe); the server imports WeasyPrint once, so workers start fast
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
            if "forkserver" in methods:
                ctx.set_forkserver_preload(PRELOAD)
            self.executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
            # the executor starts a process per submitted task up to max_workers: start them all now, from a
            # thread, because the first start waits for the forkserver to import its modules (about 1 s)
            import threading

            self._starting = threading.Thread(target=self._start, daemon=True)
            self._starting.start()

    def _start(self):
        for _ in range(self.workers):
            self.executor.submit(_ready)

    def close(self):
        if self.executor is not None:
            self._starting.join()
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def render_many(jobs: list[tuple[dict, str | Path]], *, workers: int | None = None, on_done=None,
                pool: RenderPool | None = None, meanwhile=None) -> list[dict]:
    """Render several documents (province or national contexts with their output paths) in worker processes.

    ``on_done(result)`` is called in the parent as each document is finished (for progress). Results come back
    in the order of ``jobs``. A failing document raises its ReportError after the others have finished.
    ``pool``: a started RenderPool to use (else one is made for the call, with ``workers`` processes).
    ``meanwhile()`` is called in the parent once every document is handed to the workers, for other work
    (the XLSX tables) that then overlaps the rendering.
    """
    views = [prepare_view(ctx) for ctx, _ in jobs]
    sizes: list[int] = []
    fonts = _base_checks(views, sizes)
    own = pool is None
    if own:
        pool = RenderPool(max(1, min(workers or (os.cpu_count() or 1), len(jobs))))
    try:
        return _render_all(pool, views, [out for _, out in jobs], fonts, sizes, on_done, meanwhile)
    finally:
        if own:
            pool.close()


def _render_all(pool, views, outs, fonts, sizes, on_done, meanwhile):
    from concurrent.futures import as_completed

    results: list[dict | None] = [None] * len(views)
    if pool.executor is None:
        if meanwhile:
            meanwhile()
        for k, (view, out) in enumerate(zip(views, outs)):
            results[k] = _render_one(view, out, fonts)
            if on_done:
                on_done(results[k])
        return results
    # longest documents first, so that no worker is left alone with a long one at the end
    order = sorted(range(len(views)), key=lambda k: -sizes[k])
    futures = {pool.executor.submit(_worker, (views[k], outs[k], fonts)): k for k in order}
    if meanwhile:
        meanwhile()
    errors = []
    for fut in as_completed(futures):
        k = futures[fut]
        try:
            results[k] = fut.result()
        except ReportError as exc:
            errors.append(exc)
            continue
        if on_done:
            on_done(results[k])
    if errors:
        raise errors[0]
    return results
