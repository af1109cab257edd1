"""Import questionnaire files into the workspace store (one atomic transaction per file).

    results = import_files(ws, ["a.sav", "odk.zip"], instrument=None, encoding=None)
    for r in results: print(r.rows_in, r.accepted, r.quarantined, r.duplicates_skipped)

For each file: open it (survey.readers), tell its instrument from its columns (or check the one given), read the
main table in chunks, validate each chunk (survey.validate) against the codebook and the latest sample draw, and
store it: accepted rows as household / person / village segments (survey.store), rows with an error into
quarantine with their reasons, every problem into the issues, and one row into the audit log. Reconciliation,
always:

    rows_in = accepted + quarantined + duplicates_skipped

counted over every table of the file (main table and roster). Rows that repeat a stored row exactly (same key,
same content, roster included) are skipped and counted; a row of a known key with new content is a new version
that supersedes the earlier one (kept as history). Two rows of one file with the same key and different content
are both errors (validate) when they fall in the same chunk; across chunks the later one is quarantined.

A file that cannot be imported at all (unreadable, empty, wrong encoding, wrong instrument, title rows, merged
cells, over-long cells) raises ImportFileError inside the transaction: nothing of it is stored, and a 'rejected'
row is written to the audit log afterwards. The same file again (same sha256) changes nothing: status 'unchanged'.

A household file and its members file delivered apart (SPSS/Stata/CSV teams: hh.sav + members.sav) are paired by
import_files and imported as one unit: one transaction, one audit entry, one result per file (see import_files).
"""
from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import functools
import getpass
import json
import os
import pickle
import queue
import sqlite3
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import store as st
from .allocator import bulk_allocation
from .errors import CodebookError, ImportFileError
from .readers import DEFAULT_CHUNK_ROWS, LINK, PARENT, ROW, USER_MISSING, open_source

MATCH_THRESHOLD = 0.5
# How long an import waits for another process's import to finish before giving up (each file is one write
# transaction; SQLite lets one writer in at a time, readers are never blocked).
LOCK_WAIT_SECONDS = 1800
_ITEM = "_item"
_KIND = {"village": "villages"}


@dataclass
class ImportResult:
    file: str
    path: str
    sha256: str | None = None
    size: int | None = None
    status: str = "rejected"              # imported | unchanged | rejected
    instrument: str | None = None
    format: str | None = None
    encoding: str | None = None
    import_id: int | None = None
    rows_in: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates_skipped: int = 0
    superseded: int = 0
    errors: int = 0
    warnings: int = 0
    messages: list = field(default_factory=list)
    error: dict | None = None
    report: str | None = None
    tables: dict = field(default_factory=dict)
    # seconds (for the benchmark): read and validate summed over the processes that did them, store
    timings: dict = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.accepted + self.quarantined + self.duplicates_skipped

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in ("file", "sha256", "rows_in", "accepted", "quarantined", "duplicates_skipped",
                                  "errors", "warnings", "status", "instrument", "format", "import_id",
                                  "superseded", "report", "messages", "error", "tables", "timings")}

    def reconciliation(self) -> str:
        return (f"rows in {self.rows_in:,} = accepted {self.accepted:,} + quarantined {self.quarantined:,} "
                f"+ duplicates skipped {self.duplicates_skipped:,}")


# ================================================================================================ helpers
def _busy(exc) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@contextlib.contextmanager
def _transaction(ws, wait: float | None = None):
    """ws.transaction(), waiting (up to LOCK_WAIT_SECONDS) while another process holds the write lock."""
    deadline = time.monotonic() + (LOCK_WAIT_SECONDS if wait is None else wait)
    while True:
        cm = ws.transaction()
        try:
            con = cm.__enter__()
            break
        except sqlite3.OperationalError as exc:
            if _busy(exc) and time.monotonic() < deadline:
                time.sleep(0.25)
                continue
            if _busy(exc):
                raise ImportFileError("the workspace database stayed busy: another import held it too long",
                                      code="busy", file=ws.db_path,
                                      fix="import the file again when the other import has finished") from None
            raise
    try:
        yield con
    except BaseException:
        if not cm.__exit__(*sys.exc_info()):
            raise
    else:
        cm.__exit__(None, None, None)


def _ensure_store(ws) -> None:
    if not (ws.db_path.exists() and ws.table_exists("audit_log") and ws.table_exists("issues")):
        with _transaction(ws) as con:
            st.ensure_schema(con)


def _sha256(path: Path) -> str:
    try:
        from sampling.readers import content_hash
        return content_hash(path)
    except ImportError:  # pragma: no cover
        import hashlib
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return "unknown"


def _key_text(s: pd.Series) -> pd.Series:
    """Keys as text (whole floats without '.0', blanks stripped, missing = '')."""
    if pd.api.types.is_float_dtype(s.dtype):
        f = s.to_numpy(dtype="float64", na_value=np.nan)
        out = pd.Series(np.where(np.isnan(f), "", np.char.mod("%.0f", np.nan_to_num(f))), index=s.index)
        return out.astype(object)
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return s.str.strip().fillna("").astype(object)
    t = s.astype("string").str.strip().fillna("")
    t = t.str.replace(r"\.0$", "", regex=True)
    return t.astype(object)


def _instrument_name(cb) -> str:
    return cb.instrument or cb.name


def _score(cb, columns) -> tuple[float, int]:
    cols = {str(c).strip() for c in columns}
    names = [n for n in cb.variables if not n.startswith("_")]
    return cb.match_score(cols), sum(n in cols for n in names)


def choose_codebook(columns, head_rows, first_chunk: pd.DataFrame | None, instrument, path, encoding=None):
    """The codebook of a file: the one named (checked against the columns) or the best match."""
    from .codebook import INSTRUMENTS, load_codebook

    cands = {n: load_codebook(n) for n in INSTRUMENTS}
    if instrument is not None:
        try:
            cb = load_codebook(instrument)
        except CodebookError as exc:
            raise ImportFileError(f"unknown instrument {instrument!r}: {exc.message}", code="unknown_instrument",
                                  fix=f"name one of {', '.join(INSTRUMENTS)} or give a codebook file") from None
        score, _ = _score(cb, columns)
        if score >= MATCH_THRESHOLD and cb.key in columns:
            return cb
        best = max(cands.values(), key=lambda c: _score(c, columns))
        bscore, _ = _score(best, columns)
        _header_rows_check(cands, head_rows, path)
        looks = (f"; it looks like {best.label_zh} ({_instrument_name(best)}, {bscore:.0%} of its variables)"
                 if bscore >= MATCH_THRESHOLD and best.name != cb.name else "")
        missing_key = "" if cb.key in columns else f", and the key column {cb.key} is missing"
        raise ImportFileError(
            f"wrong instrument: the file has {score:.0%} of the variables of {cb.label_zh} "
            f"({_instrument_name(cb)}){missing_key}{looks}", code="wrong_instrument", file=path,
            column=None if cb.key in columns else cb.key,
            fix="import the file with the instrument it belongs to (--instrument NAME, or leave it out to detect "
                "it), or check that this is the right file")
    scored = sorted(((_score(c, columns), c) for c in cands.values()), key=lambda t: t[0], reverse=True)
    (bscore, _), best = scored[0]
    if bscore < MATCH_THRESHOLD:
        _header_rows_check(cands, head_rows, path)
        group = _roster_group(cands.values(), columns)
        if group is not None:
            raise ImportFileError(
                f"this is a roster file ({group[1].name}: {', '.join(group[1].key)}) of {group[0].label_zh} "
                f"({_instrument_name(group[0])}) without its household file", code="roster_without_household",
                file=path, fix="import it together with its household file, e.g. tpa import hh.sav members.sav")
        hint = (f" If the column names look garbled, the encoding is wrong (read as {encoding}): give it with "
                "--encoding." if encoding else "")
        raise ImportFileError(
            f"the columns match no questionnaire: at best {bscore:.0%} of the variables of {best.label_zh} "
            f"({_instrument_name(best)})." + hint, code="wrong_instrument", file=path,
            fix="the first row must hold the codebook's variable names (see `tpa codebook show NAME`); "
                "check that this is a questionnaire export")
    household = [c for (s, _), c in scored if s >= MATCH_THRESHOLD and c.key == "household_id"]
    if len(household) == 2 and first_chunk is not None and "register_status" in first_chunk.columns:
        codes = pd.to_numeric(first_chunk["register_status"], errors="coerce").dropna()
        if len(codes):
            registered = codes.isin([1, 2, 3, 4]).mean() >= 0.5
            want = "hh_registered" if registered else "hh_nonregistered"
            best = next(c for c in household if c.name == want)
    if best.key not in columns:
        raise ImportFileError(f"the key column {best.key} is missing", code="missing_key", file=path,
                              column=best.key, fix=f"add the column {best.key} ({best.label_zh}的编码) and "
                                                   "import again")
    return best


def _roster_group(cbs, columns):
    """(codebook, repeat group) when the columns are those of a codebook's repeat group (e.g. members: household_id,
    member_no, name, ...) rather than of a main table; None otherwise."""
    cbs = list(cbs)
    if not cbs or max(_score(c, columns)[0] for c in cbs) >= MATCH_THRESHOLD:
        return None
    cols = {str(c).strip() for c in columns}
    best = None
    for cb in cbs:
        for g in cb.repeats.values():
            sc = g.match_score(cols)
            if sc >= MATCH_THRESHOLD and all(k in cols for k in g.key[:1]) and (best is None or sc > best[0]):
                best = (sc, cb, g)
    return None if best is None else (best[1], best[2])


