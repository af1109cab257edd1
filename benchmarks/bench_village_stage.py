"""Village stage of a national draw: systematic PPS of 25 villages in each of 832 counties (~500k villages).

Ours: ``sampling.select.select_pps_grouped`` (inclusion probabilities + the draw, vectorised over counties).
Peer: R ``sampling`` — ``inclusionprobabilities`` + ``UPsystematic`` looped over the counties (``split``), as
in NOTES.md. The same for Brewer (``UPbrewer``) and Sampford (``UPsampford``), which the target does not
cover but a design may choose. Both build a synthetic frame with a fixed seed (same design, not the same numbers:
the two random generators differ) and time only the selection (``SECONDS=``): grouping the frame by county,
the inclusion probabilities and the draw. Library loading is not timed on either side. R gets its best case:
the county factor exists before timing (``split`` on raw numeric codes adds ~0.5 s), whereas ours starts
from the raw county codes and factorises them inside the timed call.

    python3 benchmarks/bench_village_stage.py [--quick]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import PY, Case, have_rscript, main_for  # noqa: E402

OURS = r"""
import sys, time
import numpy as np
import pandas  # noqa: F401  (imported before timing, as R's library() is)
from sampling.select import select_pps_grouped

G, N, n, order, method = {G}, {N}, 25, "{order}", "{method}"
rng = np.random.default_rng(2016)
counts = rng.integers(300, 901, G)
counts = np.floor(counts * N / counts.sum()).astype(int)
county = np.repeat(np.arange(G) + 520101, counts)           # frame sorted by county, as a village list is
size = np.round(rng.lognormal(5.5, 0.6, county.size)) + 1   # households per village
if order == "shuffled":
    perm = rng.permutation(county.size)
    county, size = county[perm], size[perm]
t0 = time.perf_counter()
positions, pi = select_pps_grouped(county, size, n, method=method, seed=1)
seconds = time.perf_counter() - t0
assert positions.size == G * n, positions.size
print(f"villages={{county.size}} selected={{positions.size}}")
print(f"SECONDS={{seconds:.6f}}")
"""

PEER = r"""
suppressMessages(library(sampling))
set.seed(2016)
G <- {G}; N <- {N}; n <- 25; order <- "{order}"; draw <- {rfun}
counts <- sample(300:900, G, replace = TRUE)
counts <- floor(counts * N / sum(counts))
county <- rep(seq_len(G) + 520100, counts)
size <- round(rlnorm(length(county), 5.5, 0.6)) + 1
if (order == "shuffled") {{ perm <- sample.int(length(county)); county <- county[perm]; size <- size[perm] }}
# R's best case: the county factor is built before timing (split() on the raw numeric codes would convert
# them to a factor inside the timed part and cost ~0.4-0.6 s more on its own).
county <- factor(county)
t0 <- proc.time()[["elapsed"]]
groups <- split(seq_along(size), county)
pik <- numeric(length(size)); sel <- logical(length(size))
for (g in groups) {{
  p <- inclusionprobabilities(size[g], n)
  pik[g] <- p
  sel[g] <- draw(p) == 1
}}
seconds <- proc.time()[["elapsed"]] - t0
stopifnot(sum(sel) == G * n)
cat(sprintf("villages=%d selected=%d\n", length(size), sum(sel)))
cat(sprintf("SECONDS=%.6f\n", seconds))
"""


def cases(quick: bool) -> list[Case]:
    G, N = (100, 60_000) if quick else (832, 500_000)
    peer_ok = have_rscript("sampling")
    out = []
    plan = [("systematic", "sorted", "UPsystematic", 5), ("systematic", "shuffled", "UPsystematic", 5),
            ("brewer", "sorted", "UPbrewer", 3), ("sampford", "sorted", "UPsampford", 3)]
    # R's UPsampford stops after max_iter = 500 rejected trials, which some counties of this frame exceed.
    rcall = {"UPsampford": "function(p) UPsampford(p, max_iter = 1e6)"}
    for method, order, rfun, repeat in plan:
        params = dict(G=G, N=N, order=order, method=method, rfun=rcall.get(rfun, rfun))
        out.append(Case(
            operation=f"village stage, {method} PPS ({order} frame)",
            size=f"{G} counties × 25 of {N // 1000}k villages",
            command=[PY, "-c", OURS.format(**params)],
            peer=f"R sampling {rfun}" if peer_ok else None,
            peer_command=["Rscript", "-e", PEER.format(**params)] if peer_ok else None,
            repeat=repeat,
            notes="selection only (group + π + draw); library loading not timed"))
    return out


if __name__ == "__main__":
    main_for(cases)
