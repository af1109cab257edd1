"""Design files of the multi-stage draw (county → village → household), SPEC §5.

A design file is TOML (or YAML with the same structure). It has one table per stage, ``[county]``,
``[village]`` and ``[household]``, an optional ``[design]`` table with the name and description, and an
optional ``[precision]`` table used for the expected precision in the design summary. Every stage reads:

=================  ============================================================================================
key                meaning
=================  ============================================================================================
method             ``take_all`` | ``srs`` | ``systematic`` | ``pps_systematic`` | ``pps_brewer`` |
                   ``pps_sampford`` (default ``srs``; ``take_all`` at the county stage of an exit check)
size               column of the measure of size for the ``pps_*`` methods (e.g. ``households``)
by                 columns that split the stage into separate groups (``["province_code"]`` at county stage);
                   the village stage is always drawn within county, the household stage within village
n                  total sample size per group, shared among the strata that do not set their own size
allocation         how ``n`` is shared: ``proportional`` | ``equal`` | ``neyman`` | ``sqrt`` | ``power``
                   (``q`` = the power) | ``kish`` (``kish_weight``), with ``min_n`` / ``max_n`` per stratum;
                   totals are exact integers (``sampling.allocation.allocate``)
order_by           columns the units are sorted by before systematic selection (default: the unit code)
units              county stage: the named counties (6-digit codes) to draw from; empty = all in the frame
reserve            household stage: reserve households per village and stratum, drawn in a recorded order
strata             list of strata (``[[village.strata]]``), see below; no list = one stratum ``all``
=================  ============================================================================================

Each stratum (``[[<stage>.strata]]``) reads:

=================  ============================================================================================
name               identifier (ASCII, unique in the stage); ``label`` = Chinese label on the field lists
where              ``{column = value}`` or ``{column = [values]}``; every condition must hold
any_flag           list of 0/1 columns of which at least one must be 1 (e.g. the risk flags)
n                  fixed sample size per group, or a precision target
                   ``{margin, p, level, deff, response_rate, per = "village"|"county"}``
rate               sampling fraction; n = round(rate·N) (half up), then ``min_n`` ≤ n ≤ ``max_n``
n_rule             ``{column, at_least, n, otherwise}``: n when the group's column (village stage: summed over
                   the county; household stage: the village's value) is at least ``at_least``, else
                   ``otherwise`` (the local rules "≥ 50 poor households: 50 + 10", "4 or 6 villages")
take_all           true: every unit of the stratum is taken (π = 1)
groups             household stage with take_all: take the stratum's households in this many whole 村民小组
                   (group_no) per village, the groups drawn at random (π = groups / groups in the village)
purposive          true with ``units = [codes]``: hand-named units, flagged purposive, probability and weight
                   left NULL so that they stay out of weighted estimates
method / reserve   override the stage's method / number of reserves for this stratum
sd                 expected standard deviation (Neyman allocation)
=================  ============================================================================================

A unit belongs to the first stratum whose conditions it meets; a unit that meets none is out of scope
for the stage and cannot be selected (the summary reports how many). Hand-named (purposive) units are
taken out of every other stratum of their stage.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from .errors import DesignError

STAGES = ("county", "village", "household")
METHODS = ("take_all", "srs", "systematic", "pps_systematic", "pps_brewer", "pps_sampford")
ALLOCATIONS = ("proportional", "equal", "neyman", "sqrt", "power", "kish")
UNIT_COLUMN = {"county": "county_code", "village": "village_code", "household": "household_id"}
PARENT_COLUMN = {"county": None, "village": "county_code", "household": "village_code"}

_STAGE_KEYS = {"method", "size", "by", "n", "allocation", "q", "kish_weight", "min_n", "max_n", "order_by",
               "units", "reserve", "strata", "label"}
_STRATUM_KEYS = {"name", "label", "where", "any_flag", "n", "rate", "min_n", "max_n", "n_rule", "take_all",
                 "groups", "purposive", "units", "method", "reserve", "sd"}
_TOP_KEYS = {"design", "precision", *STAGES}
_DESIGN_KEYS = {"name", "title", "description", "pattern", "source"}
_PRECISION_KEYS = {"p", "level", "deff", "response_rate"}
_TARGET_KEYS = {"margin", "p", "level", "deff", "response_rate", "per"}
_RULE_KEYS = {"column", "at_least", "n", "otherwise"}


@dataclass
class Stratum:
    name: str
    label: str = ""
    where: dict = field(default_factory=dict)
    any_flag: list = field(default_factory=list)
    n: int | None = None
    target: dict | None = None            # precision target in place of n
    rate: float | None = None
    min_n: int | None = None
    max_n: int | None = None
    n_rule: dict | None = None
    take_all: bool = False
    groups: int | None = None
    purposive: bool = False
    units: list = field(default_factory=list)
    method: str | None = None
    reserve: int | None = None
    sd: float | None = None

    @property
    def has_own_size(self) -> bool:
        return (self.take_all or self.purposive or self.n is not None or self.target is not None
                or self.rate is not None or self.n_rule is not None)


@dataclass
class Stage:
    level: str
    method: str = "srs"
    size: str | None = None
    by: list = field(default_factory=list)
    n: int | None = None
    allocation: str = "proportional"
    q: float | None = None
    kish_weight: float | None = None
    min_n: int | None = None
    max_n: int | None = None
    order_by: list = field(default_factory=list)
    units: list = field(default_factory=list)
    reserve: int = 0
    label: str = ""
    strata: list = field(default_factory=list)

    def method_of(self, stratum: Stratum) -> str:
        if stratum.take_all:
            return "take_all"
        if stratum.purposive:
            return "purposive"
        return stratum.method or self.method

    def reserve_of(self, stratum: Stratum) -> int:
        return self.reserve if stratum.reserve is None else stratum.reserve


@dataclass
class Design:
    name: str
    title: str
    description: str
    pattern: str
    source: str
    county: Stage
    village: Stage
    household: Stage
    precision: dict
    origin: str = ""                       # file or preset it came from (not part of the design's identity)

    @property
    def stages(self) -> list[Stage]:
        return [self.county, self.village, self.household]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("origin")
        return d

    def to_json(self) -> str:
        """Canonical JSON: the design as recorded with a draw; the same design always gives the same text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def columns_needed(self) -> dict[str, set]:
        """Frame columns the design reads, per stage (checked against the frames before drawing)."""
        out = {}
        for st in self.stages:
            cols = set(st.by) | set(st.order_by)
            if st.size:
                cols.add(st.size)
            for s in st.strata:
                cols |= set(s.where) | set(s.any_flag)
                if s.n_rule:
                    cols.add(s.n_rule["column"])
            out[st.level] = cols
        return out