def _header_rows_check(cands, head_rows, path) -> None:
    for i, row in enumerate(head_rows or []):
        values = [str(v).strip() for v in row if v is not None and str(v).strip()]
        for cb in cands.values():
            if values and _score(cb, values)[0] >= MATCH_THRESHOLD:
                raise ImportFileError(
                    f"the variable names are on row {i + 2}, not on row 1: {i + 1} title row(s) above the header",
                    code="extra_header_rows", file=path, row=i + 2,
                    fix=f"delete the {i + 1} row(s) above the variable names so that they are on row 1 "
                        "(one header row, then one row per household)")


def _sample_ids(con, cb):
    """(sample_ids, reserve_ids, note) from the latest draw; (None, None, note) when there is none."""
    def exists(name):
        return con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()

    note = "no sample draw in this workspace: linkage to the sample was not checked"
    if not exists("draws"):
        return None, None, note
    row = con.execute("SELECT draw_id FROM draws ORDER BY created DESC LIMIT 1").fetchone()
    if row is None:
        return None, None, note
    draw_id = row[0]
    if cb.key == "household_id":
        if not exists("sample_households"):
            return None, None, note
        rows = con.execute("SELECT household_id, role FROM sample_households WHERE draw_id = ?", (draw_id,)).fetchall()
        sample = {str(h) for h, r in rows if r != "reserve"}
        reserve = {str(h) for h, r in rows if r == "reserve"}
        return sample, reserve, None
    if cb.key == "village_code":
        if not exists("sample_villages"):
            return None, None, note
        rows = con.execute("SELECT village_code FROM sample_villages WHERE draw_id = ?", (draw_id,)).fetchall()
        return {str(v) for (v,) in rows}, set(), None
    return None, None, None


def _reasons_by_row(issues: pd.DataFrame) -> dict:
    """{(sheet, row): [reason, ...]} of the error issues."""
    out: dict = {}
    err = issues[issues["severity"] == "error"]
    if err.empty:
        return out
    cols = ["sheet", "row", "rule", "rule_zh", "field", "value", "message_zh", "fix_zh"]
    for rec in err[cols].astype(object).itertuples(index=False, name=None):
        sheet, row = rec[0], rec[1]
        if row is None or row is pd.NA or (isinstance(row, float) and np.isnan(row)):
            key = (sheet, None)
        else:
            key = (sheet, int(row))
        out.setdefault(key, []).append({"rule": rec[2], "rule_zh": rec[3], "field": rec[4],
                                        "value": None if rec[5] is None else str(rec[5]),
                                        "message_zh": rec[6], "fix_zh": rec[7]})
    return out


def _new_issue(file, sheet, row, key, field_, rule, rule_zh, value, message, fix, severity="error") -> dict:
    return {"file": file, "sheet": sheet, "row": row, "household_id": key, "field": field_, "rule": rule,
            "rule_zh": rule_zh, "severity": severity, "value": value, "message_zh": message, "fix_zh": fix}


