"""The store: content hashes, typed segments, atomic imports, and several processes importing at once."""
import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest
from _survey_fixtures import households

from sampling.workspace import Workspace, init_workspace
from survey import store
from survey.importer import import_file
from survey.readers import ROW


def test_row_hashes_ignore_column_order_and_see_every_value():
    a = pd.DataFrame({"x": [1.0, 2.0, np.nan], "s": pd.array(["a", None, "c"], dtype="string"),
                      "i": pd.array([1, None, 3], dtype="Int64")})
    h = store.row_hashes(a, ["x", "s", "i"])
    assert np.array_equal(h, store.row_hashes(a[["i", "s", "x"]], ["i", "x", "s"]))
    assert len(set(h.tolist())) == 3
    b = a.copy()
    b.loc[1, "x"] = 2.5
    hb = store.row_hashes(b, ["x", "s", "i"])
    assert hb[0] == h[0] and hb[1] != h[1] and hb[2] == h[2]
    # missing hashes alike whatever the dtype; -0.0 == 0.0
    c = pd.DataFrame({"x": [0.0, np.nan]})
    d = pd.DataFrame({"x": pd.array([-0.0, None], dtype="Float64")})
    assert np.array_equal(store.row_hashes(c, ["x"]), store.row_hashes(d, ["x"]))


def test_segments_keep_types():
    f = pd.DataFrame({"household_id": pd.array(["0001", None], dtype="str"),
                      "n": pd.array([1, None], dtype="Int64"), "x": [1.5, np.nan],
                      "t": pd.to_datetime(["2019-05-01 09:00", None]), ROW: [2, 3]})
    back = store.from_blob(store.to_blob(f))
    assert back["household_id"].iloc[0] == "0001" and pd.isna(back["household_id"].iloc[1])
    assert str(back["n"].dtype) == "Int64" and back["n"].iloc[0] == 1
    assert back["t"].dtype.kind == "M" and back[ROW].tolist() == [2, 3]


def test_a_failing_import_rolls_back_everything(tmp_path, monkeypatch):
    ws = init_workspace(tmp_path / "ws")
    main, roster = households(3)
    p = tmp_path / "hh.csv"
    main.drop(columns=ROW).to_csv(p, index=False)
    store.ensure_store(ws)
    before = store.data_fingerprint(ws)
    from survey import importer

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer._FileImport, "_store_issues", boom)
    with pytest.raises(RuntimeError):
        import_file(ws, p)
    assert store.data_fingerprint(ws) == before
    assert store.read_imports(ws).empty        # the 'importing' audit row went with the rollback


def _import_one(args):
    ws_path, path = args
    ws = Workspace.open(ws_path)
    r = import_file(ws, path, write_report=False)
    return r.status, r.rows_in, r.accepted, r.quarantined, r.duplicates_skipped


