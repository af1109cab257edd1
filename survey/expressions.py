"""A small, safe evaluator for XLSForm expressions, vectorised over a table.

The codebooks carry skip logic (``relevant``), constraints and consistency rules as XLSForm/XPath text, e.g.
``${register_status} = 1 and ${_income_pc} <= ${_line}`` or ``. >= 0 and . <= 12``. This module parses that text
into a tree once and evaluates the tree over whole columns: one numpy/pandas operation per node, never one Python
step per row, and never Python ``eval`` of text that came from a user's form.

Supported: ``${name}`` references, ``.`` (the current item, in constraints), numbers, 'strings' / "strings",
``or``, ``and``, ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``+``, ``-``, ``*``, ``div`` (or ``/``), ``mod``,
unary minus, parentheses, and the functions in :data:`FUNCTIONS`.

Missing values: a comparison with an unanswered item is false (for ``!=`` too, unlike XPath), so that a rule
never fires and a skip condition never holds on missing data; test for missing with ``${x} = ''``.
Arithmetic with a missing operand is missing. Dates and date-times are numbers of days since 1970-01-01 (XPath's
``decimal-date-time``), so ``(${interview_end} - ${interview_start}) * 1440`` is a duration in minutes.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import CodebookError

__all__ = ["parse", "references", "evaluate", "Column", "ExpressionError", "FUNCTIONS", "split_conjuncts",
           "truth"]


class ExpressionError(CodebookError):
    code = "expression"


# ----------------------------------------------------------------------------------------------- tokenizer
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<ref>\$\{\s*(?P<refname>[A-Za-z_:][A-Za-z0-9_:.\-]*)\s*\})
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'[^']*'|"[^"]*"|‘[^’]*’|“[^”]*”)
  | (?P<op><=|>=|!=|==|=|<|>|\+|-|\*|/|\(|\)|,)
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<dot>\.)
""", re.VERBOSE)


@dataclass(frozen=True)
class Tok:
    kind: str   # ref num str op name dot end
    text: str
    pos: int


