"""One call for the CLI: the province reports (and the national summary) of a workspace."""
from __future__ import annotations

import os
from pathlib import Path

from sampling.geography import resolve_province


def report_workspace(ws, provinces=(), *, all_provinces: bool = False, national: bool = False, out_dir=None,
                     workers: int | None = None, band: bool | None = None, on_done=None) -> dict:
    """Render the reports of ``provinces`` (codes or names) or of every province of the assessment.

    Returns ``{"provinces": [result...], "national": result | None, "xlsx": path | None, "out_dir": path}``
    where each result holds the PDF path, page count, timings and status ("ok" / "insufficient").
    """
    from .context import build_province_context, load_shared, provinces_in
    from .errors import ReportError
    from .render import RenderPool, render_many

    out = Path(out_dir) if out_dir else ws.dir("reports")
    listed = sorted({resolve_province(p) for p in provinces}) if provinces else []
    workers = workers or (os.cpu_count() or 1)
    if listed and not all_provinces:
        workers = min(workers, len(listed) + bool(national))
    # the worker processes start while the workspace is read
    with RenderPool(workers) as pool:
        shared = load_shared(ws)
        codes = provinces_in(ws, shared) if (all_provinces or (national and not listed)) else listed
        if not codes:
            raise ReportError("no province to report on: the workspace has no draw and no scores, and the "
                              "configuration names no provinces", code="no_provinces",
                              fix="give --province NAME, or set assessment.provinces, or draw and score first")
        year = ws.config.get("assessment", {}).get("year", "")
        contexts = [build_province_context(ws, c, shared=shared) for c in codes]
        del shared
        jobs = [(ctx, out / f"{ctx['province']['code']}_{ctx['province']['name']}_{year}评估报告.pdf")
                for ctx in contexts]
        nctx = None
        xlsx = []
        if national:
            from .national import national_context

            use_band = bool(ws.config.get("report", {}).get("confidential_band", False)) if band is None else band
            nctx = national_context(contexts, band=use_band)
            jobs.append((nctx, out / f"全国汇总_{year}评估报告.pdf"))

        def tables():
            # written while the workers render the PDFs
            if national:
                from .tables_xlsx import write_indicator_tables

                xlsx.append(write_indicator_tables(contexts, out / f"全国_{year}评估指标表.xlsx", national=nctx))

        results = render_many(jobs, pool=pool, on_done=on_done, meanwhile=tables)
    nat = None
    if national:
        nat = results[-1]
        results = results[:-1]
    return {"provinces": results, "national": nat, "xlsx": str(xlsx[0]) if xlsx else None, "out_dir": str(out)}
