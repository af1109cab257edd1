"""The questionnaire store: accepted rows, quarantine, validation issues and the audit log of every import.

Tables (created here, CREATE TABLE IF NOT EXISTS):

- ``households`` / ``persons`` / ``villages``: one index row per stored row: its key, ``instrument``,
  ``import_id``, ``version`` (1, 2, … per key), ``row_hash`` (content hash of the row), for households
  ``roster_hash`` (of its roster rows; NULL when the file had no roster), ``file_row``, ``superseded_by`` (NULL = current; else the import that replaced it) and where its values
  are (``segment_id``, ``pos``).
- ``store_segments``: the typed values of the accepted rows, one Arrow IPC blob per imported chunk (column types
  survive exactly: codes stay text, Int64 stays Int64, datetimes stay datetimes).
- ``quarantine``: rejected rows with the values as read (``payload`` JSON) and their ``reasons`` (JSON list).
- ``issues``: every validation problem of every import (survey.validate.ISSUE_COLUMNS + ``import_id``).
- ``audit_log``: every import: file, sha256, size, time, user, instrument, counts, status
  ('imported' | 'unchanged' | 'rejected'), message, where the validation report went.

Current rows are those with ``superseded_by IS NULL``; a corrected file supersedes the earlier rows of the same
households (and their rosters), which stay with their history (``history=True``).
"""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    import_id INTEGER PRIMARY KEY AUTOINCREMENT, file TEXT NOT NULL, path TEXT, sha256 TEXT, size INTEGER,
    time TEXT, user TEXT, instrument TEXT, format TEXT, encoding TEXT, rows_in INTEGER, accepted INTEGER,
    quarantined INTEGER, duplicates_skipped INTEGER, superseded INTEGER, errors INTEGER, warnings INTEGER,
    status TEXT NOT NULL, message TEXT, report TEXT, meta_json TEXT);