def _tokenize(text: str) -> list[Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExpressionError(f"cannot read expression {text!r} at character {pos + 1}: {text[pos:pos + 10]!r}",
                                  fix="use ${name}, numbers, 'text', and, or, not(), selected(), =, !=, <, >, +, -")
        kind = m.lastgroup
        if kind == "refname":
            kind = "ref"
        if kind != "ws":
            if kind == "ref":
                toks.append(Tok("ref", m.group("refname"), pos))
            elif kind == "str":
                toks.append(Tok("str", m.group()[1:-1], pos))
            else:
                toks.append(Tok(kind, m.group(), pos))
        pos = m.end()
    toks.append(Tok("end", "", len(text)))
    return toks


# ----------------------------------------------------------------------------------------------- parser
# Tree nodes are tuples: ("num", float) ("str", s) ("ref", name) ("dot",) ("bin", op, a, b) ("neg", a)
# ("call", fname, (args...)).
_BINARY_LEVELS = [("or",), ("and",), ("=", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "div", "mod")]


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def take(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, what):
        tok = self.peek()
        where = f"at character {tok.pos + 1}" if tok.kind != "end" else "at the end"
        return ExpressionError(f"expression {self.text!r}: {what} {where}",
                               fix="check brackets, quotes and operators of the expression")

    def _op_at(self, level):
        tok = self.peek()
        ops = _BINARY_LEVELS[level]
        text = tok.text
        if tok.kind == "op":
            text = {"==": "=", "/": "div"}.get(text, text)
            return text if text in ops else None
        if tok.kind == "name" and text in ops:
            return text
        return None

    def parse(self):
        node = self.binary(0)
        if self.peek().kind != "end":
            raise self.error("unexpected text")
        return node

    def binary(self, level):
        if level == len(_BINARY_LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while (op := self._op_at(level)) is not None:
            self.take()
            node = ("bin", op, node, self.binary(level + 1))
        return node

    def unary(self):
        tok = self.peek()
        if tok.kind == "op" and tok.text == "-":
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self):
        tok = self.take()
        if tok.kind == "num":
            return ("num", float(tok.text))
        if tok.kind == "str":
            return ("str", tok.text)
        if tok.kind == "ref":
            return ("ref", tok.text)
        if tok.kind == "dot":
            return ("dot",)
        if tok.kind == "op" and tok.text == "(":
            node = self.binary(0)
            if self.take().text != ")":
                self.i -= 1
                raise self.error("missing ')'")
            return node
        if tok.kind == "name":
            if self.peek().text != "(":
                self.i -= 1
                raise self.error(f"bare name {tok.text!r} (write ${{{tok.text}}} for a question)")
            self.take()
            name = tok.text
            if name not in FUNCTIONS:
                self.i -= 1
                raise self.error(f"unknown function {name}()")
            args = []
            if self.peek().text != ")":
                args.append(self.binary(0))
                while self.peek().text == ",":
                    self.take()
                    args.append(self.binary(0))
            if self.take().text != ")":
                self.i -= 1
                raise self.error("missing ')' after the arguments")
            lo, hi = FUNCTIONS[name][0]
            if not lo <= len(args) <= hi:
                raise ExpressionError(f"expression {self.text!r}: {name}() takes {lo}–{hi} arguments, "
                                      f"got {len(args)}", fix=f"correct the call of {name}()")
            return ("call", name, tuple(args))
        self.i -= 1
        raise self.error("expected a value")


@functools.lru_cache(maxsize=4096)
def parse(text: str):
    """Parse an expression into a tree (cached). Raises ExpressionError on bad syntax or unknown functions."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression", fix="write a condition such as ${x} = 1")
    return _Parser(text).parse()


def references(text_or_tree) -> set[str]:
    """Names referenced as ${name} (``.`` is not included)."""
    tree = parse(text_or_tree) if isinstance(text_or_tree, str) else text_or_tree
    out = set()

    def walk(node):
        if node[0] == "ref":
            out.add(node[1])
        elif node[0] == "bin":
            walk(node[2])
            walk(node[3])
        elif node[0] == "neg":
            walk(node[1])
        elif node[0] == "call":
            for a in node[2]:
                walk(a)
    walk(tree)
    return out


def split_conjuncts(text: str) -> list[str]:
    """Split ``a and b and (c or d)`` at its top-level ``and``s (text kept as written); [text] if there is an or."""
    toks = _tokenize(text)
    depth, cuts = 0, []
    for tok in toks:
        if tok.kind == "op" and tok.text == "(":
            depth += 1
        elif tok.kind == "op" and tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "name" and tok.text == "or":
            return [text.strip()]
        elif depth == 0 and tok.kind == "name" and tok.text == "and":
            cuts.append(tok.pos)
    parts, start = [], 0
    for c in cuts:
        parts.append(text[start:c].strip())
        start = c + 3
    parts.append(text[start:].strip())
    return [p for p in parts if p]


# ----------------------------------------------------------------------------------------------- values
@dataclass
class Column:
    """A value during evaluation: ``kind`` is num (float64, NaN missing), str (object array, None missing),
    bool, or dt (days since epoch as float64). ``data`` is a numpy array of length n or a Python scalar."""
    kind: str
    data: object

    @property
    def scalar(self):
        return not isinstance(self.data, (np.ndarray, pd.Series))


_NUMERIC_TEXT = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_EPOCH = np.datetime64("1970-01-01T00:00:00", "ns")


def from_series(series: pd.Series, kind: str | None = None) -> Column:
    """Turn a typed column into an evaluation value (kind guessed from the dtype unless given)."""
    s = series
    if kind is None:
        if pd.api.types.is_bool_dtype(s.dtype):
            kind = "bool"
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            kind = "dt"
        elif pd.api.types.is_numeric_dtype(s.dtype):
            kind = "num"
        else:
            kind = "str"
    if kind == "dt":
        if not pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.to_datetime(s, errors="coerce")
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        ns = s.to_numpy(dtype="datetime64[ns]")
        days = (ns - _EPOCH).astype("timedelta64[ns]").astype("int64").astype("float64") / 86_400e9
        days[np.isnat(ns)] = np.nan
        return Column("dt", days)
    if kind == "bool":
        return Column("bool", s.fillna(False).to_numpy(dtype=bool))
    if kind == "num":
        if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            # numbers and booleans, nullable or not: one conversion
            return Column("num", s.to_numpy(dtype="float64", na_value=np.nan))
        return Column("num", pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(dtype="float64",
                                                                                           na_value=np.nan))
    return Column("str", _text(s))


def _text(s) -> pd.Series:
    """Arrow-backed text Series with a 0..n-1 index (vectorised string operations need it)."""
    if not isinstance(s, pd.Series):
        s = pd.Series(s, dtype=object)
    if not (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        s = s.astype("str")
    return s.reset_index(drop=True)


def _text_bytes(chunk) -> tuple[np.ndarray, np.ndarray]:
    """(offsets as int64, UTF-8 data) of an Arrow string or large_string array, without copying the data."""
    import pyarrow as pa
    n = len(chunk)
    _, offsets, data = chunk.buffers()
    wide = pa.types.is_large_string(chunk.type)
    off = np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)[chunk.offset:chunk.offset + n + 1] \
        if offsets is not None and n else np.zeros(1, dtype=np.int64)
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None and len(data) else np.zeros(0, dtype=np.uint8)
    return off.astype(np.int64, copy=False), raw


def _fixed_width(s: pd.Series) -> np.ndarray | None:
    """The UTF-8 bytes of an Arrow text Series as an (n, width) view when every value is present and all have the
    same byte length (codes, IDs), else None."""
    arr = getattr(s.array, "_pa_array", None) if isinstance(s, pd.Series) else None
    if arr is None or arr.null_count or arr.num_chunks != 1 or not len(arr):
        return None
    off, raw = _text_bytes(arr.chunk(0))
    width = int(off[1] - off[0])
    if int(off[-1] - off[0]) != len(arr) * width or not (off[1:] - off[:-1] == width).all():
        return None
    return raw[off[0]:off[-1]].reshape(len(arr), width)


def _null_or_empty(s: pd.Series) -> np.ndarray | None:
    """Missing or "" per row of an Arrow text Series, from its offsets and validity (no string kernel)."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is None:
        return None
    out = []
    for chunk in arr.chunks:
        off, _ = _text_bytes(chunk)
        empty = off[1:] == off[:-1]
        if chunk.null_count:
            empty |= ~np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        out.append(empty)
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def _as_num(v: Column, n: int) -> Column:
    if v.kind in ("num", "dt"):
        return v
    if v.kind == "bool":
        return Column("num", float(v.data) if v.scalar else v.data.astype("float64"))
    if v.scalar:
        if v.data is None:
            return Column("num", np.nan)
        try:
            return Column("num", float(str(v.data).strip()))
        except ValueError:
            return Column("num", np.nan)
    s = _text(v.data)
    pa_arr = getattr(s.array, "_pa_array", None)
    if pa_arr is not None:
        import pyarrow as pa
        import pyarrow.compute as pc
        try:
            trimmed = pc.utf8_trim_whitespace(pa_arr)
            trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
            return Column("num", np.array(pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False),
                                          dtype="float64"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return Column("num", np.array(pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)))


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _as_str(v: Column, n: int) -> Column:
    if v.kind == "str":
        return v
    if v.kind == "bool":
        if v.scalar:
            return Column("str", "true" if v.data else "false")
        return Column("str", np.where(v.data, "true", "false").astype(object))
    if v.scalar:
        return Column("str", None if np.isnan(v.data) else _fmt_num(v.data))
    x = v.data
    out = np.full(len(x), None, dtype=object)
    ok = ~np.isnan(x)
    if ok.any():
        vals = x[ok]
        whole = vals == np.round(vals)
        text = np.empty(len(vals), dtype=object)
        if whole.any():
            text[whole] = vals[whole].astype("int64").astype(str).astype(object)
        if (~whole).any():
            text[~whole] = vals[~whole].astype(str).astype(object)
        out[ok] = text
    return Column("str", out)


def _missing(v: Column, n: int):
    """Boolean mask (or scalar) of missing values: NaN, None or empty text."""
    d = v.data
    if v.kind == "bool":
        return False if v.scalar else np.zeros(n, dtype=bool)
    if v.kind in ("num", "dt"):
        return bool(np.isnan(d)) if v.scalar else np.isnan(d)
    if v.scalar:
        return d is None or str(d) == ""
    s = _text(d)
    fast = _null_or_empty(s)
    if fast is not None:
        return fast
    return s.isna().to_numpy() | s.eq("").fillna(False).to_numpy(dtype=bool)


def truth(v: Column, n: int) -> np.ndarray:
    """Boolean array: bool as is, numbers non-zero and present, text non-empty (XPath boolean())."""
    if v.kind == "bool":
        out = v.data
    elif v.kind in ("num", "dt"):
        d = v.data
        out = (not np.isnan(d) and d != 0) if v.scalar else (~np.isnan(d) & (d != 0))
    else:
        out = ~_missing(v, n) if not v.scalar else not _missing(v, n)
    if np.ndim(out) == 0:
        return np.full(n, bool(out))
    return np.asarray(out, dtype=bool)


def _broadcast(x, n):
    return np.full(n, x) if np.ndim(x) == 0 else x


def _str_series(v: Column, n: int) -> pd.Series:
    s = _as_str(v, n)
    if s.scalar:
        return _text(np.full(n, s.data, dtype=object))
    return _text(s.data)


def _eq_text(a: pd.Series, b: pd.Series) -> np.ndarray:
    return a.eq(b).fillna(False).to_numpy(dtype=bool)


def _date_literal(text) -> float:
    try:
        ts = pd.Timestamp(str(text))
    except (ValueError, TypeError):
        return np.nan
    if ts is pd.NaT:
        return np.nan
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return (ts - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)


def _compare(op, a: Column, b: Column, n: int):
    is_empty = lambda v: v.kind == "str" and v.scalar and (v.data is None or v.data == "")  # noqa: E731
    if op in ("=", "!=") and (is_empty(a) or is_empty(b)):
        other = b if is_empty(a) else a
        miss = _missing(other, n)
        return Column("bool", _broadcast(miss if op == "=" else ~np.asarray(miss), n))
    present = ~np.asarray(_missing(a, n)) & ~np.asarray(_missing(b, n))
    # A date compared with a text literal: read the literal as a date.
    if a.kind == "dt" and b.kind == "str" and b.scalar:
        b = Column("dt", _date_literal(b.data))
    if b.kind == "dt" and a.kind == "str" and a.scalar:
        a = Column("dt", _date_literal(a.data))
    if op in ("=", "!=") and "str" in (a.kind, b.kind) and a.kind != b.kind and "bool" not in (a.kind, b.kind):
        # Number against text (``${status} = '1'``): compare as numbers where the text reads as a number,
        # else as text (``${grade} = 'A'``).
        sv, nv = (a, b) if a.kind == "str" else (b, a)
        sn = _as_num(sv, n)
        as_num = ~np.isnan(sn.data) if not sn.scalar else np.full(n, not np.isnan(sn.data))
        with np.errstate(invalid="ignore"):
            eq_num = _broadcast(sn.data == nv.data, n)
        eq_str = _eq_text(_str_series(sv, n), _str_series(nv, n))
        eq = np.where(_broadcast(as_num, n), eq_num, eq_str)
    elif op in ("=", "!=") and "str" in (a.kind, b.kind):
        if a.kind == "bool" or b.kind == "bool":
            a, b = _as_str(a, n), _as_str(b, n)
        if a.scalar and b.scalar:
            eq = np.full(n, a.data == b.data)
        elif b.scalar:
            eq = _str_series(a, n).eq(b.data).fillna(False).to_numpy(dtype=bool)
        elif a.scalar:
            eq = _str_series(b, n).eq(a.data).fillna(False).to_numpy(dtype=bool)
        else:
            eq = _eq_text(_str_series(a, n), _str_series(b, n))
    elif op in ("=", "!="):
        x, y = _as_num(a, n).data, _as_num(b, n).data
        with np.errstate(invalid="ignore"):
            eq = _broadcast(np.asarray(x == y), n)
    else:
        if a.kind == "str" and b.kind == "str" and not (a.scalar and b.scalar):
            # Text order is only used for codes of equal width ('2019-05-01' < '2019-06-01').
            sa, sb = _str_series(a, n), _str_series(b, n)
            fn = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}[op]
            res = getattr(sa.fillna(""), fn)(sb.fillna("")).to_numpy(dtype=bool)
            return Column("bool", res & present)
        x, y = _as_num(a, n).data, _as_num(b, n).data
        with np.errstate(invalid="ignore"):
            res = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op](x, y)
        return Column("bool", _broadcast(np.asarray(res), n) & present)
    res = eq if op == "=" else ~np.asarray(eq, dtype=bool)
    return Column("bool", _broadcast(np.asarray(res, dtype=bool), n) & present)


