"""The whole assessment in one call: the real pipeline on a synthetic population, no shortcuts.

generate the population → write its frames → check them → draw with a shipped preset → simulate the field
files (mixed formats, with mistakes) → import them through the same readers (validation reports written) →
score → indicators → one PDF per province, the national summary and the XLSX tables.

At the end the indicators are set beside the synthetic population's true values, which only a simulation
knows: that is how a newcomer sees that the estimates land where they should.

This lives in ``reports`` because it is the one module allowed to use every stage (imports run one way).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sampling.geography import PROVINCES, province_name, resolve_provinces

# The demo's scale: one exit-check county per province, a county of realistic size. Kept small enough that
# all 22 provinces run in about two minutes on two cores; every step is the same code the CLI runs.
DEMO_COUNTIES_PER_PROVINCE = 1
DEMO_VILLAGES_PER_COUNTY = 60
DEMO_TEAMS_PER_COUNTY = 1
DEMO_YEAR = 2019


@dataclass
class DemoResult:
    out_dir: Path
    workspace: Path
    steps: list[dict] = field(default_factory=list)       # {step, seconds, detail}
    comparison: pd.DataFrame | None = None                 # province × indicator: official, estimate, CI, truth
    outputs: dict = field(default_factory=dict)            # what went where

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "workspace": str(self.workspace), "steps": self.steps,
                "outputs": self.outputs,
                "comparison": [] if self.comparison is None else self.comparison.to_dict(orient="records")}


def _import_chunk(args) -> list[dict]:
    """One worker's share of the field files (the store takes concurrent imports; each file is atomic)."""
    from sampling.workspace import Workspace
    from survey.importer import import_files

    ws_path, paths = args
    ws = Workspace.open(ws_path)
    return [r.to_json() for r in import_files(ws, paths)]


def true_rates(households: pd.DataFrame, by: str = "province_code", config: dict | None = None) -> pd.DataFrame:
    """The population's true 错退率, 漏评率, 综合贫困发生率 and 认可度 per ``by`` (persons; 认可度 households).

    Truth flags come from the generator, which applies the scoring rule to the complete truth.
    """
    sat = (config or {}).get("satisfaction", {})
    top = int(sat.get("top_box", 2))
    items = [c for c in sat.get("items", ["sat_policy", "sat_measures", "sat_results", "sat_exit", "sat_cadres"])
             if c in households.columns]
    h = households
    size = h["size"].astype(float)
    status = h["register_status"].astype(int)
    exited = status == 1
    nonreg = status.isin([5, 6])
    remaining = status.isin([2, 3, 4])
    answered = pd.DataFrame({c: pd.to_numeric(h[c], errors="coerce") for c in items})
    ok = (answered <= top) | answered.isna()
    recognises = ok.all(axis=1) if items else pd.Series(True, index=h.index)
    df = pd.DataFrame({
        by: h[by].astype(str),
        "exited_p": size.where(exited, 0.0),
        "wrong_p": size.where(exited & (h["true_wrongly_exited"].astype(int) == 1), 0.0),
        "nonreg_p": size.where(nonreg, 0.0),
        "missed_p": size.where(nonreg & (h["true_missed"].astype(int) == 1), 0.0),
        "remaining_p": size.where(remaining, 0.0),
        "pop": size,
        "rec": recognises.astype(float),
        "hh": 1.0,
    })
    g = df.groupby(by).sum()
    out = pd.DataFrame({
        "wrongly_exited_rate": g["wrong_p"] / g["exited_p"].where(g["exited_p"] > 0),
        "missed_rate": g["missed_p"] / g["nonreg_p"].where(g["nonreg_p"] > 0),
        "incidence": (g["remaining_p"] + g["missed_p"] + g["wrong_p"]) / g["pop"],
        "recognition_rate": g["rec"] / g["hh"],
    })
    return out.reset_index()


