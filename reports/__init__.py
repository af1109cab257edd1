"""Reports stage: indicators → templates → PDF (SPEC §7, §8)."""
from .errors import ReportError  # noqa: F401
