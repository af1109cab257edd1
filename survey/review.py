"""Supervisors' review verdicts and counties' appeals (SPEC §4, last bullet).

Nothing is overwritten: every verdict is a new row of ``reviews`` (the current verdict of a household is its
latest row), every appeal a row of ``appeals`` and every decision on an appeal a row of ``appeal_decisions``.

Verdicts: 审核通过 (approved), 疑似漏评 (suspected missed), 疑似错退 (suspected wrongly exited), 其他问题 (other).

How indicators use them (``case_flags``):

* a scored case (错退, 漏评, 错评) is **confirmed** when its current verdict is 审核通过, or when it has no verdict
  and ``[review] unreviewed = "confirmed"`` (the default; ``"suspected"`` makes unreviewed cases suspected);
* a scored case whose verdict is 疑似漏评 / 疑似错退 / 其他问题 is pending: **suspected**, not counted;
* a household the scorer did not flag but the supervisor marks 疑似错退 (疑似漏评) is a suspected 错退 (漏评);
* a case overturned by an accepted appeal (申诉成立) is neither counted nor suspected; the score, the verdicts
  and the appeal all stay on record.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from .errors import ScoringError

VERDICTS = ("审核通过", "疑似漏评", "疑似错退", "其他问题")
VERDICT_ALIASES = {
    "approved": "审核通过", "pass": "审核通过", "ok": "审核通过", "通过": "审核通过",
    "suspected_missed": "疑似漏评", "missed": "疑似漏评",
    "suspected_wrongly_exited": "疑似错退", "wrongly_exited": "疑似错退",
    "other": "其他问题", "other_problem": "其他问题",
}
APPEAL_OUTCOMES = {"pending": "待核实", "accepted": "申诉成立", "rejected": "申诉不成立"}
_OUTCOME_ALIASES = {v: k for k, v in APPEAL_OUTCOMES.items()}

DDL = (
    """CREATE TABLE IF NOT EXISTS reviews (
        review_id INTEGER PRIMARY KEY AUTOINCREMENT, household_id TEXT NOT NULL, verdict TEXT NOT NULL,
        comment TEXT, reviewer TEXT, source TEXT, created TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS reviews_household ON reviews (household_id)",
    """CREATE TABLE IF NOT EXISTS appeals (
        appeal_id INTEGER PRIMARY KEY AUTOINCREMENT, household_id TEXT NOT NULL, county_code TEXT,
        evidence TEXT NOT NULL, submitted_by TEXT, created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS appeal_decisions (
        decision_id INTEGER PRIMARY KEY AUTOINCREMENT, appeal_id INTEGER NOT NULL REFERENCES appeals(appeal_id),
        outcome TEXT NOT NULL, comment TEXT, decided_by TEXT, created TEXT NOT NULL)""",
)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _ensure(con) -> None:
    for stmt in DDL:
        con.execute(stmt)


def normalise_verdict(value) -> str:
    text = str(value).strip() if value is not None else ""
    if text in VERDICTS:
        return text
    alias = VERDICT_ALIASES.get(text.lower())
    if alias:
        return alias
    raise ScoringError(f"unknown review verdict {value!r}", column="verdict",
                       fix="use 审核通过, 疑似漏评, 疑似错退 or 其他问题 (or approved, suspected_missed, "
                           "suspected_wrongly_exited, other)")


def normalise_outcome(value) -> str:
    text = str(value).strip() if value is not None else ""
    if text in APPEAL_OUTCOMES:
        return text
    if text in _OUTCOME_ALIASES:
        return _OUTCOME_ALIASES[text]
    raise ScoringError(f"unknown appeal outcome {value!r}", column="outcome",
                       fix="use pending (待核实), accepted (申诉成立) or rejected (申诉不成立)")


def _check_households(ws, ids) -> None:
    """Every ID must be a scored household or a household of the store (when the workspace has either)."""
    ids = list(dict.fromkeys(ids))
    pending = set(ids)
    anything = False
    if ws.table_exists("household_scores"):
        anything = True
        scored = set(ws.read_sql("SELECT household_id FROM household_scores")["household_id"].astype(str))
        pending -= scored
    if pending:
        try:
            from . import store

            hh = store.read_households(ws)
            if hh is not None and len(hh):
                anything = True
                pending -= set(hh["household_id"].astype(str))
        except Exception:  # no store yet
            pass
    if anything and pending:
        unknown = [h for h in ids if h in pending]
        raise ScoringError(f"household {unknown[0]} is not in this workspace"
                           + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                           column="household_id", fix="check the 16-digit household ID against the imported "
                                                      "questionnaires (`tpa cases` lists scored households)")


