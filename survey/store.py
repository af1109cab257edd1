"""The questionnaire store: accepted rows, quarantine, validation issues and the audit log of every import.

Tables (created here, CREATE TABLE IF NOT EXISTS):

- ``store_segments``: the accepted rows, one Arrow IPC blob per imported chunk and kind ('households', 'persons',
  'villages'). Column types survive exactly (codes stay text, Int64 stays Int64, datetimes stay datetimes). Besides
  the codebook's columns a segment holds, per row, ``_row`` (its row in the file), ``_row_hash`` (content hash),
  ``_version`` (1, 2, … per key) and for households ``_roster_hash`` (of its roster rows; null when the file had
  no roster). Per segment: ``keys`` (the 64-bit hashes of its rows' keys, in row order) and ``min_key`` /
  ``max_key``, so finding the stored rows of a set of keys reads only the segments that can hold them.
- ``superseded``: (segment_id, pos, by_import) of every row a later import replaced. Current rows are the rest.
- ``quarantine``: rejected rows with the values as read (``payload`` JSON) and their ``reasons`` (JSON list).
- ``issue_segments``: every validation problem of every import (survey.validate.ISSUE_COLUMNS), one Arrow blob
  per imported chunk (one SQLite row per problem cost more than finding it); read with read_issues.
- ``audit_log``: every import: file, sha256, size, time, user, instrument, counts, status
  ('imported' | 'unchanged' | 'rejected'), message, where the validation report went.

Why no index row per stored row: SQLite inserts cost ~5 µs a row here, more than reading and validating it; the
per-segment key hashes give the same lookups at a fraction of the cost (an import of 1M rows into an empty store
reads no segment at all).

A corrected file supersedes the earlier rows of the same households (and their rosters), which stay with their
history (``history=True``).
"""
from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import StoreError
from .readers.base import ROW

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    import_id INTEGER PRIMARY KEY AUTOINCREMENT, file TEXT NOT NULL, path TEXT, sha256 TEXT, size INTEGER,
    time TEXT, user TEXT, instrument TEXT, format TEXT, encoding TEXT, rows_in INTEGER, accepted INTEGER,
    quarantined INTEGER, duplicates_skipped INTEGER, superseded INTEGER, errors INTEGER, warnings INTEGER,
    status TEXT NOT NULL, message TEXT, report TEXT, meta_json TEXT);
