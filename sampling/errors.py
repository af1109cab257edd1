"""Error types of the sampling stage, and the base every stage's errors derive from.

Every error meant for a user carries a machine-readable ``code``, a message that says what is wrong,
where (file, row, column) and how to fix it. The CLI prints ``str(error)`` and exits non-zero; it never
prints a traceback for a ``TpaError``.
"""
from __future__ import annotations


class TpaError(Exception):
    """Base of all user-facing errors of the toolkit."""

    code = "tpa_error"
    exit_code = 2

    def __init__(self, message: str, *, code: str | None = None, file=None, row=None,
                 column=None, fix: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.fix = fix

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(f"file {self.file}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        text = self.message
        where = self.where()
        if where:
            text += f" ({where})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "file": self.file, "row": self.row,
                "column": self.column, "fix": self.fix}

    def __reduce__(self):
        # the fields are keyword-only: rebuilt by name, so an error raised in a worker process reaches the
        # caller whole (default pickling would call the class with the message alone and lose the rest)
        d = self.to_dict()
        return (_rebuild, (type(self), d.pop("message"), d))


def _rebuild(cls, message: str, fields: dict) -> TpaError:
    return cls(message, **fields)


class WorkspaceError(TpaError):
    code = "workspace"


class ConfigError(TpaError):
    code = "config"


class SamplingError(TpaError):
    code = "sampling"


class FrameError(SamplingError):
    code = "frame"


class DesignError(SamplingError):
    code = "design"


def check_arg(condition: bool, argument: str, message: str, *, error=SamplingError) -> None:
    """Validate an argument at the door, naming it (scikit-learn style)."""
    if not condition:
        raise error(f"argument {argument!r}: {message}", code="bad_argument")
