"""Synthetic population: the national village frame and households streamed to Parquet.

Cases (each a fresh process; time of the measured call only, via ``SECONDS=``, imports excluded):
- national village frame: ``village_frame("all", seed)``: 22 provinces, 2,166 counties, ~500k villages, sizes
  drawn without materialising households;
- one county at the default size (~250 villages, ~70k households, ~250k persons) generated and written;
- ~1M households (and ~3.5M persons) streamed county by county to Parquet (bounded memory: peak MB is the
  process's maximum resident set).
No peer: nothing else generates this population. Each run also prints its CPU time (``cpu=``): on a shared
machine the wall time can be several times the CPU time.

    python3 benchmarks/bench_population.py [--quick]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import PY, Case, main_for  # noqa: E402

FRAME = r"""
import time
import pandas  # noqa: F401
from sampling.population import village_frame
t0, c0 = time.perf_counter(), time.process_time()
f = village_frame({provinces!r}, 1)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
print(f"villages={{len(f)}} counties={{f.county_code.nunique()}} households={{int(f.households.sum())}} cpu={{cpu:.3f}}")
print(f"SECONDS={{seconds:.6f}}")
"""

GENERATE = r"""
import tempfile, time
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
from sampling.population import generate_population
with tempfile.TemporaryDirectory() as out:
    t0, c0 = time.perf_counter(), time.process_time()
    s = generate_population(out, {provinces!r}, 1, counties_per_province={cpp}, villages_per_county={vpc},
                            formats=("parquet",))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
print(f"counties={{s['counties']}} villages={{s['villages']}} households={{s['households']}} "
      f"persons={{s['persons']}} cpu={{cpu:.3f}}")
print(f"SECONDS={{seconds:.6f}}")
"""


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            Case("village frame", "1 province (~20k villages)", [PY, "-c", FRAME.format(provinces=["贵州"])]),
            Case("generate → Parquet", "1 county × 60 villages (~17k households)",
                 [PY, "-c", GENERATE.format(provinces=["贵州"], cpp=1, vpc=60)]),
        ]
    return [
        Case("village frame", "national: 22 provinces, ~500k villages", [PY, "-c", FRAME.format(provinces="all")],
             repeat=3),
        Case("generate → Parquet", "1 county, default size (~250 villages)",
             [PY, "-c", GENERATE.format(provinces=["贵州"], cpp=1, vpc=None)], repeat=3),
        Case("generate → Parquet", "~1M households (15 counties × 240 villages)",
             [PY, "-c", GENERATE.format(provinces=["贵州"], cpp=15, vpc=240)], repeat=2),
    ]


if __name__ == "__main__":
    from benchmarks.harness import main_for as _main

    _main(cases)