def _arith(op, a: Column, b: Column, n: int) -> Column:
    x, y = _as_num(a, n).data, _as_num(b, n).data
    with np.errstate(all="ignore"):
        if op == "+":
            r = x + y
        elif op == "-":
            r = x - y
        elif op == "*":
            r = x * y
        elif op == "div":
            r = np.true_divide(x, y)
        else:
            r = np.fmod(x, y)
    if np.ndim(r) == 0:
        r = float(r)
        if np.isinf(r):
            r = np.nan
    else:
        r = np.where(np.isinf(r), np.nan, r)
    kind = "dt" if (op in ("+", "-") and (a.kind == "dt") != (b.kind == "dt")) else "num"
    return Column(kind, r)


# ----------------------------------------------------------------------------------------------- functions
def _f_not(n, a):
    return Column("bool", ~truth(a, n))


def _tokens_series(v, n):
    s = _str_series(v, n).fillna("")
    if s.str.contains(r"[,，;；、\t]|  ", regex=True).any():
        s = s.str.replace(r"[\s,，;；、]+", " ", regex=True)
    return " " + s.str.strip() + " "


def _f_selected(n, a, b):
    code = _as_str(b, n)
    if not code.scalar:
        raise ExpressionError("selected(): the second argument must be a fixed choice code such as 'x'",
                              fix="write selected(${question}, 'code')")
    if code.data is None:
        return Column("bool", np.zeros(n, dtype=bool))
    s = _tokens_series(a, n)
    return Column("bool", s.str.contains(" " + str(code.data).strip() + " ", regex=False).fillna(False)
                  .to_numpy(dtype=bool))