# ================================================================================================ the import
class _FileImport:
    """One file's import inside one transaction."""

    def __init__(self, ws, con, source, cb, result: ImportResult, progress,
                 workers: int | None = None, after_chunk=None):
        self.ws, self.con, self.src, self.cb, self.r = ws, con, source, cb, result
        self.after_chunk = after_chunk
        self.workers = workers
        self.progress = progress
        self.instrument = _instrument_name(cb)
        self.kind = _KIND.get(self.instrument, "villages" if cb.key == "village_code" else "households")
        self.key = st.KEY_COLUMN[self.kind]
        self.main_vars = [v for v in cb.variables if not v.startswith("_")]
        self.file = result.file
        self.import_id = result.import_id
        self.counts = {}
        self.issue_rows = 0
        self.paired = getattr(source, "paired_repeats", {})     # {group name: roster file name} (a file pair)
        self.issue_counts = {}                                  # {sheet: [errors, warnings]}

    # ---- counting
    def _count(self, table: str, **kw) -> None:
        c = self.counts.setdefault(table, {"rows_in": 0, "accepted": 0, "quarantined": 0, "duplicates_skipped": 0})
        for k, v in kw.items():
            c[k] += int(v)

    # ---- repeats
    def _prepare_repeats(self):
        reps = {}
        for name, frame in self.src.repeats().items():
            group = None
            if name in self.cb.repeats:
                group = self.cb.repeats[name]
            else:
                scored = [(g.match_score(frame.columns), g) for g in self.cb.repeats.values()]
                scored = [t for t in scored if t[0] >= MATCH_THRESHOLD]
                if scored:
                    group = max(scored, key=lambda t: t[0])[1]
            label = self.src.repeat_files.get(name, name)
            if group is None:
                self.r.messages.append(f"table {label!r} ({len(frame):,} rows) is not part of the codebook "
                                       f"{self.instrument} and was not imported")
                continue
            frame = frame.reset_index(drop=True)
            item = group.key[1] if len(group.key) > 1 else None
            if item and (item not in frame.columns or frame[item].isna().all()) and _ITEM in frame.columns:
                frame[item] = frame[_ITEM]
            empty = _blank_rows(frame)
            if empty.any():
                self.r.messages.append(f"table {label!r}: {int(empty.sum()):,} empty rows ignored")
                frame = frame[~empty].reset_index(drop=True)
            reps[group.name] = {"frame": frame, "group": group, "label": label, "used": np.zeros(len(frame), bool),
                                "by_parent": PARENT in frame.columns}
            self._count(group.name, rows_in=len(frame))
        return reps

    def _chunk_repeats(self, reps, main: pd.DataFrame, main_keys: pd.Series):
        out = {}
        for gname, rp in reps.items():
            frame, group = rp["frame"], rp["group"]
            parent = group.key[0]
            if rp["by_parent"] and LINK in main.columns:
                link_to_key = pd.Series(main_keys.to_numpy(), index=main[LINK].astype(str).to_numpy())
                link_to_key = link_to_key[~link_to_key.index.duplicated()]
                par = frame[PARENT].astype(str)
                sel = par.isin(link_to_key.index).to_numpy() & ~rp["used"]
                sub = frame[sel].copy()
                mapped = par[sel].map(link_to_key)
                if parent not in sub.columns or sub[parent].isna().all():
                    sub[parent] = mapped.to_numpy()
                else:
                    sub[parent] = sub[parent].where(sub[parent].notna(), mapped.to_numpy())
            else:
                if parent not in frame.columns:
                    continue
                sel = _key_text(frame[parent]).isin(set(main_keys)).to_numpy() & ~rp["used"]
                sub = frame[sel].copy()
            rp["used"] |= sel
            out[gname] = sub.reset_index(drop=True)
        return out

    # ---- the run
    def run(self, chunks, n_hint: int | None = None) -> None:
        """chunks: the main table's chunks in file order, each a DataFrame read here or a ref (``load()``) that
        whichever process checks it loads (files read out of order, see Source.chunk_refs). n_hint: the number
        of chunks, when known."""
        reps = self._prepare_repeats() if self.cb.repeats else {}
        self.roster = bool(reps) and self.kind == "households"
        sample_ids, reserve_ids, note = _sample_ids(self.con, self.cb)
        if note:
            self.r.messages.append(note)
        self.sample_ids, self.reserve_ids = sample_ids, reserve_ids
        self._reps = reps
        self.total_main = 0
        self.empty_rows = 0
        stored = 0
        pending = collections.deque()
        # Checking (validation, hashing) runs in worker processes when the file has more than one chunk, while
        # this process reads, stores the checked chunks in file order, and checks chunks itself when it would
        # otherwise wait (see _ChunkPool).
        self._ctx = self._context()
        try:
            with _ChunkPool(self._ctx, self.workers) as pool:
                self._pool = pool
                if isinstance(chunks, list) and len(chunks) > 1 and pool.workers > 1:
                    # chunks known in advance: each process claims the next one when it is free
                    with _SharedChunks(self._ctx, chunks, pool.workers, pool.depth) as shared:
                        for ref, out in shared.in_order():
                            stored += self._collect((ref, out, None), stored)
                    chunks = []
                items = ((c, n_hint <= 1) for c in chunks) if n_hint is not None else _with_last(chunks)
                for chunk, last in items:
                    alone = last and not pool.submitted
                    if not isinstance(chunk, pd.DataFrame):
                        if reps:   # pragma: no cover - refs are only given for files without repeat tables
                            raise RuntimeError("chunk refs given for a file with repeat tables")
                        pending.append((chunk, pool.submit("_check_ref", (chunk,), alone=alone,
                                                           here=isinstance(chunk, _Preloaded)), None))
                    else:
                        chunk, empty = _drop_empty(chunk)
                        self.empty_rows += empty
                        if chunk.empty:
                            continue
                        self.total_main += len(chunk)
                        self._count("main", rows_in=len(chunk))
                        begun = self._begin_chunk(chunk, reps)
                        pending.append((begun, pool.submit("_validate_chunk", (begun[2], begun[3]), alone=alone),
                                        len(chunk)))
                    # store what is ready at the head (in file order); check a chunk here when the window is
                    # full or when there is one to spare (the worker keeps one waiting); else read on
                    while pending:
                        if pending[0][1].ready() or len(pending) > pool.depth:
                            stored += self._advance(pending, pool, stored)
                        elif not pool.take_back_one(spare_only=True):
                            break
                while pending:
                    stored += self._advance(pending, pool, stored)
        except BrokenProcessPool:
            raise _worker_failed(self.src.path) from None
        if self.empty_rows:
            self.r.messages.append(f"{self.empty_rows:,} empty rows ignored")
        if self.total_main == 0:
            raise ImportFileError("the file has a header but no data rows", code="empty_file", file=self.src.path,
                                  fix="export the questionnaire data again; check that the export holds the "
                                      "interviews")
        for gname, rp in reps.items():
            left = ~rp["used"]
            if left.any():
                self._orphans(gname, rp, np.flatnonzero(left))
        self._finish()

    def _begin_chunk(self, raw: pd.DataFrame, reps):
        """In file order (repeat rows are claimed by the first chunk holding their household): drop exact
        in-file duplicates, pick the chunk's repeat rows. Returns (raw, chunk_reps, main_in, rep_in)."""
        raw = raw.reset_index(drop=True)
        keys_raw, drop = _exact_repeats(raw, self.key, self.main_vars)
        chunk_reps = self._chunk_repeats(reps, raw, keys_raw)
        if drop.any():
            self._count("main", duplicates_skipped=int(drop.sum()))
            if LINK in raw.columns:
                dropped_links = set(raw.loc[drop, LINK].astype(str))
                for gname, sub in list(chunk_reps.items()):
                    if PARENT in sub.columns:
                        gone = sub[PARENT].astype(str).isin(dropped_links).to_numpy()
                        if gone.any():
                            self._count(gname, duplicates_skipped=int(gone.sum()))
                            chunk_reps[gname] = sub[~gone].reset_index(drop=True)
            raw = raw[~drop].reset_index(drop=True)
        main_in = raw.drop(columns=[c for c in (LINK,) if c in raw.columns])
        rep_in = {g: f.drop(columns=[c for c in (PARENT, _ITEM) if c in f.columns]) for g, f in chunk_reps.items()}
        return raw, chunk_reps, main_in, rep_in

    def _context(self) -> "_ChunkContext":
        return _ChunkContext(cb=self.cb, key=self.key, main_vars=self.main_vars, sample_ids=self.sample_ids,
                             reserve_ids=self.reserve_ids, config=self.ws.config, file=self.file,
                             kind=self.kind, roster=self.roster)

    def _advance(self, pending, pool, stored: int) -> int:
        """One step: store the head if it is checked, else check a waiting chunk here, else wait for the head."""
        head = pending[0][1]
        if not head.ready() and head.future is not None and pool.take_back_one():
            return 0
        return self._collect(pending.popleft(), stored)

    def _collect(self, item, stored: int) -> int:
        begun, job, n = item
        out = _checked(job.result(self._pool) if isinstance(job, _Job) else job, self.src.path)
        if n is None:          # a ref, loaded and prepared where it was checked
            n = out.rows_in
            self.r.timings["read"] = self.r.timings.get("read", 0.0) + out.read_seconds
            self.empty_rows += out.empty_rows
            self.total_main += n
            if not n:
                return 0
            self._count("main", rows_in=n, duplicates_skipped=out.exact_repeats)
            begun = (_RefRows(begun, self._ctx, out.payloads), {}, None, {})
        self._store_chunk(begun, out)
        if self.after_chunk:
            self.after_chunk()
        if self.progress:
            self.progress(self.file, stored + n)
        return n

    def _store_chunk(self, begun, out: "_Checked") -> None:
        raw, chunk_reps, main_in, rep_in = begun
        reps = self._reps
        self.r.timings["validate"] = self.r.timings.get("validate", 0.0) + out.seconds
        t0 = time.perf_counter()
        main_err, issues, keys = out.main_err, out.issues, out.keys
        rtyped, rerr, rkeys, member_hash = out.rtyped, out.rerr, out.rkeys, out.member_hash
        extra_issues = []
        ok_pos = np.flatnonzero(~main_err)
        # keys as a plain object index: inferring a text dtype for 100k keys cost more than the rest of this
        unit = pd.Series(out.unit_hash, index=pd.Index(keys.to_numpy()[ok_pos], dtype=object))
        roster_u = out.roster_hash

        found = st.current_rows(self.con, self.kind, unit.index.to_numpy(), index=out.ok_keys)
        cur = found.drop_duplicates("_key").set_index("_key")
        unit_signed = st.signed(unit.to_numpy(dtype=np.uint64))
        roster_signed = st.signed(roster_u)
        status = np.full(len(ok_pos), "new", dtype=object)
        versions = np.ones(len(ok_pos), dtype=np.int64)
        if len(cur):
            in_cur = unit.index.isin(cur.index)
            if in_cur.any():
                c = cur.loc[unit.index[in_cur]]
                same = c[st.ROW_HASH].to_numpy(dtype=np.int64) == unit_signed[in_cur]
                if self.roster:
                    # a file with the roster is the same only if the roster is the same too; a file without
                    # one (main table only) leaves the stored roster as it is
                    rh = pd.array(c[st.ROSTER_HASH], dtype="Int64")
                    present = ~rh.isna()
                    same &= present & (rh.fillna(0).to_numpy(dtype=np.int64) == roster_signed[in_cur])
                mine = c["import_id"].to_numpy() == self.import_id
                st_sub = np.where(same, "dup", np.where(mine, "conflict", "supersede"))
                status[in_cur] = st_sub
                versions[in_cur] = c[st.VERSION].to_numpy(dtype=np.int64) + 1
                for p, fr, s in zip(np.flatnonzero(in_cur), c[ROW].to_numpy(), st_sub):
                    if s == "conflict":
                        row_no = int(out.rows[ok_pos[p]])
                        key = unit.index[p]
                        extra_issues.append(_new_issue(
                            self.file, "main", row_no, key, self.key, "duplicate", "同一户重复出现", key,
                            f"此户在本文件第 {int(fr)} 行已出现，且内容不同", "同一户只保留一行：删除错误的那一行，或改正录错的编码"))
        conflict_keys = set(unit.index[status == "conflict"])
        dup_keys = set(unit.index[status == "dup"])
        sup_keys = list(unit.index[status == "supersede"])
        store_mask = (status == "new") | (status == "supersede")
        store_pos = ok_pos[store_mask]

        # supersede the earlier versions (and their rosters)
        if sup_keys:
            st.supersede_rows(self.con, found[found["_key"].isin(sup_keys)], self.import_id)
            if self.kind == "households" and self.roster:
                st.supersede(self.con, "persons", sup_keys, self.import_id)
            self.r.superseded += len(sup_keys)

        # accepted main rows: the checked chunk's error-free rows come serialised (a segment, every row version
        # 1); when some are not stored (exact repeats, conflicts) or are new versions, it is made again
        if len(store_pos):
            if len(store_pos) == len(ok_pos) and not sup_keys:
                st.write_blob(self.con, self.import_id, self.kind, self.instrument, out.ok_blob, len(ok_pos),
                              out.ok_keys)
            else:
                frame = st.from_blob(out.ok_blob).iloc[np.flatnonzero(store_mask)].reset_index(drop=True)
                frame[st.VERSION] = versions[store_mask]
                st.write_segment(self.con, self.import_id, self.kind, self.instrument, frame)
        self._count("main", accepted=len(store_pos), duplicates_skipped=int((status == "dup").sum()))

        # quarantined main rows: errors + in-file conflicts
        q_mask = main_err.copy()
        if conflict_keys:
            q_mask[ok_pos[status == "conflict"]] = True
        # the reasons by row, worked out only when a row is held back (most chunks have none)
        all_issues = pd.concat([issues, pd.DataFrame(extra_issues, columns=issues.columns)], ignore_index=True) \
            if extra_issues else issues
        reasons = functools.cache(lambda: _reasons_by_row(all_issues))
        self._quarantine(raw, pd.DataFrame({ROW: out.rows}), np.flatnonzero(q_mask), keys, "main",
                         self.src.main_name, reasons)
        self._count("main", quarantined=int(q_mask.sum()))

        # roster rows follow their household
        version_of = pd.Series(versions[store_mask], index=keys.iloc[store_pos].to_numpy())
        for g, f in rtyped.items():
            gk = rkeys[g]
            err = rerr[g]
            in_store = gk.isin(version_of.index).to_numpy() & ~err
            in_dup = gk.isin(dup_keys).to_numpy() & ~err
            q = ~(in_store | in_dup)
            label = reps[g]["label"]
            if in_store.any():
                gvars = [c for c in self.cb.repeats[g].variables if c in f.columns]
                keep = [ROW] + gvars + ([USER_MISSING] if USER_MISSING in f.columns else [])
                pos = np.flatnonzero(in_store)
                frame = st.with_meta(f.iloc[pos][keep], member_hash[g][pos],
                                     version_of.reindex(gk.iloc[pos].to_numpy()).to_numpy())
                st.write_segment(self.con, self.import_id, "persons", self.instrument, frame)
            qpos = np.flatnonzero(q)
            if len(qpos):
                extra = {}
                for p in qpos:
                    k = gk.iloc[p]
                    if k in conflict_keys:
                        extra[p] = [{"rule": "duplicate", "rule_zh": "同一户重复出现", "field": self.key,
                                     "value": k, "message_zh": "所属的户在本文件中重复出现且内容不同，整户隔离",
                                     "fix_zh": "同一户只保留一份记录后重新导入"}]
                self._quarantine(rep_in[g], f, qpos, gk, g, label, reasons, extra)
            self._count(g, accepted=int(in_store.sum()), duplicates_skipped=int(in_dup.sum()),
                        quarantined=int(q.sum()))

        self._store_issues(all_issues)
        self._tick("store", t0)

    def _tick(self, what: str, since: float) -> float:
        now = time.perf_counter()
        self.r.timings[what] = self.r.timings.get(what, 0.0) + (now - since)
        return now

    def _quarantine(self, raw, typed, positions, keys, sheet, label, reasons, extra=None) -> None:
        """reasons: {(sheet, row): [reason]}, or a function giving it."""
        if len(positions) == 0:
            return
        if callable(reasons):
            reasons = reasons()
        if isinstance(raw, _RefRows):
            payloads = raw.payloads(positions)
        else:
            src = raw if len(raw) == len(typed) else typed
            payloads = st.json_payload(src, positions)
        rows = typed[ROW].to_numpy()
        out = []
        for p, payload in zip(positions, payloads):
            row = int(rows[p])
            rs = list(reasons.get((sheet, row), [])) + list(reasons.get((sheet, None), []))
            if extra and p in extra:
                rs += extra[p]
            if not rs:
                rs = [{"rule": "household_error", "rule_zh": "同户有错误", "field": None, "value": None,
                       "message_zh": "同一户的其他行（主表或成员表）有错误，整户隔离",
                       "fix_zh": "改正该户标出的错误后重新导入整户"}]
            out.append((self.import_id, label if label in self.paired.values() else
                        self.file if sheet == "main" and label == self.src.main_name else
                        f"{self.file}:{label}" if label != self.file else self.file, label, row,
                        keys.iloc[p] or None, self.instrument, payload, json.dumps(rs, ensure_ascii=False)))
        self.con.executemany("INSERT INTO quarantine (import_id, file, sheet, row, key, instrument, payload, reasons)"
                             " VALUES (?,?,?,?,?,?,?,?)", out)

    def _orphans(self, gname, rp, positions) -> None:
        frame, group = rp["frame"], rp["group"]
        parent = group.key[0]
        keys = _key_text(frame[parent]) if parent in frame.columns else pd.Series([""] * len(frame), dtype=object)
        msg = f"{group.label_zh}中的这一行所属的户不在本文件的主表中"
        fix = "核对户编码（或 PARENT_KEY / interview__id）；或把该户的主表记录一起导入"
        issues = []
        for p in positions:
            issues.append(_new_issue(self.file, gname, int(frame[ROW].iloc[p]), keys.iloc[p] or "", parent,
                                     "orphan_member", "成员所在的户不在本文件中", keys.iloc[p] or "", msg, fix))
        issues = pd.DataFrame(issues, columns=st.ISSUE_COLUMNS)
        reasons = _reasons_by_row(issues)
        self._quarantine(frame, frame, positions, keys, gname, rp["label"], reasons)
        self._count(gname, quarantined=len(positions))
        self._store_issues(issues)

    def _store_issues(self, issues: pd.DataFrame) -> None:
        if issues is None or issues.empty:
            return
        sev = issues["severity"].astype(str)
        self.r.errors += int((sev == "error").sum())
        self.r.warnings += int((sev == "warning").sum())
        if self.paired:   # a roster from its own file: its problems name that file (rows are that file's rows)
            issues = issues.copy()
            sheet = issues["sheet"].astype(object)
            for g, fname in self.paired.items():
                mine = (sheet == g).to_numpy()
                issues.loc[mine, "file"] = fname
                c = self.issue_counts.setdefault(g, [0, 0])
                c[0] += int((mine & (sev == "error").to_numpy()).sum())
                c[1] += int((mine & (sev == "warning").to_numpy()).sum())
        st.insert_issues(self.con, self.import_id, issues)

    def _finish(self) -> None:
        r = self.r
        for c in self.counts.values():
            r.rows_in += c["rows_in"]
            r.accepted += c["accepted"]
            r.quarantined += c["quarantined"]
            r.duplicates_skipped += c["duplicates_skipped"]
        r.tables = dict(sorted(self.counts.items(), key=lambda kv: kv[0] != "main"))
        if not r.reconciles:  # pragma: no cover - a bug: refuse to commit a file whose rows do not add up
            raise RuntimeError(f"reconciliation failed for {r.file}: {r.reconciliation()} ({self.counts})")


