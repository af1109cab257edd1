"""XLSForm in and out, and the codebook workbook enumerators are trained on.

``codebook_from_xlsform(path)`` builds a Codebook from an assessment's own XLSForm (survey, choices and settings
sheets: types, labels, ``required``, ``relevant``, ``constraint``, ``select_one``/``select_multiple`` lists,
``begin repeat`` → a repeat group; groups are flattened, their label becomes the section). What the toolkit
cannot use (media, geo shapes, nested repeats, expressions with functions it does not evaluate) is listed in
``cb.notes`` instead of failing.

``write_xlsform(cb, path)`` writes a codebook as an XLSForm that ODK/Kobo/pyxform accept. The consistency rules,
roster aggregates and calculations have no XLSForm equivalent: they travel in extra sheets (``tpa_*``) that
XLSForm tools ignore and ``codebook_from_xlsform`` reads back, so export → import gives the same codebook.

``write_codebook_xlsx(cb, path)`` writes the codebook for people: 变量 (变量名, 题目, 类型, 取值范围, 必答, 跳转条件,
约束 …), 选项, 一致性规则.
"""
from __future__ import annotations

import re
from pathlib import Path

from .codebook import (INSTRUMENTS, PARAMETERS, TYPE_ZH, Aggregate, Calculation, Codebook, RepeatGroup, Rule,
                       Variable, check_codebook, load_codebook)
from .errors import CodebookError
from .expressions import ExpressionError, parse, references, split_conjuncts

__all__ = ["codebook_from_xlsform", "write_xlsform", "write_codebook_xlsx"]

_TYPE_IN = {"integer": "integer", "int": "integer", "decimal": "decimal", "text": "text", "string": "text",
            "date": "date", "datetime": "datetime", "start": "datetime", "end": "datetime", "today": "date",
            "range": "decimal", "acknowledge": "text", "hidden": "text", "trigger": "text", "barcode": "text",
            "time": "text"}
_TYPE_OUT = {"integer": "integer", "decimal": "decimal", "text": "text", "code": "text", "date": "date",
             "datetime": "dateTime"}
_METADATA = {"deviceid", "username", "phonenumber", "email", "audit", "simserial", "subscriberid",
             "start-geopoint", "background-audio", "uri:deviceid", "uri:email", "uri:username"}
_NOTED_AS_TEXT = {"geopoint", "geotrace", "geoshape", "image", "audio", "video", "file", "rank",
                  "background-geopoint", "xml-external", "csv-external"}
# Question names that hold personal data when an XLSForm does not say (SPEC §8).
_PERSONAL_NAMES = {"head_name", "head_id_number", "phone", "gps_lat", "gps_lon", "name", "id_number", "address"}
_RANGE_MIN = re.compile(r"^\.\s*>=\s*(-?\d+(?:\.\d+)?)$")
_RANGE_MAX = re.compile(r"^\.\s*<=\s*(-?\d+(?:\.\d+)?)$")
_REGEX = re.compile(r"""^regex\(\s*\.\s*,\s*(['"])(.*)\1\s*\)$""", re.S)


# ============================================================================================== reading
def _sheet_rows(wb, name):
    for ws in wb.worksheets:
        if ws.title.strip().lower() == name:
            rows = ws.iter_rows(values_only=True)
            try:
                header = next(rows)
            except StopIteration:
                return [], []
            cols = [("" if h is None else str(h)).strip() for h in header]
            out = []
            for values in rows:
                if values is None or all(v is None or str(v).strip() == "" for v in values):
                    continue
                out.append({c: v for c, v in zip(cols, values) if c})
            return cols, out
    return None, None


def _cell(row, col) -> str:
    if not col:
        return ""
    v = row.get(col)
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _pick_column(cols, base):
    """The column for ``base`` (label, hint, constraint_message): a Chinese translation first, then the plain one."""
    cands = [c for c in cols if c.lower() == base or c.lower().startswith(base + "::")]
    for c in cands:
        low = c.lower()
        if "::" in low and any(t in low for t in ("zh", "chinese", "中文", "汉")):
            return c
    for c in cands:
        if c.lower() == base:
            return c
    return cands[0] if cands else None


