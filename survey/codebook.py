"""Codebooks of the questionnaires: variables, types, value labels, ranges, required items, skip logic, the
roster as a repeat group, and the consistency rules, all read from data files (survey/codebooks/*.yaml) or from
an assessment's own XLSForm, never written as code.

    cb = load_codebook("hh_registered")          # shipped instrument
    cb = load_codebook("my_form.xlsx")           # an XLSForm (survey + choices sheets)
    cb = load_codebook("my_codebook.yaml")       # a codebook file in the shipped format

The variable names are the column names of the data (docs/CONTRACTS.md).
"""
from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from .errors import CodebookError
from .expressions import ExpressionError, parse, references

INSTRUMENTS = ("hh_registered", "hh_nonregistered", "village")
TYPES = ("integer", "decimal", "text", "select_one", "select_multiple", "date", "datetime", "code")
TYPE_ZH = {"integer": "整数", "decimal": "小数", "text": "文本", "select_one": "单选", "select_multiple": "多选",
           "date": "日期", "datetime": "日期时间", "code": "编码"}
SEVERITIES = ("error", "warning")
AGGREGATE_FUNCTIONS = ("count", "sum", "max", "min", "mean")
# Values the validator takes from the assessment's configuration (survey/validate.py: _parameters).
PARAMETERS = {
    "_year": "评估年度",
    "_line": "当年贫困线（元/人·年）",
    "_size_basis": "人均收入的人口口径（registered 户籍 / resident 常住）",
    "_school_age_min": "义务教育起始年龄",
    "_school_age_max": "义务教育截止年龄",
    "_water_litres_min": "人均日用水量下限（升）",
    "_water_round_trip_max": "取水往返时间上限（分钟）",
    "_water_interrupt_max": "全年断水天数上限",
    "_safe_grade_C": "C级住房是否算安全（1是 0否）",
    "_safe_grade_D": "D级住房是否算安全（1是 0否）",
}


@dataclass
class Variable:
    name: str
    type: str
    label_zh: str = ""
    choices: dict[str, str] | None = None
    min: float | None = None
    max: float | None = None
    required: bool = False
    relevant: str | None = None
    constraint: str | None = None
    constraint_message_zh: str | None = None
    personal: bool = False
    list_name: str | None = None
    pattern: str | None = None
    section: str | None = None
    hint_zh: str | None = None

    @property
    def numeric_codes(self) -> bool:
        """True when every choice code is a whole number (the column is then stored as integers)."""
        if not self.choices:
            return False
        return all(_is_int_text(c) for c in self.choices)

    @property
    def kind(self) -> str:
        """How expressions see the column: num, str or dt."""
        if self.type in ("integer", "decimal"):
            return "num"
        if self.type == "select_one" and self.numeric_codes:
            return "num"
        if self.type in ("date", "datetime"):
            return "dt"
        return "str"

    def range_text(self) -> str:
        """Human-readable admissible values (for the codebook sheet)."""
        if self.choices:
            return "；".join(f"{c}={lab}" for c, lab in self.choices.items())
        if self.min is not None or self.max is not None:
            lo = "" if self.min is None else _num_text(self.min)
            hi = "" if self.max is None else _num_text(self.max)
            return f"{lo}–{hi}"
        if self.pattern:
            return f"格式 {self.pattern}"
        return ""


@dataclass
class Rule:
    id: str
    rule_zh: str
    severity: str
    when: str
    field: str
    message_zh: str
    fix_zh: str
    table: str = "main"
    value_zh: str | None = None


@dataclass
class Aggregate:
    name: str
    repeat: str
    fn: str
    of: str | None = None
    where: str | None = None


@dataclass
class Calculation:
    name: str
    expr: str
    label_zh: str = ""


@dataclass
class RepeatGroup:
    """A repeat group (the household roster): rows keyed by ``key`` (parent key + item number)."""
    name: str
    label_zh: str
    key: tuple[str, ...]
    variables: dict[str, Variable]

    def match_score(self, columns) -> float:
        return _match(self.variables, columns)


