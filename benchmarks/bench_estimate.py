"""Benchmark of `tpa estimate` against R `survey` and the Python `svy` package.

The job (NOTES.md "Peers on one job"): 1M households, 31 provinces as strata, 3,100 PSUs (villages), a mean of a
numeric variable and a proportion (logit interval) of a binary one, by province.

Cases:
* whole process from CSV: `tpa estimate data.csv --weight w --strata province --psu village --mean y --prop x
  --by province --json` against an Rscript that reads the CSV (data.table::fread if installed, else read.csv),
  builds the design and runs two `svyby` (svymean; svyciprop with vartype = "ci"), and against svy (polars CSV
  reader + Sample + two `by=` estimates) when svy is installed;
* estimation only (design + the two by-province estimates, the CSV read not counted, SECONDS= lines) against R.

Run: python benchmarks/bench_estimate.py [--quick]   (--quick: 100k rows, one repeat)
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import PY, Case, have_python_module, have_rscript, main_for  # noqa: E402

WORK = Path(os.environ.get("TPA_BENCH_DIR", Path(tempfile.gettempdir()) / "tpa_bench_estimate"))


def make_data(path: str, n: int, seed: int = 2020) -> None:
    """n households in 31 provinces (strata) × 100 villages (PSUs); y income, x a binary outcome."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_prov, per_prov = 31, 100
    village = rng.integers(0, n_prov * per_prov, n)
    province = 110000 + (village // per_prov) * 10000
    vill_effect = rng.normal(0, 1500, n_prov * per_prov)
    y = np.round(9000 + vill_effect[village] + rng.normal(0, 3000, n), 2)
    p = 1 / (1 + np.exp(-(-2.5 + vill_effect[village] / 1500)))
    x = (rng.random(n) < p).astype(int)
    w = np.round(rng.uniform(50, 150, n), 3)
    df = pd.DataFrame({"province": province, "village": village + 1, "w": w, "y": y, "x": x})
    tmp = path.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    tmp.rename(path)


R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(survey))
t0 <- Sys.time()
if (requireNamespace("data.table", quietly = TRUE)) {
  dat <- as.data.frame(data.table::fread(args[1]))
} else dat <- read.csv(args[1])
t1 <- Sys.time()
d <- svydesign(ids = ~village, strata = ~province, weights = ~w, data = dat)
m <- svyby(~y, ~province, d, svymean)
p <- svyby(~I(x == 1), ~province, d, svyciprop, vartype = "ci", method = "logit")
t2 <- Sys.time()
stopifnot(nrow(m) == 31, nrow(p) == 31)
if (length(args) > 1 && args[2] == "compute") cat(sprintf("SECONDS=%.6f\n", as.numeric(t2 - t1, units = "secs")))
"""

OURS_COMPUTE = r"""
import sys, time
sys.path.insert(0, {root!r})
from sampling.readers import read_table
from survey.design import Design
df = read_table({path!r}, columns=["province", "village", "w", "y", "x"])
t0 = time.perf_counter()
d = Design(df, weights="w", strata="province", ids="village")
m = d.mean("y", by="province")
p = d.prop("x", by="province", method="logit")
t1 = time.perf_counter()
assert len(m) == 31 and len(p) == 62
print(f"SECONDS={{t1 - t0:.6f}}")
"""

SVY_WHOLE = r"""
import polars as pl, svy
df = pl.read_csv({path!r})
s = svy.Sample(df, svy.Design(stratum="province", psu="village", wgt="w"))
m = s.estimation.mean("y", by="province")
p = s.estimation.prop("x", by="province", ci_method="logit")
"""


def cases(quick: bool) -> list[Case]:
    n = 100_000 if quick else 1_000_000
    size = f"{n // 1000}k households, 31 strata, 3,100 PSUs"
    data = WORK / f"households_{n}.csv"
    rfile = WORK / "bench_estimate.R"
    WORK.mkdir(parents=True, exist_ok=True)
    rfile.write_text(R_SCRIPT)
    setup = [PY, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                       f"from benchmarks.bench_estimate import make_data; make_data({str(data)!r}, {n})"]
    have_r = have_rscript("survey")
    ours_whole = [PY, "-m", "tpa.cli", "estimate", str(data), "--weight", "w", "--strata", "province",
                  "--psu", "village", "--mean", "y", "--prop", "x", "--by", "province", "--json"]
    out = [
        Case("estimate: mean + logit prop by province, whole process from CSV", size, ours_whole,
             peer="R survey (fread + svydesign + 2 svyby)" if have_r else None,
             peer_command=["Rscript", str(rfile), str(data)] if have_r else None, setup=setup, repeat=3,
             notes="wall time of each process, start-up and CSV read included"),
        Case("estimate: design + mean + logit prop by province (CSV read not timed)", size,
             [PY, "-c", OURS_COMPUTE.format(root=str(ROOT), path=str(data))],
             peer="R survey (svydesign + 2 svyby)" if have_r else None,
             peer_command=["Rscript", str(rfile), str(data), "compute"] if have_r else None, setup=setup,
             repeat=3, notes="SECONDS= of the estimation part only"),
    ]
    if have_python_module("svy"):
        out.append(Case("estimate: mean + logit prop by province, whole process from CSV", size, ours_whole,
                        peer="svy (polars read_csv + Sample + 2 by= estimates)",
                        peer_command=[PY, "-c", SVY_WHOLE.format(path=str(data))], setup=setup, repeat=3,
                        notes="wall time of each process"))
    return out


if __name__ == "__main__":
    main_for(cases)