def test_several_processes_import_at_once(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    main, roster = households(40)
    main, roster = main.drop(columns=ROW), roster.drop(columns=ROW)
    paths = []
    for k in range(4):
        part = main.iloc[k * 10:(k + 1) * 10]
        p = tmp_path / f"team{k}.xlsx"
        with pd.ExcelWriter(p) as xw:
            part.to_excel(xw, sheet_name="hh", index=False)
            roster[roster["household_id"].isin(part["household_id"])].to_excel(xw, sheet_name="members",
                                                                               index=False)
        paths.append(str(p))
    with mp.get_context("fork").Pool(4) as pool:
        results = pool.map(_import_one, [(str(ws.path), p) for p in paths])
    assert [r[0] for r in results] == ["imported"] * 4
    assert all(r[1] == r[2] + r[3] + r[4] for r in results)
    assert sum(r[1] for r in results) == 40 + 120
    hh = store.read_households(ws)
    assert len(hh) + len(store.read_quarantine(ws)[lambda q: q["sheet"] == "hh"]) == 40
    assert sorted(hh["household_id"]) == sorted(set(hh["household_id"]))
    log = store.read_imports(ws)
    assert len(log) == 4 and set(log["status"]) == {"imported"}
    assert log["accepted"].sum() + log["quarantined"].sum() == 160


def test_same_file_from_two_processes_is_stored_once(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    main, _ = households(5)
    p = tmp_path / "hh.csv"
    main.drop(columns=ROW).to_csv(p, index=False)
    with mp.get_context("fork").Pool(2) as pool:
        results = pool.map(_import_one, [(str(ws.path), str(p))] * 2)
    assert sorted(r[0] for r in results) == ["imported", "unchanged"]
    assert len(store.read_households(ws)) == 5


def test_import_waits_for_another_writer(tmp_path, monkeypatch):
    import threading
    import time

    from survey import importer

    ws = init_workspace(tmp_path / "ws")
    main, _ = households(2)
    p = tmp_path / "hh.csv"
    main.drop(columns=ROW).to_csv(p, index=False)
    store.ensure_store(ws)
    locked, released = threading.Event(), threading.Event()

    def hold():
        con = ws.connect()
        con.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(1.5)
        con.execute("COMMIT")
        con.close()
        released.set()

    real_connect = type(ws).connect

    def quick_connect(self):            # each attempt gives up at once; the importer's loop keeps waiting
        c = real_connect(self)
        c.execute("PRAGMA busy_timeout = 50")
        return c

    t = threading.Thread(target=hold)
    t.start()
    locked.wait(10)
    monkeypatch.setattr(type(ws), "connect", quick_connect)
    monkeypatch.setattr(importer, "LOCK_WAIT_SECONDS", 60)
    r = importer.import_file(ws, p, write_report=False)
    t.join()
    assert released.is_set() and r.status == "imported" and r.accepted == 2


def test_a_store_of_the_old_format_is_refused_with_a_fix_and_left_alone(tmp_path):
    from survey.errors import StoreError

    ws = init_workspace(tmp_path / "ws")
    main, _ = households(2)
    p = tmp_path / "hh.csv"
    main.drop(columns=ROW).to_csv(p, index=False)
    with ws.transaction() as con:      # what tpa wrote before November 2026: one index row per stored row
        con.execute("CREATE TABLE audit_log (import_id INTEGER PRIMARY KEY, file TEXT, status TEXT NOT NULL)")
        con.execute("CREATE TABLE households (household_id TEXT NOT NULL, import_id INTEGER, segment_id INTEGER)")
        con.execute("INSERT INTO households VALUES ('520102001001', 1, 1)")
    with pytest.raises(StoreError) as exc:
        import_file(ws, p, write_report=False)
    assert exc.value.code == "store_format" and "tpa init" in exc.value.fix
    with pytest.raises(StoreError):
        store.read_households(ws)
    assert ws.read_sql("SELECT count(*) AS n FROM households")["n"].iloc[0] == 1
    assert not ws.table_exists("store_segments")


def test_finding_stored_rows_by_key_reads_only_matching_segments(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    store.ensure_store(ws)
    a = pd.DataFrame({"household_id": ["a1", "a2", "a3"], ROW: [2, 3, 4]})
    b = pd.DataFrame({"household_id": ["b1", "a2"], ROW: [2, 3]})
    with ws.transaction() as con:
        s1 = store.write_segment(con, 1, "households", "x", store.with_meta(a, [11, 12, 13], 1, households=True))
        s2 = store.write_segment(con, 2, "households", "x", store.with_meta(b, [21, 22], 2, households=True))
        store.supersede(con, "households", ["a2"], 3)        # both stored a2 rows are current: both go
        found = store.current_rows(con, "households", ["a3", "a2", "b1", "zz"])
    assert sorted(zip(found["_key"], found["segment_id"], found["pos"])) == [("a3", s1, 2), ("b1", s2, 0)]
    assert found.set_index("_key").loc["b1", store.VERSION] == 2
    assert found.set_index("_key").loc["a3", store.ROW_HASH] == 13
    hist = store.read_households(ws, history=True)
    assert sorted(hist.loc[hist["superseded_by"].notna(), "household_id"]) == ["a2", "a2"]
    assert sorted(store.read_households(ws)["household_id"]) == ["a1", "a3", "b1"]


def test_text_hashes_depend_on_the_text_only():
    texts = ["", "a", "abcdefgh", "abcdefghi", "abcdefgh\x00", "张三", "张三 ", "52010200100100010", None, "张三"]
    h = store.text_hashes(texts)
    assert h[5] == h[9]                                     # equal texts, equal hashes
    assert len(set(h[:9].tolist())) == 9                    # prefixes, a trailing NUL, a trailing blank differ
    for dtype in ("object", "str", "string"):               # whatever pandas holds them as
        assert np.array_equal(store.text_hashes(pd.Series(texts, dtype=dtype)), h)
    assert store.text_hashes([None])[0] == store.text_hashes(pd.Series([np.nan], dtype=object))[0]
    ids = pd.Series([f"5201020010010{i:05d}" for i in range(50_000)])
    assert len(np.unique(store.text_hashes(ids))) == 50_000


def test_stored_hashes_do_not_change():
    # Stored hashes decide whether a re-imported row is "the same": these values were computed by the first
    # implementation and must survive any rewrite of the hashing (or a new pandas).
    texts = ["", "a", "1234567", "12345678", "123456789", "5201020010010001", "52010219500101001X", "张三",
             " 因病 缺资金 ", None]
    assert store.text_hashes(texts).tolist() == [
        2697589594794340267, 17676519698112061108, 10141013855692745046, 8403655783606227339,
        10155437410761084611, 12781895645398832919, 13471672589696853358, 3190360758105924862,
        14818780851293451586, 9221120237041090561]
    codes = ["5201020010010001", "5201020010010002", "5201020010010003"]     # one width: the fast path
    assert store.text_hashes(codes).tolist() == [12781895645398832919, 10330672541781912112, 12215793809980769287]
    f = pd.DataFrame({"household_id": pd.Series(codes, dtype="str"), "name": pd.Series(["张三", None, ""], dtype="str"),
                      "n": pd.array([1, None, 3], dtype="Int64"), "x": [-0.0, np.nan, 2.5],
                      "t": pd.to_datetime(["2019-05-01 09:00", None, "2019-05-01 10:30"])})
    assert store.row_hashes(f, list(f.columns)).tolist() == [1896026363333417080, 6362762302844061841,
                                                            17276911816756820827]


def test_a_texts_hash_does_not_depend_on_the_other_rows():
    # columns of one width take a faster path than mixed ones; a value must hash alike in either
    import pyarrow as pa
    values = ["", "1234567", "12345678", "123456789", "1234567890123456", "12345678901234567", "张三", "é"]
    alone = {v: store.text_hashes([v])[0] for v in values}
    for v in values:
        same_width = [v] * 5
        assert set(store.text_hashes(same_width).tolist()) == {alone[v]}
        mixed = store.text_hashes(["x" * 40, v, None, v + "!", v])
        assert mixed[1] == mixed[4] == alone[v]
        arr = pa.array(["zz", v, v, "zz"], type=pa.large_string()).slice(1, 2)      # an offset into the buffer
        chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([arr.slice(0, 1), arr.slice(1)])))
        assert store.text_hashes(chunked).tolist() == [alone[v]] * 2


def test_bulk_allocation_puts_the_usual_allocator_back():
    import pyarrow as pa

    from survey.allocator import bulk_allocation

    before = pa.default_memory_pool().backend_name
    with bulk_allocation():
        assert pa.default_memory_pool().backend_name == "system"
        x = np.ones(10_000_000)                              # 80 MB, freed inside
        del x
    assert pa.default_memory_pool().backend_name == before