def _f_count_selected(n, a):
    s = _tokens_series(a, n).str.strip()
    counts = (s.str.count(" ") + 1).astype("float64").to_numpy(dtype="float64", na_value=0.0)
    return Column("num", np.where(s.eq("").to_numpy(dtype=bool), 0.0, counts))


def _f_string_length(n, a):
    s = _str_series(a, n).fillna("")
    return Column("num", s.str.len().astype("float64").to_numpy(dtype="float64", na_value=0.0))


def _f_if(n, c, a, b):
    cond = truth(c, n)
    if a.kind == b.kind and a.kind in ("num", "dt", "bool"):
        return Column(a.kind, np.where(cond, _broadcast(a.data, n), _broadcast(b.data, n)))
    if {a.kind, b.kind} <= {"num", "dt", "bool", "str"} and "str" not in (a.kind, b.kind):
        return Column("num", np.where(cond, _broadcast(_as_num(a, n).data, n), _broadcast(_as_num(b, n).data, n)))
    # Mixed text/number: an empty-text branch means "missing" for the number branch (if(c, x, '')).
    for x, y, flip in ((a, b, False), (b, a, True)):
        if y.kind == "str" and y.scalar and (y.data in (None, "")) and x.kind in ("num", "dt"):
            keep = ~cond if flip else cond
            return Column(x.kind, np.where(keep, _broadcast(x.data, n), np.nan))
    sa, sb = _str_series(a, n), _str_series(b, n)
    return Column("str", sa.where(cond, sb))


