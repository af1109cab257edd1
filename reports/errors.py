"""Error type of the reports stage."""
from sampling.errors import TpaError


class ReportError(TpaError):
    code = "report"