# ---------------------------------------------------------------------------------------------- reviews
def set_review(ws, household_id: str, verdict: str, comment: str | None = None, *, reviewer: str | None = None,
               source: str = "cli") -> dict:
    """Record a supervisor's verdict for one household (a new row; earlier verdicts stay in the history)."""
    household_id = str(household_id).strip()
    verdict = normalise_verdict(verdict)
    if verdict != "审核通过" and not (comment or "").strip():
        raise ScoringError(f"a {verdict} verdict needs a comment", column="comment",
                           fix='say why, e.g. --comment "住房为C级危房未改造"')
    _check_households(ws, [household_id])
    row = (household_id, verdict, (comment or "").strip() or None, reviewer, source, _now())
    with ws.transaction() as con:
        _ensure(con)
        cur = con.execute("INSERT INTO reviews (household_id, verdict, comment, reviewer, source, created) "
                          "VALUES (?, ?, ?, ?, ?, ?)", row)
        review_id = cur.lastrowid
    return {"review_id": review_id, "household_id": household_id, "verdict": verdict, "comment": row[2],
            "reviewer": reviewer, "source": source, "created": row[5]}


def import_reviews(ws, path) -> pd.DataFrame:
    """Import verdicts from a table (CSV/XLSX/...) with columns household_id, verdict, comment[, reviewer].

    Every row is checked first; one bad row rejects the whole file (nothing is written) with its row number.
    """
    from sampling.readers import read_table

    df = read_table(path)
    first = int(df.attrs.get("first_data_row", 2))
    missing = [c for c in ("household_id", "verdict") if c not in df.columns]
    if missing:
        raise ScoringError(f"the review file lacks the column {missing[0]}", file=path, column=missing[0],
                           fix="give columns household_id, verdict, comment (and optionally reviewer)")
    rows = []
    for i, rec in enumerate(df.to_dict("records")):
        hid = str(rec.get("household_id") or "").strip()
        if not hid or hid == "nan":
            raise ScoringError("empty household_id", file=path, row=first + i, column="household_id",
                               fix="fill in the 16-digit household ID")
        try:
            verdict = normalise_verdict(rec.get("verdict"))
        except ScoringError as exc:
            raise ScoringError(exc.message, file=path, row=first + i, column="verdict", fix=exc.fix) from None
        comment = rec.get("comment")
        comment = None if comment is None or (isinstance(comment, float) and np.isnan(comment)) else str(comment).strip()
        if verdict != "审核通过" and not comment:
            raise ScoringError(f"a {verdict} verdict needs a comment", file=path, row=first + i, column="comment",
                               fix="write the reason in the comment column")
        reviewer = rec.get("reviewer")
        reviewer = None if reviewer is None or (isinstance(reviewer, float) and np.isnan(reviewer)) else str(reviewer)
        rows.append((hid, verdict, comment or None, reviewer, f"import:{path}", _now()))
    _check_households(ws, [r[0] for r in rows])
    with ws.transaction() as con:
        _ensure(con)
        con.executemany("INSERT INTO reviews (household_id, verdict, comment, reviewer, source, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)
    return pd.DataFrame(rows, columns=["household_id", "verdict", "comment", "reviewer", "source", "created"])


def review_history(ws, household_id: str | None = None) -> pd.DataFrame:
    cols = ["review_id", "household_id", "verdict", "comment", "reviewer", "source", "created"]
    if not ws.table_exists("reviews"):
        return pd.DataFrame(columns=cols)
    if household_id is None:
        return ws.read_sql("SELECT * FROM reviews ORDER BY review_id")
    return ws.read_sql("SELECT * FROM reviews WHERE household_id = ? ORDER BY review_id", (str(household_id),))


def current_reviews(ws) -> pd.DataFrame:
    """The latest verdict of each reviewed household."""
    cols = ["household_id", "verdict", "comment", "reviewer", "created"]
    if not ws.table_exists("reviews"):
        return pd.DataFrame(columns=cols)
    return ws.read_sql("SELECT r.household_id, r.verdict, r.comment, r.reviewer, r.created FROM reviews r "
                       "JOIN (SELECT household_id, MAX(review_id) AS m FROM reviews GROUP BY household_id) l "
                       "ON r.review_id = l.m ORDER BY r.household_id")


# ---------------------------------------------------------------------------------------------- appeals
def add_appeal(ws, household_id: str, evidence: str, *, outcome: str = "pending", county_code: str | None = None,
               submitted_by: str | None = None, comment: str | None = None) -> dict:
    """Record a county's appeal against a verdict, with its evidence. The verdict itself is not touched."""
    household_id = str(household_id).strip()
    if not (evidence or "").strip():
        raise ScoringError("an appeal needs its evidence", column="evidence",
                           fix='describe the evidence, e.g. --evidence "银行流水显示2019年工资收入12000元"')
    outcome = normalise_outcome(outcome)
    _check_households(ws, [household_id])
    created = _now()
    with ws.transaction() as con:
        _ensure(con)
        cur = con.execute("INSERT INTO appeals (household_id, county_code, evidence, submitted_by, created) "
                          "VALUES (?, ?, ?, ?, ?)",
                          (household_id, county_code or household_id[:6], evidence.strip(), submitted_by, created))
        appeal_id = cur.lastrowid
        con.execute("INSERT INTO appeal_decisions (appeal_id, outcome, comment, decided_by, created) "
                    "VALUES (?, ?, ?, ?, ?)", (appeal_id, outcome, comment, submitted_by, created))
    return {"appeal_id": appeal_id, "household_id": household_id, "evidence": evidence.strip(),
            "outcome": outcome, "outcome_zh": APPEAL_OUTCOMES[outcome], "created": created}


def decide_appeal(ws, appeal_id: int, outcome: str, comment: str | None = None, *,
                  decided_by: str | None = None) -> dict:
    """Record a decision on an appeal (a new row; earlier decisions stay)."""
    outcome = normalise_outcome(outcome)
    if not ws.table_exists("appeals") or ws.read_sql("SELECT 1 FROM appeals WHERE appeal_id = ?",
                                                     (int(appeal_id),)).empty:
        raise ScoringError(f"no appeal {appeal_id}", column="appeal_id", fix="`tpa appeal list` shows the appeals")
    created = _now()
    with ws.transaction() as con:
        _ensure(con)
        con.execute("INSERT INTO appeal_decisions (appeal_id, outcome, comment, decided_by, created) "
                    "VALUES (?, ?, ?, ?, ?)", (int(appeal_id), outcome, comment, decided_by, created))
    return {"appeal_id": int(appeal_id), "outcome": outcome, "outcome_zh": APPEAL_OUTCOMES[outcome],
            "comment": comment, "created": created}


def appeals(ws) -> pd.DataFrame:
    """Every appeal with its current outcome (latest decision)."""
    cols = ["appeal_id", "household_id", "county_code", "evidence", "submitted_by", "created", "outcome",
            "decision_comment", "decided"]
    if not ws.table_exists("appeals"):
        return pd.DataFrame(columns=cols)
    return ws.read_sql(
        "SELECT a.appeal_id, a.household_id, a.county_code, a.evidence, a.submitted_by, a.created, "
        "d.outcome, d.comment AS decision_comment, d.created AS decided FROM appeals a "
        "JOIN appeal_decisions d ON d.decision_id = (SELECT MAX(decision_id) FROM appeal_decisions "
        "WHERE appeal_id = a.appeal_id) ORDER BY a.appeal_id")


def overturned_households(ws) -> set:
    a = appeals(ws)
    return set(a.loc[a["outcome"] == "accepted", "household_id"].astype(str))


# ---------------------------------------------------------------------------------------------- use
CASE_KINDS = {"wrongly_exited": "疑似错退", "missed": "疑似漏评", "wrongly_included": None}


def case_flags(scores: pd.DataFrame, rules, reviews: pd.DataFrame | None = None,
               overturned=()) -> pd.DataFrame:
    """Per household and case kind: ``confirmed_<kind>`` and ``suspected_<kind>`` (booleans), vectorised.

    ``scores`` needs the flags ``wrongly_exited``, ``missed_persons`` (or ``missed``), ``wrongly_included`` and
    either a ``review`` column or ``reviews`` (household_id, verdict). ``overturned`` is a set of household IDs
    whose verdict an accepted appeal overturned.
    """
    hid = scores["household_id"].astype(str)
    if reviews is not None and len(reviews):
        latest = reviews.assign(household_id=reviews["household_id"].astype(str)) \
            .drop_duplicates("household_id", keep="last").set_index("household_id")["verdict"]
        verdict = hid.map(latest)
    elif "review" in scores:
        verdict = scores["review"]
    else:
        verdict = pd.Series(None, index=scores.index, dtype=object)
    verdict = verdict.astype(object).where(verdict.notna(), None)
    unreviewed = verdict.isna().to_numpy()
    approved = (verdict == "审核通过").to_numpy()
    over = hid.isin(set(overturned)).to_numpy()
    accept_unreviewed = rules.unreviewed == "confirmed"
    out = pd.DataFrame({"household_id": hid, "verdict": verdict, "overturned": over}, index=scores.index)
    for kind, sus_verdict in CASE_KINDS.items():
        if kind == "missed":
            flagged = (scores["missed_persons"].to_numpy() > 0) if "missed_persons" in scores \
                else scores["missed"].to_numpy(dtype=bool)
        else:
            flagged = scores[kind].to_numpy(dtype=bool)
        confirmed = flagged & ~over & (approved | (unreviewed & accept_unreviewed))
        marked = (verdict == sus_verdict).to_numpy() if sus_verdict else np.zeros(len(hid), bool)
        suspected = ~confirmed & ~over & (flagged | marked)
        out[f"confirmed_{kind}"] = confirmed
        out[f"suspected_{kind}"] = suspected
    return out


CASE_NAMES_ZH = {"wrongly_exited": "错退", "missed": "漏评", "wrongly_included": "错评", "fell_back": "返贫"}


def list_cases(ws, county_code: str | None = None, kinds=("wrongly_exited", "missed", "wrongly_included",
                                                          "fell_back")) -> pd.DataFrame:
    """The problem cases of the stored scores (one row per household and kind) with their reasons, the
    current review verdict, the latest appeal and the case's status (confirmed / suspected / overturned)."""
    from .rules import Rules
    from .score import read_scores

    rules = Rules.from_config(ws.config)
    scores = read_scores(ws)
    if county_code is not None:
        county_code = str(county_code).strip()
        if county_code not in set(scores["county_code"]):
            raise ScoringError(f"county {county_code} has no scored households", column="county",
                               fix="give a 6-digit county code present in the workspace (see `tpa indicators`)")
        scores = scores[scores["county_code"] == county_code]
    reviews = current_reviews(ws)
    appeal_rows = appeals(ws)
    over = set(appeal_rows.loc[appeal_rows["outcome"] == "accepted", "household_id"].astype(str))
    flags = case_flags(scores, rules, reviews, over)
    latest_appeal = appeal_rows.drop_duplicates("household_id", keep="last").set_index("household_id")
    parts = []
    for kind in kinds:
        if kind == "missed":
            mask = (scores["missed_persons"] > 0) | flags["suspected_missed"]
        elif kind == "fell_back":
            mask = scores["fell_back"].astype(bool)
        else:
            mask = scores[kind].astype(bool) | flags.get(f"suspected_{kind}", False)
        sel = scores[mask.to_numpy(dtype=bool)]
        if sel.empty:
            continue
        f = flags.loc[sel.index]
        if kind == "fell_back":
            status = np.where(f["overturned"], "overturned", "confirmed")
        else:
            status = np.where(f["overturned"], "overturned",
                              np.where(f[f"confirmed_{kind}"], "confirmed", "suspected"))
        persons = sel["missed_persons"] if kind == "missed" else sel["size"]
        parts.append(pd.DataFrame({
            "household_id": sel["household_id"].to_numpy(), "county_code": sel["county_code"].to_numpy(),
            "village_code": sel["village_code"].to_numpy(), "kind": kind, "kind_zh": CASE_NAMES_ZH[kind],
            "status": status, "persons": persons.to_numpy(), "register_status": sel["register_status"].to_numpy(),
            "per_capita_income": sel["per_capita_income"].to_numpy(), "line": sel["line"].to_numpy(),
            "review": f["verdict"].to_numpy(),
            "appeal": sel["household_id"].map(latest_appeal["outcome"]).to_numpy()
            if len(latest_appeal) else None,
            "reasons": sel["reasons"].to_numpy(), "rules_hash": sel["rules_hash"].to_numpy()}))
    cols = ["household_id", "county_code", "village_code", "kind", "kind_zh", "status", "persons", "register_status",
            "per_capita_income", "line", "review", "appeal", "reasons", "rules_hash"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True).sort_values(["kind", "household_id"], kind="stable") \
        .reset_index(drop=True)[cols]
