"""Validation of an imported questionnaire table against its codebook.

``validate(cb, main, repeats)`` coerces each column to the codebook's type and checks, column by column (never a
Python step per row): types, value labels, ranges, code formats, required items, skip logic, constraints, the
codebook's consistency rules (survey/codebooks/*.yaml), ID numbers, duplicates, orphan roster rows and linkage to
the drawn sample. Every problem is an *error* (the household cannot be used until it is fixed: it and its roster
go to quarantine) or a *warning* (it can be used, someone should look). Messages and fixes are in Chinese, for the
field team.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .codebook import PARAMETERS, TYPE_ZH, Codebook, RepeatGroup, Variable, load_codebook
from .errors import CodebookError
from .expressions import (Column, _missing, _null_or_empty, _text_bytes, evaluate, from_series, parse, references,
                          regex_contains, truth)

__all__ = ["validate", "ValidationResult", "ISSUE_COLUMNS", "duplicate_issues", "BUILTIN_RULES",
           "coerce_column"]

ISSUE_COLUMNS = ["file", "sheet", "row", "household_id", "field", "rule", "rule_zh", "severity", "value",
                 "message_zh", "fix_zh"]

# Checks every codebook gets (rule id -> Chinese name, default severity). Severities of these and of the
# codebook's own rules can be changed in the configuration: [validation.severity] rule = "warning"|"error"|"off".
BUILTIN_RULES = {
    "missing_column": ("缺少必答题的列", "error"),
    "unknown_column": ("问卷中没有的列", "warning"),
    "type": ("类型不符", "error"),
    "choice": ("不在选项中", "error"),
    "range": ("超出取值范围", "error"),
    "format": ("编码格式错误", "error"),
    "required": ("必答题未填", "error"),
    "skip": ("跳转错误（不应回答却有值）", "warning"),
    "constraint": ("不满足约束条件", "error"),
    "id_number": ("身份证号码错误", "error"),
    "duplicate": ("同一户重复出现", "error"),
    "duplicate_head_id": ("不同户的户主身份证号码相同", "warning"),
    "duplicate_member": ("同一成员重复出现", "error"),
    "duplicate_person": ("同一身份证号码出现在多名成员中", "error"),
    "person_id": ("人编码与户编码、成员序号不符", "error"),
    "orphan_member": ("成员所在的户不在本文件中", "error"),
    "not_in_sample": ("不在抽中样本或备选户名单中", "error"),
}

# Columns that questionnaire platforms add to every export (ODK, Kobo, SurveyCTO); never reported as unknown.
_PLATFORM_COLUMNS = {"KEY", "PARENT_KEY", "SET-OF-members", "SubmissionDate", "instanceID", "meta-instanceID",
                     "meta/instanceID", "start", "end", "deviceid", "today", "formdef_version", "review_state"}
_MISSING_TEXT = "（空）"
_SEPARATORS = r"[\s,，;；、|/]+"


@dataclass
class ValidationResult:
    main: pd.DataFrame
    repeats: dict[str, pd.DataFrame]
    issues: pd.DataFrame
    error_keys: set
    main_errors: pd.Series = None              # per row of ``main``: True when the row goes to quarantine
    repeat_errors: dict[str, pd.Series] = field(default_factory=dict)
    codebook: Codebook | None = None
    file: str = ""

    @property
    def n_errors(self) -> int:
        return int((self.issues["severity"] == "error").sum())

    @property
    def n_warnings(self) -> int:
        return int((self.issues["severity"] == "warning").sum())

    def counts(self) -> dict:
        rows = len(self.main)
        quarantined = int(self.main_errors.sum()) if self.main_errors is not None else 0
        return {"rows": rows, "accepted": rows - quarantined, "quarantined": quarantined,
                "errors": self.n_errors, "warnings": self.n_warnings}


# ================================================================================================ coercion
def _clean_text(s: pd.Series) -> pd.Series:
    """Text with surrounding blanks removed; empty text becomes missing. Whole floats lose their '.0'."""
    if pd.api.types.is_bool_dtype(s.dtype):
        s = s.astype("float64")
    if pd.api.types.is_float_dtype(s.dtype):
        f = s.to_numpy(dtype="float64", na_value=np.nan)
        whole = np.isfinite(f) & (f == np.round(f)) & (np.abs(f) < 1e18)
        out = pd.Series(s.astype("str").to_numpy(dtype=object), index=s.index, dtype=object)
        if whole.any():
            out[whole] = f[whole].astype("int64").astype(str)
        out[np.isnan(f)] = None
        s = out
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = s.dt.strftime("%Y-%m-%d %H:%M:%S")
    t = _one_chunk(s.astype("str"))
    pa_arr = getattr(t.array, "_pa_array", None)
    if pa_arr is not None:
        # Trim and blank → missing in two Arrow kernels (pandas' mask() alone cost twice as much), each only
        # when some value may need it: most columns have neither blanks around values nor empty values.
        import pyarrow as pa
        import pyarrow.compute as pc
        trim = blank = False
        for chunk in pa_arr.chunks:
            edges_ok, empty = _edges_and_empties(chunk)
            trim |= not edges_ok
            blank |= empty
        if not trim and not blank:
            return t
        tr = pc.utf8_trim_whitespace(pa_arr) if trim else pa_arr
        tr = pc.if_else(pc.equal(tr, ""), pa.scalar(None, tr.type), tr)
        return pd.Series(type(t.array)(tr, dtype=t.dtype), index=t.index, name=t.name)
    t = t.str.strip()
    return t.mask(t == "")


# Whitespace that Arrow's utf8_trim_whitespace removes is ASCII (\t-\r, \x1c-\x20) or below U+3001, so a value
# cannot be trimmed when its first byte is printable ASCII or the lead byte of a 3- or 4-byte character from U+4000
# (E4-F4: CJK ideographs, full-width forms) and its last character is printable ASCII or a 3-byte character from
# U+4000 (lead byte E4-EF). Byte classes by unsigned range tests: x - lo <= hi - lo.
def _in(b: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return (b - np.uint8(lo)) <= np.uint8(hi - lo)


def _edges_and_empties(chunk) -> tuple[bool, bool]:
    """(no value can change when trimmed, some present value is empty) for one Arrow string chunk. Cautious:
    False for the first only means "trim to find out"."""
    off, raw = _text_bytes(chunk)
    if len(off) < 2 or not len(raw):
        return True, bool(len(off) > 1 and np.any(_valid(chunk)))
    lens = off[1:] - off[:-1]
    none = lens == 0
    valid = _valid(chunk)
    empty = bool(none.any() if valid is True else (none & valid).any())
    first = raw.take(off[:-1], mode="clip")
    if not (_in(first, 0x21, 0x7E) | _in(first, 0xE4, 0xF4) | none).all():
        return False, empty
    last_ok = _in(raw.take(off[1:] - 1, mode="clip"), 0x21, 0x7E) | none
    if not last_ok.all():
        # ends in a multi-byte character: safe when it is a 3-byte one from U+4000
        last_ok |= (lens >= 3) & _in(raw.take(off[1:] - 3, mode="clip"), 0xE4, 0xEF)
        if not last_ok.all():
            return False, empty
    return True, empty


def _valid(chunk) -> np.ndarray | bool:
    if not chunk.null_count:
        return True
    return np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _one_chunk(t: pd.Series) -> pd.Series:
    """Arrow text in one piece: tables glued from many parts carry thousands of chunks, and every string
    operation then pays per chunk (20k chunks made a regex 30x slower)."""
    pa_arr = getattr(t.array, "_pa_array", None)
    if pa_arr is not None and pa_arr.num_chunks > 8:
        import pyarrow as pa
        t = pd.Series(type(t.array)(pa.chunked_array([pa_arr.combine_chunks()]), dtype=t.dtype), index=t.index,
                      name=t.name)
    return t


def _may_hold_dot(text: pd.Series) -> bool:
    """False when no value has a '.': one byte scan of Arrow text ('.' is one byte in UTF-8 and no part of any
    other character)."""
    pa_arr = getattr(text.array, "_pa_array", None)
    if pa_arr is None:
        return True
    for chunk in pa_arr.chunks:
        off, raw = _text_bytes(chunk)
        raw = raw[off[0]:off[-1]]
        # digits-only codes have no byte as low as '.': two reductions decide without a mask of the data's size
        if len(raw) and raw.min() <= ord(".") <= raw.max() and (raw == ord(".")).any():
            return True
    return False


def _parse_numbers(text: pd.Series) -> np.ndarray:
    """Floats from cleaned text (missing stays NaN; unreadable text gives NaN)."""
    arr = text.array
    pa_arr = getattr(arr, "_pa_array", None)
    if pa_arr is not None:
        import pyarrow as pa
        import pyarrow.compute as pc
        try:
            return np.array(pc.cast(pa_arr, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    out = np.array(pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan))
    bad = np.isnan(out) & text.notna().to_numpy()
    if bad.any():
        # Thousands separators and a trailing unit are common in hand-typed sheets ("1,200", "3500元").
        retry = text[bad].str.replace(r"[,，\s]", "", regex=True).str.replace(r"(元|人|岁|个月|月|天|分钟)$", "",
                                                                             regex=True)
        out[bad] = pd.to_numeric(retry, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    out[np.isinf(out)] = np.nan
    return out


def _fullmatch(text: pd.Series, pattern: str) -> np.ndarray:
    """Whole-value regex match; str.fullmatch is ~20x slower than an anchored contains on Arrow strings."""
    return regex_contains(text, f"^(?:{pattern})$")


_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _plausible(got: pd.Series) -> pd.Series:
    """Times outside 1900–2100 are typing errors (and beyond what datetime64[ns] holds): make them missing."""
    if getattr(got.dt, "tz", None) is not None:
        got = got.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    years = got.dt.year
    got = got.where((years >= 1900) & (years <= 2100))
    return got.astype("datetime64[ns]")


def _parse_datetimes(raw: pd.Series, text: pd.Series) -> pd.Series:
    """datetime64[ns] (naive, China wall-clock time); unreadable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        s = raw
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
        return s.astype("datetime64[ns]")
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        # Excel stores dates as day counts from 1899-12-30.
        f = raw.to_numpy(dtype="float64", na_value=np.nan)
        ok = (f > 1000) & (f < 80000)
        out[ok] = pd.to_datetime(f[ok], unit="D", origin="1899-12-30").round("s")
        return out
    present = text.notna()
    if not present.any():
        return out
    t = text[present]
    if t.str.contains("年", regex=False).any():
        t = t.str.replace("年", "-", regex=False).str.replace("月", "-", regex=False) \
            .str.replace("日", " ", regex=False).str.strip()
    # Only ISO texts with an offset end in Z or +hh:mm; test the cheap last-character case first.
    maybe_tz = t.str.contains(r"(?:Z|\d\d:?\d\d)$", regex=True) & t.str.contains("T", regex=False)
    has_tz = np.zeros(len(t), dtype=bool)
    if maybe_tz.any():
        has_tz = t.str.contains(_TZ_SUFFIX, regex=True).fillna(False).to_numpy(dtype=bool)
    if has_tz.any():
        aware = pd.to_datetime(t[has_tz], errors="coerce", utc=True, format="ISO8601")
        out.loc[t.index[has_tz]] = _plausible(aware).to_numpy()
    naive_idx = t.index[~has_tz]
    todo = t.loc[naive_idx]
    for fmt in ("ISO8601", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d %H:%M"):
        if todo.empty:
            break
        got = _plausible(pd.to_datetime(todo, errors="coerce", format=fmt))
        ok = got.notna()
        out.loc[todo.index[ok]] = got[ok].to_numpy()
        todo = todo[~ok]
    if len(todo):
        # Excel day numbers among text (a column mixing typed and pasted cells).
        serial = pd.to_numeric(todo.where(todo.str.contains(r"^\d{4,5}(?:\.\d+)?$", regex=True).fillna(False)),
                               errors="coerce")
        ok = (serial > 1000) & (serial < 80000)
        if ok.any():
            out.loc[todo.index[ok]] = pd.to_datetime(serial[ok].to_numpy(dtype="float64"), unit="D",
                                                     origin="1899-12-30").round("s")
            todo = todo[~ok]
    if len(todo) and len(todo) <= 10000:
        # Odd formats only: element-wise parsing is slow, so it is kept for the few rows left.
        got = _plausible(pd.to_datetime(todo, errors="coerce", format="mixed"))
        ok = got.notna()
        out.loc[todo.index[ok]] = got[ok].to_numpy()
    return out


def _int_array(f: np.ndarray) -> pd.arrays.IntegerArray:
    """Nullable integers from whole floats (NaN = missing), without pandas' checked float conversion."""
    miss = np.isnan(f)
    return pd.arrays.IntegerArray(np.where(miss, 0, f).astype("int64"), miss)


def coerce_column(raw: pd.Series, v: Variable):
    """(typed column, missing mask, bad mask, bad_kind) for one variable. ``bad`` = present but unusable."""
    t = v.type
    numeric_raw = pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype)
    if numeric_raw and (t in ("integer", "decimal") or (t == "select_one" and v.numeric_codes)):
        # Numbers already (SAV, DTA, Parquet): no detour through text.
        f0 = raw.to_numpy(dtype="float64", na_value=np.nan).copy()
        missing = np.isnan(f0)
        f0[np.isinf(f0)] = np.nan
        text = None
    elif t in ("date", "datetime") and pd.api.types.is_datetime64_any_dtype(raw.dtype):
        # Times already (SAV, DTA, XLSX): formatting them as text to read them back cost more than the rest
        numeric_raw = False
        text = None
        missing = raw.isna().to_numpy()
    else:
        numeric_raw = False
        text = _clean_text(raw)
        missing = text.isna().to_numpy()
    bad = np.zeros(len(raw), dtype=bool)
    kind = "type"
    if t in ("integer", "decimal"):
        if numeric_raw:
            f = f0
        else:
            f = _parse_numbers(text)
        bad = ~missing & np.isnan(f)
        if t == "integer":
            frac = ~np.isnan(f) & (f != np.round(f))
            bad |= frac
            f[frac] = np.nan
            big = np.abs(f) > 2 ** 53
            bad |= big
            f[big] = np.nan
            typed = pd.Series(_int_array(f), index=raw.index)
        else:
            typed = pd.Series(f, index=raw.index, dtype="float64")
    elif t == "select_one":
        kind = "choice"
        codes = list(v.choices or {})
        label_to_code = {lab: c for c, lab in (v.choices or {}).items()}
        if v.numeric_codes:
            if numeric_raw:
                f = f0
            else:
                f = _parse_numbers(text)
                unread = ~missing & np.isnan(f)
                if unread.any():   # value labels instead of codes ("已脱贫" for 1)
                    mapped = text[unread].map(label_to_code)
                    f[unread] = pd.to_numeric(mapped, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            code_values = np.array([float(c) for c in codes])
            ok = np.isin(f, code_values)
            bad = ~missing & ~ok
            f = np.where(ok, f, np.nan)
            typed = pd.Series(_int_array(f), index=raw.index)
        else:
            ok = text.isin(codes).to_numpy()
            typed = text.where(ok)
            rest = ~missing & ~ok
            if rest.any():
                sub = text[rest]
                mapped = sub.map(label_to_code)
                upper = sub.str.upper()
                mapped = mapped.where(mapped.notna(), upper.where(upper.isin(codes)))
                typed = typed.astype(object)
                typed[rest] = mapped.to_numpy(dtype=object)
                typed = typed.astype("str")
                bad = rest & typed.isna().to_numpy()
    elif t == "select_multiple":
        kind = "choice"
        codes = list(v.choices or {})
        alt = "|".join(re.escape(c) for c in sorted(codes, key=len, reverse=True))
        pattern = f"^(?:{alt})(?: (?:{alt}))*$" if alt else "^$"
        # Most cells are already "code code": match them as they are; only the rest are re-split (commas, 、 ...).
        ok = _fullmatch(text, pattern)
        typed = text.where(ok)
        rest = ~missing & ~ok
        if rest.any():
            norm = text[rest].str.replace(_SEPARATORS, " ", regex=True).str.strip()
            ok2 = _fullmatch(norm, pattern)
            typed = typed.astype(object)
            typed[np.flatnonzero(rest)[ok2]] = norm[ok2].to_numpy(dtype=object)
            typed = typed.astype("str")
            rest = ~missing & typed.isna().to_numpy()
        if rest.any():
            norm = text[rest].str.replace(_SEPARATORS, " ", regex=True).str.strip()
            label_to_code = {lab: c for c, lab in (v.choices or {}).items()}
            label_to_code.update({c: c for c in codes})
            tokens = norm.str.split(" ").explode()
            mapped = tokens.map(label_to_code)
            good = mapped.notna().groupby(level=0).all()
            joined = mapped.dropna().groupby(level=0).agg(" ".join)
            fixed = joined.reindex(good.index).where(good)
            typed = typed.astype(object)
            typed.loc[fixed.index] = fixed.to_numpy(dtype=object)
            typed = typed.astype("str")
            bad = rest & typed.isna().to_numpy()
    elif t in ("date", "datetime"):
        typed = _parse_datetimes(raw, text)
        if t == "date":
            typed = typed.dt.normalize()
        bad = ~missing & typed.isna().to_numpy()
    else:   # text, code
        typed = text
        if t == "code" and _may_hold_dot(text) and text.str.contains(".", regex=False).any():
            typed = text.str.replace(r"\.0+$", "", regex=True)
    typed = pd.Series(typed, index=raw.index)
    typed.name = v.name
    return typed, missing, bad, kind


# ================================================================================================ issues
class _Issues:
    """Collects problems as column chunks (one dict of arrays per check), made one table once at the end: a
    DataFrame per check cost more than the check when a dirty file has dozens of them."""

    def __init__(self, file, config):
        self.file = file
        self.chunks: list[dict[str, np.ndarray]] = []
        vcfg = (config or {}).get("validation", {}) or {}
        self.severity = {str(k): str(v) for k, v in (vcfg.get("severity", {}) or {}).items()}

    def severity_of(self, rule, default):
        sev = self.severity.get(rule, default)
        return sev if sev in ("error", "warning", "off") else default

    def add(self, *, sheet, mask, table, rule, rule_zh, severity, field, value, message, fix):
        """``mask`` selects rows of ``table`` (a _Table); value/message are scalars or aligned arrays."""
        sev = self.severity_of(rule, severity)
        if sev == "off":
            return
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        pos = np.flatnonzero(mask)
        k = len(pos)

        def pick(x):
            if isinstance(x, (pd.Series, np.ndarray, pd.api.extensions.ExtensionArray)):
                arr = np.asarray(x, dtype=object)
                return arr if len(arr) == k else arr[pos]
            return np.full(k, x, dtype=object)

        self.chunks.append({
            "file": pick(self.file), "sheet": pick(sheet), "row": table.rows[pos],
            "household_id": pick(table.key_text_at(pos)), "field": pick(field), "rule": pick(rule),
            "rule_zh": pick(rule_zh), "severity": pick(sev), "value": pick(value), "message_zh": pick(message),
            "fix_zh": pick(fix), "_pos": pos,
        })

    def add_file_level(self, *, sheet, rule, rule_zh, severity, field, message, fix, value=""):
        sev = self.severity_of(rule, severity)
        if sev == "off":
            return
        one = {"file": self.file, "sheet": sheet, "row": pd.NA, "household_id": "", "field": field, "rule": rule,
               "rule_zh": rule_zh, "severity": sev, "value": value, "message_zh": message, "fix_zh": fix}
        chunk = {c: np.array([x], dtype=object) for c, x in one.items()}
        chunk["_pos"] = np.array([-1], dtype=np.int64)
        self.chunks.append(chunk)

    def frame(self) -> pd.DataFrame:
        if not self.chunks:
            out = pd.DataFrame({c: pd.Series(dtype=object) for c in ISSUE_COLUMNS + ["_pos"]})
            out["row"] = pd.array(out["row"], dtype="Int64")
            for c in ISSUE_COLUMNS:
                if c != "row":
                    out[c] = out[c].astype(str)
            return out
        cols = {}
        for c in ISSUE_COLUMNS + ["_pos"]:
            col = np.concatenate([ch[c] for ch in self.chunks])
            if c == "row":
                col = pd.array(col, dtype="Int64")
            elif c != "_pos":
                missing = pd.isna(col)
                if missing.any():
                    col[missing] = ""
                # one conversion to text per column, from objects (each value as str() makes it)
                col = pd.Series(col, dtype=object, copy=False).astype(str).array
            cols[c] = col
        return pd.DataFrame(cols)


def _value_text(col: pd.Series | np.ndarray, pos=None) -> np.ndarray:
    """Display text of values (numbers without a trailing .0, times to the minute, missing as （空）)."""
    s = pd.Series(col) if not isinstance(col, pd.Series) else col
    if pos is not None:
        s = s.iloc[pos]
    s = s.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s.dt.strftime("%Y-%m-%d %H:%M").astype(object)
    elif pd.api.types.is_bool_dtype(s.dtype):
        out = s.astype(object)
    elif pd.api.types.is_numeric_dtype(s.dtype):
        # Only the rows with a problem get here, but often thousands of them: numpy and plain str() (what
        # pandas' astype(str) gives for floats) rather than pandas text columns.
        f = np.round(s.to_numpy(dtype="float64", na_value=np.nan), 2)
        with np.errstate(invalid="ignore"):
            whole = (f == np.round(f)) & (np.abs(f) < 1e15)
        text = np.empty(len(f), dtype=object)
        text[whole] = f[whole].astype("int64").astype(str)
        rest = np.flatnonzero(~whole)
        text[rest] = [str(x) for x in f[rest].tolist()]
        text[np.isnan(f)] = _MISSING_TEXT
        return text
    else:
        text = s.to_numpy(dtype=object, na_value=_MISSING_TEXT)
        odd = [i for i, x in enumerate(text) if not isinstance(x, str)] if s.dtype == object else []
        if odd:                       # Arrow text is text already; an object column may hold numbers
            text = text.copy()
            for i in odd:
                text[i] = str(text[i])
        return text
    out = out.where(pd.notna(s), _MISSING_TEXT)
    return out.to_numpy(dtype=object)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _render(template: str, env, pos: np.ndarray, shown: dict | None = None) -> np.ndarray:
    """Fill {name} placeholders of a message for the selected rows, column-wise. ``shown`` caches the display
    text of each name for these rows (a rule's value, message and fix often show the same ones)."""
    parts = _PLACEHOLDER.split(template)
    if len(parts) == 1:
        return np.full(len(pos), template, dtype=object)
    shown = {} if shown is None else shown
    out = np.full(len(pos), "", dtype=object)
    for i, part in enumerate(parts):
        if i % 2 == 0:
            if part:
                out = out + part
        else:
            if part not in shown:
                shown[part] = np.asarray(env.display(part, pos), dtype=object)
            out = out + shown[part]
    return out


# ================================================================================================ tables
class _Table:
    """One table (main or a repeat) being validated: raw input, typed columns, row numbers, keys."""

    def __init__(self, name, frame: pd.DataFrame, variables: dict[str, Variable], key_col: str):
        self.name = name
        self.raw = frame.reset_index(drop=True)
        self.n = len(self.raw)
        self.variables = variables
        self.key_col = key_col
        if "_row" in self.raw.columns:
            rows = pd.to_numeric(self.raw["_row"], errors="coerce")
            fallback = np.arange(2, self.n + 2)
            self.rows = np.where(rows.isna(), fallback, rows.fillna(0)).astype("int64")
        else:
            self.rows = np.arange(2, self.n + 2, dtype="int64")
        self.typed: dict[str, pd.Series] = {}
        self.missing: dict[str, np.ndarray] = {}
        # The key of each row as text ("" when missing). Kept in Arrow when the key column is Arrow text:
        # Python strings for all rows (keys_text) cost more than every use of them but the issue rows'.
        self.keys: pd.Series | None = None
        self._keys_text = np.full(self.n, "", dtype=object)
        self._has_key = None
        self._codes: dict[str, tuple[np.ndarray, int]] = {}

    def set_keys(self):
        self._has_key = None
        if self.key_col in self.typed:
            k = self.typed[self.key_col]
            if _is_arrow_text(k):
                import pyarrow.compute as pc
                self.keys = pd.Series(type(k.array)(pc.fill_null(k.array._pa_array, ""), dtype=k.dtype))
                self._keys_text = None
            else:
                self._keys_text = k.astype(object).where(k.notna(), "").to_numpy(dtype=object)

    @property
    def keys_text(self) -> np.ndarray:
        if self._keys_text is None:
            self._keys_text = self.keys.to_numpy(dtype=object)
        return self._keys_text

    def key_text_at(self, pos: np.ndarray) -> np.ndarray:
        """keys_text[pos], without making Python strings of the other rows' keys."""
        if self._keys_text is None:
            return self.keys.take(pos).to_numpy(dtype=object)
        return self._keys_text[pos]

    def key_values(self):
        """The keys for _shared_codes / _isin: Arrow text when there is, else keys_text."""
        return self.keys if self._keys_text is None else self._keys_text

    @property
    def has_key(self) -> np.ndarray:
        """keys_text != "" """
        if self._has_key is None:
            self._has_key = ~_null_or_empty(self.keys) if self._keys_text is None else self._keys_text != ""
        return self._has_key

    def codes_of(self, name: str) -> tuple[np.ndarray, int]:
        """_shared_codes of one typed column (missing as ""), computed once per column."""
        if name not in self._codes:
            col = self.typed[name].reset_index(drop=True)
            (codes,), ncodes = _shared_codes(col.astype(object).where(col.notna(), "").astype(str)
                                             .to_numpy(dtype=object) if not _is_arrow_text(col) else col)
            self._codes[name] = (codes, ncodes)
        return self._codes[name]


class _Env:
    """Resolves ${name} for expressions over one table: its columns, calculations, aggregates, parameters and
    (for a repeat) the parent household's values."""

    def __init__(self, table: _Table, cb: Codebook, params: dict, calcs=None, aggs=None, parent=None,
                 parent_key=None):
        self.t = table
        self.cb = cb
        self.params = params
        self.calcs = {c.name: c for c in (calcs or [])}
        self.aggs = aggs or {}
        self.parent = parent
        self.parent_key = parent_key
        self.cache: dict[str, Column] = {}

    def known(self, name) -> bool:
        return (name in self.t.typed or name in self.calcs or name in self.aggs or name in self.params
                or (self.parent is not None and self.parent.known(name)))

    def resolve(self, name) -> Column:
        if name in self.cache:
            return self.cache[name]
        n = self.t.n
        if name in self.t.typed:
            v = self.t.variables.get(name)
            col = from_series(self.t.typed[name].reset_index(drop=True), v.kind if v else None)
        elif name in self.calcs:
            col = evaluate(self.calcs[name].expr, self.resolve, n)
        elif name in self.aggs:
            col = Column("num", self.aggs[name])
        elif name in self.params:
            p = self.params[name]
            if isinstance(p, np.ndarray):
                col = Column("num", p)
            elif isinstance(p, str):
                col = Column("str", p)
            else:
                col = Column("num", float(p) if p is not None else np.nan)
        elif self.parent is not None and self.parent.known(name):
            col = self._lift(self.parent.resolve(name))
        else:
            col = Column("num", np.nan)   # an optional question the file does not have: all missing
        if col.scalar and name not in self.params:
            col = Column(col.kind, np.full(n, col.data, dtype=object if col.kind == "str" else None))
        self.cache[name] = col
        return col

    def _lift(self, col: Column) -> Column:
        """A parent-table value for each repeat row, matched on the parent key."""
        p = self.parent.t
        data = np.asarray(col.data) if not col.scalar else np.full(p.n, col.data)
        keys = p.keys_text
        s = pd.Series(data, index=keys)
        s = s[~s.index.duplicated(keep="first")]
        child_keys = self.t.typed[self.parent_key].astype(object).where(self.t.typed[self.parent_key].notna(), "")
        lifted = s.reindex(child_keys.to_numpy()).to_numpy()
        if col.kind in ("num", "dt"):
            lifted = lifted.astype("float64")
        else:
            lifted = lifted.astype(object)
            lifted[pd.isna(lifted)] = None
        return Column(col.kind, lifted)

    def condition(self, text, dot=None) -> np.ndarray:
        return truth(evaluate(parse(text), self.resolve, self.t.n, dot), self.t.n)

    def display(self, name, pos) -> np.ndarray:
        if name in self.t.typed:
            return _value_text(self.t.typed[name], pos)
        col = self.resolve(name)
        data = col.data if not col.scalar else np.full(self.t.n, col.data)
        # a text column is an Arrow-backed Series: pick the rows before leaving Arrow
        sel = np.asarray(data.iloc[pos]) if isinstance(data, pd.Series) else np.asarray(data)[pos]
        if col.kind == "dt":
            s = pd.Series(pd.to_datetime(sel.astype("float64") * 86400e9, errors="coerce"))
            return _value_text(s)
        if col.kind == "bool":
            return np.where(sel.astype(bool), "是", "否").astype(object)
        if col.kind == "num":
            return _value_text(pd.Series(sel.astype("float64")))
        return _value_text(pd.Series(sel, dtype=object))


# ================================================================================================ parameters
def _config_or_default(config):
    if config is not None:
        return config
    try:
        from sampling.workspace import default_config
        return default_config()
    except Exception:  # noqa: BLE001 - validation must still run without the shipped defaults
        return {}


def _parameters(config: dict, table: _Table) -> dict:
    a = config.get("assessment", {}) or {}
    year = a.get("year")
    g = config.get("guarantees", {}) or {}
    pl = config.get("poverty_line", {}) or {}
    series = pl.get("series", "planning")
    line = (pl.get(series, {}) or {}).get(str(year), (pl.get(series, {}) or {}).get(year)) if year else None
    line_arr = np.full(table.n, np.nan if line is None else float(line))
    overrides = pl.get("province_overrides", {}) or {}
    if overrides and "province_code" in table.typed:
        prov = table.typed["province_code"].astype(object)
        ov = prov.map({str(k): float(v) for k, v in overrides.items()}).to_numpy(dtype="float64", na_value=np.nan)
        line_arr = np.where(np.isnan(ov), line_arr, ov)
    grades = [str(x).upper() for x in g.get("safe_house_grades", ["A", "B"])]
    return {
        "_year": float(year) if year is not None else np.nan,
        "_line": line_arr,
        "_size_basis": "resident" if pl.get("household_size") == "resident" else "registered",
        "_school_age_min": float(g.get("school_age_min", 6)),
        "_school_age_max": float(g.get("school_age_max", 15)),
        "_water_litres_min": float(g.get("water_litres_dry", 20)),
        "_water_round_trip_max": float(g.get("water_round_trip_minutes", 20)),
        "_water_interrupt_max": float(g.get("water_interrupt_days_max", 36)),
        "_safe_grade_C": 1.0 if "C" in grades else 0.0,
        "_safe_grade_D": 1.0 if "D" in grades else 0.0,
    }


# ================================================================================================ checks
def _choice_text(v: Variable, limit=12) -> str:
    items = [f"{c} {lab}" if lab != c else c for c, lab in (v.choices or {}).items()]
    text = "、".join(items[:limit])
    return text + ("等" if len(items) > limit else "")


def _type_fix(v: Variable) -> tuple[str, str]:
    if v.type == "integer":
        return f"“{v.label_zh}”应为整数", "填写整数（不带单位、小数点和文字）"
    if v.type == "decimal":
        return f"“{v.label_zh}”应为数字", "填写数字（不带单位和文字）"
    if v.type in ("date", "datetime"):
        return f"“{v.label_zh}”不是有效的{TYPE_ZH[v.type]}", "按 2019-05-01 10:30 的格式填写"
    return f"“{v.label_zh}”类型不符", f"按{TYPE_ZH.get(v.type, v.type)}填写"


def _check_table(tab: _Table, cb: Codebook, env: _Env, issues: _Issues, sheet: str, present_cols: set):
    """Coerce every variable of the table, then type, choice, range, format, required, skip, constraint."""
    bad_found = []
    for name, v in tab.variables.items():
        if name not in present_cols:
            continue
        raw = tab.raw[name]
        typed, missing, bad, kind = coerce_column(raw, v)
        tab.typed[name] = typed
        tab.missing[name] = missing
        if bad.any():
            bad_found.append((name, v, raw, bad, kind))
    tab.set_keys()
    for name, v, raw, bad, kind in bad_found:
        raw_text = _value_text(_clean_text(raw.iloc[np.flatnonzero(bad)]))
        if kind == "choice":
            msg = f"“{v.label_zh}”的值不在选项中（可选：{_choice_text(v)}）"
            issues.add(sheet=sheet, mask=bad, table=tab, rule="choice", rule_zh=BUILTIN_RULES["choice"][0],
                       severity=BUILTIN_RULES["choice"][1], field=name, value=raw_text, message=msg,
                       fix=f"改为选项代码之一：{_choice_text(v)}")
        else:
            msg, fix = _type_fix(v)
            issues.add(sheet=sheet, mask=bad, table=tab, rule="type", rule_zh=BUILTIN_RULES["type"][0],
                       severity="error", field=name, value=raw_text, message=msg, fix=fix)
    for name, v in tab.variables.items():
        if name not in tab.typed:
            continue
        typed = tab.typed[name]
        if v.type in ("integer", "decimal") and (v.min is not None or v.max is not None):
            f = typed.to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                out = np.zeros(tab.n, dtype=bool)
                if v.min is not None:
                    out |= f < v.min
                if v.max is not None:
                    out |= f > v.max
            if out.any():
                rng = v.range_text()
                issues.add(sheet=sheet, mask=out, table=tab, rule="range", rule_zh=BUILTIN_RULES["range"][0],
                           severity="error", field=name, value=_value_text(typed, np.flatnonzero(out)),
                           message=f"“{v.label_zh}”超出取值范围 {rng}",
                           fix=f"核对后填写 {rng} 之间的值")
        if v.pattern and v.type in ("code", "text"):
            present = typed.notna().to_numpy()
            ok = _fullmatch(typed, v.pattern) if present.any() else present
            badfmt = present & ~ok
            if badfmt.any():
                issues.add(sheet=sheet, mask=badfmt, table=tab, rule="format", rule_zh=BUILTIN_RULES["format"][0],
                           severity="error", field=name, value=_value_text(typed, np.flatnonzero(badfmt)),
                           message=f"“{v.label_zh}”格式不对",
                           fix=f"按“{v.label_zh}”的规定位数填写，只用数字（可先把该列设为文本格式，保留开头的0）")
    for name, v in tab.variables.items():
        if name not in tab.typed:
            continue
        missing = tab.missing[name]
        if v.relevant:
            rel = env.condition(v.relevant)
            refs = references(v.relevant)
            known = np.ones(tab.n, dtype=bool)
            for r in refs:
                col = env.resolve(r)
                if not col.scalar:
                    known &= ~np.asarray(_missing(col, tab.n), dtype=bool)
            answered_not_asked = ~missing & ~rel & known
            if answered_not_asked.any():
                issues.add(sheet=sheet, mask=answered_not_asked, table=tab, rule="skip",
                           rule_zh=BUILTIN_RULES["skip"][0], severity="warning", field=name,
                           value=_value_text(tab.typed[name], np.flatnonzero(answered_not_asked)),
                           message=f"按跳转条件（{v.relevant}）本户不应回答“{v.label_zh}”，却填了值",
                           fix="核对跳转条件涉及的题目；如该题确实不适用，清空此值")
        else:
            rel = np.ones(tab.n, dtype=bool)
        if v.required:
            miss_req = missing & rel
            if miss_req.any():
                cond = f"（条件：{v.relevant}）" if v.relevant else ""
                issues.add(sheet=sheet, mask=miss_req, table=tab, rule="required",
                           rule_zh=BUILTIN_RULES["required"][0], severity="error", field=name, value=_MISSING_TEXT,
                           message=f"必答题“{v.label_zh}”未填写{cond}", fix=f"补填“{v.label_zh}”")
        if v.constraint:
            dot = env.resolve(name)
            ok = env.condition(v.constraint, dot=dot)
            present = tab.typed[name].notna().to_numpy()
            viol = present & ~ok
            if viol.any():
                issues.add(sheet=sheet, mask=viol, table=tab, rule="constraint",
                           rule_zh=BUILTIN_RULES["constraint"][0], severity="error", field=name,
                           value=_value_text(tab.typed[name], np.flatnonzero(viol)),
                           message=v.constraint_message_zh or f"“{v.label_zh}”不满足约束条件 {v.constraint}",
                           fix=f"核对“{v.label_zh}”" + (f"：{v.constraint_message_zh}" if v.constraint_message_zh
                                                         else ""))
    _check_id_numbers(tab, issues, sheet)


def _check_id_numbers(tab: _Table, issues: _Issues, sheet: str):
    names = [n for n in tab.typed if n == "id_number" or n.endswith("_id_number")]
    if not names:
        return
    from sampling.idnumber import FIX_TEXT_ZH, PROBLEM_TEXT_ZH, PROBLEMS, id_number_problem_codes
    for name in names:
        col = tab.typed[name].reset_index(drop=True)
        codes = id_number_problem_codes(col)
        # an empty ID (code 1, "missing") is the required-item check's business
        wrong = codes > 1
        if not wrong.any():
            continue
        found, first = np.unique(codes[wrong], return_index=True)
        for c in found[np.argsort(first)]:        # problems in the order their first row comes
            code = PROBLEMS[c]
            mask = codes == c
            label = tab.variables[name].label_zh
            issues.add(sheet=sheet, mask=mask, table=tab, rule="id_number", rule_zh=BUILTIN_RULES["id_number"][0],
                       severity="error", field=name, value=_value_text(col, np.flatnonzero(mask)),
                       message=f"“{label}”：{PROBLEM_TEXT_ZH.get(code, code)}",
                       fix=FIX_TEXT_ZH.get(code, "核对身份证号码"))


def _check_rules(cb: Codebook, table_name: str, tab: _Table, env: _Env, issues: _Issues, sheet: str):
    for r in cb.rules:
        if r.table != table_name:
            continue
        # A rule about questions the file does not have cannot be judged: skip it rather than guess.
        needed = references(r.when) - set(PARAMETERS)
        if any(not env.known(nm) for nm in needed):
            continue
        mask = env.condition(r.when)
        if not mask.any():
            continue
        pos = np.flatnonzero(mask)
        shown = {}
        value = _render(r.value_zh, env, pos, shown) if r.value_zh else (
            env.display(r.field, pos) if env.known(r.field) else "")
        issues.add(sheet=sheet, mask=mask, table=tab, rule=r.id, rule_zh=r.rule_zh, severity=r.severity,
                   field=r.field, value=value, message=_render(r.message_zh, env, pos, shown),
                   fix=_render(r.fix_zh, env, pos, shown))


def _arrow_text(values: np.ndarray):
    import pyarrow as pa
    return pa.array(values, type=pa.string(), from_pandas=True)


def _isin(values: np.ndarray, allowed) -> np.ndarray:
    """Membership of key texts in a set, hashed in Arrow (no Python step per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if not len(values) or not allowed:
        return np.zeros(len(values), dtype=bool)
    allowed = list(allowed)
    if not all(isinstance(a, str) for a in allowed[:100]):
        allowed = [str(a) for a in allowed]
    if _is_arrow_text(values):
        arr = values.array._pa_array
        value_set = pa.array(allowed, type=arr.type)
    else:
        arr = _arrow_text(values)
        value_set = pa.array(allowed, type=pa.string())
    return np.asarray(pc.is_in(arr, value_set=value_set).to_numpy(zero_copy_only=False), dtype=bool)


def _is_arrow_text(s) -> bool:
    return isinstance(s, pd.Series) and getattr(s.array, "_pa_array", None) is not None


def _duplicated(codes: np.ndarray) -> np.ndarray:
    """True for every row whose code appeared on an earlier row."""
    dup = np.ones(len(codes), dtype=bool)
    if len(codes):
        _, first = np.unique(codes, return_index=True)
        dup[first] = False
    return dup


def _shared_codes(*arrays: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Integer codes for key texts of several tables, equal texts getting equal codes (Arrow hashing)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    parts = []
    for a in arrays:
        if _is_arrow_text(a):
            parts.extend(c.cast(pa.string()) for c in pc.fill_null(a.array._pa_array, "").chunks)
        else:
            parts.append(_arrow_text(a))
    enc = pa.chunked_array(parts, type=pa.string()).dictionary_encode()
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks]).astype("int64") \
        if enc.num_chunks else np.zeros(0, dtype="int64")
    out, start = [], 0
    for a in arrays:
        out.append(codes[start:start + len(a)])
        start += len(a)
    ndict = max((len(c.dictionary) for c in enc.chunks), default=0)
    return out, ndict


def _first_rows(keys: pd.Series, rows: np.ndarray) -> np.ndarray:
    """For each row, the file row of the first row with the same key."""
    first = pd.Series(rows).groupby(keys.to_numpy(), sort=False).transform("first")
    return first.to_numpy()


def _check_duplicates(tab: _Table, cols: list[str], issues: _Issues, sheet: str, rule: str, what: str, fix: str):
    if any(c not in tab.typed for c in cols):
        return
    complete = np.ones(tab.n, dtype=bool)
    group = np.zeros(tab.n, dtype="int64")
    for c in cols:
        complete &= tab.typed[c].notna().to_numpy()
        codes, ncodes = tab.codes_of(c)
        group = group * (ncodes + 1) + codes
    dup = _duplicated(group) & complete
    if not dup.any():
        return
    first = _first_rows(pd.Series(group), tab.rows)
    pos = np.flatnonzero(dup)
    msg = (pd.Series([f"{what}与第 "] * len(pos), dtype=object) + pd.Series(first[pos]).astype(str)
           + " 行重复").to_numpy(dtype=object)
    issues.add(sheet=sheet, mask=dup, table=tab, rule=rule, rule_zh=BUILTIN_RULES[rule][0],
               severity=BUILTIN_RULES[rule][1], field=cols[-1], value=_value_text(tab.typed[cols[-1]], pos),
               message=msg, fix=fix)


def duplicate_issues(keys, existing_keys, file: str = "", *, rows=None, sheet: str = "main",
                     what: str = "此户", config: dict | None = None) -> pd.DataFrame:
    """Issues (ISSUE_COLUMNS) for keys of a new file already present in the store (``existing_keys``).

    Severity is error by default: the household was imported before; the field team must say which record is
    right (re-import the corrected file with the old one withdrawn, or drop the row)."""
    keys = pd.Series(keys).reset_index(drop=True).astype(object)
    existing = set(map(str, existing_keys))
    hit = keys.notna().to_numpy() & keys.astype(str).isin(existing).to_numpy()
    rows_arr = np.arange(2, len(keys) + 2) if rows is None else np.asarray(rows)
    sev = ((config or {}).get("validation", {}) or {}).get("severity", {}).get("duplicate", "error")
    if sev == "off" or not hit.any():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ISSUE_COLUMNS}).astype({"row": "Int64"})
    k = keys[hit].astype(str).to_numpy(dtype=object)
    return pd.DataFrame({
        "file": file, "sheet": sheet, "row": pd.array(rows_arr[hit], dtype="Int64"), "household_id": k,
        "field": "household_id", "rule": "duplicate", "rule_zh": "与已导入的数据重复", "severity": sev, "value": k,
        "message_zh": f"{what}已在以前导入的文件中出现过",
        "fix_zh": "确认哪一份记录正确：如本文件是更正版，先撤回旧文件再导入；否则删除此行",
    })


# ================================================================================================ main entry
def _structure(cb: Codebook, frame: pd.DataFrame, key_cols, what: str, file: str):
    if not isinstance(frame, pd.DataFrame):
        raise CodebookError(f"{what}: expected a table, got {type(frame).__name__}", file=file or None,
                            fix="pass the questionnaire as a table (DataFrame)")
    cols = [str(c).strip() for c in frame.columns]
    if len(set(cols)) != len(cols):
        dups = sorted({c for c in cols if cols.count(c) > 1})
        raise CodebookError(f"{what}: the column names {', '.join(dups)} appear more than once", file=file or None,
                            column=dups[0], fix="rename or delete the repeated columns, keeping one of each")
    for k in key_cols:
        if k not in cols:
            raise CodebookError(f"this file does not look like the {cb.label_zh} ({cb.name}): column {k} is missing",
                                file=file or None, column=k,
                                fix=f"name the identifying column {k} (see `tpa codebook show {cb.name}`), or "
                                    "import the file as the instrument it belongs to")


def _normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy(deep=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True)


def _column_checks(cb, tab: _Table, issues: _Issues, sheet: str, label: str, rows_all_error: list):
    cols = set(tab.raw.columns)
    for name, v in tab.variables.items():
        if name not in cols and v.required and not v.relevant:
            issues.add_file_level(sheet=sheet, rule="missing_column", rule_zh=BUILTIN_RULES["missing_column"][0],
                                  severity="error", field=name,
                                  message=f"{label}缺少必答题“{v.label_zh}”（列名 {name}），本表所有行都不能使用",
                                  fix=f"在文件中加上 {name} 列并填写后重新导入")
            if issues.severity_of("missing_column", "error") == "error":
                rows_all_error.append(sheet)
    known = set(tab.variables) | {"_row"}
    for c in tab.raw.columns:
        if c not in known and not c.startswith("_") and c not in _PLATFORM_COLUMNS:
            if _clean_text(tab.raw[c]).isna().all():
                continue   # an empty column (a question of the other household questionnaire): nothing lost
            issues.add_file_level(sheet=sheet, rule="unknown_column", rule_zh=BUILTIN_RULES["unknown_column"][0],
                                  severity="warning", field=c,
                                  message=f"{label}有问卷中没有的列 {c}，未检查",
                                  fix="如是拼写错误，按问卷的变量名改正列名（见 tpa codebook show）；否则可不理会")


def validate(cb, main: pd.DataFrame, repeats: dict[str, pd.DataFrame] | None = None, *,
             sample_ids: set | None = None, reserve_ids: set | None = None, config: dict | None = None,
             file: str = "") -> ValidationResult:
    """Check a questionnaire table (and its repeat groups) against a codebook. See the module docstring."""
    cb = load_codebook(cb)
    repeats = dict(repeats or {})
    config = _config_or_default(config)
    _structure(cb, main, [cb.key], "main table", file)
    main = _normalise_columns(main)
    issues = _Issues(file, config)
    all_error_sheets: list[str] = []

    tab = _Table("main", main, cb.variables, cb.key)
    _column_checks(cb, tab, issues, "main", "主表", all_error_sheets)
    # Parameters need typed province codes; coerce that one first.
    if "province_code" in main.columns and "province_code" in cb.variables:
        tab.typed["province_code"] = coerce_column(main["province_code"], cb.variables["province_code"])[0]
    params = _parameters(config, tab)
    tab.typed.pop("province_code", None)
    env = _Env(tab, cb, params, calcs=cb.calculations, aggs={})
    _check_table(tab, cb, env, issues, "main", set(main.columns))

    rep_tabs: dict[str, tuple[_Table, _Env, RepeatGroup]] = {}
    for gname, frame in repeats.items():
        if gname not in cb.repeats or frame is None:
            continue
        g = cb.repeats[gname]
        _structure(cb, frame, list(g.key[:1]), f"repeat group {gname}", file)
        frame = _normalise_columns(frame)
        rt = _Table(gname, frame, g.variables, g.key[0])
        _column_checks(cb, rt, issues, gname, f"{g.label_zh}表", all_error_sheets)
        renv = _Env(rt, cb, params, parent=env, parent_key=g.key[0])
        _check_table(rt, cb, renv, issues, gname, set(frame.columns))
        rep_tabs[gname] = (rt, renv, g)

    # Roster aggregates for the household rules: roster rows are grouped once per repeat (integer group codes),
    # then each aggregate is one bincount or one grouped reduction.
    aggs = {}
    grouping = {}
    for a in cb.aggregates:
        if a.repeat not in rep_tabs:
            continue
        rt, renv, g = rep_tabs[a.repeat]
        if a.repeat not in grouping:
            # One factorisation of roster and household keys together: shared integer codes for both.
            (codes, main_codes), ngroups = _shared_codes(rt.key_values(), tab.key_values())
            has_roster = np.bincount(codes, minlength=ngroups) > 0
            grouping[a.repeat] = (codes, ngroups, main_codes, has_roster[main_codes])
        codes, ngroups, main_codes, found = grouping[a.repeat]
        mask = renv.condition(a.where) if a.where else np.ones(rt.n, dtype=bool)
        if a.fn != "count":
            vals = renv.resolve(a.of)
            x = np.asarray(vals.data, dtype="float64").copy() if not vals.scalar else np.full(rt.n, np.nan)
            x[~mask] = np.nan
        if a.fn == "count":
            per = np.bincount(codes, weights=mask.astype("float64"), minlength=ngroups)
            fill = 0.0
        elif a.fn in ("sum", "mean"):
            ok = ~np.isnan(x)
            per = np.bincount(codes, weights=np.where(ok, x, 0.0), minlength=ngroups)
            if a.fn == "mean":
                n_ok = np.bincount(codes, weights=ok.astype("float64"), minlength=ngroups)
                with np.errstate(invalid="ignore", divide="ignore"):
                    per = np.where(n_ok > 0, per / n_ok, np.nan)
            fill = 0.0 if a.fn == "sum" else np.nan
        else:
            red = getattr(pd.Series(x).groupby(codes), a.fn)()
            per = red.reindex(range(ngroups)).to_numpy(dtype="float64", na_value=np.nan)
            fill = np.nan
        out = np.full(tab.n, fill, dtype="float64")
        out[found] = per[main_codes[found]]
        aggs[a.name] = out
    env.aggs = aggs
    env.cache = {k: v for k, v in env.cache.items() if k not in aggs}

    _check_rules(cb, "main", tab, env, issues, "main")
    for gname, (rt, renv, g) in rep_tabs.items():
        _check_rules(cb, gname, rt, renv, issues, gname)

    # Duplicates, orphans, linkage.
    _check_duplicates(tab, [cb.key], issues, "main", "duplicate", "此户（户编码相同）" if cb.key == "household_id"
                      else "此村（村代码相同）", "同一户（村）只保留一行：删除重复的行，或改正录错的编码")
    # Integer codes of the keys, shared by the main table and every roster (equal key text, equal code).
    names = list(rep_tabs)
    if not names and tab.keys is not None:
        # the key column's own codes (missing as "", like keys_text): the duplicate check made them already
        key_codes, ncodes = tab.codes_of(tab.key_col)
        all_codes = [key_codes]
    else:
        all_codes, ncodes = _shared_codes(tab.key_values(), *[rep_tabs[g][0].key_values() for g in names])
    if "head_id_number" in tab.typed and cb.key in tab.typed:
        key_dup = _duplicated(all_codes[0])
        hid = tab.typed["head_id_number"].reset_index(drop=True)
        valid = hid.notna().to_numpy() & ~key_dup
        dup = np.zeros(tab.n, dtype=bool)
        dup[valid] = _duplicated(_shared_codes(hid[valid].reset_index(drop=True))[0][0])
        if dup.any():
            first = _first_rows(hid.where(valid, None).astype(str), tab.rows)
            pos = np.flatnonzero(dup)
            msg = (pd.Series(["户主身份证号码与第 "] * len(pos), dtype=object) + pd.Series(first[pos]).astype(str)
                   + " 行（另一户）相同，可能同一户录了两次").to_numpy(dtype=object)
            issues.add(sheet="main", mask=dup, table=tab, rule="duplicate_head_id",
                       rule_zh=BUILTIN_RULES["duplicate_head_id"][0], severity="warning", field="head_id_number",
                       value=_value_text(hid, pos), message=msg, fix="核对两户是否为同一户；如是，删除一行")
    main_codes, rep_codes = all_codes[0], dict(zip(names, all_codes[1:]))
    in_main = np.zeros(ncodes, dtype=bool)
    in_main[main_codes[tab.has_key]] = True
    for gname, (rt, renv, g) in rep_tabs.items():
        if len(g.key) > 1:   # without an item number there is nothing to call a duplicate member
            _check_duplicates(rt, list(g.key), issues, gname, "duplicate_member", "此成员（户编码和成员序号相同）",
                              "删除重复的成员行，或改正成员序号")
        if "id_number" in rt.typed:
            _check_duplicates(rt, ["id_number"], issues, gname, "duplicate_person", "此身份证号码",
                              "核对身份证号码：同一人只能在一户中登记一次")
        parent = g.key[0]
        if parent in rt.typed:
            orphan = rt.has_key & ~in_main[rep_codes[gname]]
            issues.add(sheet=gname, mask=orphan, table=rt, rule="orphan_member",
                       rule_zh=BUILTIN_RULES["orphan_member"][0], severity="error", field=parent,
                       value=_value_text(rt.typed[parent], np.flatnonzero(orphan)),
                       message=f"{g.label_zh}中的这一行所属的户不在主表中",
                       fix="核对户编码；或把该户的主表记录一起导入")
        if "person_id" in rt.typed and len(g.key) > 1 and g.key[1] in rt.typed:
            no = rt.typed[g.key[1]]
            expect = pd.Series(rt.keys_text) + no.astype("Int64").astype(str).str.zfill(2).reset_index(drop=True)
            pid = rt.typed["person_id"].reset_index(drop=True)
            wrong = (pid.notna() & no.notna().reset_index(drop=True) & (pid != expect)).to_numpy(dtype=bool)
            issues.add(sheet=gname, mask=wrong, table=rt, rule="person_id", rule_zh=BUILTIN_RULES["person_id"][0],
                       severity="error", field="person_id", value=_value_text(pid, np.flatnonzero(wrong)),
                       message="人编码应为户编码加两位成员序号", fix="改正人编码（户编码 + 两位成员序号，如 01）")
    if sample_ids is not None:
        allowed = set(map(str, sample_ids)) | set(map(str, reserve_ids or ()))
        outside = tab.has_key & ~_isin(tab.key_values(), allowed)
        what = "此户" if cb.key == "household_id" else "此村"
        issues.add(sheet="main", mask=outside, table=tab, rule="not_in_sample",
                   rule_zh=BUILTIN_RULES["not_in_sample"][0], severity="error", field=cb.key,
                   value=_value_text(pd.Series(tab.key_text_at(np.flatnonzero(outside)), dtype=object)),
                   message=f"{what}不在本次抽中的样本中，也不在备选（替补）名单中",
                   fix="核对编码是否录错；如确为替换入户，先在抽样记录中登记替补户后再导入")

    frame = issues.frame()
    # Rows and keys that go to quarantine.
    errors = frame[frame["severity"] == "error"]
    main_err = np.zeros(tab.n, dtype=bool)
    pos_main = errors.loc[(errors["sheet"] == "main") & (errors["_pos"] >= 0), "_pos"].to_numpy(dtype="int64")
    main_err[pos_main] = True
    if "main" in all_error_sheets:
        main_err[:] = True
    rep_err = {}
    for gname, (rt, renv, g) in rep_tabs.items():
        m = np.zeros(rt.n, dtype=bool)
        p = errors.loc[(errors["sheet"] == gname) & (errors["_pos"] >= 0), "_pos"].to_numpy(dtype="int64")
        m[p] = True
        if gname in all_error_sheets:
            m[:] = True
        rep_err[gname] = m
    # A household with an error in its roster is quarantined whole, and its roster with it (by key code; rows
    # without a key stay flagged on their own).
    if all_error_sheets:
        main_err[:] = True
    flagged = np.zeros(ncodes, dtype=bool)
    flagged[main_codes[main_err & tab.has_key]] = True
    for gname, (rt, _, _) in rep_tabs.items():
        flagged[rep_codes[gname][rep_err[gname] & rt.has_key]] = True
    main_err |= flagged[main_codes] & tab.has_key
    for gname, (rt, _, _) in rep_tabs.items():
        rep_err[gname] |= flagged[rep_codes[gname]] & rt.has_key
    error_keys = set(pd.unique(tab.key_text_at(np.flatnonzero(main_err))))
    for gname, (rt, _, _) in rep_tabs.items():
        error_keys |= set(pd.unique(rt.key_text_at(np.flatnonzero(rep_err[gname]))))
    error_keys.discard("")

    typed_main = _typed_frame(tab)
    typed_reps = {g: _typed_frame(rt) for g, (rt, _, _) in rep_tabs.items()}
    for gname, frame_in in repeats.items():   # repeat tables the codebook does not know are passed through
        if gname not in typed_reps and frame_in is not None:
            typed_reps[gname] = frame_in
    frame = frame.sort_values(["sheet", "row"], key=lambda s: s.map({"main": ""}).fillna(s) if s.name == "sheet"
                              else s, kind="stable", na_position="first").drop(columns="_pos").reset_index(drop=True)
    return ValidationResult(main=typed_main, repeats=typed_reps, issues=frame[ISSUE_COLUMNS], error_keys=error_keys,
                            main_errors=pd.Series(main_err, index=typed_main.index, name="error"),
                            repeat_errors={g: pd.Series(m, index=typed_reps[g].index, name="error")
                                           for g, m in rep_err.items()},
                            codebook=cb, file=file)


def _typed_frame(tab: _Table) -> pd.DataFrame:
    """The input with codebook columns replaced by their typed values (other columns kept as read)."""
    out = tab.raw.copy(deep=False)
    for name, col in tab.typed.items():
        out[name] = col.reset_index(drop=True)
    if "_row" not in out.columns:
        out["_row"] = tab.rows
    return out
