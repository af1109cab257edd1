"""What every questionnaire reader hands the importer: a ``Source``.

A source has a main table, read in chunks of bounded size (``iter_main``), and zero or more repeat tables (the
household roster of an ODK/Kobo or Survey Solutions export, the members sheet of a workbook), read whole because
they are linked to main rows by a parent key. Every frame carries ``_row``: the row number as the user sees it
(header row = 1, first data row = 2; for a ZIP, per inner file) and ``_sheet`` is given by the table name.

Values are raw: text for CSV, the cell values of a workbook, typed values of SAV/DTA. Typing is the validator's
job (survey.validate). A reader's only duties are to read every row, keep row numbers, keep missing values
missing, and fail with an ImportFileError that names the file, the row and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..errors import ImportFileError

# A cell longer than this is not questionnaire data (a whole file pasted in a cell, a binary column, ...).
MAX_CELL_CHARS = 4000
DEFAULT_CHUNK_ROWS = 100_000
# Columns the importer adds; never a questionnaire variable.
ROW = "_row"
LINK = "_link"          # main table: the id repeat rows point to (ODK KEY, Survey Solutions interview__id)
PARENT = "_parent"      # repeat table: the main row it belongs to
USER_MISSING = "_user_missing"   # JSON {variable: code} of user-defined missing values (SAV/DTA)


@dataclass
class Source:
    """A questionnaire file opened for import. Subclasses implement ``_main_chunks`` and may fill ``repeats``."""
    path: Path
    format: str
    encoding: str | None = None
    main_name: str = "main"
    columns: list[str] = field(default_factory=list)          # main table columns (as they will appear)
    head_rows: list[list] = field(default_factory=list)       # the first data rows (for header checks)
    value_labels: dict = field(default_factory=dict)          # {variable: {code: label}} (SAV/DTA)
    user_missing: dict = field(default_factory=dict)          # {variable: [codes or ranges]} (SAV/DTA)
    warnings: list[str] = field(default_factory=list)
    repeat_tables: dict = field(default_factory=dict)         # name -> DataFrame (whole)
    repeat_files: dict = field(default_factory=dict)          # name -> inner file / sheet name
    n_rows_hint: int | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def iter_main(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The main table in chunks, each with ``_row``; checks every chunk for over-long cells."""
        for chunk in self._main_chunks(chunk_rows):
            check_long_cells(chunk, self.path, self.main_name)
            yield chunk

    def chunk_refs(self, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        """The main table as chunks any process can load (``ref.load()`` gives what ``iter_main`` would), for
        formats whose chunks can be read out of order (see readers.stat): a list when they are known in advance
        (each names its rows), else an iterator; None: read the table in order, here (``iter_main``)."""
        return None

    def _main_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def repeats(self) -> dict[str, pd.DataFrame]:
        for name, frame in self.repeat_tables.items():
            check_long_cells(frame, self.path, self.repeat_files.get(name, name))
        return self.repeat_tables

    def close(self) -> None:
        pass


def check_long_cells(frame: pd.DataFrame, path, table: str, limit: int = MAX_CELL_CHARS) -> None:
    """Reject a table holding a cell longer than ``limit`` characters (vectorised per text column)."""
    for col in frame.columns:
        s = frame[col]
        if s.dtype.kind in "biufcmM":
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            continue
        pa_arr = getattr(s.array, "_pa_array", None)
        if pa_arr is not None and pa_arr.num_chunks:
            import pyarrow.compute as pc
            # no more bytes than the limit: no more characters either (counting characters cost 10x more)
            longest = pc.max(pc.binary_length(pa_arr)).as_py()
            if longest is None or longest <= limit:
                continue
        try:
            lengths = s.str.len()
        except (AttributeError, TypeError):
            lengths = s.map(lambda v: len(v) if isinstance(v, str) else 0)
        lengths = pd.to_numeric(lengths, errors="coerce").fillna(0).to_numpy()
        if len(lengths) and lengths.max() > limit:
            pos = int(np.argmax(lengths > limit))
            row = frame[ROW].iloc[pos] if ROW in frame.columns else None
            raise ImportFileError(
                f"column {col!r} holds a value of {int(lengths[pos]):,} characters (limit {limit:,}); "
                "this is not questionnaire data", code="cell_too_long", file=path, row=_int(row), column=str(col),
                fix=f"check the export of this column (表 {table}): a whole text or a binary field was written "
                    f"into one cell; remove the column or shorten the values to at most {limit:,} characters")


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def clean_header(names) -> list[str]:
    return [str(c).strip() if c is not None else "" for c in names]


def check_header(names, path, table: str = "main") -> list[str]:
    """Column names: non-empty, unique. Raises ImportFileError naming the column."""
    names = clean_header(names)
    while names and names[-1] == "":
        names.pop()
    names = [n if n else f"column_{i + 1}" for i, n in enumerate(names)]
    if not names or all(n == "" for n in names):
        raise ImportFileError("the file has no header row (no column names)", code="empty_file", file=path,
                              fix="the first row must hold the variable names (see `tpa codebook show`)")
    seen = {}
    for i, n in enumerate(names):
        if n in seen and n != "":
            raise ImportFileError(f"column name {n!r} appears twice (columns {seen[n] + 1} and {i + 1})",
                                  code="duplicate_column", file=path, column=n,
                                  fix=f"rename or delete one of the two {n!r} columns in table {table}")
        seen[n] = i
    return names


def add_rows(frame: pd.DataFrame, first: int) -> pd.DataFrame:
    """Insert the ``_row`` column: first data row number, then consecutive."""
    frame.insert(0, ROW, np.arange(first, first + len(frame), dtype="int64"))
    return frame
