"""Simulated fieldwork: the files field teams would send for the drawn sample, answered from the synthetic truth.

    summary = simulate_fieldwork(ws, "out/", seed=0)
    results = survey.importer.import_files(ws, summary.paths)

The sample is the workspace's latest draw (``sampling.draw``). The answers come from the synthetic population the
draw was made from: the households/persons files next to the household frame the draw recorded (or the
``population=DIR`` given), or, for a draw on ``synthetic:SEED``, the same households regenerated with
``sampling.population.county_households`` (deterministic per village). Answers are the truth columns under the
codebook's variable names (docs/CONTRACTS.md: population column names equal questionnaire names), with
``declared_size`` = ``size``, ``net_income_declared`` = the component sum, interview metadata (start/end on
plausible days of the year after the assessed year, an enumerator pair, GPS near the house) and a village
questionnaire for every sampled village from the village frame.

Teams. Each county's sampled villages are split into ``teams_per_county`` teams (whole villages, in code order).
Teams take a format in rotation: SAV, XLSX, GBK-encoded CSV, ODK Central ZIP. One file per team and instrument
(hh_registered, hh_nonregistered, village). A CSV or SAV file holds one table, so a SAV or CSV team delivers each
household questionnaire as two files, the household file and its members file (``<name>.sav`` +
``<name>_members.sav``; GBK CSV likewise), which the importer pairs into one unit (``HOUSEHOLD_FORMAT``); the
village questionnaire, which has no roster, is one file in the team's own format.

Refusals. A share ``refusal_rate`` of the sampled households refuse; the team interviews the next reserve
(``reserve_order``) of the same village and household stratum instead. Every refusal is logged with its
replacement (None when the stratum had no reserve left: a non-response).

Mistakes (``mistakes=True``, or ``{kind: count}``), each planted in distinct households and listed with its file,
household, sheet and field and the validation rule expected to report it:

    kind                 what the team did                           where               expected rule
    id_number_typo       roster ID number with a wrong check digit   members.id_number   id_number
    out_of_range         age 150 or migrant_months 14                members.<field>     range
    duplicate_household  the household keyed twice (exact copy)      main                (skipped as duplicate)
    missing_member       a member left out (roster < declared_size)  main.declared_size  roster_size
    end_before_start     interview end before its start              main.interview_end  interview_end_before_start
    unknown_household    a typo in household_id (not in the sample)  main.household_id   not_in_sample

Deterministic: same workspace (draw, population) and seed give byte-identical files (XLSX properties, ZIP member
times and the SAV header's creation time are fixed), whatever the number of ``workers``: every random draw is made
in the calling process, in a fixed order, and each file is then written from its own arguments, by worker
processes (fresh interpreters) and the calling process together.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import re
import uuid
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SurveyError

TEAM_FORMATS = ("sav", "xlsx", "csv", "odk")
# Formats that carry the roster with the household: a SAV/CSV team's household questionnaires come in these.
HOUSEHOLD_FORMAT = {"sav": "sav", "xlsx": "xlsx", "csv": "csv", "odk": "odk"}
EXTENSION = {"sav": ".sav", "xlsx": ".xlsx", "csv": ".csv", "odk": ".zip"}
MISTAKE_KINDS = ("id_number_typo", "out_of_range", "duplicate_household", "missing_member", "end_before_start",
                 "unknown_household")
EXPECTED_RULE = {"id_number_typo": "id_number", "out_of_range": "range", "duplicate_household": None,
                 "missing_member": "roster_size", "end_before_start": "interview_end_before_start",
                 "unknown_household": "not_in_sample"}
REGISTERED = (1, 2, 3, 4)
HOUSEHOLDS_PER_MISTAKE = 200          # default: one of each kind per 200 interviewed households, at least one
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)   # ZIP member times
_SAV_STAMP = b"01 Jan 2008:00:00"     # SAV header creation date (9 bytes) and time (8 bytes)
_ID_CHARS = "0123456789X"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐韩冯邓曹彭曾肖田董潘袁蔡蒋余杜叶程魏苏吕丁沈任姚卢"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国志红燕鹏飞雪梅晓东春林海波辉"
_ODK_GROUP = {"基础信息": "basic", "家庭基本信息": "family", "两不愁三保障": "needs", "政策落实": "policy",
              "家庭收入核实": "income", "认可度": "satisfaction", "村基本情况": "village"}


# ================================================================================================ results
@dataclass
class PlantedMistake:
    kind: str
    file: str
    instrument: str
    household_id: str               # as written in the file (the wrong one for unknown_household)
    true_household_id: str
    sheet: str                      # main | members
    field: str | None
    member_no: int | None = None
    value: str | None = None
    rule: str | None = None         # validation rule expected to report it (None: counted as a duplicate)


@dataclass
class Refusal:
    household_id: str
    village_code: str
    hh_stratum: str
    replaced_by: str | None
    reserve_order: int | None


@dataclass
class FieldworkFile:
    path: str
    file: str
    format: str                     # sav | xlsx | csv | odk
    encoding: str | None
    team: str
    team_format: str
    county_code: str
    instrument: str
    households: int                 # distinct units (households or villages) in the file
    main_rows: int
    roster_rows: int
    mistakes: dict = field(default_factory=dict)


@dataclass
class FieldworkSummary:
    out_dir: str
    draw_id: str
    seed: int
    truth: str
    files: list[FieldworkFile] = field(default_factory=list)
    mistakes: list[PlantedMistake] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answer_key: str | None = None

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def reserves_used(self) -> list[str]:
        return [r.replaced_by for r in self.refusals if r.replaced_by]

    def mistake_counts(self) -> dict:
        return dict(Counter(m.kind for m in self.mistakes))

    def to_json(self) -> dict:
        d = asdict(self)
        d["mistake_counts"] = self.mistake_counts()
        d["reserves_used"] = self.reserves_used
        return d


# ================================================================================================ truth
def _find_table(folder: Path, name: str) -> Path | None:
    for ext in (".parquet", ".csv", ".xlsx", ".sav", ".dta"):
        p = folder / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def _read_filtered(path: Path, column: str, values) -> pd.DataFrame:
    from sampling.readers import read_table

    values = sorted(set(map(str, values.tolist() if hasattr(values, "tolist") else values)))
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        df = pq.read_table(path, filters=[(column, "in", values)]).to_pandas()
    else:
        df = read_table(path)
    for c in df.columns:
        if (c.endswith("_code") or c in ("household_id", "person_id")) and not pd.api.types.is_string_dtype(df[c]):
            df[c] = df[c].astype(str)
    return df[_isin(df[column], values)].reset_index(drop=True)


def _isin(s: pd.Series, values) -> np.ndarray:
    """s (as text) in values, by Arrow (Series.isin on Arrow strings makes a Python scalar of every value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(s.astype(str), from_pandas=True)
    found = pc.is_in(arr, value_set=pa.array([str(v) for v in values], type=arr.type))
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def _no_population(msg: str, file=None) -> SurveyError:
    return SurveyError(msg, code="no_population", file=file,
                       fix="give the folder of the synthetic population the draw was made from "
                           "(--population DIR with villages, households and persons files)")


def load_truth(ws, draw: dict, village_codes, population=None, *,
               persons_of=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(villages, households, persons) of the sampled villages and a description of where they came from.

    ``persons_of``: household IDs whose persons are wanted (default: every household of the sampled villages)."""
    frames = draw.get("frames") or {}
    vrec, hrec = frames.get("villages") or {}, frames.get("households") or {}
    year = _assessed_year(ws)
    pop = Path(population) if population is not None else None
    if pop is not None and not pop.is_dir():
        raise _no_population(f"the population folder {pop} does not exist", file=pop)
    vpath = _find_table(pop, "villages") if pop else None
    if vpath is None and vrec.get("kind") == "file" and Path(vrec.get("path", "")).is_file():
        vpath = Path(vrec["path"])
    if vpath is None:
        raise _no_population("cannot find the village frame of the draw (it was not given as a file, or has moved)")
    villages = _read_filtered(vpath, "village_code", village_codes)
    if pop is not None:
        hpath, ppath = _find_table(pop, "households"), _find_table(pop, "persons")
        if hpath is None or ppath is None:
            raise _no_population(f"{pop} holds no households or persons file", file=pop)
        source = f"population files in {pop}"
    elif hrec.get("kind") == "synthetic":
        from sampling.population import county_households

        hh, ps = county_households(int(hrec["population_seed"]), villages, year=int(hrec.get("year", year)))
        return villages, hh, ps, f"synthetic population (seed {hrec['population_seed']}), regenerated"
    elif hrec.get("kind") == "file":
        hpath = Path(hrec.get("path", ""))
        ppath = hpath.with_name(hpath.name.replace("households", "persons"))
        if not hpath.is_file() or not ppath.is_file() or ppath == hpath:
            raise _no_population(f"the draw's household frame {hpath} has no persons file next to it "
                                 "(a register, not a synthetic population?)", file=hpath)
        source = f"population files next to the draw's household frame ({hpath.parent})"
    else:
        raise _no_population("the draw's households were given in memory, not as files")
    hh = _read_filtered(hpath, "village_code", village_codes)
    wanted = hh["household_id"] if persons_of is None else persons_of
    if "village_code" not in _columns(ppath):
        ps = _read_filtered(ppath, "household_id", wanted)
    else:
        ps = _read_filtered(ppath, "village_code", village_codes)
        if persons_of is not None:
            ps = ps[_isin(ps["household_id"], wanted)].reset_index(drop=True)
    return villages, hh, ps, source


def _assessed_year(ws) -> int:
    cfg = ws.config if isinstance(ws.config, dict) else {}
    return int((cfg.get("assessment") or {}).get("year") or cfg.get("year") or 2019)


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return []


# ================================================================================================ answers
def _name_pool(rng, n: int) -> list[str]:
    s = rng.integers(0, len(_SURNAMES), n)
    g1 = rng.integers(0, len(_GIVEN), n)
    g2 = rng.integers(0, len(_GIVEN), n)
    two = rng.random(n) < 0.6
    return [_SURNAMES[a] + _GIVEN[b] + (_GIVEN[c] if t else "") for a, b, c, t in zip(s, g1, g2, two)]


def _schedule(units: pd.DataFrame, rng, start_day: _dt.date) -> pd.DataFrame:
    """interview_start/end and the enumerator pair of each household of one team (two pairs, five a day each)."""
    n = len(units)
    pos = np.arange(n)
    day = pos // 10
    slot = (pos % 10) // 2
    pair = pos % 2
    minutes = 8 * 60 + 30 + slot * 100 + rng.integers(0, 26, n)
    duration = rng.integers(40, 96, n)
    base = pd.Timestamp(start_day) + pd.to_timedelta(day, unit="D")
    start = base + pd.to_timedelta(minutes * 60 + rng.integers(0, 60, n), unit="s")
    end = start + pd.to_timedelta(duration * 60 + rng.integers(0, 60, n), unit="s")
    return pd.DataFrame({"interview_start": start.to_numpy(), "interview_end": end.to_numpy(), "_pair": pair},
                        index=units.index)


def _household_answers(hh: pd.DataFrame) -> pd.DataFrame:
    """Main-table answers (without interview metadata) from the household truth."""
    a = hh.copy()
    a["declared_size"] = a["size"]
    exited = a["register_status"].to_numpy() == 1
    for c in ("exit_year", "exit_year_income_pc", "sat_exit"):
        if c in a.columns:
            a[c] = a[c].where(exited)
    for c in ("causes", "measures"):
        if c in a.columns:
            a[c] = a[c].astype(object).where(a[c].notna() & (a[c].astype(str).str.strip() != ""), None)
    parts = ["wage_income", "business_income", "property_income", "transfer_income"]
    a["net_income_declared"] = (a[parts].astype("float64").fillna(0).sum(axis=1)
                                - a["business_cost"].astype("float64").fillna(0)).round(2)
    return a


def _member_answers(ps: pd.DataFrame) -> pd.DataFrame:
    m = ps.sort_values(["household_id", "member_no"], kind="stable").reset_index(drop=True)
    if "school_exempt" in m.columns and "in_school" in m.columns:
        m["school_exempt"] = m["school_exempt"].astype("Int64").where(m["in_school"].to_numpy() == 0)
    return m


def _wrong_check_digit(idn: str) -> str:
    from sampling.idnumber import check_digit

    right = check_digit(idn[:17])
    k = (_ID_CHARS.index(right) + 1 + int(idn[:17]) % 10) % len(_ID_CHARS)
    wrong = _ID_CHARS[k] if _ID_CHARS[k] != right else _ID_CHARS[(k + 1) % len(_ID_CHARS)]
    return idn[:17] + wrong


def _typo_id(hid: str, taken: set) -> str:
    """household_id with one digit of the 4-digit sequence mistyped, not another known household."""
    for pos in (15, 14, 13):
        d = int(hid[pos])
        for step in (1, 9, 2, 8, 3, 7, 4, 6, 5):
            cand = hid[:pos] + str((d + step) % 10) + hid[pos + 1:]
            if cand not in taken and cand[12:] != "0000":
                return cand
    return hid[:12] + "9999"


# ================================================================================================ writers
def _plain(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and v != v:
            return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v


# XLSX written directly as XML, column by column: per-cell writing through xlsxwriter was half of the run time.
# The cells are what xlsxwriter wrote before (the readers see the same values and types): numbers as '%.16G',
# dates and times as Excel serial numbers with a date format, strings as shared strings escaped as Excel does.
_XLSX_STYLE_DATETIME, _XLSX_STYLE_DATE = 1, 2
_EXCEL_EPOCH = np.datetime64("1899-12-31T00:00:00", "us")
_US_PER_DAY = 86_400_000_000
_XLSX_STRMAX = 32767
_RE_XLSX_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_RE_XLSX_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_RE_XLSX_SPECIAL = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x")


def _col_letters(j: int) -> str:
    out = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(65 + r) + out
    return out


def _xlsx_string(text: str) -> str:
    """A shared-string <si> body: control characters as _xHHHH_ (a literal _xHHHH_ escaped first), XML-escaped."""
    if not _RE_XLSX_SPECIAL.search(text) and len(text) <= _XLSX_STRMAX // 2:
        return f'<si><t xml:space="preserve">{text}</t></si>'
    if len(text) > _XLSX_STRMAX // 2 and len(text.encode("utf-16-le")) // 2 > _XLSX_STRMAX:
        text = text.encode("utf-16-le")[:2 * _XLSX_STRMAX].decode("utf-16-le", errors="ignore")
    if "_x" in text:
        text = _RE_XLSX_ESCAPE.sub(r"_x005F\1", text)
    text = _RE_XLSX_CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", text)
    text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<si><t xml:space="preserve">{text}</t></si>'


def _xml_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _excel_serial(us: np.ndarray) -> np.ndarray:
    """Excel serial numbers of datetime64[us] values, with xlsxwriter's arithmetic (same floats, same text)."""
    delta = us - _EXCEL_EPOCH.astype(np.int64)
    days, rem = np.divmod(delta, _US_PER_DAY)
    secs, micros = np.divmod(rem, 1_000_000)
    serial = days + (secs.astype("float64") + micros.astype("float64") / 1e6) / (60 * 60 * 24)
    return np.where(serial > 59, serial + 1, serial)   # Excel's phantom 29 Feb 1900


def _number_text(v: np.ndarray) -> np.ndarray:
    if v.dtype.kind in "iu" and (len(v) == 0 or np.abs(v.astype("float64")).max() < 1e16):
        return v.astype(str).astype(object)
    return np.array([f"{x:.16G}" for x in v.astype("float64").tolist()], dtype=object)


class _XlsxStrings:
    """The workbook's shared string table."""

    def __init__(self):
        self.index: dict[str, int] = {}

    def ids(self, values) -> np.ndarray:
        """The shared-string numbers (as text) of the strings in values."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object))
        index = self.index
        numbers = np.array([index.setdefault(v, len(index)) for v in uniques.tolist()], dtype=np.int64)
        return numbers[codes].astype(str).astype(object)

    def xml(self) -> str:
        n = len(self.index)
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.'
                f'openxmlformats.org/spreadsheetml/2006/main" count="{n}" uniqueCount="{n}">'
                + "".join(_xlsx_string(t) for t in self.index) + "</sst>")


def _xlsx_cells(s: pd.Series, ref: np.ndarray, strings: _XlsxStrings) -> np.ndarray:
    """The <c> elements of one column ('' where the cell stays empty); ref: '<c r="B2"' etc. per row."""
    n = len(s)
    out = np.full(n, "", dtype=object)
    kind, fmt = None, ""
    if pd.api.types.is_datetime64_any_dtype(s.dtype) and getattr(s.dtype, "tz", None) is None:
        ok = s.notna().to_numpy()
        us = s.to_numpy(dtype="datetime64[us]")[ok].astype(np.int64)
        kind, txt, fmt = "n", _number_text(_excel_serial(us)), f' s="{_XLSX_STYLE_DATETIME}"'
    elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype) or \
            pd.api.types.is_float_dtype(s.dtype):
        ok = s.notna().to_numpy()
        v = s.to_numpy(dtype="float64" if pd.api.types.is_float_dtype(s.dtype) else "int64", na_value=0)[ok]
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise TypeError("NAN/INF not supported in an XLSX number cell")
        kind, txt = "n", _number_text(v)
    elif pd.api.types.is_string_dtype(s.dtype) and not s.dtype == object:
        ok = s.notna().to_numpy()
        kind, txt = "s", s.to_numpy(dtype=object)[ok]
    if kind == "n":
        out[ok] = ref[ok] + fmt + "><v>" + txt + "</v></c>"
        return out
    if kind == "s":
        out[ok] = ref[ok] + ' t="s"><v>' + strings.ids(txt) + "</v></c>"
        return out
    # object columns (text with None, dates as datetime.date, mixed): value by value, as xlsxwriter dispatched them
    values = [_plain(v) for v in s.astype(object).tolist()]
    ok = np.array([isinstance(v, str) for v in values], dtype=bool)
    if ok.any():
        out[ok] = ref[ok] + ' t="s"><v>' + strings.ids(np.array(values, dtype=object)[ok]) + "</v></c>"
    for i, v in enumerate(values):
        if v is None or ok[i]:
            continue
        if isinstance(v, _dt.datetime):
            num, style = _excel_serial(np.array([np.datetime64(v, "us").astype(np.int64)]))[0], _XLSX_STYLE_DATETIME
        elif isinstance(v, _dt.date):
            num, style = _excel_serial(np.array([np.datetime64(v, "us").astype(np.int64)]))[0], _XLSX_STYLE_DATE
        else:
            num, style = v, 0
        if isinstance(num, float) and not np.isfinite(num):
            raise TypeError("NAN/INF not supported in an XLSX number cell")
        out[i] = ref[i] + (f' s="{style}"' if style else "") + f"><v>{num:.16G}</v></c>"
    return out


def _xlsx_sheet(df: pd.DataFrame, strings: _XlsxStrings) -> str:
    n, k = len(df), len(df.columns)
    letters = [_col_letters(j) for j in range(k)]
    rownum = np.arange(2, n + 2).astype(str).astype(object)
    grid = np.empty((n, k + 2), dtype=object)
    grid[:, 0] = '<row r="' + rownum + '">'
    grid[:, -1] = "</row>"
    for j, c in enumerate(df.columns):
        grid[:, j + 1] = _xlsx_cells(df[c], '<c r="' + letters[j] + rownum + '"', strings)
    head = "".join(f'<c r="{letters[j]}1" t="s"><v>{i}</v></c>'
                   for j, i in enumerate(strings.ids([str(c) for c in df.columns])))
    filled = np.flatnonzero((grid[:, 1:-1] != "").any(axis=1)) if k else np.array([], dtype=int)
    last = f"{letters[-1]}{int(filled[-1]) + 2 if len(filled) else 1}" if k else "A1"
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.'
            'openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/'
            f'2006/relationships"><dimension ref="A1:{last}"/><sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft"/></sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>'
            f'<sheetData><row r="1">{head}</row>' + "".join(grid.ravel().tolist()) + '</sheetData>'
            '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>')


_XLSX_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main"><numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts><fonts count="1"><font><sz val="11"/>'
    '<color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font></fonts><fills count="2">'
    '<fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')


def _write_xlsx(path: Path, sheets: list[tuple[str, pd.DataFrame]], created: _dt.datetime) -> None:
    strings = _XlsxStrings()
    body = [_xlsx_sheet(df, strings) for _, df in sheets]
    n = len(sheets)
    ns = "http://schemas.openxmlformats.org"
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    ct = (head + f'<Types xmlns="{ns}/package/2006/content-types">'
          f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.'
          'extended-properties+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.'
          'openxmlformats-package.core-properties+xml"/><Override PartName="/xl/styles.xml" ContentType="'
          'application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/'
          'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
          + "".join(f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" ContentType="application/vnd.'
                    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(n))
          + '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    rels = (head + f'<Relationships xmlns="{ns}/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/>'
            f'<Relationship Id="rId2" Type="{ns}/package/2006/relationships/metadata/core-properties" '
            'Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{ns}/officeDocument/2006/relationships/extended-properties" '
            'Target="docProps/app.xml"/></Relationships>')
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    core = (head + f'<cp:coreProperties xmlns:cp="{ns}/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<dc:creator>tpa fieldwork simulation</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>')
    app = (head + f'<Properties xmlns="{ns}/officeDocument/2006/extended-properties" '
           f'xmlns:vt="{ns}/officeDocument/2006/docPropsVTypes"><Application>Microsoft Excel</Application>'
           '</Properties>')
    wb = (head + f'<workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{ns}/officeDocument/2006/relationships">'
          '<bookViews><workbookView activeTab="0"/></bookViews><sheets>'
          + "".join(f'<sheet name="{_xml_attr(name)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
                    for i, (name, _) in enumerate(sheets))
          + "</sheets></workbook>")
    wb_rels = (head + f'<Relationships xmlns="{ns}/package/2006/relationships">'
               + "".join(f'<Relationship Id="rId{i + 1}" Type="{ns}/officeDocument/2006/relationships/worksheet" '
                         f'Target="worksheets/sheet{i + 1}.xml"/>' for i in range(n))
               + f'<Relationship Id="rId{n + 1}" Type="{ns}/officeDocument/2006/relationships/styles" '
                 'Target="styles.xml"/>'
               + f'<Relationship Id="rId{n + 2}" Type="{ns}/officeDocument/2006/relationships/sharedStrings" '
                 'Target="sharedStrings.xml"/></Relationships>')
    parts = [("[Content_Types].xml", ct), ("_rels/.rels", rels), ("docProps/app.xml", app),
             ("docProps/core.xml", core), ("xl/workbook.xml", wb), ("xl/_rels/workbook.xml.rels", wb_rels),
             ("xl/styles.xml", _XLSX_STYLES), ("xl/sharedStrings.xml", strings.xml())]
    parts += [(f"xl/worksheets/sheet{i + 1}.xml", x) for i, x in enumerate(body)]
    # fastest deflate: at the default level compressing the sheets' XML took a third of the time (files ~25% larger)
    _zip_write(path, [(name, text.encode("utf-8")) for name, text in parts], level=1)


def _text_column(s: pd.Series, odk_times: bool) -> pd.Series:
    """One column as the text a questionnaire tool writes (vectorised): missing = '', whole decimals without
    '.0', times ISO (ODK: with the +08:00 offset), dates YYYY-MM-DD."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        fmt = "%Y-%m-%dT%H:%M:%S.000+08:00" if odk_times else "%Y-%m-%d %H:%M:%S"
        return s.dt.strftime(fmt).astype(object).where(s.notna(), "")
    if pd.api.types.is_float_dtype(s.dtype):
        f = s.to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isfinite(f)
        whole = ok & (f == np.round(f))
        txt = np.where(whole, np.where(whole, f, 0).astype(np.int64).astype(str), f.astype(str))
        return pd.Series(np.where(ok, txt, ""), index=s.index, dtype=object)
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu":      # no missing values: numpy does the text
        return pd.Series(s.to_numpy().astype(str), index=s.index, dtype=object)
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("Int64").astype(str).astype(object).where(s.notna(), "")
    if isinstance(s.dtype, pd.StringDtype):
        return s.fillna("").astype(object)
    t = s.astype(object)
    dates = t.map(lambda v: isinstance(v, _dt.date))
    if dates.any():
        t = t.where(~dates, t[dates].map(lambda v: v.isoformat()))
    return t.where(t.notna(), "").astype(str).astype(object)


def _csv_text(df: pd.DataFrame, *, odk_times: bool = False) -> str:
    # the csv module on the text columns directly (what DataFrame.to_csv does, less its per-chunk overhead)
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n" if odk_times else "\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([str(c) for c in df.columns])
    writer.writerows(zip(*[_text_column(df.iloc[:, j], odk_times).tolist() for j in range(df.shape[1])]))
    return buf.getvalue()


def _write_csv_gbk(path: Path, df: pd.DataFrame) -> str:
    text = _csv_text(df)
    try:
        data, enc = text.encode("gbk"), "gbk"
    except UnicodeEncodeError:
        data, enc = text.encode("gb18030"), "gb18030"
    path.write_bytes(data)
    return enc


def _zip_write(path: Path, members: list[tuple[str, bytes]], level: int | None = None) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=level)


def _write_sav(path: Path, df: pd.DataFrame, cb) -> None:
    import pyreadstat

    out = pd.DataFrame(index=df.index)
    labels = {}
    for c in df.columns:
        v = cb.variables.get(c)
        s = df[c]
        if v is not None and v.type in ("text", "code", "select_multiple") or (
                v is not None and v.type == "select_one" and not v.numeric_codes):
            # as Python strings: pyreadstat reads the rows one by one, and Arrow-backed strings are slow to iterate
            if not len(s):
                out[c] = s.astype(object).where(s.notna(), "").astype(str)
            elif isinstance(s.dtype, pd.StringDtype):
                out[c] = pd.Series(s.to_numpy(dtype=object, na_value=""), index=s.index, dtype=object)
            else:
                out[c] = s.astype(object).where(s.notna(), "").astype(str).astype(object)
        elif v is not None and v.type == "date":
            out[c] = [None if x is None else x for x in
                      (pd.to_datetime(s).dt.date.astype(object).where(s.notna(), None))]
        elif v is not None and v.type == "datetime":
            out[c] = pd.to_datetime(s).astype("datetime64[ns]")
        else:
            out[c] = pd.to_numeric(s, errors="coerce").astype("float64")
            if v is not None and v.type == "select_one" and v.choices:
                labels[c] = {float(k): lab for k, lab in v.choices.items()}
    col_labels = [cb.variables[c].label_zh if c in cb.variables else "" for c in out.columns]
    pyreadstat.write_sav(out, str(path), column_labels=col_labels, variable_value_labels=labels or None)
    with open(path, "r+b") as fh:       # the header's creation date and time: fixed for byte-identical files
        head = fh.read(4)
        if head in (b"$FL2", b"$FL3"):
            fh.seek(92)
            fh.write(_SAV_STAMP)


def _odk_columns(columns, cb) -> dict:
    """ODK Central export names: '<group>-<name>' for the questions inside a group (the unit's key stays bare)."""
    out = {}
    for c in columns:
        v = cb.variables.get(c)
        if v is not None and v.section in _ODK_GROUP and c != cb.key:
            out[c] = f"{_ODK_GROUP[v.section]}-{c}"
        else:
            out[c] = c
    return out


# ================================================================================================ workers
# A worker is a fresh interpreter fed pickled jobs on stdin: multiprocessing's spawn and forkserver import the
# caller's main script again in every worker (a script without a __main__ guard would run twice), and fork is
# unsafe while the caller holds SQLite connections and Arrow thread pools.
_WORKER_CODE = "import sys; sys.path[:0] = sys.argv[1:2]; from survey.fieldwork import _serve_jobs; _serve_jobs()"


def _run_job(job: tuple[str, tuple]):
    """One file: ("xlsx" | "sav" | "csv" | "odk", the writer's arguments) -> what the writer returns."""
    kind, args = job
    writer = {"xlsx": _write_xlsx, "sav": _write_sav, "csv": _write_csv_gbk, "odk": _write_odk}[kind]
    return writer(*args)


def _serve_jobs() -> None:
    """Worker main loop: a pickled job in on stdin, ("ok", result) or ("error", exception) out on stdout."""
    import pickle
    import sys
    import traceback

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                   # stray prints go to stderr, not into the result stream
    # imported now, while the caller is still putting the answers together, rather than in the first job
    import pyarrow  # noqa: F401
    import pyreadstat  # noqa: F401
    inp = sys.stdin.buffer
    while True:
        try:
            job = pickle.load(inp)
        except EOFError:
            break
        try:
            reply = ("ok", _run_job(job))
        except Exception as exc:
            try:
                pickle.dumps(exc)
                reply = ("error", exc)
            except Exception:
                reply = ("error", RuntimeError(traceback.format_exc()))
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


class _Workers:
    """Worker processes started at once (their imports overlap the caller's work); ``run`` hands out jobs."""

    def __init__(self, size: int):
        self.size = size                # processes writing files, the caller's included
        self.procs: list = []
        self.threads: list = []

    def start(self, n: int) -> None:
        import subprocess
        import sys

        root = str(Path(__file__).resolve().parent.parent)
        for _ in range(max(0, n)):
            try:
                self.procs.append(subprocess.Popen([sys.executable, "-c", _WORKER_CODE, root],
                                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            except (OSError, ValueError, TypeError):     # no interpreter to start: the caller writes it all
                break

    def run(self, jobs: list, progress=None) -> list:
        """Results in job order. The caller's process works too: it takes the next job while it waits."""
        import pickle
        import queue
        import threading

        n = len(jobs)
        results, errors = [None] * n, {}
        done = [threading.Event() for _ in range(n)]
        todo: queue.SimpleQueue = queue.SimpleQueue()
        # biggest first, so that no process is left with a large file at the end
        for j in sorted(range(n), key=lambda j: -_job_size(jobs[j])):
            todo.put(j)
        stop = threading.Event()

        def take():
            if stop.is_set():
                return None
            try:
                return todo.get_nowait()
            except queue.Empty:
                return None

        def finish(j, status, value):
            if status == "ok":
                results[j] = value
            else:
                errors[j] = value
                stop.set()
            done[j].set()

        def drive(proc):
            while (j := take()) is not None:
                try:
                    pickle.dump(jobs[j], proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    proc.stdin.flush()
                    status, value = pickle.load(proc.stdout)
                except Exception:       # the worker died (or its answer is unreadable): the job goes back,
                    todo.put(j)         # and the caller's process writes it (raising its error, if any)
                    return
                finish(j, status, value)

        self.threads = [threading.Thread(target=drive, args=(p,), daemon=True) for p in self.procs]
        for th in self.threads:
            th.start()

        def in_order():
            try:
                for i in range(n):
                    while not done[i].is_set() and not errors:
                        j = take()
                        if j is None:       # job i is being written by a worker (or goes back to the queue)
                            done[i].wait(0.05)
                            continue
                        try:
                            finish(j, "ok", _run_job(jobs[j]))
                        except Exception as exc:
                            finish(j, "error", exc)
                    if errors:
                        raise errors[min(errors)]
                    yield i
            finally:
                stop.set()

        for _ in (progress(in_order(), total=n, desc="files") if progress else in_order()):
            pass
        return results

    def close(self, kill: bool = False) -> None:
        for p in self.procs:
            if kill:
                p.kill()
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except Exception:
                p.kill()
                p.wait()
        for th in self.threads:
            th.join()
        for p in self.procs:
            p.stdout.close()


def _job_size(job) -> int:
    kind, args = job
    frames = [df for _, df in args[1]] if kind == "xlsx" else [a for a in args if isinstance(a, pd.DataFrame)]
    return sum(df.size for df in frames)


# ================================================================================================ the simulation
@dataclass
class _Team:
    county_code: str
    index: int                      # 1.. within the county
    format: str
    villages: list
    enumerators: list


def simulate_fieldwork(ws, out_dir, *, population=None, seed: int = 0, mistakes=True, refusal_rate: float = 0.03,
                       teams_per_county: int = 4, workers: int | None = None, progress=None) -> FieldworkSummary:
    """Write the files the field teams would send for the latest draw; see the module docstring.

    ``workers``: processes writing the files, this one included (default: the number of CPUs; 1: all in this
    process). The files are the same whatever the number."""
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise SurveyError(f"workers must be a whole number of at least 1, not {workers!r}", code="bad_argument",
                          fix="give workers=1 to write every file in this process, or leave it out")
    pool = _Workers(int(workers))
    ok = False
    try:
        summary = _simulate(ws, out_dir, pool, population=population, seed=seed, mistakes=mistakes,
                            refusal_rate=refusal_rate, teams_per_county=teams_per_county, progress=progress)
        ok = True
        return summary
    finally:
        pool.close(kill=not ok)


def _simulate(ws, out_dir, pool: _Workers, *, population, seed, mistakes, refusal_rate, teams_per_county,
              progress) -> FieldworkSummary:
    from sampling.draw import latest_draw, sample_households, sample_villages

    from .codebook import load_codebook

    if not 0 <= float(refusal_rate) < 1:
        raise SurveyError(f"refusal_rate {refusal_rate} is not a share", code="bad_argument",
                          fix="give a share between 0 and 1, e.g. 0.03")
    if int(teams_per_county) < 1:
        raise SurveyError("teams_per_county must be at least 1", code="bad_argument", fix="give 1 or more teams")
    counts = _mistake_counts(mistakes)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SurveyError(f"the output folder {out} is not empty", code="output_exists", file=out,
                          fix="choose an empty or new folder with --out")
    draw = latest_draw(ws)
    sh = sample_households(ws)
    sv = sample_villages(ws)
    if sh.empty:
        raise SurveyError("the latest draw has no households", code="empty_sample",
                          fix="draw a sample with households (`tpa sample draw`)")
    # started now, so that the workers' imports overlap the answers being put together; at least two files a team
    teams_est = int(sv.groupby(sv["county_code"].astype(str)).size().clip(upper=int(teams_per_county)).sum())
    pool.start(min(pool.size, 2 * teams_est) - 1)
    year = _assessed_year(ws)
    # persons of the listed households only (sample and reserves): the rest of the villages is never interviewed
    villages, hh, ps, source = load_truth(ws, draw, sv["village_code"].astype(str), population,
                                          persons_of=sh["household_id"].astype(str).tolist())
    hh = hh.copy()
    hh["household_id"] = hh["household_id"].astype(str)
    ps["household_id"] = ps["household_id"].astype(str)
    known = set(hh["household_id"].tolist())
    lacking = [h for h in sh["household_id"].astype(str).tolist() if h not in known]
    if lacking:
        raise _no_population(f"the population does not hold {len(lacking):,} households of the draw (e.g. "
                             f"{lacking[0]}): it is not the population the draw was made from")
    ss = np.random.SeedSequence([int(seed), 0x7F1E1D])
    rng_ref, rng_team, rng_time, rng_mis, rng_key = [np.random.default_rng(s) for s in ss.spawn(5)]
    summary = FieldworkSummary(out_dir=str(out), draw_id=str(draw["draw_id"]), seed=int(seed), truth=source)

    # ---- who is interviewed: the sample, refusals replaced by the next reserve of the same village and stratum
    sh = sh.copy()
    sh["household_id"] = sh["household_id"].astype(str)
    sh["_order"] = np.arange(len(sh))
    sample = sh[sh["role"] != "reserve"]
    reserve = sh[sh["role"] == "reserve"].sort_values(["village_code", "hh_stratum", "reserve_order"], kind="stable")
    n_ref = int(round(float(refusal_rate) * len(sample)))
    if refusal_rate > 0 and n_ref == 0 and len(sample):
        n_ref = 1
    refused_pos = np.sort(rng_ref.choice(len(sample), size=min(n_ref, len(sample)), replace=False))
    refused = sample.iloc[refused_pos]
    reserve_ids = reserve["household_id"].to_numpy(dtype=object)
    queues = {k: reserve_ids[pos].tolist()
              for k, pos in reserve.groupby(["village_code", "hh_stratum"], sort=False).indices.items()}
    order_of = dict(zip(reserve["household_id"], reserve["reserve_order"]))
    used = []
    for rec in refused[["household_id", "village_code", "hh_stratum"]].itertuples(index=False):
        q = queues.get((rec.village_code, rec.hh_stratum)) or []
        rep = q.pop(0) if q else None
        summary.refusals.append(Refusal(rec.household_id, rec.village_code, str(rec.hh_stratum), rep,
                                        None if rep is None else int(order_of[rep])))
        if rep is not None:
            used.append(rep)
    interviewed = pd.concat([sample[~sample["household_id"].isin(set(refused["household_id"]))],
                             sh[sh["household_id"].isin(set(used))]])
    interviewed = interviewed.sort_values(["county_code", "village_code", "_order"], kind="stable")
    if (n_not := sum(r.replaced_by is None for r in summary.refusals)):
        summary.notes.append(f"{n_not} refusal(s) could not be replaced: no reserve left in the village's stratum")

    # ---- answers
    ans = _household_answers(hh.set_index("household_id").loc[interviewed["household_id"]].reset_index())
    ans["instrument"] = np.where(ans["register_status"].isin(REGISTERED), "hh_registered", "hh_nonregistered")
    members = _member_answers(ps[_isin(ps["household_id"], ans["household_id"].tolist())])

    # ---- teams: whole villages of a county, formats in rotation
    teams: list[_Team] = []
    vil_sorted = sv.assign(village_code=sv["village_code"].astype(str), county_code=sv["county_code"].astype(str)) \
        .sort_values(["county_code", "village_code"])
    for county, g in vil_sorted.groupby("county_code", sort=True):
        codes = list(g["village_code"])
        k = min(int(teams_per_county), len(codes))
        for i, part in enumerate(np.array_split(np.arange(len(codes)), k)):
            teams.append(_Team(county, i + 1, TEAM_FORMATS[len(teams) % len(TEAM_FORMATS)],
                               [codes[j] for j in part], _name_pool(rng_team, 4)))
    start_day = _dt.date(year + 1, 1, 6)
    team_of = {v: i for i, t in enumerate(teams) for v in t.villages}
    ans["_team"] = ans["village_code"].astype(str).map(team_of).astype("int64")
    sched = []
    for i, g in ans.groupby("_team", sort=True):
        t = teams[i]
        s = _schedule(g, rng_time, start_day)
        s["enumerator_1"] = [t.enumerators[2 * p] for p in s["_pair"]]
        s["enumerator_2"] = [t.enumerators[2 * p + 1] for p in s["_pair"]]
        sched.append(s)
    sched = pd.concat(sched)
    for c in ("interview_start", "interview_end", "enumerator_1", "enumerator_2"):
        ans[c] = sched[c].reindex(ans.index)
    jitter = rng_time.normal(0, 0.0003, size=(len(ans), 2))
    ans["gps_lat"] = (ans["gps_lat"].astype("float64") + jitter[:, 0]).round(6)
    ans["gps_lon"] = (ans["gps_lon"].astype("float64") + jitter[:, 1]).round(6)
    first_day = ans.groupby(ans["village_code"].astype(str))["interview_start"].min()

    # ---- mistakes
    planted, dropped = _plant(ans, members, counts, rng_mis, set(sh["household_id"].tolist())) if counts else ([], [])
    members = members.drop(index=dropped)
    dup_ids = {m.household_id for m in planted if m.kind == "duplicate_household"}

    # ---- files: per team, the household instruments (with their rosters), then the village questionnaire
    out.mkdir(parents=True, exist_ok=True)
    created = _dt.datetime(year + 1, 1, 1)
    cbs = {n: load_codebook(n) for n in ("hh_registered", "hh_nonregistered", "village")}
    vframe = villages.assign(village_code=villages["village_code"].astype(str)).set_index("village_code")
    ans = ans.sort_values(["_team", "instrument", "interview_start", "household_id"], kind="stable")
    unit_of = pd.Series(list(zip(ans["_team"], ans["instrument"])), index=ans["household_id"].to_numpy())
    members = members.assign(_unit=members["household_id"].map(unit_of),
                             _o=members["household_id"].map(pd.Series(np.arange(len(ans)), index=unit_of.index)))
    members = members.sort_values(["_o", "member_no"], kind="stable")
    files_of = {u: g for u, g in ans.groupby(["_team", "instrument"], sort=False)}
    rosters_of = {u: g for u, g in members.groupby("_unit", sort=False)}
    mistakes_of = {}
    for m in planted:
        mistakes_of.setdefault(unit_of[m.household_id], []).append(m)
    # Every file is one job, a pure function of its arguments (ODK keys are drawn here, in file order), so the
    # files do not depend on which process writes them; the summary is put together afterwards, in team order.
    jobs: list[tuple[str, tuple]] = []
    records: list[tuple] = []
    for i, t in enumerate(teams):
        team_name = f"{t.county_code}-{t.index}"
        for instrument in ("hh_registered", "hh_nonregistered"):
            sel = files_of.get((i, instrument))
            if sel is None:
                continue
            cb = cbs[instrument]
            fmt = HOUSEHOLD_FORMAT[t.format]
            name = f"{t.county_code}_team{t.index}_{instrument}{EXTENSION[fmt]}"
            path = out / name
            main = sel.reindex(columns=[n for n in cb.variables if not n.startswith("_")])
            mem = rosters_of.get((i, instrument), members.iloc[:0]) \
                .reindex(columns=list(cb.repeats["members"].variables))
            dups = sel["household_id"].isin(dup_ids).to_numpy()
            mem_name = None
            first_job = len(jobs)
            if fmt == "xlsx":
                main_out = main.iloc[np.repeat(np.arange(len(main)), np.where(dups, 2, 1))]
                jobs.append(("xlsx", (path, [(instrument, main_out), ("members", mem)], created)))
                n_main, n_mem = len(main_out), len(mem)
            elif fmt in ("sav", "csv"):
                # two files, the household file and its members file (the importer pairs them)
                main_out = main.iloc[np.repeat(np.arange(len(main)), np.where(dups, 2, 1))]
                mem_name = f"{t.county_code}_team{t.index}_{instrument}_members{EXTENSION[fmt]}"
                if fmt == "sav":
                    jobs += [("sav", (path, main_out, cb)), ("sav", (out / mem_name, mem, cb.repeats["members"]))]
                else:
                    jobs += [("csv", (path, main_out)), ("csv", (out / mem_name, mem))]
                n_main, n_mem = len(main_out), len(mem)
            else:
                keys = _odk_keys(rng_key, len(main) + int(dups.sum()))
                jobs.append(("odk", (path, instrument, main, mem, cb, dups, keys)))
                n_main = n_mem = None
            mine = mistakes_of.get((i, instrument), [])
            for m in mine:
                m.file, m.instrument = (mem_name if mem_name and m.sheet == "members" else name), instrument
            records.append(("household", first_job, t, team_name, instrument, fmt, name, path, mem_name,
                            int(len(sel)), n_main, n_mem, mine))
        # the village questionnaire of the team's villages, in the team's own format
        cbv = cbs["village"]
        vrows = vframe.loc[[v for v in t.villages if v in vframe.index]].reset_index()
        vq = pd.DataFrame({
            "village_code": vrows["village_code"].astype(str), "county_code": vrows["county_code"].astype(str),
            "interview_date": [(first_day.get(v, pd.Timestamp(start_day))).date() for v in vrows["village_code"]],
        })
        for c in ("households", "persons", "persons_registered", "persons_exited", "persons_nonregistered",
                  "poor_village", "remote", "terrain"):
            vq[c] = vrows[c].to_numpy()
        vq = vq.reindex(columns=[n for n in cbv.variables if not n.startswith("_")])
        name = f"{t.county_code}_team{t.index}_village{EXTENSION[t.format]}"
        path = out / name
        first_job = len(jobs)
        if t.format == "sav":
            jobs.append(("sav", (path, vq, cbv)))
        elif t.format == "xlsx":
            jobs.append(("xlsx", (path, [("village", vq)], created)))
        elif t.format == "csv":
            # kept by hand in Excel and saved as CSV (GBK on Chinese Windows): yes/no answered in words
            yn = {0: "否", 1: "是"}
            jobs.append(("csv", (path, vq.assign(**{c: vq[c].map(yn) for c in ("poor_village", "remote")}))))
        else:
            jobs.append(("odk", (path, "village", vq, None, cbv, np.zeros(len(vq), bool),
                                 _odk_keys(rng_key, len(vq)))))
        records.append(("village", first_job, t, team_name, name, path, int(len(vq))))

    results = pool.run(jobs, progress)
    for rec in records:
        if rec[0] == "village":
            _, j, t, team_name, name, path, n = rec
            enc = results[j] if t.format == "csv" else ("utf-8" if t.format == "odk" else None)
            summary.files.append(FieldworkFile(str(path), name, t.format, enc, team_name, t.format, t.county_code,
                                               "village", n, n, 0, {}))
            continue
        _, j, t, team_name, instrument, fmt, name, path, mem_name, n_sel, n_main, n_mem, mine = rec
        if fmt == "odk":
            (n_main, n_mem), enc = results[j], "utf-8"
        elif fmt == "csv":
            enc, mem_enc = results[j], results[j + 1]
        else:
            enc = mem_enc = None
        if mem_name is None:
            summary.files.append(FieldworkFile(str(path), name, fmt, enc, team_name, t.format, t.county_code,
                                               instrument, n_sel, int(n_main), int(n_mem),
                                               dict(Counter(m.kind for m in mine))))
        else:
            summary.files.append(FieldworkFile(str(path), name, fmt, enc, team_name, t.format, t.county_code,
                                               instrument, n_sel, int(n_main), 0,
                                               dict(Counter(m.kind for m in mine if m.file == name))))
            summary.files.append(FieldworkFile(str(out / mem_name), mem_name, fmt, mem_enc, team_name, t.format,
                                               t.county_code, instrument, n_sel, 0, int(n_mem),
                                               dict(Counter(m.kind for m in mine if m.file == mem_name))))
    summary.mistakes = planted
    key = ws.dir("fieldwork") / f"{out.resolve().name}.json"
    key.write_text(json.dumps(summary.to_json(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    summary.answer_key = str(key)
    return summary


def _mistake_counts(mistakes) -> dict:
    if mistakes is False or mistakes is None:
        return {}
    if mistakes is True:
        return {k: None for k in MISTAKE_KINDS}          # None: default count from the number of households
    if isinstance(mistakes, dict):
        bad = set(mistakes) - set(MISTAKE_KINDS)
        if bad:
            raise SurveyError(f"unknown mistake kind(s) {sorted(bad)}", code="bad_argument",
                              fix=f"use some of {', '.join(MISTAKE_KINDS)}")
        return {k: int(v) for k, v in mistakes.items() if int(v) > 0}
    raise SurveyError(f"mistakes must be True, False or {{kind: count}}, not {mistakes!r}", code="bad_argument",
                      fix="pass mistakes=True or e.g. {'out_of_range': 2}")


def _plant(ans: pd.DataFrame, members: pd.DataFrame, counts: dict, rng, taken: set) -> list[PlantedMistake]:
    """Plant the mistakes in ``ans`` (main answers) and ``members`` in place; distinct households per mistake."""
    n = len(ans)
    default = max(1, n // HOUSEHOLDS_PER_MISTAKE)
    order = rng.permutation(n)
    free = np.ones(n, dtype=bool)
    size = ans["declared_size"].to_numpy()
    out, dropped, renamed = [], [], []
    existing = None
    # positions of each household's roster rows, found once (a comparison over all members per mistake was slow)
    codes, hids = pd.factorize(members["household_id"])
    by_code = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_code], np.arange(len(hids) + 1))
    rows_of = {h: by_code[bounds[k]:bounds[k + 1]] for k, h in enumerate(hids.tolist())}
    # values read as arrays (cell by cell on Arrow columns was slow); each household is changed once, after reading
    ans_hid, ans_inst = ans["household_id"].astype(str).tolist(), ans["instrument"].astype(str).tolist()
    member_no, id_number = members["member_no"].to_numpy(), members["id_number"].to_numpy(dtype=object)
    no_rows = np.array([], dtype=np.intp)

    def pick(ok) -> int | None:
        for p in order:
            if free[p] and ok(p):
                free[p] = False
                return int(p)
        return None

    for kind in MISTAKE_KINDS:
        if kind not in counts:
            continue
        k = default if counts[kind] is None else counts[kind]
        for j in range(k):
            if kind == "missing_member":
                p = pick(lambda q: size[q] >= 2)
            else:
                p = pick(lambda q: True)
            if p is None:
                break
            idx = ans.index[p]
            hid, inst = ans_hid[p], ans_inst[p]
            pos = rows_of.get(hid, no_rows)
            mrows = members.index[pos]
            m = PlantedMistake(kind, "", inst, hid, hid, "main", None, rule=EXPECTED_RULE[kind])
            if kind == "id_number_typo":
                r = mrows[-1]
                wrong = _wrong_check_digit(str(id_number[pos[-1]]))
                members.at[r, "id_number"] = wrong
                m.sheet, m.field, m.member_no, m.value = "members", "id_number", int(member_no[pos[-1]]), wrong
            elif kind == "out_of_range":
                r = mrows[0]
                f, v = ("age", 150) if j % 2 == 0 else ("migrant_months", 14)
                members.at[r, f] = v
                m.sheet, m.field, m.member_no, m.value = "members", f, int(member_no[pos[0]]), str(v)
            elif kind == "duplicate_household":
                m.field = "household_id"
                m.value = hid
            elif kind == "missing_member":
                last = pos[np.argsort(member_no[pos], kind="quicksort")[-1]]    # as sort_values("member_no")
                r = members.index[last]
                m.field, m.member_no, m.value = "declared_size", int(member_no[last]), str(size[p])
                dropped.append(r)
            elif kind == "end_before_start":
                s, e = ans.at[idx, "interview_start"], ans.at[idx, "interview_end"]
                ans.at[idx, "interview_start"], ans.at[idx, "interview_end"] = e, s
                m.field, m.value = "interview_end", f"{s} / {e}"
            elif kind == "unknown_household":
                if existing is None:  # built once: a set of every id per mistake was most of the run time
                    existing = taken | set(ans["household_id"].astype(str).tolist())
                wrong = _typo_id(hid, existing)
                existing.add(wrong)
                renamed.append((idx, mrows, wrong))
                m.household_id, m.field, m.value = wrong, "household_id", wrong
            out.append(m)
    if renamed:
        # written together: one assignment per Arrow string column copies it, one per household did so 100s of times
        ans.loc[[idx for idx, _, _ in renamed], "household_id"] = [w for _, _, w in renamed]
        rows = np.concatenate([np.asarray(r) for _, r, _ in renamed])
        ids = np.repeat(np.array([w for _, _, w in renamed], dtype=object), [len(r) for _, r, _ in renamed])
        members.loc[rows, "household_id"] = ids
        if "person_id" in members.columns:
            members.loc[rows, "person_id"] = ids + members.loc[rows, "member_no"].astype(int).astype(str) \
                .str.zfill(2).to_numpy(dtype=object)
    return out, dropped


def _odk_keys(rng, n: int) -> list[str]:
    """The instance IDs of n submissions (drawn by the caller, in file order, for worker-independent files)."""
    raw = np.frombuffer(b"".join([rng.bytes(16) for _ in range(n)]), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40       # as uuid.UUID(bytes=..., version=4): version 4, RFC 4122 variant
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [f"uuid:{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


def _write_odk(path: Path, form: str, main: pd.DataFrame, mem: pd.DataFrame | None, cb, dups,
               keys: list[str]) -> tuple[int, int]:
    """An ODK Central CSV export ZIP: <form>.csv (KEY) and <form>-members.csv (PARENT_KEY); a household keyed
    twice is a second submission with its own KEY and the same answers."""
    n = len(main)
    rows = np.repeat(np.arange(n), np.where(dups, 2, 1))
    # the second submission of a duplicated household comes last, as a re-sent form would
    first = np.r_[True, rows[1:] != rows[:-1]]
    rows = np.r_[rows[first], rows[~first]]
    if len(keys) != len(rows):
        raise ValueError(f"{len(rows)} submissions but {len(keys)} keys")
    m = main.iloc[rows].reset_index(drop=True)
    when = pd.to_datetime(m["interview_end"]) if "interview_end" in m.columns else \
        pd.to_datetime(m["interview_date"]) + pd.Timedelta(hours=18)
    resent = np.arange(len(rows)) >= int(first.sum())
    # submitted when the team is back online: minutes after the interview (China time, written as UTC)
    sub_time = when + pd.to_timedelta(np.arange(len(m)) % 7 + 5, unit="min") + \
        pd.to_timedelta(resent.astype(int), unit="D") - pd.Timedelta(hours=8)
    front = pd.DataFrame({"SubmissionDate": sub_time.dt.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_numpy()})
    body = m.rename(columns=_odk_columns(m.columns, cb))
    tail = pd.DataFrame({"meta-instanceID": keys, "KEY": keys})
    main_csv = pd.concat([front, body, tail], axis=1)
    files = [(f"{form}.csv", _csv_text(main_csv, odk_times=True).encode("utf-8"))]
    n_mem = 0
    if mem is not None:
        # every submission's roster (a re-sent household's too), under its own PARENT_KEY, in roster order
        subs = pd.DataFrame({"household_id": m["household_id"].astype(str).to_numpy(), "PARENT_KEY": keys,
                             "_sub": np.arange(len(m))})
        roster = mem.assign(household_id=mem["household_id"].astype(str), _pos=np.arange(len(mem)))
        rep = subs.merge(roster, on="household_id", how="inner").sort_values(["_sub", "_pos"], kind="stable")
        item = rep.groupby("_sub", sort=False).cumcount() + 1
        rep["KEY"] = rep["PARENT_KEY"] + "/members[" + item.astype(str) + "]"
        rep = rep[[c for c in mem.columns if c != "household_id"] + ["PARENT_KEY", "KEY"]].reset_index(drop=True)
        n_mem = len(rep)
        files.append((f"{form}-members.csv", _csv_text(rep, odk_times=True).encode("utf-8")))
    _zip_write(path, files)
    return len(m), n_mem
