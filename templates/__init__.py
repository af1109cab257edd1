"""Jinja templates and stylesheets of the leadership reports, shipped as package data."""
from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent
