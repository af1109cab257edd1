"""`tpa import`: the reconciliation per file, --json on stdout only, one line and exit 2 for a bad file, no
traceback, and the store exactly as before."""
import json
import subprocess
import sys

import pandas as pd
import pyreadstat
import pytest
from _survey_fixtures import households

from sampling.workspace import init_workspace
from survey import store
from survey.readers import ROW
from tpa.cli import main as tpa_main


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws")


def _good(tmp_path, n=3, name="hh.csv"):
    main, _ = households(n)
    p = tmp_path / name
    main.drop(columns=ROW).to_csv(p, index=False, encoding="utf-8-sig")
    return p


def test_import_prints_reconciliation_and_report(ws, tmp_path, capsys):
    p = _good(tmp_path)
    assert tpa_main(["import", str(p), "--workspace", str(ws.path)]) == 0
    out = capsys.readouterr().out
    assert "rows in 3 = accepted 3 + quarantined 0 + duplicates skipped 0" in out
    assert "hh.validation.xlsx" in out
    assert "no sample draw" in out


def test_import_json_is_a_list_on_stdout_only(ws, tmp_path, capsys):
    p = _good(tmp_path)
    assert tpa_main(["import", str(p), "--workspace", str(ws.path), "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert isinstance(doc, list) and len(doc) == 1
    d = doc[0]
    for k in ("file", "sha256", "rows_in", "accepted", "quarantined", "duplicates_skipped", "errors", "warnings"):
        assert k in d
    assert d["rows_in"] == d["accepted"] + d["quarantined"] + d["duplicates_skipped"] == 3
    assert d["status"] == "imported" and d["file"] == "hh.csv"
    # again: unchanged
    assert tpa_main(["import", str(p), "--workspace", str(ws.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "unchanged"


def test_import_status(ws, tmp_path, capsys):
    tpa_main(["import", str(_good(tmp_path)), "--workspace", str(ws.path)])
    capsys.readouterr()
    assert tpa_main(["import", "status", "--workspace", str(ws.path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["level"] for r in rows} == {"village", "county"}
    assert [r["interviewed"] for r in rows if r["level"] == "village"] == [3]
    assert tpa_main(["import", "status", "--workspace", str(ws.path)]) == 0
    assert "520102" in capsys.readouterr().out


def _bad(tmp_path, case):
    main, _ = households(2)
    main = main.drop(columns=ROW)
    if case == "corrupt_sav":
        p = tmp_path / "bad.sav"
        pyreadstat.write_sav(main[["household_id", "head_name"]], str(p))
        data = bytearray(p.read_bytes())
        p.write_bytes(bytes(data[:len(data) // 2]))
    elif case == "garbage_sav":
        p = tmp_path / "bad.sav"
        p.write_bytes(b"$FL2" + b"\x07" * 300)
    elif case == "empty_csv":
        p = tmp_path / "bad.csv"
        p.write_bytes(b"")
    elif case == "wrong_encoding":
        p = tmp_path / "bad.csv"
        main.to_csv(p, index=False, encoding="gbk")
        return p, ["--encoding", "utf-8"]
    elif case == "wrong_instrument":
        p = tmp_path / "bad.csv"
        main.to_csv(p, index=False)
        return p, ["--instrument", "village"]
    elif case == "long_strings":
        p = tmp_path / "bad.csv"
        main["head_name"] = "名" * 10_000
        main.to_csv(p, index=False)
    elif case == "extra_header_rows":
        p = tmp_path / "bad.xlsx"
        with pd.ExcelWriter(p) as xw:
            pd.DataFrame([["调查表"]]).to_excel(xw, index=False, header=False)
            main.to_excel(xw, index=False, startrow=1)
    return p, []


@pytest.mark.parametrize("case", ["corrupt_sav", "garbage_sav", "empty_csv", "wrong_encoding", "wrong_instrument",
                                  "long_strings", "extra_header_rows"])
def test_bad_input_one_line_exit_2_store_unchanged(ws, tmp_path, capsys, case):
    tpa_main(["import", str(_good(tmp_path, name="first.csv")), "--workspace", str(ws.path)])
    before = store.data_fingerprint(ws)
    capsys.readouterr()
    p, extra = _bad(tmp_path, case)
    code = tpa_main(["import", str(p), "--workspace", str(ws.path)] + extra)
    cap = capsys.readouterr()
    assert code == 2
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Fix:" in lines[0]
    assert "Traceback" not in cap.err + cap.out
    assert p.name in lines[0]
    assert store.data_fingerprint(ws) == before


def test_bad_input_in_a_real_process(ws, tmp_path):
    p, _ = _bad(tmp_path, "corrupt_sav")
    proc = subprocess.run([sys.executable, "-m", "tpa.cli", "import", str(p), "--workspace", str(ws.path), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc[0]["status"] == "rejected" and doc[0]["error"]["code"] == "corrupt_file"
    assert len(proc.stderr.strip().splitlines()) == 1


def test_several_files_one_rejected(ws, tmp_path, capsys):
    good = _good(tmp_path)
    bad, _ = _bad(tmp_path, "empty_csv")
    code = tpa_main(["import", str(good), str(bad), "--workspace", str(ws.path)])
    cap = capsys.readouterr()
    assert code == 2
    assert "rows in 3 = accepted 3" in cap.out
    assert "bad.csv" in cap.err and "1 of 2 files rejected" in cap.err
    assert len(store.read_households(ws)) == 3


def test_import_workers_option(ws, tmp_path, capsys):
    p = _good(tmp_path)
    assert tpa_main(["import", str(p), "--workspace", str(ws.path), "--workers", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["accepted"] == 3
    before = store.data_fingerprint(ws)
    assert tpa_main(["import", str(_good(tmp_path, name="b.csv")), "--workspace", str(ws.path),
                     "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "Traceback" not in err
    assert store.data_fingerprint(ws) == before