CREATE INDEX IF NOT EXISTS audit_log_sha ON audit_log(sha256, status);
CREATE TABLE IF NOT EXISTS store_segments (
    segment_id INTEGER PRIMARY KEY AUTOINCREMENT, import_id INTEGER NOT NULL, kind TEXT NOT NULL,
    instrument TEXT, nrows INTEGER, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS households (
    household_id TEXT NOT NULL, instrument TEXT NOT NULL, import_id INTEGER NOT NULL, version INTEGER NOT NULL,
    row_hash INTEGER, segment_id INTEGER NOT NULL, pos INTEGER NOT NULL, file_row INTEGER,
    superseded_by INTEGER, roster_hash INTEGER);
CREATE INDEX IF NOT EXISTS households_current ON households(household_id) WHERE superseded_by IS NULL;
CREATE TABLE IF NOT EXISTS persons (
    household_id TEXT NOT NULL, member_no INTEGER, instrument TEXT NOT NULL, import_id INTEGER NOT NULL,
    version INTEGER NOT NULL, row_hash INTEGER, segment_id INTEGER NOT NULL, pos INTEGER NOT NULL,
    file_row INTEGER, superseded_by INTEGER);
CREATE INDEX IF NOT EXISTS persons_current ON persons(household_id) WHERE superseded_by IS NULL;
CREATE TABLE IF NOT EXISTS villages (
    village_code TEXT NOT NULL, instrument TEXT NOT NULL, import_id INTEGER NOT NULL, version INTEGER NOT NULL,
    row_hash INTEGER, segment_id INTEGER NOT NULL, pos INTEGER NOT NULL, file_row INTEGER,
    superseded_by INTEGER);
CREATE INDEX IF NOT EXISTS villages_current ON villages(village_code) WHERE superseded_by IS NULL;
CREATE TABLE IF NOT EXISTS quarantine (
    import_id INTEGER NOT NULL, file TEXT, sheet TEXT, row INTEGER, key TEXT, instrument TEXT,
    payload TEXT, reasons TEXT);
CREATE INDEX IF NOT EXISTS quarantine_import ON quarantine(import_id);
CREATE TABLE IF NOT EXISTS issues (
    import_id INTEGER NOT NULL, file TEXT, sheet TEXT, row INTEGER, household_id TEXT, field TEXT, rule TEXT,
    rule_zh TEXT, severity TEXT, value TEXT, message_zh TEXT, fix_zh TEXT);
CREATE INDEX IF NOT EXISTS issues_import ON issues(import_id);
"""

# kind -> (index table, key column)
KINDS = {"households": ("households", "household_id"), "persons": ("persons", "household_id"),
         "villages": ("villages", "village_code")}
DATA_TABLES = ("households", "persons", "villages", "quarantine", "issues", "store_segments")
ISSUE_COLUMNS = ["file", "sheet", "row", "household_id", "field", "rule", "rule_zh", "severity", "value",
                 "message_zh", "fix_zh"]
AUDIT_COLUMNS = ["import_id", "file", "path", "sha256", "size", "time", "user", "instrument", "format", "encoding",
                 "rows_in", "accepted", "quarantined", "duplicates_skipped", "superseded", "errors", "warnings",
                 "status", "message", "report", "meta_json"]


def ensure_schema(con) -> None:
    """Create the store's tables (inside the caller's transaction)."""
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            con.execute(stmt)


def ensure_store(ws) -> None:
    with ws.transaction() as con:
        ensure_schema(con)


# ------------------------------------------------------------------------------------------- hashing
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


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
                bits[v.isna().to_numpy()] = np.uint64(0x7FF8000000000001)
                ch = pd.util.hash_array(bits)
            elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                v = s.to_numpy(dtype="float64", na_value=np.nan)
                v = np.where(v == 0, 0.0, v)           # -0.0 == 0.0
                bits = v.view(np.uint64).copy()
                bits[np.isnan(v)] = np.uint64(0x7FF8000000000001)
                ch = pd.util.hash_array(bits)
            else:
                if not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
                    s = s.astype("string")
                ch = pd.util.hash_pandas_object(s, index=False).to_numpy(dtype=np.uint64)
            ch = ch ^ np.uint64(hash_text(col))
            h = (h ^ ch) * prime
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


def write_segment(con, import_id: int, kind: str, instrument: str, frame: pd.DataFrame) -> int:
    return write_blob(con, import_id, kind, instrument, to_blob(frame), len(frame))


def write_blob(con, import_id: int, kind: str, instrument: str, blob: bytes, nrows: int) -> int:
    """Store a segment already serialised with to_blob (a worker process made it)."""
    cur = con.execute("INSERT INTO store_segments (import_id, kind, instrument, nrows, data) VALUES (?,?,?,?,?)",
                      (import_id, kind, instrument, int(nrows), blob))
    return int(cur.lastrowid)


# ------------------------------------------------------------------------------------------- reading
def _connect_read(ws):
    if not ws.table_exists("audit_log"):
        return None
    return ws.connect()


def _read_kind(ws, kind: str, *, history: bool = False, instrument=None, import_id=None) -> pd.DataFrame:
    table, key = KINDS[kind]
    con = _connect_read(ws)
    if con is None:
        return pd.DataFrame(columns=[key, "instrument", "import_id", "version"])
    try:
        where, params = [], []
        if not history:
            where.append("superseded_by IS NULL")
        if instrument is not None:
            where.append("instrument = ?")
            params.append(instrument)
        if import_id is not None:
            where.append("import_id = ?")
            params.append(int(import_id))
        sql = (f"SELECT {key} AS _key, instrument, import_id, version, superseded_by, segment_id, pos, file_row "
               f"FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY import_id, segment_id, pos")
        index = pd.read_sql_query(sql, con, params=params)
        parts = []
        for seg, grp in index.groupby("segment_id", sort=False):
            blob = con.execute("SELECT data FROM store_segments WHERE segment_id = ?", (int(seg),)).fetchone()[0]
            data = from_blob(blob)
            part = data.iloc[grp["pos"].to_numpy()].reset_index(drop=True)
            part["instrument"] = grp["instrument"].to_numpy()
            part["import_id"] = grp["import_id"].to_numpy()
            part["version"] = grp["version"].to_numpy()
            if history:
                part["superseded_by"] = pd.array(grp["superseded_by"].to_numpy(), dtype="Int64")
            parts.append(part)
    finally:
        con.close()
    if not parts:
        cols = [key, "instrument", "import_id", "version"] + (["superseded_by"] if history else [])
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    return out


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
    """Validation problems of every import (or one), with ``import_id``."""
    if not ws.table_exists("issues"):
        return pd.DataFrame(columns=["import_id"] + ISSUE_COLUMNS)
    sql = "SELECT * FROM issues" + (" WHERE import_id = ?" if import_id is not None else "") + " ORDER BY rowid"
    out = ws.read_sql(sql, () if import_id is None else (int(import_id),))
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
            for row in con.execute(f"SELECT * FROM {t} ORDER BY rowid"):
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
