"""A national multi-stage draw: 22 provinces, ~500k villages, households listed only for the sampled villages.

The village frame comes from ``sampling.population.village_frame`` (not timed: in practice it is read from a
file); the households of the sampled villages come from the synthetic population on demand
(``sampling.population.county_households``, one vectorised call for all sampled villages), as a register file
filtered to the sampled villages would. Cases:

- ``select``: ``sampling.draw.select_sample`` with the annual preset (5 counties per province by PPS, 10 villages
  per county, 18 households + 3 reserves per stratum and village): county, village and household stages,
  including generating the sampled villages' households. SECONDS = that call.
- ``draw + lists``: ``sampling.draw.draw_sample`` into a fresh workspace: the same draw, the records in SQLite
  and every field list (XLSX per county, CSV, SAV, DTA). SECONDS = that call.

The script prints the split (stages vs household generation vs lists) on stdout. No peer: R ``sampling`` has
no multi-stage draw to compare with (the village stage alone is in bench_village_stage.py).

    python3 benchmarks/bench_national_draw.py [--quick]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import PY, Case, main_for  # noqa: E402

SCRIPT = r"""
import sys, time, tempfile
import numpy as np, pandas as pd
from sampling.geography import PROVINCES
from sampling.population import village_frame, county_households
from sampling.draw import select_sample, draw_sample, HouseholdCallable
from sampling.workspace import init_workspace

provinces = sorted(PROVINCES){provinces}
villages = village_frame(provinces, 2019{frame_kw})
print(f"villages={{len(villages)}} counties={{villages['county_code'].nunique()}} provinces={{len(provinces)}}")
timing = {{}}

def make(rows):
    t = time.perf_counter()
    out = county_households(2019, rows)[0]
    timing["households"] = timing.get("households", 0) + time.perf_counter() - t
    return out

source = HouseholdCallable(make, {{"kind": "synthetic", "population_seed": 2019, "year": 2019}}, batch=True)
mode = "{mode}"
t0 = time.perf_counter()
c0 = time.process_time()
if mode == "select":
    r = select_sample("{design}", villages, source, seed=1)
    sh = r.sample_households
else:
    ws = init_workspace(tempfile.mkdtemp(prefix="tpa_bench_"))
    rec = draw_sample(ws, "{design}", 1, villages=villages, households=source)
    sh = None
seconds = time.perf_counter() - t0
cpu = time.process_time() - c0
if sh is not None:
    s = sh[sh["role"] == "sample"]
    print(f"counties={{s['county_code'].nunique()}} villages={{s['village_code'].nunique()}} "
          f"households={{len(s)}} reserves={{int((sh['role'] == 'reserve').sum())}} "
          f"households_generated={{len(r.households)}}")
else:
    c = rec["summary"]["counts"]
    print(f"counties={{c['counties']}} villages={{c['villages']}} households={{c['households']}} "
          f"reserves={{c['reserves']}} files={{len(rec['files'])}}")
print(f"household_generation_seconds={{timing.get('households', 0):.3f}} "
      f"draw_without_generation_seconds={{seconds - timing.get('households', 0):.3f}} "
      f"cpu_seconds={{cpu:.3f}} (this process's CPU time for the timed part; wall time suffers on a shared machine)")
print(f"SECONDS={{seconds:.6f}}")
"""


def _case(mode: str, design: str, quick: bool) -> Case:
    provinces = "[:3]" if quick else ""
    frame_kw = ""
    size = "3 provinces" if quick else "22 provinces, ~500k villages"
    code = SCRIPT.format(provinces=provinces, frame_kw=frame_kw, mode=mode, design=design)
    label = {"select": "national draw (select)", "lists": "national draw + records + field lists"}[mode]
    return Case(operation=f"{label}, {design} preset", size=size, command=[PY, "-c", code], repeat=3,
                notes="households generated only for the sampled villages; frame generation not timed")


def cases(quick: bool):
    return [_case("select", "annual", quick), _case("lists", "annual", quick)]


if __name__ == "__main__":
    main_for(cases)