def _f_number(n, a):
    return _as_num(a, n) if a.kind != "dt" else Column("num", a.data)


def _f_int(n, a):
    x = _as_num(a, n).data
    return Column("num", np.trunc(x))


def _f_round(n, a, digits=None):
    d = 0 if digits is None else int(_as_num(digits, n).data) if _as_num(digits, n).scalar else 0
    x = _as_num(a, n).data
    # Half away from zero, as people round (XPath round), not numpy's half-to-even.
    f = 10.0 ** d
    return Column("num", np.sign(x) * np.floor(np.abs(x) * f + 0.5) / f)


def _f_abs(n, a):
    return Column("num", np.abs(_as_num(a, n).data))


def _f_coalesce(n, a, b):
    miss = _missing(a, n)
    if a.kind in ("num", "dt") and b.kind in ("num", "dt", "bool"):
        return Column(a.kind, np.where(miss, _broadcast(_as_num(b, n).data, n), _broadcast(a.data, n)))
    if a.kind == "str" and b.kind == "str":
        return Column("str", _str_series(a, n).where(~_broadcast(np.asarray(miss), n), _str_series(b, n)))
    x, y = _as_num(a, n).data, _as_num(b, n).data
    return Column("num", np.where(np.isnan(_broadcast(x, n)), _broadcast(y, n), _broadcast(x, n)))


@functools.lru_cache(maxsize=256)
def _regex(pattern: str):
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"regex(): bad pattern {pattern!r}: {exc}", fix="correct the regular expression") \
            from None


# ``^[class]{m,n}$`` (the code formats of the codebooks, as written or wrapped in ^(?:...)$): a class of plain ASCII
# characters, single characters or ranges within digits / lower / upper case letters.
_CLASS_RUN = re.compile(r"\^(\(\?:)?\^?\[([A-Za-z0-9 +().,:/_#*@-]+)\](?:\{(\d+)(?:(,)(\d*))?\}|([+*]))\$?(?(1)\))\$")