def _col(cols, *names):
    lowered = {c.lower().replace(" ", "_"): c for c in cols}
    for n in names:
        if n in lowered:
            return lowered[n]
    return None


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("yes", "true", "1", "true()", "是", "y")


def _num(text):
    f = float(text)
    return f


def codebook_from_xlsform(path, *, instrument: str | None = None) -> Codebook:
    """Build a codebook from an XLSForm workbook (.xlsx)."""
    import openpyxl

    path = Path(path)
    if not path.exists():
        raise CodebookError(f"XLSForm {path} not found", file=path, fix="check the path")
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the user's file problem
        raise CodebookError(f"cannot read the XLSForm: {exc}", file=path,
                            fix="save the form as an .xlsx workbook (Excel 2007 or later)") from None
    try:
        scols, srows = _sheet_rows(wb, "survey")
        if scols is None:
            raise CodebookError("the XLSForm has no 'survey' sheet", file=path,
                                fix="an XLSForm needs a sheet named survey (and choices for select questions)")
        ccols, crows = _sheet_rows(wb, "choices")
        _, setrows = _sheet_rows(wb, "settings")
        tpa = {name: _sheet_rows(wb, name)[1] for name in ("tpa_settings", "tpa_variables", "tpa_calculations",
                                                            "tpa_aggregates", "tpa_rules")}
    finally:
        wb.close()
    notes: list[str] = []

    # ---- choices
    lists: dict[str, dict[str, str]] = {}
    if crows:
        c_list = _col(ccols, "list_name", "list name", "listname")
        c_name = _col(ccols, "name", "value")
        c_label = _pick_column(ccols, "label")
        if not c_list or not c_name:
            raise CodebookError("the choices sheet needs list_name and name columns", file=path,
                                fix="name the columns of the choices sheet list_name, name, label")
        for r in crows:
            ln, code = _cell(r, c_list), _cell(r, c_name)
            if ln and code:
                lists.setdefault(ln, {})[code] = _cell(r, c_label) or code

    # ---- settings
    settings = {}
    if setrows:
        settings = {k.strip().lower(): _cell(setrows[0], k) for k in setrows[0]}
    meta = {str(r.get("key", "")).strip(): _cell(r, "value") for r in (tpa["tpa_settings"] or [])}

    # ---- survey
    c_type = _col(scols, "type")
    c_name = _col(scols, "name")
    if not c_type or not c_name:
        raise CodebookError("the survey sheet needs type and name columns", file=path,
                            fix="name the first columns of the survey sheet type, name, label")
    c_label = _pick_column(scols, "label")
    c_hint = _pick_column(scols, "hint")
    c_cmsg = _pick_column(scols, "constraint_message")
    c_req = _col(scols, "required")
    c_rel = _col(scols, "relevant")
    c_con = _col(scols, "constraint")
    c_calc = _col(scols, "calculation")

    main: dict[str, Variable] = {}
    repeats: dict[str, dict] = {}
    calcs: list[Calculation] = []
    groups: list[str] = []          # open group labels (sections)
    repeat_stack: list[str] = []    # open repeats; only the outermost becomes a repeat group
    repeat_depth = 0                # groups open when the repeat began (their label is not the roster's section)
    for i, r in enumerate(srows, start=2):
        typ = re.sub(r"\s+", " ", _cell(r, c_type)).strip()
        name = _cell(r, c_name)
        low = typ.lower()
        if not typ:
            continue
        if low in ("begin group", "begin_group"):
            groups.append(_cell(r, c_label) or name)
            continue
        if low in ("end group", "end_group"):
            if groups:
                groups.pop()
            continue
        if low in ("begin repeat", "begin_repeat"):
            if repeat_stack:
                notes.append(f"survey row {i}: nested repeat {name!r} is not supported; its questions are skipped")
            else:
                repeats[name] = {"label_zh": _cell(r, c_label) or name, "variables": {}}
                repeat_depth = len(groups)
            repeat_stack.append(name)
            continue
        if low in ("end repeat", "end_repeat"):
            if repeat_stack:
                repeat_stack.pop()
            continue
        if len(repeat_stack) > 1:
            continue
        target = repeats[repeat_stack[0]]["variables"] if repeat_stack else main
        if not name:
            notes.append(f"survey row {i}: a {typ} without a name is skipped")
            continue
        if low == "note":
            continue
        if low == "calculate":
            expr = _cell(r, c_calc)
            if repeat_stack:
                notes.append(f"survey row {i}: calculation {name!r} inside a repeat is not used")
            elif expr:
                calcs.append(Calculation(name=name, expr=expr, label_zh=_cell(r, c_label)))
            continue
        if low in _METADATA:
            notes.append(f"survey row {i}: metadata {typ} {name!r} is not checked")
            continue
        list_name = None
        parts = typ.split(" ")
        head = parts[0].lower()
        if head in ("select_one", "select_multiple") and len(parts) >= 2:
            vtype = head
            list_name = parts[1]
            if list_name not in lists:
                raise CodebookError(f"survey row {i}: {name!r} uses choice list {list_name!r}, which the choices "
                                    "sheet does not define", file=path, row=i, column="type",
                                    fix=f"add the rows of list {list_name!r} to the choices sheet")
            if len(parts) > 2 and parts[2].lower() == "or_other":
                lists[list_name].setdefault("other", "其他")
        elif head in ("select_one_from_file", "select_multiple_from_file") or head.startswith("select_"):
            vtype = "text"
            notes.append(f"survey row {i}: {typ} of {name!r} is read as text (choices from a file are not checked)")
        elif low in _TYPE_IN:
            vtype = _TYPE_IN[low]
        elif head in _NOTED_AS_TEXT:
            vtype = "text"
            notes.append(f"survey row {i}: {typ} {name!r} is kept as text and not checked")
        else:
            vtype = "text"
            notes.append(f"survey row {i}: unknown type {typ!r} of {name!r}, read as text")
        req_text = _cell(r, c_req)
        required = _truthy(req_text)
        if req_text and not required and req_text.lower() not in ("no", "false", "0", "false()", "否", "n"):
            required = True
            notes.append(f"survey row {i}: required of {name!r} is an expression ({req_text}); treated as required "
                         "where the question is relevant")
        v = Variable(name=name, type=vtype, label_zh=_cell(r, c_label) or name,
                     choices=dict(lists[list_name]) if list_name else None, list_name=list_name,
                     required=required, relevant=_cell(r, c_rel) or None,
                     constraint_message_zh=_cell(r, c_cmsg) or None, hint_zh=_cell(r, c_hint) or None,
                     section=groups[-1] if len(groups) > (repeat_depth if repeat_stack else 0) else None,
                     personal=name in _PERSONAL_NAMES)
        _read_constraint(v, _cell(r, c_con), notes, i)
        if name in target:
            raise CodebookError(f"survey row {i}: the name {name!r} is used twice", file=path, row=i,
                                column="name", fix="give every question its own name")
        target[name] = v

    # ---- names, key, instrument
    form_id = settings.get("form_id", "") or path.stem
    name = meta.get("name") or form_id
    label = meta.get("label_zh") or settings.get("form_title") or name
    key = meta.get("key") or next((k for k in ("household_id", "village_code") if k in main), "")
    if not key:
        raise CodebookError("the XLSForm has no question household_id or village_code to identify a household or "
                            "village", file=path, fix="name the identifying question household_id (household "
                            "questionnaires) or village_code (village questionnaire)")
    instrument = instrument or meta.get("instrument") or (form_id if form_id in INSTRUMENTS else None)
    if instrument is None:
        scores = {n: load_codebook(n).match_score(main) for n in INSTRUMENTS}
        best = max(scores, key=scores.get)
        if scores[best] >= 0.5:
            instrument = best
            notes.append(f"instrument taken to be {best} ({scores[best]:.0%} of its questions are in the form)")

    # ---- repeat groups: the parent key is implicit in an XLSForm; data exports carry it as a column.
    groups_out = {}
    for gname, g in repeats.items():
        gvars = dict(g["variables"])
        keys = [key]
        if meta.get(f"{gname}.key"):
            keys = meta[f"{gname}.key"].split()
        elif "member_no" in gvars:
            keys.append("member_no")
        if key not in gvars:
            parent = main[key]
            gvars = {key: Variable(name=parent.name, type=parent.type, label_zh=parent.label_zh,
                                   pattern=parent.pattern, required=True), **gvars}
        groups_out[gname] = RepeatGroup(name=gname, label_zh=g["label_zh"], key=tuple(keys), variables=gvars)

    cb = Codebook(name=name, label_zh=label, key=key, variables=main, repeats=groups_out, choice_lists=lists,
                  calculations=calcs, instrument=instrument, source=str(path), notes=notes)
    _apply_meta(cb, tpa["tpa_variables"])

    # ---- rules: from the tpa sheets when the form was written by the toolkit, else the instrument's own
    if tpa["tpa_rules"] is not None:
        cb.calculations = calcs + [Calculation(name=_cell(r, "name"), expr=_cell(r, "expr"),
                                               label_zh=_cell(r, "label_zh"))
                                   for r in tpa["tpa_calculations"] or [] if _cell(r, "name")]
        cb.aggregates = [Aggregate(name=_cell(r, "name"), repeat=_cell(r, "repeat"), fn=_cell(r, "fn"),
                                   of=_cell(r, "of") or None, where=_cell(r, "where") or None)
                         for r in tpa["tpa_aggregates"] or [] if _cell(r, "name")]
        cb.rules = [Rule(id=_cell(r, "id"), rule_zh=_cell(r, "rule_zh"), severity=_cell(r, "severity"),
                         when=_cell(r, "when"), field=_cell(r, "field"), message_zh=_cell(r, "message_zh"),
                         fix_zh=_cell(r, "fix_zh"), table=_cell(r, "table") or "main",
                         value_zh=_cell(r, "value_zh") or None)
                    for r in tpa["tpa_rules"] if _cell(r, "id")]
    elif instrument in INSTRUMENTS:
        _inherit_rules(cb, load_codebook(instrument))
    _drop_unusable_expressions(cb)
    check_codebook(cb, path)
    return cb


