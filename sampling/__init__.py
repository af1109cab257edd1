"""Sampling stage: frames → designs → samples (SPEC §3, §5).

Public core for statisticians: ``inclusion_probabilities(sizes, n)`` and ``select_pps(sizes, n, method, seed)``.
"""
from .errors import DesignError, FrameError, SamplingError, TpaError  # noqa: F401


def __getattr__(name):
    # Lazy so that `import sampling` stays fast for the CLI and never pulls pandas by itself.
    if name in ("inclusion_probabilities", "select_pps"):
        from . import probabilities, select
        return getattr(probabilities, name, None) or getattr(select, name)
    raise AttributeError(name)