def _class_run(pattern: str):
    """(256-entry byte table, min length, max length) when ``pattern`` is a whole-value run of one character
    class, else None."""
    m = _CLASS_RUN.fullmatch(pattern)
    if m is None:
        return None
    body, lo, comma, hi, op = m.group(2), m.group(3), m.group(4), m.group(5), m.group(6)
    table = np.zeros(256, dtype=bool)
    i = 0
    while i < len(body):
        c = body[i]
        if c == "-" and 0 < i < len(body) - 1:
            a, b = body[i - 1], body[i + 1]
            if not any(x <= a <= b <= y for x, y in (("0", "9"), ("a", "z"), ("A", "Z"))):
                return None
            table[ord(a):ord(b) + 1] = True
            i += 2
            continue
        table[ord(c)] = True
        i += 1
    if op:
        lo, hi = (1 if op == "+" else 0), None
    else:
        lo = int(lo)
        hi = lo if not comma else (int(hi) if hi else None)
    if lo > 1000 or (hi is not None and (hi > 1000 or hi < lo)):   # RE2's limit: let the regex engine say so
        return None
    return table, lo, hi


def _outside(raw: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Bytes not in a 256-entry table: by the table's runs of consecutive bytes ('0'-'9': one unsigned
    comparison), which beats a table lookup per byte when there are few. (Callers first test the usual case,
    every byte between the smallest and the largest in the table: two reductions, no array of the data's size.)"""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], table, [False]]).astype(np.int8)))
    runs = list(zip(edges[::2], edges[1::2]))
    if len(runs) > 4:
        return ~table[raw]
    out = np.ones(len(raw), dtype=bool)
    for lo, hi in runs:
        out &= (raw - np.uint8(lo)) >= np.uint8(hi - lo)
    return out


def regex_contains(s: pd.Series, pattern: str) -> np.ndarray:
    """``s.str.contains(pattern, regex=True)`` as a boolean array (missing: False), without running the regex
    over every row where that can be avoided. The answers are exactly those of pandas, whose engine choice
    (Arrow's RE2, or Python's re when the values hold a newline or non-ASCII text meets \\d, \\w, \\b) depends on
    the set of values checked; both shortcuts below keep the values that decide it:

    - a run of one plain character class (``^[0-9]{16}$``): rows of only class bytes and of the right length match
      under either engine; only the other rows (where any newline is) go to the regex;
    - otherwise, with few distinct values, the regex runs over the distinct values only.
    """
    arr = getattr(s.array, "_pa_array", None) if isinstance(s, pd.Series) else None
    if arr is None or not isinstance(s.dtype, pd.StringDtype):
        return pd.Series(s).str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
    import pyarrow as pa

    arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    n = len(arr)
    run = _class_run(pattern)
    if run is not None and n:
        table, lo, hi = run
        off, raw = _text_bytes(arr)
        raw = raw[off[0]:off[-1]]
        lens = off[1:] - off[:-1]
        ok = (lens >= lo) if hi is None else (lens >= lo) & (lens <= hi)
        if len(raw) and not table[int(raw.min()):int(raw.max()) + 1].all():
            stray = _outside(raw, table)
            seen = np.concatenate([[0], np.cumsum(stray)])
            ok &= seen[off[1:] - off[0]] == seen[off[:-1] - off[0]]
        if arr.null_count:
            ok &= arr.is_valid().to_numpy(zero_copy_only=False)
        rest = np.flatnonzero(~ok & ~s.isna().to_numpy())
        if len(rest):
            ok[rest] = s.iloc[rest].str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
        return ok
    if n >= 64:
        probe = arr.slice(0, 2048).dictionary_encode()
        if len(probe.dictionary) * 4 <= len(probe):
            enc = arr.dictionary_encode()
            if len(enc.dictionary) * 4 <= n:
                values = pd.Series(type(s.array)(pa.chunked_array([enc.dictionary]), dtype=s.dtype))
                per_value = values.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
                idx = enc.indices.to_numpy(zero_copy_only=False)
                if enc.indices.null_count:
                    valid = enc.indices.is_valid().to_numpy(zero_copy_only=False)
                    return np.where(valid, per_value[np.where(valid, idx, 0).astype(np.int64)], False) \
                        if len(per_value) else np.zeros(n, dtype=bool)
                return per_value[idx]
    return s.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)


def _f_regex(n, a, p):
    pat = _as_str(p, n)
    if not pat.scalar or pat.data is None:
        raise ExpressionError("regex(): the pattern must be fixed text", fix="write regex(., '^[0-9]{11}$')")
    _regex(pat.data)
    s = _str_series(a, n)
    # missing rows are False either way (pandas was given them as "")
    res = regex_contains(s, pat.data)
    return Column("bool", res & ~np.asarray(_broadcast(_missing(a, n), n)))


