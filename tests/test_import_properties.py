"""Property-based tests: malformed tables never crash the importer with anything but ImportFileError, a rejected
file changes no data table, and an imported one always reconciles (rows in = accepted + quarantined + skipped),
with the store holding exactly the rows it reports."""
import string

import pandas as pd
import pytest
from _survey_fixtures import households
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sampling.workspace import init_workspace
from survey import store
from survey.errors import ImportFileError
from survey.importer import import_file
from survey.readers import ROW

MAIN, ROSTER = households(3)
MAIN, ROSTER = MAIN.drop(columns=ROW), ROSTER.drop(columns=ROW)
COLUMNS = list(MAIN.columns)

cell = st.one_of(
    st.none(), st.just(""), st.sampled_from(["1", "2", "9", "-1", "0.5", "abc", "2019-05-01", "5201020010010001",
                                             "520102001001", "520102", "张三", "是", "NaN", "#DIV/0!"]),
    st.text(alphabet=string.printable.replace("\r", "") + "户编码村，、；“”", max_size=30))


@st.composite
def tables(draw):
    """A questionnaire table with random damage: columns dropped, renamed, duplicated or added; cells replaced."""
    drop_rate = draw(st.sampled_from([0, 0.05, 0.6]))
    cols = [c for c in COLUMNS if draw(st.floats(0, 1)) >= drop_rate]
    if draw(st.booleans()):
        cols += draw(st.lists(st.sampled_from(["junk", "备注", "KEY", "household_id", ""]), max_size=2))
    n = draw(st.integers(0, 6))
    base = MAIN.sample(n=n, replace=True, random_state=draw(st.integers(0, 99))).reset_index(drop=True) if n else \
        MAIN.iloc[:0]
    rows = []
    for i in range(n):
        row = []
        for c in cols:
            if c in base.columns and draw(st.integers(0, 30)) > 0:
                row.append(base.loc[i, c])
            else:
                row.append(draw(cell))
        rows.append(row)
    return cols, rows


def _counts(ws, import_id):
    con = ws.connect()
    try:
        q = lambda sql: con.execute(sql, (import_id,)).fetchone()[0]  # noqa: E731
        return (q("SELECT coalesce(sum(nrows), 0) FROM store_segments WHERE import_id=? "
                  "AND kind IN ('households', 'persons')"),
                q("SELECT count(*) FROM quarantine WHERE import_id=?"))
    finally:
        con.close()


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory):
    return init_workspace(tmp_path_factory.mktemp("prop") / "ws")


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(table=tables(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]), fmt=st.sampled_from(["csv", "xlsx"]))
def test_malformed_tables_reconcile_or_are_refused(shared_ws, tmp_path_factory, table, encoding, fmt):
    ws = shared_ws
    cols, rows = table
    d = tmp_path_factory.mktemp("t")
    p = d / f"t.{fmt}"
    if fmt == "csv":
        text = pd.DataFrame(rows, columns=range(len(cols))).to_csv(index=False, header=cols)
        try:
            p.write_bytes(text.encode(encoding))
        except UnicodeEncodeError:
            p.write_bytes(text.encode("utf-8"))
    else:
        pd.DataFrame(rows, columns=range(len(cols))).to_excel(p, index=False, header=cols)
    store.ensure_store(ws)
    before = store.data_fingerprint(ws)
    try:
        r = import_file(ws, p, write_report=False)
    except ImportFileError as exc:
        assert str(exc) and exc.fix
        assert store.data_fingerprint(ws) == before
        return
    assert r.reconciles, r.tables
    if r.status == "imported":
        stored, quarantined = _counts(ws, r.import_id)
        assert stored == r.accepted and quarantined == r.quarantined
        assert r.rows_in == sum(1 for row in rows if any(v not in (None, "") for v in row))


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".xlsx", ".sav", ".dta", ".zip", ".tab"]))
def test_random_bytes_never_crash(shared_ws, tmp_path_factory, data, suffix):
    p = tmp_path_factory.mktemp("b") / f"x{suffix}"
    p.write_bytes(data)
    store.ensure_store(shared_ws)
    before = store.data_fingerprint(shared_ws)
    try:
        r = import_file(shared_ws, p, write_report=False)
    except ImportFileError:
        assert store.data_fingerprint(shared_ws) == before
        return
    assert r.reconciles
