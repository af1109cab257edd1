"""Exports that come as a ZIP of tables: ODK Central / Kobo (CSV) and Survey Solutions (tab or Stata).

ODK Central / Kobo: the main CSV (a ``KEY`` column, no ``PARENT_KEY``) and one CSV per repeat group
(``form-members.csv``) whose ``PARENT_KEY`` is the main row's ``KEY``. Group prefixes in column names
(``basic-household_id``, ``basic/household_id``) are removed. The repeat item number is taken from the row's KEY
(``uuid:…/members[3]``) when the group has no item-number column.

Survey Solutions: the questionnaire's main file and one file per roster (``members.tab`` or ``members.dta``),
linked by ``interview__id``; the roster item is ``members__id``. Its sentinels -999999999 (numeric) and
``##N/A##`` (text) are read as missing. Service files (interview__actions, interview__errors, …) are skipped.

Inner files are extracted to a private temporary folder, so the main table is still read in chunks.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..errors import ImportFileError
from .base import LINK, PARENT, ROW, Source
from .stat import StatSource
from .text import TextSource

SUSO_NUMERIC_MISSING = -999999999
SUSO_TEXT_MISSING = "##N/A##"
SUSO_SENTINELS = (str(SUSO_NUMERIC_MISSING), SUSO_TEXT_MISSING)
ITEM = "_item"   # repeat item number taken from the export's own keys
_SERVICE = re.compile(r"^(interview__|assignment__|export__)", re.I)
_ODK_INDEX = re.compile(r"\[(\d+)\]\s*$")


def _strip_group(name: str) -> str:
    """ODK Central writes group-path names with '-', Kobo with '/': keep the last part."""
    if name in ("KEY", "PARENT_KEY"):
        return name
    parts = re.split(r"[-/]", name)
    return parts[-1] if len(parts) > 1 and parts[-1] else name


def is_suso_members(names) -> bool:
    return any(_SERVICE.match(Path(n).name) for n in names) or any(
        Path(n).name.lower() == "export__readme.txt" for n in names)


class ArchiveSource(Source):
    def __init__(self, path: Path, *, encoding=None):
        super().__init__(path=Path(path), format="zip")
        self._tmp = tempfile.mkdtemp(prefix="tpa-import-")
        try:
            self._open(encoding)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    def _extract(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, i: int) -> Path:
        target = Path(self._tmp) / f"{i:03d}{Path(info.filename).suffix.lower()}"
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
            raise ImportFileError(f"the archive member {info.filename!r} is damaged ({exc})", code="corrupt_file",
                                  file=self.path, fix="download or export the archive again") from None
        return target

    def _open(self, encoding) -> None:
        if not zipfile.is_zipfile(self.path):
            raise ImportFileError("this is not a readable ZIP archive (damaged or truncated)", code="corrupt_file",
                                  file=self.path, fix="download or export the archive again")
        try:
            zf = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImportFileError(f"this ZIP archive is damaged ({exc})", code="corrupt_file", file=self.path,
                                  fix="download or export the archive again") from None
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir() and not Path(i.filename).name.startswith(".")
                     and "__MACOSX" not in i.filename]
            names = [i.filename for i in infos]
            suso = is_suso_members(names)
            tables = {}
            for n, info in enumerate(infos):
                base = Path(info.filename).name
                suffix = Path(base).suffix.lower()
                if suffix not in (".csv", ".tab", ".txt", ".dta"):
                    continue
                if suffix == ".txt" and not suso:
                    continue
                if _SERVICE.match(base):
                    continue
                local = self._extract(zf, info, n)
                label = f"{self.path.name}:{info.filename}"
                if suffix == ".dta":
                    src = StatSource(local, "dta", encoding=encoding, sentinels_numeric=[SUSO_NUMERIC_MISSING],
                                     sentinels_text=[SUSO_TEXT_MISSING])
                    src.path = local
                else:
                    sent = SUSO_SENTINELS if (suso or suffix == ".tab") else ()
                    if local.stat().st_size == 0:
                        continue
                    src = TextSource(local, encoding=encoding, main_name=base, label=label, sentinels=sent,
                                     fmt="tab" if suffix == ".tab" else "csv")
                tables[info.filename] = src
        if not tables:
            raise ImportFileError("the archive holds no data table (.csv, .tab or .dta)", code="empty_file",
                                  file=self.path, fix="export the data again as CSV (ODK Central/Kobo) or tab/Stata "
                                                      "(Survey Solutions) and import the ZIP as downloaded")
        if suso or any("interview__id" in t.columns for t in tables.values()):
            self.format = "survey_solutions"
            self._setup_suso(tables)
        else:
            self.format = "odk"
            self._setup_odk(tables)

    # ---------------------------------------------------------------------------------------------- ODK
    def _setup_odk(self, tables: dict) -> None:
        mains = [n for n, t in tables.items() if "PARENT_KEY" not in t.columns]
        if len(mains) != 1:
            which = ", ".join(mains) if mains else "none"
            raise ImportFileError(f"cannot tell the main table of this export: tables without PARENT_KEY: {which}",
                                  code="bad_archive", file=self.path,
                                  fix="import the ZIP exactly as ODK Central or Kobo produced it (main CSV plus "
                                      "one CSV per repeat group)")
        main_name = mains[0]
        main = tables[main_name]
        self._main = main
        self.main_name = Path(main_name).name
        self.encoding = main.encoding
        self._rename = {c: _strip_group(c) for c in main.columns}
        self.columns = [self._rename[c] for c in main.columns]
        self._link_col = "KEY" if "KEY" in main.columns else None
        self.head_rows = main.head_rows
        stem = Path(main_name).stem
        for name, t in tables.items():
            if name == main_name:
                continue
            rstem = Path(name).stem
            rname = rstem[len(stem) + 1:] if rstem.startswith(stem + "-") else rstem
            frame = t.read_all()
            frame.columns = [c if c == ROW else _strip_group(c) for c in frame.columns]
            frame[PARENT] = frame["PARENT_KEY"]
            if "KEY" in frame.columns:
                item = frame["KEY"].astype(str).str.extract(_ODK_INDEX, expand=False)
                frame[ITEM] = pd.to_numeric(item, errors="coerce").astype("Int64")
            self.repeat_tables[rname] = frame
            self.repeat_files[rname] = Path(name).name

    # -------------------------------------------------------------------------------------- Survey Solutions
    def _setup_suso(self, tables: dict) -> None:
        def roster_ids(t):
            return [c for c in t.columns if c.endswith("__id") and c not in ("interview__id", "assignment__id")]

        mains = [n for n, t in tables.items() if "interview__id" in t.columns and not roster_ids(t)]
        if len(mains) != 1:
            raise ImportFileError("cannot tell the questionnaire's main file in this Survey Solutions export "
                                  f"(candidates: {', '.join(mains) or 'none'})", code="bad_archive", file=self.path,
                                  fix="import the export ZIP as Survey Solutions produced it")
        main_name = mains[0]
        main = tables[main_name]
        self._main = main
        self.main_name = Path(main_name).name
        self.encoding = main.encoding
        self._rename = {c: c for c in main.columns}
        self.columns = list(main.columns)
        self._link_col = "interview__id"
        self.head_rows = main.head_rows
        for name, t in tables.items():
            if name == main_name:
                continue
            frame = t.read_all() if isinstance(t, TextSource) else pd.concat(list(t.iter_main(1 << 30)),
                                                                              ignore_index=True)
            ids = roster_ids(t)
            if "interview__id" not in frame.columns:
                self.warnings.append(f"{Path(name).name}: no interview__id column; table not imported")
                continue
            frame[PARENT] = frame["interview__id"]
            if ids:
                frame[ITEM] = pd.to_numeric(frame[ids[-1]], errors="coerce").astype("Int64")
            rname = Path(name).stem
            self.repeat_tables[rname] = frame
            self.repeat_files[rname] = Path(name).name

    def _main_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        for chunk in self._main.iter_main(chunk_rows):
            chunk = chunk.rename(columns=self._rename)
            if self._link_col and self._link_col in chunk.columns:
                chunk[LINK] = chunk[self._link_col]
            yield chunk

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