def _f_true(n):
    return Column("bool", True)


def _f_false(n):
    return Column("bool", False)


def _f_starts_with(n, a, b):
    sa = _str_series(a, n)
    if _as_str(b, n).scalar:
        pre = _as_str(b, n).data
        res = sa.fillna("").str.startswith("" if pre is None else pre).to_numpy(dtype=bool)
    elif (fa := _fixed_width(sa)) is not None and (fb := _fixed_width(_str_series(b, n))) is not None:
        # codes against codes (household ID against village code): a UTF-8 text starts with another exactly
        # when its bytes start with the other's bytes
        res = np.full(n, fb.shape[1] <= fa.shape[1])
        if fb.shape[1] <= fa.shape[1]:
            for j in range(fb.shape[1]):        # byte by byte: .all(axis=1) was slower
                res &= fa[:, j] == fb[:, j]
    else:
        sb = _str_series(b, n).fillna("")
        lengths = sb.str.len()
        # Vectorised "a starts with b" for a column b: compare a's prefix of len(b) with b, per distinct length.
        res = np.zeros(n, dtype=bool)
        a_fill = sa.fillna("")
        for L in pd.unique(lengths):
            m = (lengths == L).to_numpy()
            res[m] = (a_fill[m].str.slice(0, int(L)) == sb[m]).to_numpy(dtype=bool)
    miss = np.asarray(_broadcast(_missing(a, n), n)) | np.asarray(_broadcast(_missing(b, n), n))
    return Column("bool", res & ~miss)


def _f_ends_with(n, a, b):
    suf = _as_str(b, n)
    if not suf.scalar:
        raise ExpressionError("ends-with(): the second argument must be fixed text", fix="write ends-with(${x}, 'y')")
    res = _str_series(a, n).fillna("").str.endswith(suf.data or "").to_numpy(dtype=bool)
    return Column("bool", res & ~np.asarray(_broadcast(_missing(a, n), n)))


def _f_contains(n, a, b):
    sub = _as_str(b, n)
    if not sub.scalar:
        raise ExpressionError("contains(): the second argument must be fixed text", fix="write contains(${x}, 'y')")
    res = _str_series(a, n).fillna("").str.contains(sub.data or "", regex=False).to_numpy(dtype=bool)
    return Column("bool", res & ~np.asarray(_broadcast(_missing(a, n), n)))


def _f_substr(n, a, start, end=None):
    # ODK's substr(string, start, end): 0-based start, exclusive end.
    s = _as_str(start, n)
    e = None if end is None else _as_num(end, n)
    st = _as_num(start, n)
    if not st.scalar or (e is not None and not e.scalar):
        raise ExpressionError("substr(): start and end must be fixed numbers", fix="write substr(${x}, 0, 6)")
    del s
    lo = int(st.data) if not np.isnan(st.data) else 0
    hi = None if e is None or np.isnan(e.data) else int(e.data)
    sa = _str_series(a, n)
    fa = _fixed_width(sa) if lo >= 0 and (hi is None or hi >= 0) else None
    if fa is not None and fa.max(initial=0) < 0x80:
        # ASCII codes of one width (province, county codes): characters are bytes, so the slice is a column range
        import pyarrow as pa
        width = fa.shape[1]
        first = min(lo, width)
        last = max(first, width if hi is None else min(hi, width))
        # rows' byte ranges as fixed-size items: numpy copies those far faster than a 2-D column range
        data = np.ndarray((n,), dtype=f"V{last - first}", buffer=fa, offset=first, strides=(width,)).copy() \
            if last > first else np.zeros(0, dtype=np.uint8)
        offsets = np.arange(n + 1, dtype=np.int64) * (last - first)
        part = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
        return Column("str", pd.Series(type(sa.array)(pa.chunked_array([part]), dtype=sa.dtype)))
    return Column("str", sa.str.slice(lo, hi))


def _f_concat(n, *args):
    out = None
    for a in args:
        s = _str_series(a, n).fillna("")
        out = s if out is None else out + s
    return Column("str", out if out is not None else _text(np.full(n, "", dtype=object)))


def _f_string(n, a):
    return _as_str(a, n)


def _f_minmax(fn):
    def f(n, *args):
        vals = [_broadcast(_as_num(a, n).data, n).astype("float64") for a in args]
        with np.errstate(invalid="ignore"):
            return Column("num", functools.reduce(fn, vals))
    return f