CREATE INDEX IF NOT EXISTS audit_log_sha ON audit_log(sha256, status);
CREATE TABLE IF NOT EXISTS store_segments (
    segment_id INTEGER PRIMARY KEY AUTOINCREMENT, import_id INTEGER NOT NULL, kind TEXT NOT NULL,
    instrument TEXT, nrows INTEGER, min_key TEXT, max_key TEXT, keys BLOB, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS store_segments_kind ON store_segments(kind, min_key);
CREATE TABLE IF NOT EXISTS superseded (
    segment_id INTEGER NOT NULL, pos INTEGER NOT NULL, by_import INTEGER NOT NULL,
    PRIMARY KEY (segment_id, pos)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    import_id INTEGER NOT NULL, file TEXT, sheet TEXT, row INTEGER, key TEXT, instrument TEXT,
    payload TEXT, reasons TEXT);
CREATE INDEX IF NOT EXISTS quarantine_import ON quarantine(import_id);
CREATE TABLE IF NOT EXISTS issue_segments (
    segment_id INTEGER PRIMARY KEY AUTOINCREMENT, import_id INTEGER NOT NULL, nrows INTEGER, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS issue_segments_import ON issue_segments(import_id);
"""

# kind of stored row -> its key column
KEY_COLUMN = {"households": "household_id", "persons": "household_id", "villages": "village_code"}
DATA_TABLES = ("store_segments", "superseded", "quarantine", "issue_segments")
# per-row bookkeeping columns of a segment (not codebook variables)
ROW_HASH, ROSTER_HASH, VERSION = "_row_hash", "_roster_hash", "_version"
META_COLUMNS = (ROW_HASH, ROSTER_HASH, VERSION)
ISSUE_COLUMNS = ["file", "sheet", "row", "household_id", "field", "rule", "rule_zh", "severity", "value",
                 "message_zh", "fix_zh"]
AUDIT_COLUMNS = ["import_id", "file", "path", "sha256", "size", "time", "user", "instrument", "format", "encoding",
                 "rows_in", "accepted", "quarantined", "duplicates_skipped", "superseded", "errors", "warnings",
                 "status", "message", "report", "meta_json"]


def ensure_schema(con) -> None:
    """Create the store's tables (inside the caller's transaction)."""
    check_format(con)
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            con.execute(stmt)


def check_format(con) -> None:
    """Refuse a store written by tpa before November 2026 (one SQLite index row per stored row)."""
    old = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='households'").fetchone()
    if old:
        raise StoreError("this workspace's questionnaire store was written by an older tpa (one index row per "
                         "stored row) and this version cannot read it", code="store_format",
                         fix="make a new workspace (tpa init) and import the files again; the audit log of the "
                             "old one lists them (tpa import status, or the audit_log table)")


def ensure_store(ws) -> None:
    with ws.transaction() as con:
        ensure_schema(con)


# ------------------------------------------------------------------------------------------- hashing
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_MISSING_BITS = np.uint64(0x7FF8000000000001)      # what a missing number, time or text hashes as


def row_hashes(frame: pd.DataFrame, columns) -> np.ndarray:
    """A 64-bit content hash per row over ``columns`` (sorted by name: column order does not matter).

    Values are hashed as their typed content; missing values hash alike whatever their dtype."""
    n = len(frame)
    h = np.full(n, np.uint64(1469598103934665603), dtype=np.uint64)
    prime = np.uint64(1099511628211)
    with np.errstate(over="ignore"):
        for col in sorted(columns):
            if col not in frame.columns:
                continue
            s = frame[col]
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                # the instant as integer nanoseconds: formatting datetimes as text cost more than all else here
                v = s.dt.tz_convert(None) if getattr(s.dt, "tz", None) is not None else s
                bits = v.to_numpy(dtype="datetime64[ns]").view(np.int64).view(np.uint64).copy()
                bits[v.isna().to_numpy()] = _MISSING_BITS
                ch = _mix_bits(bits)
            elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                v = s.to_numpy(dtype="float64", na_value=np.nan)
                bits = (v + 0.0).view(np.uint64)       # a new array, and -0.0 + 0.0 is 0.0: equal numbers, equal bits
                nan = np.isnan(v)
                if nan.any():
                    bits[nan] = _MISSING_BITS
                ch = _mix_bits(bits)
            else:
                ch = text_hashes(s)
            ch ^= np.uint64(hash_text(col))
            h ^= ch
            h *= prime
    return h


def _mix_bits(bits: np.ndarray) -> np.ndarray:
    """pandas.util.hash_array of uint64 values (its splitmix64 finaliser), in place: written out here so that
    stored hashes cannot change with a pandas version, and without hash_array's copy."""
    bits ^= bits >> np.uint64(30)
    bits *= np.uint64(0xBF58476D1CE4E5B9)
    bits ^= bits >> np.uint64(27)
    bits *= np.uint64(0x94D049BB133111EB)
    bits ^= bits >> np.uint64(31)
    return bits


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _arrow_text(values):
    """``values`` (a Series, array or list of texts) as one Arrow large_string array (missing = null)."""
    import pyarrow as pa

    arr = getattr(getattr(values, "array", None), "_pa_array", None)
    if arr is None:
        obj = np.asarray(values, dtype=object)
        try:
            arr = pa.array(obj, type=pa.large_string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):         # not all text: numbers among codes, say
            arr = pa.array(pd.Series(obj).astype("str").to_numpy(dtype=object, na_value=None),
                           type=pa.large_string(), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return arr


def text_hashes(values) -> np.ndarray:
    """A 64-bit hash of each text (missing texts hash alike), computed on the UTF-8 bytes eight at a time.

    Hashing with pandas turns every text into a Python object first: for 100k distinct household IDs that cost
    five times more than this. A text of L bytes takes L // 8 + 1 steps, the last one over its remaining
    0–7 bytes (zero-padded); the empty text takes none."""
    arr = _arrow_text(values)
    n = len(arr)
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[arr.offset:arr.offset + n + 1] if n else np.zeros(1, np.int64)
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None and len(data) else np.zeros(0, np.uint8)
    start, lens = off[:-1], off[1:] - off[:-1]
    h = np.full(n, np.uint64(1469598103934665603), dtype=np.uint64) ^ lens.astype(np.uint64)
    steps = np.where(lens > 0, (lens >> 3) + 1, 0)
    nsteps = int(steps.max()) if n else 0
    if nsteps:
        base = int(off[0])
        pad = np.concatenate([raw[base:int(off[-1])], np.zeros(8, dtype=np.uint8)])
        start = start - base
    with np.errstate(over="ignore"):
        if nsteps and (lens == lens[0]).all():
            # Codes and IDs are mostly of one length: the texts then lie back to back, and each step's words
            # are a strided view of the bytes (no gathering; only the last, partial step is masked).
            width = int(lens[0])
            for j in range(nsteps):
                w = np.ndarray((n,), dtype=np.uint64, buffer=pad, offset=8 * j, strides=(width,))
                rest = width - 8 * j
                if rest < 8:
                    w = w & np.uint64((1 << (8 * rest)) - 1)
                h ^= w
                h *= _MIX
                h ^= h >> np.uint64(29)
        elif nsteps:
            # the (unaligned) 8 bytes starting at each byte, read as one little-endian word
            at = np.ndarray((len(pad) - 7,), dtype=np.uint64, buffer=pad, strides=(1,))
            rows = None                      # None: every row still takes this step
            for j in range(nsteps):
                if rows is None and not (steps > j).all():
                    rows = np.flatnonzero(steps > j)
                elif rows is not None:
                    rows = rows[steps[rows] > j]
                sel = slice(None) if rows is None else rows
                w = at[start[sel] + 8 * j]
                rest = lens[sel] - 8 * j
                short = rest < 8
                if short.any():
                    keep = (np.uint64(1) << (np.minimum(rest, 7).astype(np.uint64) * np.uint64(8))) - np.uint64(1)
                    w &= np.where(short, keep, _MASK)
                if rows is None:
                    h ^= w
                    h *= _MIX
                    h ^= h >> np.uint64(29)
                else:
                    x = h[rows] ^ w
                    x *= _MIX
                    x ^= x >> np.uint64(29)
                    h[rows] = x
        h ^= h >> np.uint64(32)
        h *= _MIX
        h ^= h >> np.uint64(29)
    if arr.null_count:
        h[arr.is_null().to_numpy(zero_copy_only=False)] = _MISSING_BITS
    return h


def hash_text(text: str) -> int:
    import hashlib
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def signed(u: np.ndarray) -> np.ndarray:
    """uint64 hashes as the signed 64-bit integers SQLite stores."""
    return np.asarray(u, dtype=np.uint64).view(np.int64)


# ------------------------------------------------------------------------------------------- segments
def to_blob(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_blob(blob: bytes) -> pd.DataFrame:
    import pyarrow as pa

    table = pa.ipc.open_file(pa.py_buffer(blob)).read_all()
    return table.to_pandas()


@dataclass
class KeyIndex:
    """What store_segments holds about a segment's keys."""
    hashes: bytes
    min_key: str | None
    max_key: str | None

    @classmethod
    def of(cls, keys) -> "KeyIndex":
        keys = np.asarray(keys, dtype=object)
        present = pd.Series(keys).dropna()          # hashes stay in row order: the segment's positions
        if present.empty:
            return cls(text_hashes(keys).tobytes(), None, None)
        return cls(text_hashes(keys).tobytes(), str(present.min()), str(present.max()))


def _missing_ints(n: int) -> pd.arrays.IntegerArray:
    """n missing Int64 values, as pd.array([None] * n, dtype="Int64") makes them (1 under the mask, which a
    stored blob holds) without a Python list of n Nones."""
    return pd.arrays.IntegerArray(np.ones(n, dtype=np.int64), np.ones(n, dtype=bool))


def with_meta(frame: pd.DataFrame, row_hash, version, roster_hash=None, *, households: bool = False) -> pd.DataFrame:
    """``frame`` with the per-row bookkeeping columns of a segment (signed 64-bit hashes as SQLite and Arrow
    hold them; ``_roster_hash`` only for households, null where the file had no roster)."""
    out = frame.reset_index(drop=True)            # a new frame: the caller's is left as it is
    out[ROW_HASH] = signed(np.asarray(row_hash, dtype=np.uint64))
    out[VERSION] = np.broadcast_to(np.asarray(version, dtype=np.int64), len(out)).copy()
    if households:
        if roster_hash is not None:
            out[ROSTER_HASH] = pd.array(signed(np.asarray(roster_hash, dtype=np.uint64)), dtype="Int64")
        else:
            out[ROSTER_HASH] = _missing_ints(len(out))
    return out


def write_segment(con, import_id: int, kind: str, instrument: str, frame: pd.DataFrame) -> int:
    """Store ``frame`` (made with with_meta) as one segment of ``kind``."""
    key = KEY_COLUMN[kind]
    return write_blob(con, import_id, kind, instrument, to_blob(frame), len(frame), KeyIndex.of(frame[key]))


def write_blob(con, import_id: int, kind: str, instrument: str, blob: bytes, nrows: int, keys: KeyIndex) -> int:
    """Store a segment already serialised with to_blob (a worker process made it)."""
    cur = con.execute("INSERT INTO store_segments (import_id, kind, instrument, nrows, min_key, max_key, keys, data) "
                      "VALUES (?,?,?,?,?,?,?,?)", (import_id, kind, instrument, int(nrows), keys.min_key,
                                                   keys.max_key, keys.hashes, blob))
    return int(cur.lastrowid)


def _read_columns(blob: bytes, columns) -> pd.DataFrame:
    """Only ``columns`` of a segment (the others are not decompressed)."""
    import pyarrow as pa

    reader = pa.ipc.open_file(pa.py_buffer(blob))
    names = reader.schema.names
    wanted = [names.index(c) for c in columns if c in names]
    reader = pa.ipc.open_file(pa.py_buffer(blob), options=pa.ipc.IpcReadOptions(included_fields=wanted))
    return reader.read_all().to_pandas()


def _superseded(con, segment_ids) -> pd.DataFrame:
    ids = [int(s) for s in segment_ids]
    if not ids:
        return pd.DataFrame(columns=["segment_id", "pos", "by_import"])
    rows = con.execute("SELECT segment_id, pos, by_import FROM superseded WHERE segment_id IN "
                       "(SELECT value FROM json_each(?))", (json.dumps(ids),)).fetchall()
    return pd.DataFrame(rows, columns=["segment_id", "pos", "by_import"])


def current_rows(con, kind: str, keys, columns=(ROW, ROW_HASH, ROSTER_HASH, VERSION), *,
                 index: KeyIndex | None = None) -> pd.DataFrame:
    """The current stored rows of ``kind`` whose key is one of ``keys``: ``_key``, ``segment_id``, ``pos``,
    ``import_id`` and ``columns``. Reads only the segments whose key range and key hashes can match.
    ``index``: the KeyIndex of ``keys`` when the caller has it (saves hashing them again)."""
    key = KEY_COLUMN[kind]
    names = ["_key", "segment_id", "pos", "import_id"] + list(columns)

    texts = functools.cache(
        lambda: pd.unique(pd.Series(np.asarray(keys, dtype=object)).dropna().astype(str).to_numpy()))
    if index is None:
        index = KeyIndex.of(texts())
    if index.min_key is None:
        return pd.DataFrame(columns=names)
    segs = con.execute("SELECT segment_id, import_id, keys FROM store_segments WHERE kind = ? AND min_key <= ? "
                       "AND max_key >= ? ORDER BY segment_id", (kind, index.max_key, index.min_key)).fetchall()
    if not segs:
        return pd.DataFrame(columns=names)
    wanted = np.sort(np.frombuffer(index.hashes, dtype=np.uint64))
    # a 4M-slot filter on the top 22 bits first: most segments share no key with the chunk, and testing a
    # segment's hashes there costs a tenth of a binary search
    shift = np.uint64(42)
    mark = np.zeros(1 << 22, dtype=bool)
    mark[wanted >> shift] = True
    hits = []
    for seg, imp, blob in segs:
        h = np.frombuffer(blob or b"", dtype=np.uint64)
        cand = np.flatnonzero(mark[h >> shift])
        if not len(cand):
            continue
        at = np.minimum(np.searchsorted(wanted, h[cand]), len(wanted) - 1)
        pos = cand[wanted[at] == h[cand]]
        if len(pos):
            hits.append((seg, imp, pos))
    if not hits:
        return pd.DataFrame(columns=names)
    import pyarrow as pa
    import pyarrow.compute as pc

    gone = _superseded(con, [h[0] for h in hits])
    gone = {seg: g["pos"].to_numpy(dtype=np.int64) for seg, g in gone.groupby("segment_id")} if len(gone) else {}
    key_set = pa.array(texts(), type=pa.string())
    parts = []
    for seg, imp, pos in hits:
        if seg in gone:
            pos = pos[~np.isin(pos, gone[seg])]
            if not len(pos):
                continue
        blob = con.execute("SELECT data FROM store_segments WHERE segment_id = ?", (seg,)).fetchone()[0]
        data = _read_columns(blob, [key, *columns]).iloc[pos]
        # a hash collision is not a match (compared in Arrow: pandas' isin on Arrow text goes value by value)
        texts_here = data[key].astype(str)
        found = pc.is_in(pa.array(texts_here, type=pa.string()), value_set=key_set).to_numpy(zero_copy_only=False)
        data = data[found]
        part = pd.DataFrame({"_key": texts_here[found].to_numpy(), "segment_id": seg,
                             "pos": data.index.to_numpy(dtype=np.int64), "import_id": imp})
        for c in columns:
            part[c] = data[c].to_numpy() if c in data.columns else None
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=names)
    return pd.concat(parts, ignore_index=True)[names]


def supersede(con, kind: str, keys, by_import: int) -> int:
    """Mark the current rows of ``kind`` with these keys as replaced by import ``by_import``; how many."""
    return supersede_rows(con, current_rows(con, kind, keys, columns=()), by_import)


def supersede_rows(con, rows: pd.DataFrame, by_import: int) -> int:
    """Mark stored rows (``segment_id``, ``pos``: as current_rows found them) as replaced by ``by_import``."""
    con.executemany("INSERT INTO superseded (segment_id, pos, by_import) VALUES (?,?,?)",
                    zip(rows["segment_id"].tolist(), rows["pos"].tolist(), [int(by_import)] * len(rows)))
    return len(rows)


# ------------------------------------------------------------------------------------------- reading
def _connect_read(ws):
    if not ws.table_exists("audit_log"):
        return None
    con = ws.connect()
    try:
        check_format(con)
    except BaseException:
        con.close()
        raise
    return con


def _segments(con, kind: str, *, instrument=None, import_id=None) -> list:
    where, params = ["kind = ?"], [kind]
    if instrument is not None:
        where.append("instrument = ?")
        params.append(instrument)
    if import_id is not None:
        where.append("import_id = ?")
        params.append(int(import_id))
    return con.execute("SELECT segment_id, import_id, instrument FROM store_segments WHERE " + " AND ".join(where)
                       + " ORDER BY import_id, segment_id", params).fetchall()


def _read_kind(ws, kind: str, *, history: bool = False, instrument=None, import_id=None,
               columns=None) -> pd.DataFrame:
    key = KEY_COLUMN[kind]
    empty = pd.DataFrame(columns=[key, "instrument", "import_id", "version"] + (["superseded_by"] if history else []))
    con = _connect_read(ws)
    if con is None:
        return empty
    parts = []
    try:
        segs = _segments(con, kind, instrument=instrument, import_id=import_id)
        gone = _superseded(con, [s[0] for s in segs])
        gone_by = {seg: g for seg, g in gone.groupby("segment_id")} if len(gone) else {}
        for seg, imp, instr in segs:
            blob = con.execute("SELECT data FROM store_segments WHERE segment_id = ?", (seg,)).fetchone()[0]
            data = from_blob(blob) if columns is None else _read_columns(blob, [key, VERSION, *columns])
            by = _missing_ints(len(data))
            g = gone_by.get(seg)
            if g is not None:
                by[g["pos"].to_numpy(dtype=np.int64)] = g["by_import"].to_numpy(dtype=np.int64)
            if not history and g is not None:
                keep = by.isna()
                data, by = data[keep].reset_index(drop=True), by[keep]
            if data.empty:
                continue
            version = data.pop(VERSION).to_numpy(dtype=np.int64)
            data = data.drop(columns=[ROW_HASH, ROSTER_HASH], errors="ignore")
            data["instrument"], data["import_id"], data["version"] = instr, imp, version
            if history:
                data["superseded_by"] = by
            parts.append(data)
    finally:
        con.close()
    if not parts:
        return empty
    return pd.concat(parts, ignore_index=True)


def read_keys(ws, kind: str, *, history: bool = False) -> pd.DataFrame:
    """The keys of the current rows of ``kind`` (every version with history=True) with ``import_id``, ``instrument``
    and ``version``: reads only the key column of each segment."""
    return _read_kind(ws, kind, history=history, columns=())


def read_households(ws, *, history: bool = False, instrument: str | None = None) -> pd.DataFrame:
    """Current household rows of both household instruments (codebook columns typed, plus ``instrument``,
    ``import_id``, ``version``, ``_row`` = the row in the file it came from). history=True: every version, with
    ``superseded_by``."""
    return _read_kind(ws, "households", history=history, instrument=instrument)


def read_persons(ws, *, history: bool = False, instrument: str | None = None) -> pd.DataFrame:
    """Current roster rows (persons) of the current households."""
    return _read_kind(ws, "persons", history=history, instrument=instrument)


def read_villages(ws, *, history: bool = False) -> pd.DataFrame:
    """Current village questionnaire rows."""
    return _read_kind(ws, "villages", history=history)


def insert_issues(con, import_id: int, issues: pd.DataFrame) -> None:
    """Append validation problems (ISSUE_COLUMNS) of an import."""
    if issues is None or issues.empty:
        return
    frame = pd.DataFrame({c: pd.array(issues[c], dtype="Int64" if c == "row" else "str") for c in ISSUE_COLUMNS})
    con.execute("INSERT INTO issue_segments (import_id, nrows, data) VALUES (?,?,?)",
                (int(import_id), len(frame), to_blob(frame)))


def read_imports(ws) -> pd.DataFrame:
    """The audit log: one row per import attempt (imported, unchanged or rejected)."""
    if not ws.table_exists("audit_log"):
        return pd.DataFrame(columns=AUDIT_COLUMNS)
    return ws.read_sql("SELECT * FROM audit_log ORDER BY import_id")


def read_quarantine(ws, import_id: int | None = None) -> pd.DataFrame:
    """Quarantined rows: payload and reasons as JSON text (json.loads them)."""
    if not ws.table_exists("quarantine"):
        return pd.DataFrame(columns=["import_id", "file", "sheet", "row", "key", "instrument", "payload", "reasons"])
    if import_id is None:
        return ws.read_sql("SELECT * FROM quarantine ORDER BY import_id, rowid")
    return ws.read_sql("SELECT * FROM quarantine WHERE import_id = ? ORDER BY rowid", (int(import_id),))


def read_issues(ws, import_id: int | None = None) -> pd.DataFrame:
    """Validation problems of every import (or one), with ``import_id``, in the order they were found."""
    empty = pd.DataFrame(columns=["import_id"] + ISSUE_COLUMNS)
    con = _connect_read(ws)
    if con is None:
        return empty
    try:
        sql = "SELECT import_id, data FROM issue_segments" + (" WHERE import_id = ?" if import_id is not None
                                                               else "") + " ORDER BY segment_id"
        parts = []
        for imp, blob in con.execute(sql, () if import_id is None else (int(import_id),)):
            part = from_blob(blob)
            part.insert(0, "import_id", imp)
            parts.append(part)
    finally:
        con.close()
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    out["row"] = pd.array(out["row"], dtype="Int64")
    return out


def data_fingerprint(ws) -> dict:
    """Row counts and a digest of every data table (not the audit log): equal before and after = store unchanged."""
    import hashlib

    out = {}
    if not ws.table_exists("audit_log"):
        return out
    con = ws.connect()
    try:
        for t in DATA_TABLES:
            h = hashlib.sha256()
            n = 0
            order = "segment_id, pos" if t == "superseded" else "rowid"
            for row in con.execute(f"SELECT * FROM {t} ORDER BY {order}"):
                h.update(repr(row).encode())
                n += 1
            out[t] = (n, h.hexdigest())
    finally:
        con.close()
    return out


def json_payload(frame: pd.DataFrame, positions) -> list[str]:
    """Rows of ``frame`` at ``positions`` as JSON objects of their values as read (missing = null)."""
    sub = frame.iloc[np.asarray(positions, dtype=int)]
    cols = [c for c in sub.columns if not str(c).startswith("_") or c == "_user_missing"]
    out = []
    for rec in sub[cols].astype(object).itertuples(index=False, name=None):
        out.append(json.dumps({c: _jsonable(v) for c, v in zip(cols, rec)}, ensure_ascii=False))
    return out


def _jsonable(v):
    if v is None:
        return None
    if isinstance(v, float):
        return None if np.isnan(v) else v
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (str, int)):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)
