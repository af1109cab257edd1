"""Run every benchmark and print one table; write it as JSON.

    python3 benchmarks/run_all.py [--quick] [--only NAME ...] [--json benchmarks/results/latest.json]

Each ``benchmarks/bench_*.py`` defines ``cases(quick)``; project and peer runs alternate inside each case
(see harness.py). Peers (R `survey`, R `sampling`, `svy`) run where they are installed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.harness import format_table, run_case  # noqa: E402


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and one repeat (a smoke run)")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark module names, e.g. bench_estimate")
    parser.add_argument("--json", default=str(HERE / "results" / "latest.json"), help="where to write the table")
    args = parser.parse_args(argv)
    rows = []
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and path.stem not in args.only:
            continue
        module = load(path)
        for case in module.cases(args.quick):
            if args.quick:
                case.repeat = 1
            print(f"running {path.stem}: {case.operation} ({case.size}) ...", file=sys.stderr, flush=True)
            row = run_case(case)
            row["benchmark"] = path.stem
            rows.append(row)
    print(format_table(rows))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
                               "quick": args.quick, "rows": rows}, ensure_ascii=False, indent=1),
                   encoding="utf-8")
    print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
