"""`tpa init` creates a workspace whose configuration later stages read."""
import subprocess
import sys

import pytest

from sampling.errors import ConfigError, WorkspaceError
from sampling.workspace import Workspace, init_workspace, load_config


def test_init_writes_configuration_with_given_values(tmp_path):
    ws = init_workspace(tmp_path / "ws", year=2018, regime="A", provinces=["贵州", "410000"], line_series="nbs")
    again = Workspace.open(tmp_path / "ws")
    assert again.config["assessment"]["year"] == 2018
    assert again.config["assessment"]["regime"] == "A"
    assert again.config["assessment"]["provinces"] == ["410000", "520000"]
    assert again.config["poverty_line"]["series"] == "nbs"
    assert ws.db_path.exists()
    for sub in ("frames", "samples", "imports", "reports"):
        assert (tmp_path / "ws" / sub).is_dir()


def test_init_refuses_to_overwrite(tmp_path):
    init_workspace(tmp_path)
    with pytest.raises(WorkspaceError, match="already holds a workspace"):
        init_workspace(tmp_path)


def test_unknown_province_is_named(tmp_path):
    with pytest.raises(Exception, match="unknown province '火星'"):
        init_workspace(tmp_path, provinces=["火星"])


def test_partial_config_takes_defaults_and_bad_values_are_named(tmp_path):
    path = tmp_path / "assessment.toml"
    path.write_text('[assessment]\nyear = 2020\nregime = "B"\n', encoding="utf-8")
    config = load_config(path)
    assert config["poverty_line"]["planning"]["2020"] == 3972
    path.write_text('[assessment]\nyear = 2020\nregime = "X"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="assessment.regime"):
        load_config(path)


def test_transaction_rolls_back_on_error(tmp_path):
    ws = init_workspace(tmp_path)
    with ws.transaction() as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError):
        with ws.transaction() as con:
            con.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    assert ws.read_sql("SELECT COUNT(*) AS n FROM t")["n"][0] == 0


def test_cli_user_error_is_one_line_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tpa.cli", "init", str(tmp_path), "--province", "火星"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("error: unknown province")
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_an_error_raised_in_a_worker_process_reaches_the_caller_whole():
    """Errors cross process boundaries by pickling: every field a user reads (where, what to do) survives."""
    import pickle

    from survey.errors import ImportFileError
    err = ImportFileError("值不对", code="cell_too_long", file="队1.sav", row=7, column="address", fix="删掉该列")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ImportFileError and back.to_dict() == err.to_dict() and str(back) == str(err)