@dataclass
class _ChunkContext:
    """What checking a chunk needs besides the chunk: picklable, sent once to each worker process."""
    cb: object
    key: str
    main_vars: list
    sample_ids: set | None
    reserve_ids: set | None
    config: dict
    file: str
    kind: str
    roster: bool


@dataclass
class _Checked:
    """A chunk validated and hashed (the part of an import that needs no database)."""
    rows: np.ndarray = None               # the file row of every row of the chunk
    main_err: np.ndarray = None
    issues: pd.DataFrame = None
    keys: pd.Series = None
    rtyped: dict = None
    rerr: dict = None
    rkeys: dict = None
    unit_hash: np.ndarray = None          # per accepted-candidate row (~main_err), in order
    member_hash: dict = None              # per repeat row
    roster_hash: np.ndarray = None        # per accepted-candidate row: its roster's content
    ok_blob: bytes | None = None          # the accepted-candidate rows (typed) as a store segment
    ok_keys: object = None                # their st.KeyIndex
    seconds: float = 0.0
    failure: tuple | None = None          # (message, column, fix) of a CodebookError
    # checked from a ref (the raw rows stay where they were loaded):
    rows_in: int = 0                      # rows read (empty rows and exact repeats included)
    empty_rows: int = 0
    exact_repeats: int = 0
    payloads: dict | None = None          # {position: raw row as JSON} of the rows with an error
    read_seconds: float = 0.0             # loading it, where it was checked