# ------------------------------------------------------------------------------------------------------------
# Reading and validation
# ------------------------------------------------------------------------------------------------------------

def preset_names() -> list[str]:
    folder = resources.files("sampling").joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    folder = resources.files("sampling").joinpath("presets")
    entry = folder.joinpath(f"{name}.toml")
    if not entry.is_file():
        raise DesignError(f"no preset named {name!r}", code="unknown_preset",
                          fix=f"use one of {', '.join(preset_names())}, or give the path of a design file")
    return entry.read_text(encoding="utf-8")


def load_design(spec) -> Design:
    """A design from a preset name, a path to a .toml/.yaml file, a dict, or a ``Design`` (returned as is)."""
    if isinstance(spec, Design):
        return spec
    if isinstance(spec, dict):
        return parse_design(spec, origin="<dict>")
    text = str(spec)
    path = Path(text)
    if path.suffix.lower() in (".toml", ".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise DesignError("design file not found", code="file_not_found", file=path,
                              fix=f"check the path, or name a preset: {', '.join(preset_names())}")
        raw = path.read_text(encoding="utf-8")
        return parse_design(_parse_text(raw, path.suffix.lower(), path), origin=str(path))
    if text in preset_names():
        return parse_design(_parse_text(preset_text(text), ".toml", f"preset {text}"), origin=f"preset:{text}")
    raise DesignError(f"{text!r} is neither a design file nor a preset", code="unknown_preset",
                      fix=f"give a .toml or .yaml file, or one of the presets {', '.join(preset_names())}")


def _parse_text(text: str, suffix: str, where) -> dict:
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DesignError(f"the design is not valid YAML: {exc}", code="design_syntax", file=where,
                              fix="correct the syntax at the line named") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DesignError(f"the design is not valid JSON: {exc}", code="design_syntax", file=where,
                              fix="correct the syntax at the line named") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DesignError(f"the design is not valid TOML: {exc}", code="design_syntax", file=where,
                              fix="correct the syntax at the line named") from None
    if not isinstance(data, dict):
        raise DesignError("the design must be a table of stages", code="design_syntax", file=where,
                          fix="start from a preset: `tpa sample presets`")
    return data