def _f_today(n):
    return Column("dt", float(_date_literal(pd.Timestamp.today().normalize())))


def _f_year(n, a):
    v = a if a.kind == "dt" else Column("dt", _date_literal(a.data)) if a.scalar else None
    if v is None:
        v = from_series(pd.Series(a.data), "dt")
    d = _broadcast(v.data, n)
    out = np.full(n, np.nan)
    ok = ~np.isnan(d)
    out[ok] = (np.datetime64("1970-01-01", "D") + d[ok].astype("int64")).astype("datetime64[Y]").astype(int) + 1970
    return Column("num", out)


# name -> ((min args, max args), implementation)
FUNCTIONS = {
    "not": ((1, 1), _f_not),
    "selected": ((2, 2), _f_selected),
    "count-selected": ((1, 1), _f_count_selected),
    "string-length": ((1, 1), _f_string_length),
    "if": ((3, 3), _f_if),
    "number": ((1, 1), _f_number),
    "int": ((1, 1), _f_int),
    "round": ((1, 2), _f_round),
    "abs": ((1, 1), _f_abs),
    "coalesce": ((2, 2), _f_coalesce),
    "regex": ((2, 2), _f_regex),
    "true": ((0, 0), _f_true),
    "false": ((0, 0), _f_false),
    "starts-with": ((2, 2), _f_starts_with),
    "ends-with": ((2, 2), _f_ends_with),
    "contains": ((2, 2), _f_contains),
    "substr": ((2, 3), _f_substr),
    "concat": ((1, 20), _f_concat),
    "string": ((1, 1), _f_string),
    "max": ((1, 20), _f_minmax(np.fmax)),
    "min": ((1, 20), _f_minmax(np.fmin)),
    "today": ((0, 0), _f_today),
    "year": ((1, 1), _f_year),
}


# ----------------------------------------------------------------------------------------------- evaluation
def evaluate(text_or_tree, resolve, n: int, dot: Column | None = None) -> Column:
    """Evaluate over n rows. ``resolve(name) -> Column`` supplies ${name}; ``dot`` the current item's value."""
    tree = parse(text_or_tree) if isinstance(text_or_tree, str) else text_or_tree
    return _eval(tree, resolve, n, dot)


def _eval(node, resolve, n, dot):
    tag = node[0]
    if tag == "num":
        return Column("num", node[1])
    if tag == "str":
        return Column("str", node[1])
    if tag == "ref":
        return resolve(node[1])
    if tag == "dot":
        if dot is None:
            raise ExpressionError("'.' (the current answer) is only allowed in a constraint",
                                  fix="write ${name} instead of '.'")
        return dot
    if tag == "neg":
        v = _as_num(_eval(node[1], resolve, n, dot), n)
        return Column("num", -v.data)
    if tag == "call":
        fn = FUNCTIONS[node[1]][1]
        return fn(n, *[_eval(a, resolve, n, dot) for a in node[2]])
    op = node[1]
    a = _eval(node[2], resolve, n, dot)
    if op in ("and", "or"):
        ta = truth(a, n)
        tb = truth(_eval(node[3], resolve, n, dot), n)
        return Column("bool", (ta & tb) if op == "and" else (ta | tb))
    b = _eval(node[3], resolve, n, dot)
    if op in ("=", "!=", "<", "<=", ">", ">="):
        return _compare(op, a, b, n)
    return _arith(op, a, b, n)


def evaluate_frame(text: str, frame: pd.DataFrame, kinds: dict[str, str] | None = None,
                   params: dict | None = None, dot: str | None = None) -> np.ndarray:
    """Convenience: evaluate a condition over a DataFrame's columns; returns a boolean array.

    ``kinds`` maps column names to num/str/dt/bool (else guessed from the dtype); ``params`` are extra scalar
    names; ``dot`` names the column that ``.`` stands for. A name that is neither a column nor a parameter is
    an all-missing value.
    """
    n = len(frame)
    kinds = kinds or {}
    params = params or {}
    cache = {}

    def resolve(name):
        if name not in cache:
            if name in frame.columns:
                cache[name] = from_series(frame[name].reset_index(drop=True), kinds.get(name))
            elif name in params:
                v = params[name]
                cache[name] = Column("num", float(v)) if isinstance(v, (int, float)) else Column("str", v)
            else:
                cache[name] = Column("num", np.nan)
        return cache[name]

    dot_value = resolve(dot) if dot else None
    return truth(evaluate(text, resolve, n, dot_value), n)
