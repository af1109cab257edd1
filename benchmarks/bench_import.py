"""Benchmark: import and validate a registered-household questionnaire SAV (1M rows; 100k with --quick).

    python3 benchmarks/bench_import.py [--quick]                # through the harness (fresh process per run)
    python3 benchmarks/bench_import.py make FILE.sav N [compressed]   # write the input (clean, realistic rows)
    python3 benchmarks/bench_import.py run FILE.sav             # one measured import into a fresh workspace

`run` prints SECONDS= (the import only: reading in chunks, validation, store, audit log; not the workspace
set-up and not the XLSX validation report), ROWS_PER_S= and the reconciliation. Peak memory is the harness's
(the whole process, by wait4). A second case at a tenth of the size shows whether memory grows with the file.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.harness import PY, Case, main_for  # noqa: E402

DATA = Path(tempfile.gettempdir()) / "tpa_bench_import"


def make(path, n: int, compressed: bool = False) -> None:
    """n clean registered households (one row each) as SPSS would hold them: numbers numeric, codes as text.
    compressed: bytecode-compressed, as SPSS saves by default (pyreadstat's default is uncompressed)."""
    import numpy as np
    import pandas as pd
    import pyreadstat

    from sampling.idnumber import make_id_numbers

    n = int(n)
    i = np.arange(n)
    per_village = 2000
    v = i // per_village
    county = 520102 + (v // 900) % 90
    village = county.astype(np.int64) * 1_000_000 + (1 + (v % 30)) * 1000 + 1 + (v // 30) % 30
    vc = village.astype(str)
    hid = np.char.add(vc, np.char.zfill((i % per_village + 1).astype(str), 4))
    rng = np.random.default_rng(7)
    births = (pd.Timestamp("1950-01-01") + pd.to_timedelta(i % 18000, unit="D")).to_numpy()
    head_id = make_id_numbers(county.astype(str), births, seq=(i // 18000) * 2 + 1)
    wage = rng.integers(5_000, 40_000, n).astype(float)
    bus = rng.integers(0, 10_000, n).astype(float)
    cost = np.minimum(bus, rng.integers(0, 5_000, n)).astype(float)
    prop = np.zeros(n)
    tran = rng.integers(0, 3_000, n).astype(float)
    start = pd.Timestamp("2019-05-01 08:00") + pd.to_timedelta(i % 600, unit="min")
    df = pd.DataFrame({
        "household_id": hid, "village_code": vc, "county_code": county.astype(str), "province_code": "520000",
        "interview_start": start, "interview_end": start + pd.Timedelta(minutes=50),
        "enumerator_1": "张三", "enumerator_2": "李四", "gps_lat": 26.5 + (i % 100) / 1000,
        "gps_lon": 106.7 + (i % 100) / 1000, "head_name": "王五", "head_id_number": head_id.astype(str),
        "phone": "13800000000", "register_status": 1.0, "exit_year": 2018.0, "exit_year_income_pc": 5200.0,
        "declared_size": 3.0, "resident_size": 3.0, "causes": "因病 缺资金", "dibao": 0.0, "dangerous_house": 0.0,
        "chronic_illness": 1.0, "no_labour": 0.0, "elderly_alone": 0.0, "food_regular_protein": 1.0,
        "food_stable": 1.0, "clothing_seasonal": 1.0, "clothing_donation": 0.0, "house_grade": "B",
        "house_renovated": 0.0, "water_litres": 60.0, "water_quality_ok": 1.0, "water_piped": 1.0,
        "water_round_trip_min": 0.0, "water_interrupt_days": 2.0, "measures": "产业 健康",
        "wage_income": wage, "business_income": bus, "business_cost": cost, "property_income": prop,
        "transfer_income": tran, "net_income_declared": wage + bus - cost + prop + tran,
        "rl_vehicle_value": 0.0, "rl_commercial_housing": 0.0, "rl_company": 0.0, "rl_empty_registration": 0.0,
        "sat_policy": 1.0, "sat_measures": 2.0, "sat_results": 1.0, "sat_exit": 1.0, "sat_cadres": 1.0,
    })
    labels = {"register_status": {1: "已脱贫", 2: "未脱贫", 3: "当年拟脱贫", 4: "监测户"}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    pyreadstat.write_sav(df, str(tmp), variable_value_labels=labels, row_compress=compressed,
                         missing_ranges={"wage_income": [-8, -9]},
                         variable_format={"interview_start": "DATETIME20", "interview_end": "DATETIME20"})
    tmp.replace(path)


def run(path) -> None:
    import shutil

    from sampling.workspace import init_workspace
    from survey.importer import import_file

    ws_dir = Path(tempfile.mkdtemp(prefix="tpa_bench_ws_"))
    try:
        ws = init_workspace(ws_dir / "ws")
        t0 = time.perf_counter()
        r = import_file(ws, path, write_report=False)
        seconds = time.perf_counter() - t0
        print(f"SECONDS={seconds:.3f}")
        print(f"ROWS_PER_S={r.rows_in / seconds:.0f}")
        print(f"{r.status}: {r.reconciliation()}; errors {r.errors}, warnings {r.warnings}")
        t = r.timings
        print("PARTS=" + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()))
        own = t.get("read", 0) + t.get("store", 0)
        if own:
            print(f"READ_STORE_ROWS_PER_S={r.rows_in / own:.0f}")
        assert r.reconciles
    finally:
        shutil.rmtree(ws_dir, ignore_errors=True)


def cases(quick: bool):
    sizes = [10_000, 100_000] if quick else [100_000, 1_000_000]
    out = []
    for n in sizes:
        f = DATA / f"hh_{n}.sav"
        out.append(Case(operation="import + validate SAV", size=f"{n:,} rows",
                        setup=[PY, str(Path(__file__)), "make", str(f), str(n)],
                        command=[PY, str(Path(__file__)), "run", str(f)], repeat=2,
                        notes="chunked reading (100k rows), validation, store; peak memory by wait4"))
    n = sizes[-1]
    f = DATA / f"hh_{n}_compressed.sav"
    out.append(Case(operation="import + validate SAV, compressed", size=f"{n:,} rows",
                    setup=[PY, str(Path(__file__)), "make", str(f), str(n), "compressed"],
                    command=[PY, str(Path(__file__)), "run", str(f)], repeat=2,
                    notes="bytecode-compressed, as SPSS saves by default: decompressed in order by the main "
                          "process, chunks handed to the worker"))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "make":
        target = Path(sys.argv[2])
        if not target.exists():
            make(target, int(sys.argv[3]), compressed=sys.argv[4:5] == ["compressed"])
    elif len(sys.argv) > 1 and sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        main_for(cases)