def _read_constraint(v: Variable, text: str, notes, row):
    """Split a constraint into range (min/max), code pattern and the rest."""
    if not text:
        return
    try:
        parts = split_conjuncts(text)
    except ExpressionError:
        v.constraint = text
        return
    rest = []
    for p in parts:
        m_min, m_max, m_re = _RANGE_MIN.match(p), _RANGE_MAX.match(p), _REGEX.match(p)
        if v.type in ("integer", "decimal") and m_min and v.min is None:
            v.min = _num(m_min.group(1))
        elif v.type in ("integer", "decimal") and m_max and v.max is None:
            v.max = _num(m_max.group(1))
        elif v.type == "text" and m_re and v.pattern is None:
            v.type = "code"
            v.pattern = m_re.group(2)
        else:
            rest.append(p)
    if len(rest) == 1 and rest[0].startswith("(") and rest[0].endswith(")") and len(parts) > 1:
        inner = rest[0][1:-1]
        try:
            parse(inner)
            rest = [inner]
        except ExpressionError:
            pass
    v.constraint = " and ".join(rest) if rest else None


def _apply_meta(cb: Codebook, rows):
    """Attributes XLSForm cannot carry (personal data flags, the code type), from the tpa_variables sheet."""
    for r in rows or []:
        name, table = _cell(r, "name"), _cell(r, "table") or "main"
        tvars = cb.variables if table == "main" else (cb.repeats[table].variables if table in cb.repeats else {})
        if name not in tvars:
            continue
        v = tvars[name]
        personal = _cell(r, "personal")
        if personal:
            v.personal = _truthy(personal)
        mtype = _cell(r, "type")
        if mtype == "code" and v.type == "text":
            v.type = "code"
        elif mtype == "text" and v.type == "code" and v.pattern:
            # A text question whose constraint is a regex (a phone number), not an identifying code.
            v.constraint = " and ".join([f"regex(., '{v.pattern}')"] + ([v.constraint] if v.constraint else []))
            v.pattern = None
            v.type = "text"