class _Reader:
    """Validation helpers that name the key (``village.strata[2].n``) and the fix in every error."""

    def __init__(self, origin):
        self.origin = origin

    def fail(self, key, message, fix):
        raise DesignError(f"design key {key}: {message}", code="bad_design", file=self.origin or None,
                          column=key, fix=fix)

    def table(self, value, key, allowed):
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, got {type(value).__name__}", f"write it as [{key}] with keys "
                      f"{', '.join(sorted(allowed))}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.fail(f"{key}.{unknown[0]}", "unknown key",
                      f"remove it or use one of {', '.join(sorted(allowed))} (check the spelling)")
        return value

    def count(self, value, key, *, allow_none=True, minimum=0):
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            self.fail(key, f"must be a whole number, got {value!r}", f"write e.g. {key.split('.')[-1]} = 10")
        if int(value) < minimum:
            self.fail(key, f"must be at least {minimum}, got {value}", f"use a number >= {minimum}")
        return int(value)

    def number(self, value, key, lo=None, hi=None, *, lo_open=False):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a number, got {value!r}", "write a plain number such as 0.2")
        v = float(value)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            self.fail(key, f"must be {'>' if lo_open else '>='} {lo}, got {v}", f"use a value in range")
        if hi is not None and v > hi:
            self.fail(key, f"must be <= {hi}, got {v}", "use a value in range")
        return v

    def text(self, value, key, default=""):
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(key, f"must be text, got {value!r}", f'write it in quotes: {key.split(".")[-1]} = "..."')
        return value

    def names(self, value, key):
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                  for v in value):
            self.fail(key, f"must be a list of names, got {value!r}", f'write e.g. {key.split(".")[-1]} = ["a", "b"]')
        return [str(v) for v in value]

    def flag(self, value, key):
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}", "write true or false (no quotes)")
        return value


def parse_design(data: dict, origin: str = "") -> Design:
    """Validate a design given as parsed TOML/YAML; errors name the key and how to fix it."""
    r = _Reader(origin)
    r.table(data, "(top level)", _TOP_KEYS)
    meta = r.table(data.get("design", {}), "design", _DESIGN_KEYS)
    prec = r.table(data.get("precision", {}), "precision", _PRECISION_KEYS)
    precision = {
        "p": r.number(prec.get("p", 0.5), "precision.p", 0, 1, lo_open=True),
        "level": r.number(prec.get("level", 0.95), "precision.level", 0.5, 0.999),
        "deff": r.number(prec.get("deff", 1.0), "precision.deff", 0, lo_open=True),
        "response_rate": r.number(prec.get("response_rate", 1.0), "precision.response_rate", 0, 1, lo_open=True),
    }
    stages = {}
    for level in STAGES:
        if level not in data:
            r.fail(level, "missing stage", f"add a [{level}] table (e.g. method = \"take_all\"); every design "
                   "has the stages county, village and household")
        stages[level] = _parse_stage(r, data[level], level)
    name = r.text(meta.get("name"), "design.name", "design")
    return Design(name=name, title=r.text(meta.get("title"), "design.title", name),
                  description=r.text(meta.get("description"), "design.description"),
                  pattern=r.text(meta.get("pattern"), "design.pattern"),
                  source=r.text(meta.get("source"), "design.source"),
                  precision=precision, origin=origin, **stages)


