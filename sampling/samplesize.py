"""Sample size from a precision target for a proportion (样本量计算, SPEC §5).

Steps, each kept in the result so that a design report can show them:

1. n_srs = z²·p(1 − p)/e², z the two-sided normal quantile of ``level`` (Cochran 1977, *Sampling
   Techniques*, 3rd ed., §4.4, eq. 4.2);
2. n0 = n_srs × deff (Kish 1965, *Survey Sampling*, §8.2: the design effect of the cluster design);
3. finite-population correction n_fpc = n0 / (1 + (n0 − 1)/N) (Cochran 1977, §4.4, eq. 4.3: the form that
   follows from V = (1 − n/N)·S²/n with S² = N·p(1 − p)/(N − 1); the simpler n0/(1 + n0/N) is its
   large-N approximation and is *not* used here);
4. n_resp = n_fpc / response_rate (inflation for expected non-response);
5. n = ⌈n_resp⌉, and never more than N when N is given (then ``capped_at_population`` is True: even the whole
   population will not give the target precision at that response rate).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from statistics import NormalDist

from .errors import check_arg

__all__ = ["SampleSize", "sample_size"]


@dataclass(frozen=True)
class SampleSize:
    """Result of ``sample_size``: the final ``n`` and every intermediate step."""

    n: int                      # final sample size to draw (ceiling)
    margin: float               # e, half-width of the interval on the proportion scale
    p: float                    # anticipated proportion
    level: float                # confidence level
    z: float                    # two-sided normal quantile of level
    n_srs: float                # z²p(1−p)/e², simple random sampling, infinite population
    deff: float
    n0: float                   # n_srs × deff
    population: int | None      # N for the finite-population correction (None: none applied)
    n_fpc: float                # after the finite-population correction (= n0 without N)
    response_rate: float
    n_response: float           # n_fpc / response_rate, before rounding up
    capped_at_population: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _number(value, name: str) -> float:
    check_arg(isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value), name,
              f"must be a finite number, got {value!r}")
    return float(value)


def sample_size(margin, *, p=0.5, level=0.95, deff=1.0, response_rate=1.0, population=None) -> SampleSize:
    """Households (or persons) to sample so that a proportion p is estimated within ±``margin`` at ``level``.

    ``margin``: absolute margin of error on the proportion scale (0.03 = ±3 percentage points), 0 < e < 1.
    ``p``: anticipated proportion, 0 < p < 1 (0.5 is the conservative choice). ``level``: confidence level.
    ``deff``: design effect (> 0). ``response_rate``: expected share of sampled units interviewed (0, 1].
    ``population``: N for the finite-population correction, or None.

    Example: ``sample_size(0.03).n`` is 1068 (1.959964² × 0.25 / 0.03² = 1067.07, rounded up).
    """
    e = _number(margin, "margin")
    check_arg(0 < e < 1, "margin", f"must be between 0 and 1 (a proportion: 0.03 = ±3 points), got {e}")
    p = _number(p, "p")
    check_arg(0 < p < 1, "p", f"must be strictly between 0 and 1, got {p}")
    level = _number(level, "level")
    check_arg(0 < level < 1, "level", f"must be strictly between 0 and 1 (0.95 for 95%), got {level}")
    deff = _number(deff, "deff")
    check_arg(deff > 0, "deff", f"must be > 0, got {deff}")
    rr = _number(response_rate, "response_rate")
    check_arg(0 < rr <= 1, "response_rate", f"must be in (0, 1], got {rr}")
    N = None
    if population is not None:
        ok = isinstance(population, numbers.Real) and not isinstance(population, bool) \
            and math.isfinite(population) and float(population).is_integer() and population >= 1
        check_arg(ok, "population", f"must be a whole number >= 1 (or None), got {population!r}")
        N = int(population)

    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    n_srs = z * z * p * (1 - p) / (e * e)
    n0 = n_srs * deff
    n_fpc = n0 / (1 + (n0 - 1) / N) if N is not None else n0
    n_response = n_fpc / rr
    # 1e-9 absorbs rounding noise so that an exact 400.0000000001 is not pushed up to 401.
    n = math.ceil(n_response - 1e-9)
    capped = N is not None and n > N
    if capped:
        n = N
    return SampleSize(n=n, margin=e, p=p, level=level, z=z, n_srs=n_srs, deff=deff, n0=n0, population=N,
                      n_fpc=n_fpc, response_rate=rr, n_response=n_response, capped_at_population=capped)