def _names(cb: Codebook, table="main") -> set[str]:
    names = set(cb.variables) | {c.name for c in cb.calculations} | {a.name for a in cb.aggregates} | set(PARAMETERS)
    if table != "main":
        names |= set(cb.repeats[table].variables)
    return names


def _inherit_rules(cb: Codebook, base: Codebook):
    """Take the shipped instrument's calculations, roster aggregates and rules that the form can support."""
    for c in base.calculations:
        if references(c.expr) <= _names(cb) and c.name not in cb.variables:
            cb.calculations.append(c)
    for a in base.aggregates:
        g = cb.repeats.get(a.repeat)
        if g is None:
            continue
        needed = ({a.of} if a.of else set()) | (references(a.where) if a.where else set())
        if needed <= set(g.variables) | set(PARAMETERS):
            cb.aggregates.append(a)
    dropped = []
    for r in base.rules:
        if r.table != "main" and r.table not in cb.repeats:
            dropped.append(r.id)
            continue
        if references(r.when) <= _names(cb, r.table):
            cb.rules.append(r)
        else:
            dropped.append(r.id)
    if dropped:
        cb.notes.append(f"rules of {base.name} left out because the form lacks their questions: {', '.join(dropped)}")


def _drop_unusable_expressions(cb: Codebook):
    """Skip logic or constraints the evaluator cannot run (functions it lacks, references to groups) are noted
    and left out, so that the rest of the form can still be validated."""
    for table, v in cb.all_variables():
        names = _names(cb, table)
        for attr in ("relevant", "constraint"):
            text = getattr(v, attr)
            if not text:
                continue
            try:
                refs = references(parse(text))
            except ExpressionError as exc:
                cb.notes.append(f"{attr} of {v.name!r} is not checked: {exc.message}")
                setattr(v, attr, None)
                continue
            if refs - names:
                cb.notes.append(f"{attr} of {v.name!r} is not checked: it refers to {', '.join(sorted(refs - names))}")
                setattr(v, attr, None)
    for c in list(cb.calculations):
        try:
            refs = references(parse(c.expr))
        except ExpressionError:
            refs = None
        if refs is None or refs - _names(cb):
            cb.notes.append(f"calculation {c.name!r} is not used ({c.expr})")
            cb.calculations.remove(c)