def _parse_stage(r: _Reader, raw, level: str) -> Stage:
    r.table(raw, level, _STAGE_KEYS)
    method = r.text(raw.get("method"), f"{level}.method", "srs")
    if method not in METHODS:
        r.fail(f"{level}.method", f"unknown method {method!r}", f"use one of {', '.join(METHODS)}")
    allocation = r.text(raw.get("allocation"), f"{level}.allocation", "proportional")
    if allocation not in ALLOCATIONS:
        r.fail(f"{level}.allocation", f"unknown allocation {allocation!r}", f"use one of {', '.join(ALLOCATIONS)}")
    st = Stage(level=level, method=method, size=raw.get("size"), by=r.names(raw.get("by"), f"{level}.by"),
               n=r.count(raw.get("n"), f"{level}.n"), allocation=allocation,
               q=r.number(raw.get("q"), f"{level}.q", 0, 1),
               kish_weight=r.number(raw.get("kish_weight"), f"{level}.kish_weight", 0),
               min_n=r.count(raw.get("min_n"), f"{level}.min_n"), max_n=r.count(raw.get("max_n"), f"{level}.max_n"),
               order_by=r.names(raw.get("order_by"), f"{level}.order_by"),
               units=r.names(raw.get("units"), f"{level}.units"),
               reserve=r.count(raw.get("reserve", 0), f"{level}.reserve", allow_none=False),
               label=r.text(raw.get("label"), f"{level}.label"))
    if st.size is not None:
        r.text(st.size, f"{level}.size")
    if allocation == "power" and st.q is None:
        r.fail(f"{level}.q", "power allocation needs the power q", "add q = 0.5 (n_h ∝ N_h^q, 0 ≤ q ≤ 1)")
    if st.min_n is not None and st.max_n is not None and st.min_n > st.max_n:
        r.fail(f"{level}.min_n", f"min_n = {st.min_n} exceeds max_n = {st.max_n}", "make min_n <= max_n")
    if st.reserve and level != "household":
        r.fail(f"{level}.reserve", "reserves are drawn at the household stage only",
               "move reserve = k to the [household] table")
    if st.units and level != "county":
        r.fail(f"{level}.units", "named units at this stage belong in a purposive stratum",
               f"write [[{level}.strata]] with purposive = true and units = [...]")
    raw_strata = raw.get("strata")
    if raw_strata is None:
        raw_strata = [{"name": "all"}]
    if not isinstance(raw_strata, list) or not raw_strata:
        r.fail(f"{level}.strata", "must be a non-empty list of tables",
               f"write each stratum as [[{level}.strata]] with a name")
    seen = set()
    for i, s in enumerate(raw_strata):
        stratum = _parse_stratum(r, s, f"{level}.strata[{i}]", level, st)
        if stratum.name in seen:
            r.fail(f"{level}.strata[{i}].name", f"duplicate stratum name {stratum.name!r}",
                   "give every stratum of a stage its own name")
        seen.add(stratum.name)
        st.strata.append(stratum)
    if any(st.method_of(s).startswith("pps") for s in st.strata) and not st.size:
        r.fail(f"{level}.size", "a pps method needs the measure of size",
               f'add size = "{"households" if level == "village" else "persons_registered"}" to [{level}]')
    if level == "household" and any(st.method_of(s).startswith("pps") for s in st.strata):
        r.fail(f"{level}.method", "households are drawn with equal probability within their stratum",
               'use method = "srs" or "systematic"')
    shared = [s for s in st.strata if not s.has_own_size and st.method_of(s) != "take_all"]
    if shared and st.n is None:
        k = st.strata.index(shared[0])
        r.fail(f"{level}.strata[{k}].n", f"stratum {shared[0].name!r} has no sample size and the stage sets no n",
               f"give the stratum n (or rate, take_all), or set n at [{level}] to be allocated across strata")
    if st.allocation == "neyman":
        for s in shared:
            if s.sd is None:
                k = st.strata.index(s)
                r.fail(f"{level}.strata[{k}].sd", "Neyman allocation needs each stratum's expected standard deviation",
                       "add sd = 0.3 (any positive number; only their ratios matter)")
    return st