def _comparison(indicators, truth: pd.DataFrame, level_col: str) -> pd.DataFrame:
    rows = []
    truth = truth.set_index(level_col)
    for ind in indicators:
        code = ind.province_code if level_col == "province_code" else ind.county_code
        if ind.key not in truth.columns:
            continue
        rows.append({
            "province": province_name(ind.province_code, short=True), "code": code, "indicator": ind.key,
            "name_zh": ind.name_zh, "official": ind.official, "estimate": ind.estimate, "ci_low": ind.ci_low,
            "ci_high": ind.ci_high, "truth": float(truth.at[code, ind.key]) if code in truth.index else None,
            "passed": ind.passed, "display": ind.display,
        })
    df = pd.DataFrame(rows)
    if len(df):
        df["covered"] = (df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"])
    return df


def format_comparison(df: pd.DataFrame) -> str:
    """A plain-text table: each province's indicators next to the population's true values (percent)."""
    if df is None or df.empty:
        return "(no indicators)"
    short = {"incidence": "综合贫困发生率", "wrongly_exited_rate": "错退率", "missed_rate": "漏评率",
             "recognition_rate": "认可度"}
    pct = lambda v: "—" if v is None or pd.isna(v) else f"{100 * v:6.2f}"  # noqa: E731
    lines = [f"{'省份':<6}{'指标':<10}{'官方比率%':>10}{'加权估计%':>10}{'95%置信区间%':>18}{'真值%':>8}  覆盖  判定"]
    for r in df.itertuples():
        ci = f"[{pct(r.ci_low).strip()}, {pct(r.ci_high).strip()}]"
        verdict = {True: "通过", False: "未通过"}.get(r.passed, "—")
        lines.append(f"{r.province:<6}{short.get(r.indicator, r.indicator):<10}{pct(r.official):>10}"
                     f"{pct(r.estimate):>10}{ci:>18}{pct(r.truth):>8}  {'是' if r.covered else '否'}    {verdict}")
    covered = df["covered"].mean() if "covered" in df else float("nan")
    lines.append(f"intervals covering the true value: {int(df['covered'].sum())} of {len(df)} ({100 * covered:.0f}%)")
    return "\n".join(lines)


def run_demo(out_dir, *, provinces=None, seed: int = 1, villages_per_county: int = DEMO_VILLAGES_PER_COUNTY,
             counties_per_province: int = DEMO_COUNTIES_PER_PROVINCE, workers: int | None = None,
             reports: bool = True, log=None) -> DemoResult:
    """Run the whole pipeline into ``out_dir`` and return what happened, with the truth comparison."""
    from sampling.design import load_design
    from sampling.draw import draw_sample
    from sampling.frames import check_frame
    from sampling.population import generate_population
    from sampling.workspace import init_workspace
    from survey.fieldwork import simulate_fieldwork
    from survey.indicators import compute_indicators
    from survey.score import score_workspace

    log = log or (lambda message: None)
    out = Path(out_dir)
    codes = resolve_provinces(provinces) if provinces else sorted(PROVINCES)
    workers = max(1, workers or os.cpu_count() or 1)
    result = DemoResult(out_dir=out, workspace=out / "workspace")

    def step(name, fn, detail=lambda r: ""):
        log(f"[{len(result.steps) + 1}/9] {name} …")
        t0 = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - t0
        text = detail(value)
        result.steps.append({"step": name, "seconds": round(seconds, 2), "detail": text})
        log(f"      {seconds:6.1f} s  {text}")
        return value

    fonts_job = _cut_fonts_in_background() if reports else None
    ws = step("workspace", lambda: init_workspace(result.workspace, year=DEMO_YEAR, regime="B", provinces=codes,
                                                  name="第三方评估演示（模拟数据）", force=True),
              lambda w: str(w.path))
    frames = ws.dir("frames")
    pop = step("population", lambda: generate_population(
        frames, codes, seed, counties_per_province=counties_per_province, villages_per_county=villages_per_county,
        formats=("parquet",), year=DEMO_YEAR),
        lambda s: f"{len(codes)} provinces, {s['villages']:,} villages, {s['households']:,} households, "
                  f"{s['persons']:,} persons")

    def check():
        reports_ = [check_frame(frames / "villages.parquet", kind="village"),
                    check_frame(frames / "households.parquet", kind="household")]
        for r in reports_:
            r.raise_if_errors()
        return reports_

    step("frame check", check, lambda rs: "villages and households: no errors")
    draw = step("draw", lambda: draw_sample(ws, load_design("exit_check"), seed),
                lambda d: f"draw {d['draw_id']} (preset exit_check, seed {seed})")
    field_dir = out / "field"
    fw = step("fieldwork", lambda: simulate_fieldwork(ws, field_dir, seed=seed,
                                                      teams_per_county=DEMO_TEAMS_PER_COUNTY, workers=workers),
              lambda s: f"{len(s.files)} files (SAV, XLSX, GBK CSV, ODK ZIP) with planted mistakes")

    def do_import():
        paths = sorted(fw.paths)
        # a team's household file and its separate members file must reach the same import call, so files
        # are shared among workers by team (the file-name prefix before the instrument)
        teams: dict[str, list[str]] = {}
        for p in paths:
            teams.setdefault("_".join(Path(p).name.split("_")[:2]), []).append(p)
        groups = list(teams.values())
        chunks = [[p for g in groups[i::workers] for p in g] for i in range(workers)]
        if workers == 1:
            return _import_chunk((str(ws.path), paths))
        with ProcessPoolExecutor(workers) as pool:
            return [r for part in pool.map(_import_chunk, [(str(ws.path), c) for c in chunks if c]) for r in part]

    imported = step("import", do_import, lambda rs: _import_detail(rs))
    scores = step("score", lambda: score_workspace(ws), lambda s: f"{len(s):,} households scored")
    inds = step("indicators", lambda: compute_indicators(ws, by="province"),
                lambda i: f"{len(i)} province indicators")
    outputs = {"workspace": str(ws.path), "frames": str(frames), "field_lists": str(ws.path / "samples"),
               "field_files": str(field_dir), "validation_reports": str(ws.path / "imports")}
    if reports:
        from .run import report_workspace

        if fonts_job is not None:
            fonts_job.wait()

        rep = step("reports", lambda: report_workspace(ws, all_provinces=True, national=True,
                                                       out_dir=out / "reports", workers=workers),
                   lambda r: f"{len(r['provinces'])} province PDFs, national summary, XLSX tables")
        outputs.update({"reports": rep["out_dir"], "national": (rep.get("national") or {}).get("path"),
                        "xlsx": rep.get("xlsx")})
    households = pd.read_parquet(frames / "households.parquet",
                                 columns=["province_code", "county_code", "size", "register_status",
                                          "true_wrongly_exited", "true_missed", "sat_policy", "sat_measures",
                                          "sat_results", "sat_exit", "sat_cadres"])
    truth = true_rates(households, "province_code", ws.config)
    result.comparison = _comparison(inds, truth, "province_code")
    result.outputs = outputs
    result.outputs["imported_files"] = len(imported)
    result.outputs["planted_mistakes"] = fw.mistake_counts()
    result.outputs["refusals_replaced"] = len(fw.reserves_used)
    del pop, draw, scores
    return result


def _cut_fonts_in_background():
    """On a machine whose font cache is empty, the report fonts are cut from the system's Noto CJK (~40 s of one
    core, once per machine): start that in another process while the first steps, which leave a core free, run.
    Its failures are not reported here: the reports step makes the fonts itself and says what is wrong."""
    import subprocess
    import sys

    from .fonts import subsets_cached

    if subsets_cached():
        return None
    return subprocess.Popen([sys.executable, "-c", "from reports.fonts import report_fonts; report_fonts()"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _import_detail(results: list[dict]) -> str:
    n = len(results)
    rows_in = sum(int(r.get("rows_in") or 0) for r in results)
    acc = sum(int(r.get("accepted") or 0) for r in results)
    quar = sum(int(r.get("quarantined") or 0) for r in results)
    dup = sum(int(r.get("duplicates_skipped") or 0) for r in results)
    rejected = sum(1 for r in results if r.get("status") == "rejected")
    text = f"{n} files: rows in {rows_in:,} = accepted {acc:,} + quarantined {quar:,} + duplicates {dup:,}"
    if rejected:
        text += f"; {rejected} file(s) rejected"
    return text


