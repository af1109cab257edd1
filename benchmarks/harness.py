"""Shared harness of the benchmarks: each measured run is a fresh process, timed, with its peak memory.

A benchmark module defines ``cases(quick: bool) -> list[Case]``. A case names the operation and size, the
command that runs the project's code and optionally a peer's command (R `survey`, R `sampling`, `svy`).
Project and peer runs alternate, ``repeat`` times each, because this machine is shared and noisy; the table
reports medians and the ratio peer time / project time (> 1 means the project is faster).

A command may print a line ``SECONDS=<float>`` to report the time of the measured part only (excluding, for
example, generating the input); otherwise the wall time of the whole process counts.
"""
from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

PY = sys.executable


@dataclass
class Case:
    operation: str
    size: str
    command: list[str]
    peer: str | None = None
    peer_command: list[str] | None = None
    setup: list[str] | None = None          # run once before the case, not timed
    repeat: int = 3
    notes: str = ""


@dataclass
class Measurement:
    seconds: float
    peak_mb: float
    stdout: str = field(repr=False, default="")


def run_measured(command: list[str], env=None, cwd=None) -> Measurement:
    """Run one command in a child process; its own time (SECONDS= line) or wall time, and its peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark command failed ({proc.returncode}): {' '.join(command)}\n{stderr[-2000:]}")
    found = re.findall(r"^SECONDS=([0-9.eE+-]+)\s*$", stdout, flags=re.M)
    seconds = float(found[-1]) if found else wall
    return Measurement(seconds=seconds, peak_mb=usage.ru_maxrss / 1024.0, stdout=stdout)


def have_rscript(*packages: str) -> bool:
    if shutil.which("Rscript") is None:
        return False
    check = "; ".join(f"library({p})" for p in packages) or "invisible(0)"
    return subprocess.run(["Rscript", "-e", check], capture_output=True).returncode == 0


def have_python_module(name: str) -> bool:
    return subprocess.run([PY, "-c", f"import {name}"], capture_output=True).returncode == 0


def run_case(case: Case) -> dict:
    if case.setup:
        run_measured(case.setup)
    ours, theirs = [], []
    for _ in range(case.repeat):
        ours.append(run_measured(case.command))
        if case.peer_command:
            theirs.append(run_measured(case.peer_command))
    row = {
        "operation": case.operation, "size": case.size,
        "seconds": statistics.median(m.seconds for m in ours),
        "peak_mb": max(m.peak_mb for m in ours),
        "peer": case.peer if theirs else None,
        "peer_seconds": statistics.median(m.seconds for m in theirs) if theirs else None,
        "peer_peak_mb": max(m.peak_mb for m in theirs) if theirs else None,
        "notes": case.notes,
    }
    row["ratio"] = (row["peer_seconds"] / row["seconds"]) if theirs and row["seconds"] > 0 else None
    return row


def format_table(rows: list[dict]) -> str:
    head = ["operation", "size", "time s", "peak MB", "peer", "peer s", "ratio (peer/ours)"]
    lines = [head]
    for r in rows:
        lines.append([r["operation"], r["size"], f"{r['seconds']:.3f}", f"{r['peak_mb']:.0f}",
                      r["peer"] or "-", "-" if r["peer_seconds"] is None else f"{r['peer_seconds']:.3f}",
                      "-" if r["ratio"] is None else f"{r['ratio']:.1f}×"])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for k, line in enumerate(lines):
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")
        if k == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main_for(module_cases, argv=None) -> None:
    """Let each benchmark module run alone: `python benchmarks/bench_x.py [--quick]`."""
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    args = parser.parse_args(argv)
    rows = []
    for case in module_cases(args.quick):
        if args.quick:
            case.repeat = 1
        rows.append(run_case(case))
        print(format_table(rows[-1:]), file=sys.stderr)
    print(format_table(rows))
    print(json.dumps(rows, ensure_ascii=False, indent=1), file=sys.stderr)