def _parse_stratum(r: _Reader, raw, key: str, level: str, stage: Stage) -> Stratum:
    r.table(raw, key, _STRATUM_KEYS)
    name = r.text(raw.get("name"), f"{key}.name")
    if not name or not name.replace("_", "").isalnum() or not name.isascii():
        r.fail(f"{key}.name", f"stratum needs an ASCII name (letters, digits, _), got {name!r}",
               'write e.g. name = "remote_poor" and put the Chinese words in label')
    where = raw.get("where", {})
    if not isinstance(where, dict):
        r.fail(f"{key}.where", "must be a table of column = value(s)", 'write where = { poor_village = 1 }')
    clean_where = {}
    for col, val in where.items():
        vals = val if isinstance(val, list) else [val]
        if not vals or not all(isinstance(v, (str, int, float)) for v in vals):
            r.fail(f"{key}.where.{col}", f"must be a value or a list of values, got {val!r}",
                   f"write {col} = 1 or {col} = [1, 2]")
        clean_where[str(col)] = [v if not isinstance(v, bool) else int(v) for v in vals]
    n_raw = raw.get("n")
    n, target = None, None
    if isinstance(n_raw, dict):
        t = r.table(n_raw, f"{key}.n", _TARGET_KEYS)
        if "margin" not in t:
            r.fail(f"{key}.n.margin", "a precision target needs the margin of error",
                   "write n = { margin = 0.03, p = 0.1, deff = 1.5 }")
        target = {"margin": r.number(t["margin"], f"{key}.n.margin", 0, 1, lo_open=True),
                  "p": r.number(t.get("p", 0.5), f"{key}.n.p", 0, 1, lo_open=True),
                  "level": r.number(t.get("level", 0.95), f"{key}.n.level", 0.5, 0.999),
                  "deff": r.number(t.get("deff", 1.0), f"{key}.n.deff", 0, lo_open=True),
                  "response_rate": r.number(t.get("response_rate", 1.0), f"{key}.n.response_rate", 0, 1,
                                            lo_open=True),
                  "per": r.text(t.get("per"), f"{key}.n.per", "village" if level == "household" else "county")}
        if target["per"] not in ("village", "county"):
            r.fail(f"{key}.n.per", f"must be village or county, got {target['per']!r}", 'write per = "county"')
    else:
        n = r.count(n_raw, f"{key}.n")
    rule = raw.get("n_rule")
    if rule is not None:
        r.table(rule, f"{key}.n_rule", _RULE_KEYS)
        missing = sorted(_RULE_KEYS - set(rule))
        if missing:
            r.fail(f"{key}.n_rule.{missing[0]}", "missing", 'write n_rule = { column = "hh_registered", '
                   "at_least = 50, n = 50, otherwise = 25 }")
        rule = {"column": r.text(rule["column"], f"{key}.n_rule.column"),
                "at_least": r.number(rule["at_least"], f"{key}.n_rule.at_least"),
                "n": r.count(rule["n"], f"{key}.n_rule.n", allow_none=False),
                "otherwise": r.count(rule["otherwise"], f"{key}.n_rule.otherwise", allow_none=False)}
    s = Stratum(name=name, label=r.text(raw.get("label"), f"{key}.label", name), where=clean_where,
                any_flag=r.names(raw.get("any_flag"), f"{key}.any_flag"), n=n, target=target,
                rate=r.number(raw.get("rate"), f"{key}.rate", 0, 1, lo_open=True),
                min_n=r.count(raw.get("min_n"), f"{key}.min_n"), max_n=r.count(raw.get("max_n"), f"{key}.max_n"),
                n_rule=rule, take_all=r.flag(raw.get("take_all"), f"{key}.take_all"),
                groups=r.count(raw.get("groups"), f"{key}.groups", minimum=1),
                purposive=r.flag(raw.get("purposive"), f"{key}.purposive"),
                units=r.names(raw.get("units"), f"{key}.units"),
                method=raw.get("method"), reserve=r.count(raw.get("reserve"), f"{key}.reserve"),
                sd=r.number(raw.get("sd"), f"{key}.sd", 0, lo_open=True))
    sizes = [k for k in ("n", "rate", "n_rule", "take_all", "purposive") if raw.get(k) not in (None, False)]
    if len(sizes) > 1:
        r.fail(f"{key}.{sizes[1]}", f"conflicts with {sizes[0]}: a stratum has one way of sizing its sample",
               f"keep one of {' / '.join(sizes)}")
    if s.method is not None:
        if s.method not in METHODS or s.method == "take_all":
            r.fail(f"{key}.method", f"unknown method {s.method!r}",
                   f"use one of {', '.join(m for m in METHODS if m != 'take_all')} (or take_all = true)")
    if s.groups is not None and not (s.take_all and level == "household"):
        r.fail(f"{key}.groups", "whole 村民小组 are taken only by a take-all household stratum",
               "add take_all = true, in a [[household.strata]] table")
    if s.purposive and not s.units:
        r.fail(f"{key}.units", "a purposive stratum lists the units chosen by hand",
               f'add units = ["<{UNIT_COLUMN[level]}>", ...]')
    if s.units and not s.purposive:
        r.fail(f"{key}.units", "named units are purposive", "add purposive = true")
    if s.purposive and (s.where or s.any_flag):
        r.fail(f"{key}.where", "a purposive stratum is defined by its units only", "remove where / any_flag")
    if s.min_n is not None and s.max_n is not None and s.min_n > s.max_n:
        r.fail(f"{key}.min_n", f"min_n = {s.min_n} exceeds max_n = {s.max_n}", "make min_n <= max_n")
    if s.target is not None and level == "county":
        r.fail(f"{key}.n", "precision targets are set at the village or household stage",
               "give the county stage a fixed n")
    return s


def design_from_text(text: str, fmt: str = "toml") -> Design:
    return parse_design(_parse_text(text, "." + fmt, "<text>"), origin="<text>")


def design_from_json(text: str) -> Design:
    """Rebuild a recorded design (``draws.design_json``)."""
    d = json.loads(text)
    stages = {}
    for level in STAGES:
        sd = copy.deepcopy(d[level])
        strata = [Stratum(**s) for s in sd.pop("strata")]
        stages[level] = Stage(strata=strata, **sd)
    return Design(name=d["name"], title=d["title"], description=d["description"], pattern=d["pattern"],
                  source=d["source"], precision=d["precision"], origin="<recorded>", **stages)