def _drop_empty(chunk: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The chunk without its rows that hold no answer at all, and how many those were."""
    empty = _blank_rows(chunk)
    if not empty.any():
        return chunk, 0
    return chunk[~empty].reset_index(drop=True), int(empty.sum())


def _blank_rows(chunk: pd.DataFrame) -> np.ndarray:
    """Rows that hold no answer at all: every cell missing or blank (SPSS pads text with spaces)."""
    data_cols = [c for c in chunk.columns if not str(c).startswith("_")]
    empty = np.ones(len(chunk), dtype=bool)
    for c in data_cols:       # column by column, on the rows still blank: after the first one, hardly any
        idx = np.flatnonzero(empty)
        if not len(idx):
            break
        s = chunk[c] if len(idx) == len(chunk) else chunk[c].iloc[idx]
        blank = s.isna().to_numpy()
        if s.dtype.kind not in "biufcmM" and not blank.all():
            blank = blank | s.astype("string").str.strip().eq("").fillna(True).to_numpy(dtype=bool)
        empty[idx] = blank
    return empty


def _exact_repeats(raw: pd.DataFrame, key: str, main_vars, want_keys: bool = True):
    """Which rows repeat an earlier row of the chunk exactly (same key, same answers): those are skipped and
    counted. Returns (the rows' keys as text, or None when not wanted, the mask)."""
    if not want_keys and key in raw.columns:
        arr = getattr(raw[key].array, "_pa_array", None)
        if arr is not None:
            import pyarrow.compute as pc
            # the usual chunk has no key twice: told from the distinct count, without keys as Python text
            if pc.count_distinct(pc.utf8_trim_whitespace(arr), mode="all").as_py() == len(raw):
                return None, np.zeros(len(raw), dtype=bool)
    keys_raw = _key_text(raw[key]) if key in raw.columns else pd.Series([""] * len(raw), dtype=object)
    dup_key = keys_raw.duplicated(keep=False).to_numpy() & (keys_raw != "").to_numpy()
    drop = np.zeros(len(raw), dtype=bool)
    if dup_key.any():
        cols = [c for c in main_vars if c in raw.columns]
        sub = raw.loc[dup_key, cols].astype("string")
        drop[np.flatnonzero(dup_key)] = sub.duplicated(keep="first").to_numpy()
    return keys_raw, drop


def _ref_rows(ctx: "_ChunkContext", ref) -> tuple[pd.DataFrame, int, int, int]:
    """A ref's chunk as the importer checks it: (rows, rows read, empty rows, exact repeats)."""
    chunk = ref.load()
    n = len(chunk)
    chunk, empty = _drop_empty(chunk)
    _, drop = _exact_repeats(chunk, ctx.key, ctx.main_vars, want_keys=False)
    if drop.any():
        chunk = chunk[~drop].reset_index(drop=True)
    return chunk.drop(columns=[c for c in (LINK,) if c in chunk.columns]), n - empty, empty, int(drop.sum())


def _check_ref(ctx: "_ChunkContext", ref) -> "_Checked":
    """Load, prepare and check one ref: only the result travels back, never the chunk."""
    t0 = time.perf_counter()
    raw, n, empty, repeats = _ref_rows(ctx, ref)
    read = time.perf_counter() - t0
    out = _validate_chunk(ctx, raw, {}) if len(raw) else _Checked(rows=np.zeros(0, np.int64))
    out.read_seconds = read
    out.rows_in, out.empty_rows, out.exact_repeats = n, empty, repeats
    if out.failure is None and len(raw):
        err = np.flatnonzero(out.main_err)
        out.payloads = dict(zip(err.tolist(), st.json_payload(raw, err))) if len(err) else {}
    return out


class _Preloaded:
    """A ref whose chunk this process has read already (the first one, read to tell the instrument)."""

    def __init__(self, ref, frame: pd.DataFrame):
        self.ref, self.frame = ref, frame

    def load(self) -> pd.DataFrame:
        if self.frame is None:
            return self.ref.load()
        frame, self.frame = self.frame, None
        return frame


class _RefRows:
    """The raw rows of a chunk checked from a ref: the payloads of its rows with an error came back with the
    check; any other row to quarantine (a key met in an earlier chunk) is read again from the file."""

    def __init__(self, ref, ctx: "_ChunkContext", payloads: dict):
        self.ref, self.ctx, self.known = ref, ctx, payloads

    def payloads(self, positions) -> list[str]:
        missing = [int(p) for p in positions if int(p) not in self.known]
        if missing:
            raw = _ref_rows(self.ctx, self.ref)[0]
            self.known = {**self.known, **dict(zip(missing, st.json_payload(raw, missing)))}
        return [self.known[int(p)] for p in positions]


def _validate_chunk(ctx: _ChunkContext, main_in: pd.DataFrame, rep_in: dict) -> _Checked:
    """Validate one chunk and hash its rows: pure, so it may run in a worker process."""
    from .validate import validate

    t0 = time.perf_counter()
    cb = ctx.cb
    try:
        res = validate(cb, main_in, repeats=rep_in, sample_ids=ctx.sample_ids, reserve_ids=ctx.reserve_ids,
                       config=ctx.config, file=ctx.file)
    except CodebookError as exc:
        # returned, not raised: the caller turns it into the import's error (naming the file)
        return _Checked(failure=(exc.message, exc.column, exc.fix))
    typed = res.main.reset_index(drop=True)
    main_err = np.asarray(res.main_errors, dtype=bool) if res.main_errors is not None \
        else np.zeros(len(typed), bool)
    keys = _key_text(typed[ctx.key])
    rtyped = {g: res.repeats[g].reset_index(drop=True) for g in rep_in if g in res.repeats}
    rerr = {g: np.asarray(res.repeat_errors.get(g, np.zeros(len(rtyped[g]), bool)), dtype=bool) for g in rtyped}
    rkeys = {g: _key_text(rtyped[g][cb.repeats[g].key[0]]) for g in rtyped}

    ok_pos = np.flatnonzero(~main_err)
    hash_cols = [c for c in ctx.main_vars if c in typed.columns] + \
        ([USER_MISSING] if USER_MISSING in typed.columns else [])
    h = st.row_hashes(typed.iloc[ok_pos], hash_cols) if len(ok_pos) else np.zeros(0, np.uint64)
    unit_keys = keys.iloc[ok_pos].to_numpy()
    member_hash = {}
    # the roster's content per household: an order-free sum of its rows' hashes (wrapping uint64)
    roster_u = np.full(len(ok_pos), np.uint64(st.hash_text("roster")), dtype=np.uint64)
    for g, f in rtyped.items():
        gvars = [c for c in cb.repeats[g].variables if c in f.columns]
        if USER_MISSING in f.columns:
            gvars.append(USER_MISSING)
        mh = st.row_hashes(f, gvars) if len(f) else np.zeros(0, np.uint64)
        member_hash[g] = mh
        if len(f) and len(roster_u):
            codes, uniq = pd.factorize(rkeys[g].to_numpy())
            sums = np.zeros(len(uniq), dtype=np.uint64)
            with np.errstate(over="ignore"):
                np.add.at(sums, codes, mh * np.uint64(0x9E3779B97F4A7C15))
            where = pd.Index(uniq).get_indexer(unit_keys)
            add = np.where(where >= 0, sums[np.clip(where, 0, None)], np.uint64(0)).astype(np.uint64)
            with np.errstate(over="ignore"):
                roster_u = (roster_u ^ (add + np.uint64(st.hash_text(g)))) * np.uint64(1099511628211)
    keep_cols = [ROW] + [c for c in ctx.main_vars if c in typed.columns] + \
        ([USER_MISSING] if USER_MISSING in typed.columns else [])
    ok_blob, ok_keys = None, None
    if len(ok_pos):
        seg = st.with_meta(typed.iloc[ok_pos][keep_cols], h, 1, roster_u if ctx.roster else None,
                           households=ctx.kind == "households")
        ok_blob, ok_keys = st.to_blob(seg), st.KeyIndex.of(unit_keys)
    return _Checked(rows=typed[ROW].to_numpy(dtype="int64"), main_err=main_err, issues=res.issues.copy(), keys=keys,
                    rtyped=rtyped, rerr=rerr, rkeys=rkeys, unit_hash=h, member_hash=member_hash,
                    roster_hash=roster_u, ok_blob=ok_blob, ok_keys=ok_keys, seconds=time.perf_counter() - t0)


_WORKER_CONTEXT: _ChunkContext | None = None


def _init_worker(ctx: _ChunkContext) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = ctx


def _in_worker(name: str, args):
    return globals()[name](_WORKER_CONTEXT, *args)


def _with_last(items):
    """(item, is_last) pairs: one item read ahead."""
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


class _Job:
    """One chunk's check: run by a worker process, or here (when there is no worker, or when this process
    takes back a job no worker has been given yet)."""

    def __init__(self, fn: str, args: tuple):
        self.fn, self.args = fn, args           # fn: the name of a function of this module
        self.future = None           # set when a worker is given the job
        self.value, self.has_value = None, False

    def ready(self) -> bool:
        return self.has_value or (self.future is not None and self.future.done())

    def run_here(self, ctx) -> None:
        self.value, self.has_value = globals()[self.fn](ctx, *self.args), True
        self.args = None

    def result(self, pool: "_ChunkPool"):
        if not self.has_value:
            if pool.claim(self):
                self.run_here(pool.ctx)
            else:
                self.value, self.has_value = self.future.result(), True
                self.args = self.future = None
        return self.value


class _ChunkPool:
    """Checks chunks: a file's only chunk in this process (most files are one chunk: no process to start);
    otherwise ``workers - 1`` worker processes are each given one chunk at a time, in file order, and this
    process, between reading chunks, checks one itself whenever more are waiting than the workers need next, or
    when the chunk to store next is not checked yet: the work shares out by itself, and no worker is left with a
    queue at the end. ``depth``: how many chunks may be in flight (bounds memory)."""

    def __init__(self, ctx: _ChunkContext, workers: int | None):
        self.ctx = ctx
        # measured on 2 cores, 1M-row SAV: one worker beside this process is best; two workers oversubscribe
        self.workers = max(1, workers if workers is not None else min(3, os.cpu_count() or 1)) if _may_fork() else 1
        self.depth = 3 * self.workers + 1
        self.pool = None
        self.submitted = 0
        self.queue = collections.deque()     # jobs no one has taken yet
        self.mine = collections.deque()      # jobs kept for this process, not run yet
        self.busy = 0                        # jobs the workers hold
        self.lock = threading.RLock()        # the pool's result thread gives workers their next job
        self.closed = False

    def submit(self, fn: str, args: tuple, alone: bool = False, here: bool = False) -> _Job:
        """A job of fn(ctx, *args), fn named (a function of this module: it travels to a worker as a word).
        here: kept for this process (its input is here already)."""
        self.submitted += 1
        job = _Job(fn, args)
        if self.workers == 1 or alone:
            return job
        if here:
            self.mine.append(job)
            return job
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # fork: workers start at once with the modules loaded, and a user's script needs no __main__ guard.
            # This process holds an SQLite write transaction; the workers never touch the connection (SQLite
            # only forbids using a connection across fork), and they are all forked before the pool's thread.
            self.pool = ProcessPoolExecutor(self.workers - 1, mp_context=multiprocessing.get_context("fork"),
                                            initializer=_init_worker, initargs=(self.ctx,))
        with self.lock:
            self.queue.append(job)
            self._feed()
        return job

    def _feed(self) -> None:
        with self.lock:
            while self.busy < self.workers - 1 and self.queue:
                job = self.queue.popleft()
                self.busy += 1
                job.future = self.pool.submit(_in_worker, job.fn, job.args)
                job.future.add_done_callback(self._done)

    def _done(self, _future) -> None:
        with self.lock:
            self.busy -= 1
            if not self.closed:
                # a broken pool (a worker died) takes no more jobs: the ones left are checked here, or the
                # broken job's result tells the import
                with contextlib.suppress(BrokenProcessPool, RuntimeError):
                    self._feed()

    def claim(self, job: _Job) -> bool:
        """Take a job no worker has been given, to run it here (True); False when a worker has it."""
        with self.lock:
            if job.future is not None:
                return False
            for q in (self.mine, self.queue):
                with contextlib.suppress(ValueError):
                    q.remove(job)
            return True

    def take_back_one(self, spare_only: bool = False) -> bool:
        """Check here a chunk no worker has been given (one kept for this process first, else the first
        waiting); False when there is none. spare_only: only while a chunk would still be waiting for the
        workers afterwards, so that checking here never leaves them without work."""
        with self.lock:
            if self.mine and (not spare_only or self.queue):
                job = self.mine.popleft()
            elif len(self.queue) > (1 if spare_only else 0):
                job = self.queue.popleft()
            else:
                return False
        job.run_here(self.ctx)
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.closed = True
            self.queue.clear()
            self.mine.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return False


class _SharedChunks:
    """Chunks known in advance (refs of a file read out of order), checked by this process and ``workers - 1``
    worker processes, each claiming the next unclaimed chunk whenever it is free: nothing is handed over, so no
    process waits for a job or is left with a queue at the end, and no chunk crosses processes (each reads its
    own). This process takes the first chunk (read already) and stores the results in file order; at most
    ``depth`` chunks are claimed and not yet stored (bounds memory). Use it in a ``with`` block: the workers
    start on entry and are ended on exit, whatever happened."""

    def __init__(self, ctx: _ChunkContext, refs: list, workers: int, depth: int):
        self.ctx, self.refs, self.workers, self.depth = ctx, refs, workers, depth
        self.results = {}
        self.inbox = queue.SimpleQueue()            # (chunk, result) from the workers, as they come
        self.procs, self.threads = [], []
        self.alive = 0

    def __enter__(self):
        import multiprocessing

        mp = multiprocessing.get_context("fork")   # workers inherit ctx and refs: nothing is pickled to them
        self.next = mp.Value("q", 1)                # chunk 0 is this process's
        self.slots = mp.Semaphore(self.depth)
        self.slots.acquire()
        try:
            for _ in range(self.workers - 1):
                recv, send = mp.Pipe(duplex=False)
                proc = mp.Process(target=_claiming_worker, args=(self.ctx, self.refs, self.next, self.slots, send),
                                  daemon=True)
                proc.start()
                send.close()
                self.procs.append((proc, recv))
            # a thread per worker takes each result off its pipe at once: a worker never waits for this process
            # to read (started once every worker is forked)
            for proc, recv in self.procs:
                thread = threading.Thread(target=self._pump, args=(recv, proc), daemon=True)
                thread.start()
                self.threads.append(thread)
        except BaseException:
            self.__exit__()
            raise
        self.alive = len(self.procs)
        return self

    def _pump(self, conn, proc) -> None:
        try:
            while True:
                self.inbox.put(conn.recv())
        except (EOFError, OSError):    # the worker has finished (nothing left to claim), or it died
            proc.join()
            self.inbox.put((None, proc.exitcode))
        except BaseException as exc:   # a result that cannot be read back: the import must not wait for it
            self.inbox.put((None, exc))

    def _claim(self) -> int | None:
        if not self.slots.acquire(False):
            return None
        lock = self.next.get_lock()
        while not lock.acquire(timeout=1.0):       # a worker killed holding the lock never lets go of it
            if any(p.exitcode not in (None, 0) for p, _ in self.procs):
                raise BrokenProcessPool("a worker process died")
        try:
            i = self.next.value
            self.next.value = i + 1
        finally:
            lock.release()
        if i >= len(self.refs):
            self.slots.release()
            return None
        return i

    def _receive(self, block: bool) -> None:
        while True:
            try:
                i, out = self.inbox.get(block)
            except queue.Empty:
                return
            block = False
            if i is None:             # a worker has ended: with nothing left to claim (0), or it died
                self.alive -= 1
                if isinstance(out, BaseException):
                    raise out
                if out != 0:
                    raise BrokenProcessPool(f"a worker process exited with {out}")
            elif isinstance(out, BaseException):
                raise out
            else:
                self.results[i] = out

    def in_order(self):
        """(ref, checked chunk) in file order; a chunk's slot is freed once the caller has stored it."""
        self.results[0] = _check_ref(self.ctx, self.refs[0])
        for k in range(len(self.refs)):
            while k not in self.results:
                self._receive(block=False)
                if k in self.results:
                    break
                i = self._claim()
                if i is not None:
                    self.results[i] = _check_ref(self.ctx, self.refs[i])
                elif not self.alive:
                    raise BrokenProcessPool("a chunk was claimed by a worker that is gone")
                else:
                    self._receive(block=True)
            yield self.refs[k], self.results.pop(k)
            self.slots.release()

    def __exit__(self, *exc):
        for proc, _ in self.procs:
            if proc.is_alive():
                proc.terminate()
        for (proc, conn), thread in zip(self.procs, self.threads + [None] * len(self.procs)):
            proc.join()
            if thread is not None:
                thread.join()
            conn.close()
        return False


def _claiming_worker(ctx: _ChunkContext, refs: list, nxt, slots, conn) -> None:
    """A worker process of _SharedChunks: claim the next chunk, check it, send the result; until none is left."""
    while True:
        slots.acquire()
        with nxt.get_lock():
            i = nxt.value
            nxt.value = i + 1
        if i >= len(refs):
            slots.release()
            break
        try:
            out = _check_ref(ctx, refs[i])
        except Exception as exc:      # a user error (picklable), or a bug: told to the importing process
            try:
                pickle.loads(pickle.dumps(exc))
            except Exception:
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            conn.send((i, exc))
            break
        conn.send((i, out))
    conn.close()


def _worker_failed(path) -> ImportFileError:
    return ImportFileError("a validation worker process ended abruptly (out of memory, or killed); nothing of this "
                           "file was stored", code="worker_failed", file=path,
                           fix="import the file again with fewer worker processes (tpa import --workers 1), or free "
                               "memory first")


def _checked(out: _Checked, path) -> _Checked:
    if out.failure is not None:
        message, column, fix = out.failure
        raise ImportFileError(message, code="wrong_instrument", file=path, column=column, fix=fix)
    return out


# ================================================================================================ public API
def import_file(ws, path, *, instrument=None, encoding=None, progress=None,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, write_report: bool = True, roster=None,
                workers: int | None = None) -> ImportResult:
    """Import one file; raises ImportFileError (after logging the rejection) when it cannot be imported.

    workers: processes working on a file longer than one chunk, this one included (it reads and stores while
    workers - 1 others validate; default: the CPU count, at most 3; 1 = all in this process). The result does
    not depend on it.

    roster: (path, group name) of a roster file delivered apart from this household file (SPSS/Stata/CSV teams
    send hh.sav + members.sav); the two are imported as one unit (see import_files)."""
    path = Path(path)
    result = ImportResult(file=path.name, path=str(path))
    try:
        with bulk_allocation():
            _import(ws, path, result, instrument, encoding, progress, chunk_rows, roster, workers)
    except ImportFileError as exc:
        if exc.file is None:
            exc.file = str(path)
        result.status = "rejected"
        result.error = exc.to_dict()
        result.rows_in = result.accepted = result.quarantined = result.duplicates_skipped = 0
        result.errors, result.warnings, result.superseded = 1, 0, 0
        result.tables = {}
        result.import_id = _log_rejection(ws, result, str(exc))
        raise
    if write_report and result.status == "imported":
        _write_report(ws, result, instrument)
    return result


def import_files(ws, paths, *, instrument=None, encoding=None, progress=None,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, write_report: bool = True,
                 workers: int | None = None) -> list[ImportResult]:
    """Import several files, each in its own transaction. A file that cannot be imported gives a result with
    status 'rejected' and ``error`` (the ImportFileError as a dict); the others are imported regardless.

    instrument: a shipped instrument name or a codebook file (default: detected from the columns); encoding: of
    CSV/tab files (default: detected); progress: called as ``progress(file_name, rows_read_so_far)`` per chunk.

    Roster files: a file whose columns are a codebook's repeat group (members: household_id, member_no, name, ...)
    and not a main table is imported together with the household file of the same call whose household_ids it
    references (SPSS/Stata/CSV teams deliver hh.sav + members.sav). The pair is ONE unit: one transaction, one
    audit-log entry (under the household file; its sha256 is that of both files, so the same pair again is
    'unchanged' and a corrected members file is a new import), one validation report (roster problems name the
    members file and its row). Each file still gets its own result, which reconciles on its own: the household
    file's result counts its main table, the members file's result its roster rows (same import_id). A roster file
    without its household file is rejected (code roster_without_household)."""
    paths = list(paths)
    pairs, partner_of = _pair_rosters(paths, instrument, encoding) if len(paths) > 1 else ({}, {})
    out = []
    for p in paths:
        if p in partner_of:
            continue        # imported with its household file
        try:
            r = import_file(ws, p, instrument=instrument, encoding=encoding, progress=progress,
                            chunk_rows=chunk_rows, write_report=write_report, roster=pairs.get(p),
                            workers=workers)
            out.append(r)
            if p in pairs:
                out.append(_split_roster_result(r, pairs[p]))
        except ImportFileError as exc:
            out.append(_rejected_result(p, exc))
            if p in pairs:
                rp = pairs[p][0]
                err = ImportFileError(f"not imported: its household file {Path(p).name} was rejected ({exc})",
                                      code="household_file_rejected", file=rp,
                                      fix=f"correct {Path(p).name} and import the two files again together")
                out.append(_rejected_result(rp, err))
    return out


def _rejected_result(p, exc) -> ImportResult:
    res = ImportResult(file=Path(p).name, path=str(p), status="rejected", error=exc.to_dict(), errors=1)
    res.messages.append(str(exc))
    try:
        res.sha256 = _sha256(Path(p)) if Path(p).is_file() else None
        res.size = Path(p).stat().st_size if Path(p).is_file() else None
    except Exception:  # pragma: no cover
        pass
    return res


def _pair_rosters(paths, instrument, encoding):
    """({household path: (roster path, group name)}, {roster path: household path}) for the roster files of a call."""
    from .codebook import INSTRUMENTS, load_codebook
    try:
        cands = [load_codebook(instrument)] if instrument is not None else [load_codebook(n) for n in INSTRUMENTS]
    except CodebookError:
        return {}, {}
    from .readers import detect_format
    info = {}
    for p in paths:
        try:
            if detect_format(Path(p)) == "zip":     # ODK / Survey Solutions: the roster is inside already
                continue
            src = open_source(Path(p), encoding=encoding)
            try:
                cols = list(src.columns)
            finally:
                src.close()
        except Exception:   # unreadable: its own import will say why
            continue
        g = _roster_group(cands, cols)
        mains = [c for c in cands if _score(c, cols)[0] >= MATCH_THRESHOLD and c.key in cols]
        info[p] = ("roster", g) if g is not None else ("main", mains) if mains else None

    cache = {}

    def keys_of(p, column):
        if (p, column) not in cache:
            cache[(p, column)] = _read_keys(p, column)
        return cache[(p, column)]

    def _read_keys(p, column):
        src = open_source(Path(p), encoding=encoding)
        try:
            out = set()
            for chunk in src.iter_main(DEFAULT_CHUNK_ROWS):
                if column in chunk.columns:
                    out |= set(_key_text(chunk[column])) - {""}
            return out
        finally:
            src.close()

    pairs, partner_of = {}, {}
    for p, what in info.items():
        if not what or what[0] != "roster":
            continue
        cb, group = what[1]
        best, best_n = None, 0
        for q, other in info.items():
            if q == p or q in pairs or not other or other[0] != "main":
                continue
            cbs = [c for c in other[1] if group.name in c.repeats]
            if not cbs:
                continue
            try:
                n = len(keys_of(p, group.key[0]) & keys_of(q, cbs[0].key))
            except Exception:
                continue
            if n > best_n:
                best, best_n = q, n
        if best is not None:
            pairs[best] = (p, group.name)
            partner_of[p] = best
    return pairs, partner_of


def _split_roster_result(r: ImportResult, roster) -> ImportResult:
    """The members file's own result out of the pair's (its roster rows); the household file's keeps the rest."""
    rpath, gname = Path(roster[0]), roster[1]
    m = ImportResult(file=rpath.name, path=str(rpath), status=r.status, instrument=r.instrument,
                     import_id=r.import_id, report=r.report)
    try:
        m.sha256, m.size = _sha256(rpath), rpath.stat().st_size
    except OSError:  # pragma: no cover
        pass
    c = r.tables.pop(gname, None)
    if c is not None:
        m.tables = {gname: c}
        m.rows_in, m.accepted = c["rows_in"], c["accepted"]
        m.quarantined, m.duplicates_skipped = c["quarantined"], c["duplicates_skipped"]
        r.rows_in -= c["rows_in"]
        r.accepted -= c["accepted"]
        r.quarantined -= c["quarantined"]
        r.duplicates_skipped -= c["duplicates_skipped"]
    ec = getattr(r, "_roster_issues", {}).get(gname, [0, 0])
    m.errors, m.warnings = ec
    r.errors -= ec[0]
    r.warnings -= ec[1]
    m.format = getattr(r, "_roster_format", None)
    m.encoding = getattr(r, "_roster_encoding", None)
    m.messages.append(f"imported together with its household file {r.file} as one unit (import {r.import_id})")
    return m


def _import(ws, path: Path, result: ImportResult, instrument, encoding, progress, chunk_rows, roster=None,
            workers=None) -> None:
    from .readers import detect_format
    detect_format(path)   # existence, emptiness, kind: fails before anything else
    result.size = path.stat().st_size
    if roster is not None:
        detect_format(roster[0])
    _ensure_store(ws)
    # the file's hash is computed alongside the import; a file found to be imported already is then abandoned
    # (rolled back) and reported unchanged, whatever else was found wrong with it meanwhile
    hasher = _PendingHash(path, None if roster is None else Path(roster[0]))
    source = None
    try:
        source = open_source(path, encoding=encoding)
        t = time.perf_counter()
        # files read out of order (SAV) come as refs: each process checking a chunk loads it (see _SharedChunks)
        refs = source.chunk_refs(chunk_rows) if roster is None else None
        if refs is not None:
            plan = isinstance(refs, list)
            refs = iter(refs)
            first_ref = next(refs, None)
            first = first_ref.load() if first_ref is not None else None
        else:
            chunks = source.iter_main(chunk_rows)
            first = next(chunks, None)
        result.timings["read"] = time.perf_counter() - t
        if hasher.known(result) and (prior := _prior_import(ws, result.sha256)) is not None:
            raise _AlreadyImported(prior)
        result.format, result.encoding = source.format, source.encoding
        result.messages.extend(source.warnings)
        cb = choose_codebook(source.columns, source.head_rows, first, instrument, path, source.encoding)
        result.instrument = _instrument_name(cb)
        _label_warnings(cb, source, result)
        if roster is not None:
            _attach_roster(source, cb, Path(roster[0]), roster[1], encoding, chunk_rows, result)

        def all_chunks():
            if refs is not None:
                if first_ref is not None:
                    yield _Preloaded(first_ref, first)
                yield from refs
                return
            if first is not None:
                yield first
            while True:
                t = time.perf_counter()
                nxt = next(chunks, None)
                result.timings["read"] = result.timings.get("read", 0.0) + time.perf_counter() - t
                if nxt is None:
                    return
                yield nxt

        with _transaction(ws) as con:
            # the same file may have come in from another process meanwhile
            def check_hash(wait: bool = False) -> None:
                if hasher.known(result, wait) and not hasher.checked:
                    hasher.checked = True
                    if (again := _prior_import(ws, result.sha256, con)) is not None:
                        raise _AlreadyImported(again)

            check_hash()
            con.execute("PRAGMA cache_size = -32768")      # 32 MB: index pages of large imports
            cur = con.execute(
                "INSERT INTO audit_log (file, path, sha256, size, time, user, instrument, format, encoding, "
                "status) VALUES (?,?,?,?,?,?,?,?,?, 'importing')",
                (result.file, str(path.resolve()), result.sha256, result.size, _now(), _user(),
                 result.instrument, result.format, result.encoding))
            result.import_id = int(cur.lastrowid)
            job = _FileImport(ws, con, source, cb, result, progress, workers, after_chunk=check_hash)
            hint = getattr(source, "n_rows_hint", None)   # SAV/DTA know their size: no need to read ahead
            chunks_in = all_chunks()
            job.run(list(chunks_in) if refs is not None and plan else chunks_in,
                    None if hint is None else -(-hint // chunk_rows))
            check_hash(wait=True)
            result._roster_issues = job.issue_counts
            result.status = "imported"
            meta = {"value_labels": source.value_labels, "user_missing": source.user_missing,
                    "tables": result.tables}
            con.execute(
                "UPDATE audit_log SET sha256=?, rows_in=?, accepted=?, quarantined=?, duplicates_skipped=?, "
                "superseded=?, errors=?, warnings=?, status='imported', message=?, meta_json=? WHERE import_id=?",
                (result.sha256, result.rows_in, result.accepted, result.quarantined, result.duplicates_skipped,
                 result.superseded, result.errors, result.warnings, "; ".join(result.messages) or None,
                 json.dumps(meta, ensure_ascii=False, default=str), result.import_id))
    except _AlreadyImported as same:
        _reset_counts(result)
        _unchanged(ws, result, same.prior)
    except ImportFileError:
        # the same file again changes nothing, even asked for as another instrument or encoding
        if hasher.known(result, wait=True) and (prior := _prior_import(ws, result.sha256)) is not None:
            _reset_counts(result)
            _unchanged(ws, result, prior)
            return
        raise
    finally:
        if source is not None:
            source.close()
        hasher.close(result)


class _AlreadyImported(Exception):
    """The file's hash is that of a file imported before: the import is abandoned, nothing is stored."""

    def __init__(self, prior: dict):
        super().__init__("already imported")
        self.prior = prior


# Below this, hashing takes less time than starting a process to do it (0.1 s at ~700 MB/s).
_HASH_ALONGSIDE_BYTES = 64 << 20


class _PendingHash:
    """The sha256 of a file (and of its members file, when the two come as one unit), computed alongside the
    import by a forked process: a process, not a thread, so that no thread of ours is running when the import
    forks its workers. Where fork is not available it is computed at once."""

    def __init__(self, path: Path, roster: Path | None):
        import multiprocessing

        self.checked = False
        self.value = self.proc = self.conn = None
        size = path.stat().st_size + (roster.stat().st_size if roster is not None else 0)
        if size < _HASH_ALONGSIDE_BYTES or not _may_fork():
            self.value = _file_hash(path, roster)
            return
        mp = multiprocessing.get_context("fork")
        self.conn, send = mp.Pipe(duplex=False)
        self.proc = mp.Process(target=_hash_to, args=(path, roster, send), daemon=True)
        self.proc.start()
        send.close()

    def known(self, result: ImportResult, wait: bool = False) -> bool:
        """Whether the hash is known (waiting for it if asked); when it is, it is in result.sha256."""
        if self.value is None and self.conn is not None and (wait or self.conn.poll(0)):
            try:
                got = self.conn.recv()
            except EOFError:
                got = OSError("the process hashing the file ended without a result")
            self.conn.close()
            self.conn = None
            if isinstance(got, BaseException):
                raise got
            self.value = got
        if result.sha256 is None and self.value is not None:
            result.sha256 = self.value
        return result.sha256 is not None

    def close(self, result: ImportResult) -> None:
        with contextlib.suppress(Exception):     # for the audit log of a rejected file too
            self.known(result, wait=True)
        if self.proc is not None:
            self.proc.join()


def _may_fork() -> bool:
    """Whether this process may start others: fork exists here, and it is not itself a daemon (a worker of a
    caller's multiprocessing pool may not have children)."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def _file_hash(path: Path, roster: Path | None) -> str:
    sha = _sha256(path)
    if roster is None:
        return sha
    import hashlib
    return hashlib.sha256(f"{sha}+{_sha256(roster)}".encode()).hexdigest()


def _hash_to(path: Path, roster: Path | None, conn) -> None:
    try:
        conn.send(_file_hash(path, roster))
    except Exception as exc:
        conn.send(OSError(f"cannot hash {path}: {exc}"))
    conn.close()


def _reset_counts(result: ImportResult) -> None:
    result.rows_in = result.accepted = result.quarantined = result.duplicates_skipped = 0
    result.errors = result.warnings = result.superseded = 0
    result.tables, result.messages = {}, []


def _attach_roster(source, cb, rpath: Path, gname: str, encoding, chunk_rows, result) -> None:
    """Read the members file whole and hand it to the household file's import as its repeat table."""
    if gname not in cb.repeats:
        raise ImportFileError(f"{rpath.name} is a {gname} roster but {_instrument_name(cb)} has no such roster",
                              code="wrong_instrument", file=rpath,
                              fix="import the roster with the household file of the same questionnaire")
    rsrc = open_source(rpath, encoding=encoding)
    try:
        frames = list(rsrc.iter_main(chunk_rows))
        result._roster_format, result._roster_encoding = rsrc.format, rsrc.encoding
        result.messages.extend(f"{rpath.name}: {w}" for w in rsrc.warnings)
    finally:
        rsrc.close()
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[ROW])
    source.repeat_tables = dict(source.repeat_tables)
    source.repeat_tables[gname] = frame
    source.repeat_files = dict(source.repeat_files)
    source.repeat_files[gname] = rpath.name
    source.paired_repeats = {gname: rpath.name}
    result.messages.append(f"roster {gname} read from {rpath.name} ({len(frame):,} rows), imported with this file "
                           "as one unit")


def _prior_import(ws, sha: str, con=None):
    """The first import of a file with this hash ({import_id, rows_in, time}), or None; con: a connection to
    ask on (an open transaction), else one of its own."""
    own = con is None
    con = ws.connect() if own else con
    try:
        row = con.execute("SELECT import_id, rows_in, time FROM audit_log WHERE sha256 = ? AND status = 'imported' "
                          "ORDER BY import_id LIMIT 1", (sha,)).fetchone()
    finally:
        if own:
            con.close()
    return None if row is None else {"import_id": row[0], "rows_in": row[1], "time": row[2]}


def _unchanged(ws, result: ImportResult, prior: dict) -> None:
    result.status = "unchanged"
    result.rows_in = int(prior["rows_in"] or 0)
    result.duplicates_skipped = result.rows_in
    result.accepted = result.quarantined = 0
    result.messages.append(f"already imported as import {prior['import_id']} ({prior['time']}): nothing changed")
    with _transaction(ws) as con:
        cur = con.execute(
            "INSERT INTO audit_log (file, path, sha256, size, time, user, instrument, rows_in, accepted, quarantined,"
            " duplicates_skipped, superseded, errors, warnings, status, message) "
            "VALUES (?,?,?,?,?,?,(SELECT instrument FROM audit_log WHERE import_id=?),?,0,0,?,0,0,0,'unchanged',?)",
            (result.file, result.path, result.sha256, result.size, _now(), _user(), prior["import_id"],
             result.rows_in, result.rows_in, result.messages[-1]))
        result.import_id = int(cur.lastrowid)
        result.instrument = con.execute("SELECT instrument FROM audit_log WHERE import_id=?",
                                        (result.import_id,)).fetchone()[0]


def _log_rejection(ws, result: ImportResult, message: str):
    """The audit log records a rejected file; no data table changes."""
    try:
        _ensure_store(ws)
        with _transaction(ws) as con:
            cur = con.execute(
                "INSERT INTO audit_log (file, path, sha256, size, time, user, instrument, format, encoding, rows_in, "
                "accepted, quarantined, duplicates_skipped, superseded, errors, warnings, status, message) "
                "VALUES (?,?,?,?,?,?,?,?,?,0,0,0,0,0,1,0,'rejected',?)",
                (result.file, result.path, result.sha256, result.size, _now(), _user(), result.instrument,
                 result.format, result.encoding, message))
            return int(cur.lastrowid)
    except Exception:  # pragma: no cover - logging a rejection must never hide the rejection itself
        return None


def _label_warnings(cb, source, result: ImportResult) -> None:
    """SAV/DTA value labels that disagree with the codebook's choices (e.g. 1 = 未脱贫 where the codebook says
    1 = 已脱贫) are reported: the codes are kept, a person should look."""
    for var, labels in (source.value_labels or {}).items():
        v = cb.variables.get(var)
        if v is None or not v.choices:
            continue
        diff = [f"{code}={lab}" for code, lab in labels.items()
                if code in v.choices and str(lab).strip() != str(v.choices[code]).strip()]
        if diff:
            result.messages.append(f"value labels of {var} differ from the codebook ({', '.join(diff[:3])}); "
                                   "codes were kept as they are")


def validation_report_path(ws, file_name: str) -> Path:
    return ws.dir("imports") / f"{Path(file_name).stem}.validation.xlsx"


def _write_report(ws, result: ImportResult, instrument) -> None:
    try:
        from .codebook import load_codebook
        from .validation_report import write_validation_report
        issues = st.read_issues(ws, result.import_id).drop(columns=["import_id"])
        path = validation_report_path(ws, result.file)
        con = ws.connect()
        try:
            taken = con.execute("SELECT 1 FROM audit_log WHERE report = ? AND file <> ? LIMIT 1",
                                (str(path), result.file)).fetchone()
        finally:
            con.close()
        if taken:   # another file with the same stem (hh.csv / hh.xlsx): keep both reports
            path = ws.dir("imports") / f"{result.file}.validation.xlsx"
        cb = load_codebook(instrument) if instrument else load_codebook(result.instrument)
        write_validation_report(issues, path, file_name=result.file, codebook=cb,
                                counts={"rows": result.rows_in, "accepted": result.accepted,
                                        "quarantined": result.quarantined,
                                        "duplicates_skipped": result.duplicates_skipped})
        result.report = str(path)
        with _transaction(ws) as con:
            con.execute("UPDATE audit_log SET report = ? WHERE import_id = ?", (str(path), result.import_id))
    except Exception as exc:  # the data are committed; a report that cannot be written is a warning
        result.messages.append(f"the validation report could not be written: {type(exc).__name__}: {exc}")


# ================================================================================================ status
def import_status(ws) -> pd.DataFrame:
    """What has come in per county and village against the latest sample draw.

    One row per village (level 'village') and one per county (level 'county', village_code empty): sampled,
    reserves_drawn, interviewed (sampled households with a current questionnaire), reserves_used, completion_pct
    = (interviewed + reserves_used) / sampled, capped at 100, village_questionnaire (0/1), not_in_sample
    (households stored that are not in the draw). Without a draw: counts of what came in, sample columns empty."""
    hh = st.read_keys(ws, "households")[["household_id"]]
    vill = set(st.read_keys(ws, "villages")["village_code"])
    sample = None
    if ws.table_exists("draws") and ws.table_exists("sample_households"):
        d = ws.read_sql("SELECT draw_id FROM draws ORDER BY created DESC LIMIT 1")
        if len(d):
            sample = ws.read_sql("SELECT household_id, village_code, county_code, role FROM sample_households "
                                 "WHERE draw_id = ?", (d["draw_id"].iloc[0],))
    cols = ["level", "county_code", "village_code", "sampled", "reserves_drawn", "interviewed", "reserves_used",
            "completion_pct", "village_questionnaire", "not_in_sample"]
    if sample is None:
        if hh.empty:
            return pd.DataFrame(columns=cols)
        hh["county_code"] = hh["household_id"].str[:6]
        hh["village_code"] = hh["household_id"].str[:12]
        v = hh.groupby(["county_code", "village_code"]).size().rename("interviewed").reset_index()
        v["level"] = "village"
        for c in ("sampled", "reserves_drawn", "reserves_used", "completion_pct", "not_in_sample"):
            v[c] = pd.NA
        v["village_questionnaire"] = v["village_code"].isin(vill).astype(int)
        c = v.groupby("county_code", as_index=False)["interviewed"].sum()
        c["level"] = "county"
        c["village_code"] = ""
        c["village_questionnaire"] = v.groupby("county_code")["village_questionnaire"].sum().to_numpy()
        return pd.concat([v, c], ignore_index=True)[cols].sort_values(
            ["county_code", "level", "village_code"], ascending=[True, False, True]).reset_index(drop=True)
    sample = sample.copy()
    sample["household_id"] = sample["household_id"].astype(str)
    came = set(hh["household_id"]) if len(hh) else set()
    sample["in"] = sample["household_id"].isin(came)
    sample["is_sample"] = sample["role"] != "reserve"
    sample["is_reserve"] = ~sample["is_sample"]
    g = sample.groupby(["county_code", "village_code"])
    v = pd.DataFrame({
        "sampled": g["is_sample"].sum(), "reserves_drawn": g["is_reserve"].sum(),
        "interviewed": g.apply(lambda x: int((x["in"] & x["is_sample"]).sum()), include_groups=False),
        "reserves_used": g.apply(lambda x: int((x["in"] & x["is_reserve"]).sum()), include_groups=False),
    }).reset_index()
    stray = hh[~hh["household_id"].isin(set(sample["household_id"]))] if len(hh) else hh
    stray_by_v = stray["household_id"].str[:12].value_counts() if len(stray) else pd.Series(dtype=int)
    v["not_in_sample"] = v["village_code"].map(stray_by_v).fillna(0).astype(int)
    v["village_questionnaire"] = v["village_code"].isin(vill).astype(int)
    v["level"] = "village"
    c = v.groupby("county_code", as_index=False)[["sampled", "reserves_drawn", "interviewed", "reserves_used",
                                                   "village_questionnaire", "not_in_sample"]].sum()
    c["level"] = "county"
    c["village_code"] = ""
    out = pd.concat([v, c], ignore_index=True)
    done = out["interviewed"] + out["reserves_used"]
    out["completion_pct"] = np.where(out["sampled"] > 0, np.minimum(100.0, 100.0 * done / out["sampled"].clip(lower=1)),
                                     np.nan).round(1)
    for col in ("sampled", "reserves_drawn", "interviewed", "reserves_used", "village_questionnaire", "not_in_sample"):
        out[col] = out[col].astype(int)
    return out[cols].sort_values(["county_code", "level", "village_code"], ascending=[True, False, True]) \
        .reset_index(drop=True)
