"""Shared pieces of the CLI: the workspace option, JSON output, progress bars."""
from __future__ import annotations

import json
import sys

import click

workspace_option = click.option(
    "--workspace", "-w", "workspace", default=".", show_default=True,
    type=click.Path(file_okay=False), help="Assessment workspace folder (created by `tpa init`).")

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on standard output and nothing else.")


def open_workspace(path):
    from sampling.workspace import Workspace

    return Workspace.open(path)


def emit_json(obj) -> None:
    """With --json, stdout carries the document and nothing else."""
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value):
    import numpy as np

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)


def info(message: str) -> None:
    """Messages for the user go to stderr so that stdout stays clean for --json."""
    click.echo(message, err=True)


def progress(iterable=None, *, total=None, desc=None, unit="it"):
    """A progress bar on stderr, shown only when stderr is a terminal."""
    from tqdm import tqdm

    # no monitor thread: an import forks its worker processes, and forking a process with threads is unsafe
    tqdm.monitor_interval = 0

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)