# ============================================================================================== writing
def _survey_constraint(v: Variable) -> str:
    parts = []
    if v.type in ("integer", "decimal"):
        if v.min is not None:
            parts.append(f". >= {_fmt(v.min)}")
        if v.max is not None:
            parts.append(f". <= {_fmt(v.max)}")
    if v.pattern and v.type in ("code", "text"):
        parts.append(f"regex(., '{v.pattern}')")
    if v.constraint:
        c = v.constraint.strip()
        top_or = len(split_conjuncts(c)) == 1 and re.search(r"\bor\b", c)
        parts.append(f"({c})" if parts and top_or else c)
    return " and ".join(parts)


def _constraint_message(v: Variable) -> str:
    if v.constraint_message_zh:
        return v.constraint_message_zh
    return ""


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _xlsform_type(v: Variable) -> str:
    if v.type in ("select_one", "select_multiple"):
        return f"{v.type} {v.list_name or v.name}"
    return _TYPE_OUT[v.type]


def write_xlsform(cb, path) -> Path:
    """Write the codebook as an XLSForm (survey, choices, settings + tpa_* sheets for the rules)."""
    import xlsxwriter

    cb = load_codebook(cb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    survey_cols = ["type", "name", "label", "hint", "required", "relevant", "constraint", "constraint_message"]
    rows = []

    def var_row(v: Variable):
        return [_xlsform_type(v), v.name, v.label_zh or v.name, v.hint_zh or "", "yes" if v.required else "",
                v.relevant or "", _survey_constraint(v), _constraint_message(v)]

    # The roster goes after the household's basic information (where it is asked), else at the end.
    main_vars = list(cb.variables.values())
    sections = [v.section for v in main_vars]
    roster_after = max((i for i, s in enumerate(sections) if s == "家庭基本信息"), default=len(main_vars) - 1)
    group_no = 0
    current = None

    def write_repeats():
        for g in cb.repeats.values():
            rows.append(["begin repeat", g.name, g.label_zh] + [""] * 5)
            for v in g.variables.values():
                if v.name == g.key[0] and v.name in cb.variables:
                    continue   # the parent key: implicit inside a repeat
                rows.append(var_row(v))
            rows.append(["end repeat", g.name, ""] + [""] * 5)

    for i, v in enumerate(main_vars):
        if v.section != current:
            if current is not None:
                rows.append(["end group", "", ""] + [""] * 5)
            current = v.section
            if current is not None:
                group_no += 1
                rows.append(["begin group", f"section{group_no}", current] + [""] * 5)
        rows.append(var_row(v))
        if i == roster_after:
            write_repeats()
    if current is not None:
        rows.append(["end group", "", ""] + [""] * 5)
    if not main_vars:
        write_repeats()

    choice_rows = []
    seen_lists = set()
    for _, v in cb.all_variables():
        if v.choices:
            ln = v.list_name or v.name
            if ln in seen_lists:
                continue
            seen_lists.add(ln)
            choice_rows.extend([ln, code, lab] for code, lab in v.choices.items())

    wb = xlsxwriter.Workbook(str(path))
    try:
        head = wb.add_format({"bold": True})
        text = wb.add_format({"num_format": "@"})

        def sheet(name, header, data, widths=None):
            ws = wb.add_worksheet(name)
            ws.write_row(0, 0, header, head)
            ws.freeze_panes(1, 0)
            for j, w in enumerate(widths or []):
                ws.set_column(j, j, w, text)
            for i, row in enumerate(data, start=1):
                for j, val in enumerate(row):
                    if val is None or val == "":
                        continue
                    ws.write_string(i, j, str(val))
            return ws

        sheet("survey", survey_cols, rows, [22, 22, 40, 20, 9, 30, 40, 30])
        sheet("choices", ["list_name", "name", "label"], choice_rows, [18, 16, 30])
        sheet("settings", ["form_title", "form_id", "version"], [[cb.label_zh, cb.name, "1"]], [30, 20, 10])
        meta = [["name", cb.name], ["label_zh", cb.label_zh], ["key", cb.key], ["instrument", cb.instrument or ""]]
        meta += [[f"{g.name}.key", " ".join(g.key)] for g in cb.repeats.values()]
        sheet("tpa_settings", ["key", "value"], meta, [20, 40])
        sheet("tpa_variables", ["table", "name", "type", "personal"],
              [[t, v.name, v.type, "yes" if v.personal else "no"] for t, v in cb.all_variables()], [12, 22, 10, 9])
        sheet("tpa_calculations", ["name", "expr", "label_zh"],
              [[c.name, c.expr, c.label_zh] for c in cb.calculations], [20, 80, 30])
        sheet("tpa_aggregates", ["name", "repeat", "fn", "of", "where"],
              [[a.name, a.repeat, a.fn, a.of or "", a.where or ""] for a in cb.aggregates], [20, 12, 8, 16, 60])
        sheet("tpa_rules", ["id", "table", "severity", "rule_zh", "field", "when", "message_zh", "fix_zh",
                            "value_zh"],
              [[r.id, r.table, r.severity, r.rule_zh, r.field, r.when, r.message_zh, r.fix_zh, r.value_zh or ""]
               for r in cb.rules], [26, 10, 9, 24, 18, 60, 50, 50, 30])
    finally:
        wb.close()
    return path


def write_codebook_xlsx(cb, path) -> Path:
    """The codebook for people (enumerator training): variables, choices and consistency rules, in Chinese."""
    import xlsxwriter

    cb = load_codebook(cb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    try:
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        title = wb.add_format({"bold": True, "font_size": 14})

        def table(ws, first_row, header, rows, widths):
            ws.write_row(first_row, 0, header, head)
            ws.freeze_panes(first_row + 1, 0)
            for j, w in enumerate(widths):
                ws.set_column(j, j, w, wrap)
            for i, row in enumerate(rows, start=first_row + 1):
                for j, val in enumerate(row):
                    ws.write_string(i, j, "" if val is None else str(val))
            ws.autofilter(first_row, 0, first_row + max(len(rows), 1), len(header) - 1)

        ws = wb.add_worksheet("变量")
        ws.write(0, 0, f"{cb.label_zh}（{cb.name}）变量表", title)
        table_names = {"main": "主表", **{g.name: g.label_zh for g in cb.repeats.values()}}
        rows = []
        for t, v in cb.all_variables():
            rows.append([v.name, v.label_zh, TYPE_ZH.get(v.type, v.type), v.range_text(), "是" if v.required else "",
                         v.relevant or "", v.constraint or "", v.constraint_message_zh or "", v.section or "",
                         table_names.get(t, t), "是" if v.personal else ""])
        table(ws, 2, ["变量名", "题目", "类型", "取值范围", "必答", "跳转条件", "约束", "约束提示", "部分", "表",
                      "个人信息"], rows, [20, 34, 8, 40, 6, 28, 30, 24, 14, 14, 8])

        ws = wb.add_worksheet("选项")
        rows = []
        seen = set()
        for _, v in cb.all_variables():
            if v.choices and (v.list_name or v.name) not in seen:
                seen.add(v.list_name or v.name)
                rows.extend([v.list_name or v.name, code, lab] for code, lab in v.choices.items())
        table(ws, 0, ["选项列表", "代码", "标签"], rows, [18, 16, 36])

        ws = wb.add_worksheet("一致性规则")
        sev = {"error": "错误", "warning": "警告"}
        rows = [[r.id, r.rule_zh, sev.get(r.severity, r.severity), table_names.get(r.table, r.table), r.field,
                 r.when, r.message_zh, r.fix_zh] for r in cb.rules]
        table(ws, 0, ["规则编号", "规则", "严重程度", "表", "字段", "条件（成立时报告）", "问题", "如何修改"], rows,
              [28, 26, 8, 12, 18, 50, 44, 44])

        ws = wb.add_worksheet("计算项")
        rows = [[c.name, c.label_zh, c.expr] for c in cb.calculations]
        rows += [[a.name, f"{table_names.get(a.repeat, a.repeat)}汇总（{a.fn}）",
                  (f"{a.of} " if a.of else "") + (f"条件：{a.where}" if a.where else "")] for a in cb.aggregates]
        rows += [[k, v, "由评估配置给定"] for k, v in PARAMETERS.items()]
        table(ws, 0, ["名称", "含义", "计算方法"], rows, [22, 36, 80])
    finally:
        wb.close()
    return path