@dataclass
class Codebook:
    name: str
    label_zh: str
    key: str
    variables: dict[str, Variable]
    repeats: dict[str, RepeatGroup] = field(default_factory=dict)
    choice_lists: dict[str, dict[str, str]] = field(default_factory=dict)
    calculations: list[Calculation] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    instrument: str | None = None      # which shipped instrument this codebook stands for
    source: str = ""
    notes: list[str] = field(default_factory=list)   # things read but not supported (from an XLSForm)

    def match_score(self, columns) -> float:
        """Share of the main variables present among ``columns`` (used to tell which instrument a file is)."""
        return _match(self.variables, columns)

    def all_variables(self):
        """(table, Variable) for the main table and every repeat group."""
        for v in self.variables.values():
            yield "main", v
        for g in self.repeats.values():
            for v in g.variables.values():
                yield g.name, v

    def personal_columns(self) -> set[str]:
        return {v.name for _, v in self.all_variables() if v.personal}

    def to_dict(self) -> dict:
        return {
            "name": self.name, "label_zh": self.label_zh, "key": self.key, "instrument": self.instrument,
            "source": self.source,
            "variables": [asdict(v) for v in self.variables.values()],
            "repeats": {g.name: {"label_zh": g.label_zh, "key": list(g.key),
                                 "variables": [asdict(v) for v in g.variables.values()]}
                        for g in self.repeats.values()},
            "calculations": [asdict(c) for c in self.calculations],
            "aggregates": [asdict(a) for a in self.aggregates],
            "rules": [asdict(r) for r in self.rules],
            "notes": list(self.notes),
        }

    def check(self) -> None:
        """Raise CodebookError when the codebook is inconsistent (unknown types, lists, names, bad expressions)."""
        check_codebook(self)


def _match(variables, columns) -> float:
    names = [n for n in variables if not n.startswith("_")]
    if not names:
        return 0.0
    cols = {str(c).strip() for c in columns}
    return sum(n in cols for n in names) / len(names)


def _is_int_text(text) -> bool:
    t = str(text).strip()
    if t.startswith("-"):
        t = t[1:]
    return t.isascii() and t.isdigit()


def _num_text(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# ------------------------------------------------------------------------------------------------ loading
def load_codebook(name_or_path) -> Codebook:
    """A shipped instrument by name, or a codebook file: YAML (.yaml/.yml) or XLSForm (.xlsx/.xls)."""
    if isinstance(name_or_path, Codebook):
        return name_or_path
    text = str(name_or_path)
    if text in INSTRUMENTS:
        path = resources.files("survey").joinpath("codebooks", f"{text}.yaml")
        return _build(copy.deepcopy(_read_yaml_resolved(str(path))), source=f"survey/codebooks/{text}.yaml")
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        if not path.exists():
            raise CodebookError(f"codebook file {path} not found", file=path, fix="check the path")
        return _build(copy.deepcopy(_read_yaml_resolved(str(path.resolve()))), source=str(path))
    if suffix in (".xlsx", ".xlsm", ".xls"):
        from .xlsform import codebook_from_xlsform
        return codebook_from_xlsform(path)
    raise CodebookError(f"unknown codebook {text!r}", file=text if suffix else None,
                        fix=f"name one of {', '.join(INSTRUMENTS)}, or give a .yaml codebook or an XLSForm .xlsx")


def _yaml_load(path: str):
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise CodebookError(f"codebook file {path} not found", file=path, fix="check the path") from None
    except yaml.YAMLError as exc:
        raise CodebookError(f"the codebook is not valid YAML: {exc}", file=path,
                            fix="correct the YAML syntax at the line named") from None
    if not isinstance(data, dict):
        raise CodebookError("a codebook file must be a mapping (name, key, variables, ...)", file=path,
                            fix="see survey/codebooks/household.yaml for the format")
    return data


@functools.lru_cache(maxsize=32)
def _read_yaml_resolved(path: str) -> dict:
    """Read a codebook file and merge the file it ``extends`` (lists by name, mappings by key)."""
    data = _yaml_load(path)
    base_name = data.pop("extends", None)
    if base_name:
        base_path = str(Path(path).parent / base_name)
        base = copy.deepcopy(_read_yaml_resolved(base_path))
        data = _merge_codebook_dicts(base, data)
    data["_path"] = path
    return data


def _merge_codebook_dicts(base: dict, child: dict) -> dict:
    out = dict(base)
    for k, v in child.items():
        if k in ("variables", "rules", "aggregates", "calculations"):
            ident = "id" if k == "rules" else "name"
            merged = {item[ident]: item for item in base.get(k, []) or []}
            for item in v or []:
                merged[item[ident]] = {**merged.get(item[ident], {}), **item}
            out[k] = list(merged.values())
        elif k in ("choice_lists", "repeats") and isinstance(v, dict):
            out[k] = {**(base.get(k) or {}), **v}
        else:
            out[k] = v
    return out


def _included(item: dict, name: str) -> bool:
    only = item.get("only")
    if only is None:
        return True
    if isinstance(only, str):
        only = [only]
    return name in only


def _choices(lists: dict, list_name, where: str, path) -> dict[str, str]:
    if list_name not in lists:
        raise CodebookError(f"{where}: choice list {list_name!r} is not defined", file=path,
                            fix=f"add {list_name!r} under choice_lists")
    return lists[list_name]


def _variable(d: dict, lists: dict, where: str, path) -> Variable:
    if "name" not in d or "type" not in d:
        raise CodebookError(f"{where}: each variable needs a name and a type", file=path,
                            fix="write {name: x, type: integer, label_zh: ...}")
    d = {k: v for k, v in d.items() if k != "only"}
    list_name = d.pop("choices", None)
    known = set(Variable.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise CodebookError(f"{where}: variable {d['name']!r} has unknown fields {sorted(unknown)}", file=path,
                            fix=f"use only {', '.join(sorted(known))}")
    v = Variable(**d)
    if list_name is not None:
        if isinstance(list_name, dict):
            v.choices = {str(k): str(lab) for k, lab in list_name.items()}
        else:
            v.list_name = str(list_name)
            v.choices = dict(_choices(lists, v.list_name, where, path))
    v.required = bool(v.required)
    v.personal = bool(v.personal)
    for attr in ("min", "max"):
        val = getattr(v, attr)
        if val is not None:
            try:
                setattr(v, attr, float(val))
            except (TypeError, ValueError):
                raise CodebookError(f"{where}: {attr} of {v.name!r} is not a number: {val!r}", file=path,
                                    fix=f"write {attr}: 0") from None
    return v


def _build(data: dict, source: str) -> Codebook:
    path = data.pop("_path", source)
    name = data.get("name") or Path(path).stem
    lists = {str(ln): {str(k): str(v) for k, v in (items or {}).items()}
             for ln, items in (data.get("choice_lists") or {}).items()}
    variables = {}
    for d in data.get("variables") or []:
        if not _included(d, name):
            continue
        v = _variable(d, lists, "variables", path)
        if v.name in variables:
            raise CodebookError(f"variable {v.name!r} is defined twice", file=path, fix="remove one definition")
        variables[v.name] = v
    repeats = {}
    for gname, g in (data.get("repeats") or {}).items():
        gvars = {}
        for d in g.get("variables") or []:
            if _included(d, name):
                v = _variable(d, lists, f"repeat {gname}", path)
                gvars[v.name] = v
        key = tuple(g.get("key") or ())
        repeats[gname] = RepeatGroup(name=gname, label_zh=str(g.get("label_zh", gname)), key=key, variables=gvars)
    calcs = [Calculation(**{k: v for k, v in c.items() if k != "only"})
             for c in data.get("calculations") or [] if _included(c, name)]
    aggs = [Aggregate(**{k: v for k, v in a.items() if k != "only"})
            for a in data.get("aggregates") or [] if _included(a, name)]
    rules = []
    for r in data.get("rules") or []:
        if not _included(r, name):
            continue
        r = {k: v for k, v in r.items() if k != "only"}
        try:
            rules.append(Rule(**r))
        except TypeError as exc:
            raise CodebookError(f"rule {r.get('id')!r}: {exc}", file=path,
                                fix="a rule needs id, rule_zh, severity, when, field, message_zh, fix_zh") from None
    cb = Codebook(name=name, label_zh=str(data.get("label_zh", name)), key=str(data.get("key", "")),
                  variables=variables, repeats=repeats, choice_lists=lists, calculations=calcs, aggregates=aggs,
                  rules=rules, instrument=data.get("instrument") or (name if name in INSTRUMENTS else None),
                  source=str(source))
    check_codebook(cb, path)
    return cb


# ------------------------------------------------------------------------------------------------ checking
def check_codebook(cb: Codebook, path=None) -> None:
    path = path or cb.source or None

    def fail(msg, fix, column=None):
        raise CodebookError(f"codebook {cb.name}: {msg}", file=path, column=column, fix=fix)

    if not cb.key or cb.key not in cb.variables:
        fail(f"the key {cb.key!r} is not one of the variables", "set key: to the identifying variable "
             "(household_id or village_code)")
    for table, v in cb.all_variables():
        if v.type not in TYPES:
            fail(f"variable {v.name!r} has unknown type {v.type!r}", f"use one of {', '.join(TYPES)}", v.name)
        if v.type in ("select_one", "select_multiple") and not v.choices:
            fail(f"variable {v.name!r} is {v.type} without choices", "name a choice list", v.name)
        if v.min is not None and v.max is not None and v.min > v.max:
            fail(f"variable {v.name!r}: min {v.min} is above max {v.max}", "swap min and max", v.name)
        if v.pattern:
            import re
            try:
                re.compile(v.pattern)
            except re.error as exc:
                fail(f"variable {v.name!r}: bad pattern {v.pattern!r} ({exc})", "correct the pattern", v.name)
    main_names = set(cb.variables) | {c.name for c in cb.calculations} | {a.name for a in cb.aggregates} \
        | set(PARAMETERS)
    for g in cb.repeats.values():
        if not g.key or any(k not in g.variables for k in g.key):
            fail(f"repeat {g.name!r}: key {list(g.key)} must name variables of the group",
                 "add the parent key and the item number to the group's variables")

    def check_expr(text, where, names):
        try:
            refs = references(parse(text))
        except ExpressionError as exc:
            fail(f"{where}: {exc.message}", exc.fix or "correct the expression")
        unknown = refs - names
        if unknown:
            fail(f"{where}: refers to unknown {', '.join(sorted(unknown))}",
                 "use names of questions, calculations, aggregates or parameters")

    for table, v in cb.all_variables():
        names = main_names if table == "main" else main_names | set(cb.repeats[table].variables)
        if v.relevant:
            check_expr(v.relevant, f"relevant of {v.name!r}", names)
        if v.constraint:
            check_expr(v.constraint, f"constraint of {v.name!r}", names)
    for c in cb.calculations:
        check_expr(c.expr, f"calculation {c.name!r}", main_names)
    for a in cb.aggregates:
        if a.repeat not in cb.repeats:
            fail(f"aggregate {a.name!r}: no repeat group {a.repeat!r}", "name an existing repeat group")
        if a.fn not in AGGREGATE_FUNCTIONS:
            fail(f"aggregate {a.name!r}: unknown function {a.fn!r}", f"use {', '.join(AGGREGATE_FUNCTIONS)}")
        gnames = set(cb.repeats[a.repeat].variables) | set(PARAMETERS)
        if a.of is not None and a.of not in cb.repeats[a.repeat].variables:
            fail(f"aggregate {a.name!r}: {a.of!r} is not in {a.repeat}", "name a variable of the group")
        if a.fn != "count" and a.of is None:
            fail(f"aggregate {a.name!r}: {a.fn} needs 'of'", "name the variable to aggregate")
        if a.where:
            check_expr(a.where, f"aggregate {a.name!r}", gnames)
    seen = set()
    for r in cb.rules:
        if r.id in seen:
            fail(f"rule {r.id!r} is defined twice", "give each rule its own id")
        seen.add(r.id)
        if r.severity not in SEVERITIES:
            fail(f"rule {r.id!r}: severity {r.severity!r}", "use error or warning")
        if r.table != "main" and r.table not in cb.repeats:
            fail(f"rule {r.id!r}: no table {r.table!r}", "use main or a repeat group's name")
        names = main_names if r.table == "main" else main_names | set(cb.repeats[r.table].variables)
        check_expr(r.when, f"rule {r.id!r}", names)
        all_names = names | {v.name for _, v in cb.all_variables()}
        if r.field not in all_names:
            fail(f"rule {r.id!r}: field {r.field!r} is unknown", "name the question the problem is shown on")
