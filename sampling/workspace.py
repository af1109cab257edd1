"""The assessment workspace: a folder with the configuration and the embedded database later stages fill.

Layout of a workspace ``DIR``::

    DIR/assessment.toml   configuration (copied from the shipped defaults by ``tpa init``)
    DIR/tpa.sqlite        the database (SQLite, WAL mode so several processes can import at once)
    DIR/frames/           frames written or checked for this assessment
    DIR/samples/          field lists of each draw
    DIR/imports/          validation reports of each imported file
    DIR/reports/          PDF reports and XLSX tables

Each stage creates its own tables (``CREATE TABLE IF NOT EXISTS``) inside ``Workspace.transaction()``.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import sqlite3
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import ConfigError, WorkspaceError

CONFIG_NAME = "assessment.toml"
DB_NAME = "tpa.sqlite"
SUBDIRS = ("frames", "samples", "imports", "reports")
REGIMES = ("A", "B", "C")
LINE_SERIES = ("planning", "nbs")


def default_config_text() -> str:
    return resources.files("sampling").joinpath("data/assessment.toml").read_text(encoding="utf-8")


def default_config() -> dict:
    return tomllib.loads(default_config_text())


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path) -> dict:
    """Read a configuration file, filling keys it leaves out from the shipped defaults."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no configuration file {path}", file=path,
                          fix="run `tpa init DIR` to create a workspace, or pass --workspace") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the configuration is not valid TOML: {exc}", file=path,
                          fix="correct the syntax at the line named") from None
    config = _merge(default_config(), data)
    validate_config(config, path)
    return config


def validate_config(config: dict, path=None) -> None:
    a = config.get("assessment", {})
    if a.get("regime") not in REGIMES:
        raise ConfigError(f"assessment.regime must be one of {', '.join(REGIMES)}, not {a.get('regime')!r}",
                          file=path, column="assessment.regime", fix='set regime = "B" for the county exit check')
    if not isinstance(a.get("year"), int) or not 2010 <= a["year"] <= 2030:
        raise ConfigError(f"assessment.year must be a year between 2010 and 2030, not {a.get('year')!r}",
                          file=path, column="assessment.year", fix="set year = 2019 (the assessed year)")
    series = config.get("poverty_line", {}).get("series")
    if series not in LINE_SERIES:
        raise ConfigError(f"poverty_line.series must be one of {', '.join(LINE_SERIES)}, not {series!r}",
                          file=path, column="poverty_line.series", fix='set series = "planning" or "nbs"')


def config_hash(config: dict) -> str:
    """A stable hash of a configuration, stored with every result computed under it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass
class Workspace:
    path: Path
    config: dict = field(repr=False)

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    def dir(self, name: str) -> Path:
        d = self.path / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @classmethod
    def open(cls, path: str | Path = ".") -> "Workspace":
        path = Path(path)
        if not (path / CONFIG_NAME).is_file():
            raise WorkspaceError(f"{path} is not a tpa workspace (no {CONFIG_NAME})", file=path,
                                 fix=f"run `tpa init {path}` first, or pass --workspace DIR")
        return cls(path=path, config=load_config(path / CONFIG_NAME))

    def connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
        # 64 KB pages (takes effect when the database is created): the questionnaire store keeps its rows as
        # blobs of megabytes, and 4 KB pages wrote them in 100k system calls per million rows
        con.execute("PRAGMA page_size=65536")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=60000")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    @contextlib.contextmanager
    def transaction(self):
        """One atomic write: everything inside is committed together or not at all."""
        con = self.connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    def read_sql(self, sql: str, params=()):
        import pandas as pd

        con = self.connect()
        try:
            return pd.read_sql_query(sql, con, params=params)
        finally:
            con.close()

    def table_exists(self, name: str) -> bool:
        con = self.connect()
        try:
            return con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                               (name,)).fetchone() is not None
        finally:
            con.close()


def init_workspace(path: str | Path, *, year: int = 2019, regime: str = "B", provinces=(),
                   line_series: str = "planning", name: str | None = None, force: bool = False) -> Workspace:
    """Create a workspace folder with its configuration and an empty database."""
    path = Path(path)
    if (path / CONFIG_NAME).exists() and not force:
        raise WorkspaceError(f"{path} already holds a workspace", file=path / CONFIG_NAME,
                             fix="choose another folder, or open the existing one with --workspace")
    if regime not in REGIMES:
        raise WorkspaceError(f"unknown regime {regime!r}", fix="use A (annual), B (county exit) or C (provincial)")
    if line_series not in LINE_SERIES:
        raise WorkspaceError(f"unknown poverty-line series {line_series!r}", fix="use planning or nbs")
    from .geography import resolve_provinces  # province names → codes

    codes = resolve_provinces(provinces)
    text = default_config_text()
    text = re.sub(r"(?m)^year = \d+", f"year = {int(year)}", text, count=1)
    text = re.sub(r'(?m)^regime = "[ABC]"', f'regime = "{regime}"', text, count=1)
    text = re.sub(r"(?m)^provinces = \[\]", "provinces = " + json.dumps(codes), text, count=1)
    text = re.sub(r'(?m)^series = "planning"', f'series = "{line_series}"', text, count=1)
    if name:
        text = re.sub(r'(?m)^name = ".*"', "name = " + json.dumps(name, ensure_ascii=False), text, count=1)
    path.mkdir(parents=True, exist_ok=True)
    for sub in SUBDIRS:
        (path / sub).mkdir(exist_ok=True)
    tmp = path / (CONFIG_NAME + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path / CONFIG_NAME)
    ws = Workspace.open(path)
    with ws.transaction() as con:
        con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        from .version import software_version
        con.execute("INSERT OR REPLACE INTO meta VALUES ('created_by', ?)", (software_version(),))
    return ws
