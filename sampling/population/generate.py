"""Writing a synthetic population to disk county by county (bounded memory).

Files in ``out_dir``: ``villages.<fmt>`` (the frame), ``counties.<fmt>`` (one row per county, with the
national-poverty-county flag), ``households.<fmt>``, ``persons.<fmt>`` and ``population.json`` (seed, year,
error rates, counts and the planted errors found by the truth rule). Parquet and CSV are streamed; XLSX, SAV
and DTA hold a whole table in memory and are refused above a size where that stops being sensible.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SamplingError, check_arg
from ..readers import XLSX_MAX_ROWS, write_table
from .frame import village_frame
from .households import _rates, county_households
from .labels import labels_for

FORMATS = ("parquet", "csv", "xlsx", "sav", "dta")
IN_MEMORY_MAX_ROWS = {"xlsx": XLSX_MAX_ROWS, "sav": 3_000_000, "dta": 3_000_000}


class _Sink:
    """One output table in one format: streamed (Parquet, CSV) or collected and written at the end."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.tmp = path.with_name(path.name + ".part")
        self.writer = None
        self.schema = None
        self.parts: list[pd.DataFrame] = []
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa

        self.rows += len(df)
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False, schema=self.schema)
            if self.writer is None:
                self.schema = table.schema
                self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
            self.writer.write_table(table)
        elif self.fmt == "csv":
            import pyarrow.csv as pacsv

            table = pa.Table.from_pandas(df, preserve_index=False, schema=self.schema)
            if self.writer is None:
                self.schema = table.schema
                self.writer = pacsv.CSVWriter(self.tmp, self.schema,
                                              write_options=pacsv.WriteOptions(quoting_style="needed"))
            self.writer.write_table(table)
        else:
            self.parts.append(df)

    def close(self) -> Path:
        if self.fmt in ("parquet", "csv"):
            if self.writer is not None:
                self.writer.close()
            self.tmp.replace(self.path)
        else:
            df = pd.concat(self.parts, ignore_index=True) if self.parts else pd.DataFrame()
            self.parts = []
            vl, varl = labels_for(df.columns)
            write_table(df, self.path, value_labels=vl, variable_labels=varl)
        return self.path

    def abort(self) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


def county_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per county: codes, names, poverty-county flag and the summed sizes."""
    sums = ["households", "persons", "hh_registered", "hh_exited", "hh_not_exited", "hh_nonregistered",
            "persons_registered", "persons_exited", "persons_not_exited", "persons_nonregistered"]
    keys = ["province_code", "province_name", "region", "city_code", "county_code", "county_name"]
    extra = ["poor_county"] if "poor_county" in frame else []
    g = frame.groupby("county_code", sort=True)
    out = g[keys + extra].first().reset_index(drop=True)
    out["villages"] = g.size().to_numpy()
    out["poor_villages"] = g["poor_village"].sum().to_numpy()
    for c in sums:
        out[c] = g[c].sum().to_numpy()
    return out


def generate_population(out_dir, provinces, seed: int, *, counties_per_province=None, villages_per_county=None,
                        formats=("parquet",), year: int = 2019, error_rates=None, villages_only: bool = False,
                        progress=None) -> dict:
    """Generate the population of ``provinces`` and write it to ``out_dir``; returns a summary dict.

    progress: optional callable ``progress(iterable, total=, desc=)`` wrapping the county loop (a progress bar).
    """
    start = time.perf_counter()
    formats = tuple(dict.fromkeys(str(f).lower() for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    check_arg(not bad and formats, "formats", f"unknown {bad}; use some of {list(FORMATS)}")
    rates = _rates(error_rates)
    frame = village_frame(provinces, seed, counties_per_province=counties_per_province,
                          villages_per_county=villages_per_county, year=year, with_poor_county=True)
    counties = county_table(frame)
    villages = frame.drop(columns=["poor_county"])
    n_households, n_persons = int(frame["households"].sum()), int(frame["persons"].sum())
    largest = len(villages) if villages_only else max(len(villages), n_persons)
    for fmt in formats:
        limit = IN_MEMORY_MAX_ROWS.get(fmt)
        if limit is not None and largest > limit:
            raise SamplingError(
                f"{fmt.upper()} is not sensible for this size: the largest table would have {largest:,} rows "
                f"(limit {limit:,})", code="too_large_for_format",
                fix="write Parquet or CSV (--format parquet), or ask for fewer counties or villages")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for fmt in formats:
        for name, df in (("villages", villages), ("counties", counties)):
            path = out / f"{name}.{fmt}"
            if fmt in ("sav", "dta"):
                vl, varl = labels_for(df.columns)
                write_table(df, path, value_labels=vl, variable_labels=varl)
            else:
                write_table(df, path)
            files.append(str(path))
    summary = {
        "out_dir": str(out), "seed": int(seed), "year": int(year), "error_rates": rates,
        "provinces": sorted(frame["province_code"].unique().tolist()), "counties": int(len(counties)),
        "poor_counties": int(counties["poor_county"].sum()), "villages": int(len(villages)),
        "poor_villages": int(villages["poor_village"].sum()), "households": n_households, "persons": n_persons,
        "villages_only": bool(villages_only),
    }
    if not villages_only:
        sinks = {(t, fmt): _Sink(out / f"{t}.{fmt}", fmt) for t in ("households", "persons") for fmt in formats}
        status_counts = np.zeros(7, dtype=np.int64)
        truth = dict.fromkeys(["true_poor", "true_wrongly_exited", "true_missed", "true_wrongly_included"], 0)
        bounds = np.flatnonzero(np.r_[True, villages["county_code"].to_numpy()[1:]
                                      != villages["county_code"].to_numpy()[:-1]])
        ranges = list(zip(bounds, np.r_[bounds[1:], len(villages)]))
        it = progress(ranges, total=len(ranges), desc="counties") if progress else ranges
        try:
            for a, b in it:
                hh, ps = county_households(seed, villages.iloc[a:b], year=year, error_rates=rates)
                status_counts += np.bincount(hh["register_status"].to_numpy(), minlength=7)
                for c in truth:
                    truth[c] += int(hh[c].sum())
                for fmt in formats:
                    sinks[("households", fmt)].write(hh)
                    sinks[("persons", fmt)].write(ps)
                del hh, ps
            for sink in sinks.values():
                files.append(str(sink.close()))
        except BaseException:
            for sink in sinks.values():
                sink.abort()
            raise
        summary["households_by_status"] = {str(k): int(status_counts[k]) for k in range(1, 7)}
        summary["truth_households"] = truth
    summary["files"] = files
    summary["seconds"] = round(time.perf_counter() - start, 3)
    (out / "population.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary
