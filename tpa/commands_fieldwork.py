"""CLI verbs of the fieldwork-simulation part. Heavy libraries are imported inside the commands to keep start-up fast."""
from __future__ import annotations

import click  # noqa: F401


def register(cli: click.Group) -> None:
    """Add this part's verbs to the main group."""
