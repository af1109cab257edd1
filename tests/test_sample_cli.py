"""`tpa sample ...`: presets, design check, draw, summary, verify, seal; errors print one line and exit 2."""
import json

import pytest

from samplehelp import small_frames
from tpa.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    v, h = small_frames(n_county=2, n_vill=6)
    v.to_csv(root / "villages.csv", index=False)
    h.to_parquet(root / "households.parquet")
    assert main(["init", str(root / "ws")]) == 0
    return root


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_presets_and_design(capsys):
    code, out, _ = run(capsys, "sample", "presets", "--json")
    assert code == 0
    names = {r["name"] for r in json.loads(out)}
    assert {"exit_check", "annual", "local_20pct", "local_50plus10", "local_4or6_villages"} <= names
    code, out, _ = run(capsys, "sample", "design", "exit_check")
    assert code == 0 and "remote_poor" in out and "valid" in out


def test_draw_summary_verify_seal(capsys, setup):
    ws = str(setup / "ws")
    code, out, err = run(capsys, "sample", "draw", "-w", ws, "--design", "exit_check", "--seed", "7",
                         "--villages", str(setup / "villages.csv"), "--households",
                         str(setup / "households.parquet"), "--json")
    assert code == 0, err
    rec = json.loads(out)                                     # stdout holds the JSON document only
    assert rec["seed"] == 7 and rec["summary"]["counts"]["counties"] == 2
    code, out, _ = run(capsys, "sample", "summary", "-w", ws)
    assert code == 0 and rec["draw_id"] in out and "π" in out
    code, out, _ = run(capsys, "sample", "verify", "-w", ws)
    assert code == 0 and "verified" in out
    code, out, err = run(capsys, "sample", "seal", "-w", ws)
    assert code == 0
    seal = out.split()[-1]
    assert len(seal) == 64
    code, out, _ = run(capsys, "sample", "verify", "-w", ws, "--seal", seal)
    assert code == 0 and "verified" in out
    code, out, err = run(capsys, "sample", "verify", "-w", ws, "--seal", "f" * 64)
    assert code == 2 and "NOT verified" in out and "did not verify (seal)" in err
    archive = f"{ws}/samples/{rec['draw_id']}/sealed/full_lists.zip"
    code, out, _ = run(capsys, "sample", "verify", "--seal", seal, "--archive", archive, "--json")
    assert code == 0 and json.loads(out)["ok"]
    code, out, _ = run(capsys, "sample", "summary", "-w", ws, "--all", "--json")
    assert [d["draw_id"] for d in json.loads(out)] == [rec["draw_id"]]


def test_user_errors_exit_2_with_one_line(capsys, setup):
    ws = str(setup / "ws")
    code, out, err = run(capsys, "sample", "draw", "-w", ws, "--design", "exitcheck", "--seed", "1",
                         "--villages", str(setup / "villages.csv"), "--households", str(setup / "households.parquet"))
    assert code == 2 and err.strip().splitlines()[-1].startswith("error:") and "exit_check" in err
    bad = setup / "bad.toml"
    bad.write_text("[county]\nmethod = \"take_all\"\n[village]\nmethod = \"pps\"\n[household]\n", encoding="utf-8")
    code, _, err = run(capsys, "sample", "design", str(bad))
    assert code == 2 and "village.method" in err and "Fix:" in err
    code, _, err = run(capsys, "sample", "draw", "-w", ws, "--design", "exit_check", "--seed", "1")
    assert code == 2 and "no villages frame" in err
    code, _, err = run(capsys, "sample", "draw", "-w", ws, "--design", "exit_check", "--seed", "1",
                       "--villages", str(setup / "villages.csv"), "--households", "synthetic:x")
    assert code == 2 and "synthetic:SEED" in err
