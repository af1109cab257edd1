"""Interval formulas: independent checks (statsmodels, closed forms) and the edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from survey import intervals as iv
from survey.errors import EstimationError


def test_t_and_normal_intervals():
    lo, hi, notes = iv.t_interval([10.0], [2.0], [7], 0.95)
    q = stats.t.ppf(0.975, 7)
    assert (lo[0], hi[0]) == pytest.approx((10 - q * 2, 10 + q * 2), rel=1e-14)
    lo, hi, _ = iv.t_interval([10.0], [2.0], [7], 0.90, normal=True)
    assert hi[0] == pytest.approx(10 + 1.6448536269514722 * 2, rel=1e-12)


def test_wilson_with_normal_quantile_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    p, v = 0.3, 0.0009
    neff = p * (1 - p) / v
    lo, hi, _ = iv.prop_interval([p], [v], [np.inf], [500], "wilson", 0.95)
    a, b = proportion_confint(p * neff, neff, alpha=0.05, method="wilson")
    assert (lo[0], hi[0]) == pytest.approx((a, b), rel=1e-10)


def test_logit_by_hand():
    p, v, df = 0.2, 0.0004, 30
    lo, hi, _ = iv.prop_interval([p], [v], [df], [400], "logit", 0.95)
    h = stats.t.ppf(0.975, df) * np.sqrt(v) / (p * (1 - p))
    L = np.log(p / (1 - p))
    assert lo[0] == pytest.approx(1 / (1 + np.exp(-(L - h))), rel=1e-12)
    assert hi[0] == pytest.approx(1 / (1 + np.exp(-(L + h))), rel=1e-12)


def test_korn_graubard_by_hand():
    p, v, df, n = 0.1, 0.0003, 24, 300
    lo, hi, _ = iv.prop_interval([p], [v], [df], [n], "clopper-pearson", 0.95)
    neff = p * (1 - p) / v * (stats.t.ppf(0.025, n - 1) / stats.t.ppf(0.025, df)) ** 2
    assert lo[0] == pytest.approx(stats.beta.ppf(0.025, neff * p, neff * (1 - p) + 1), rel=1e-12)
    assert hi[0] == pytest.approx(stats.beta.ppf(0.975, neff * p + 1, neff * (1 - p)), rel=1e-12)


@pytest.mark.parametrize("n", [1, 37, 400])
def test_boundary_zero(n):
    lo, hi, notes = iv.prop_interval([0.0], [0.0], [10], [n], "clopper-pearson", 0.95)
    assert lo[0] == 0 and hi[0] == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-12) and notes[0]
    lo, hi, notes = iv.prop_interval([0.0], [0.0], [10], [n], "wilson", 0.95)
    z2 = stats.t.ppf(0.975, 10) ** 2
    assert lo[0] == 0 and hi[0] == pytest.approx(z2 / (n + z2), rel=1e-12)
    lo, hi, notes = iv.prop_interval([1.0], [0.0], [10], [n], "clopper-pearson", 0.95)
    assert hi[0] == 1 and lo[0] == pytest.approx(0.025 ** (1 / n), rel=1e-12)
    for m in ("logit", "wald"):
        lo, hi, notes = iv.prop_interval([0.0], [0.0], [10], [n], m, 0.95)
        assert lo[0] == hi[0] == 0 and "clopper-pearson" in notes[0]


def test_df_zero_and_zero_variance():
    for m in iv.PROP_METHODS:
        lo, hi, notes = iv.prop_interval([0.4], [0.01], [0], [20], m, 0.95)
        assert (lo[0], hi[0]) == (0.0, 1.0) and "df = 0" in notes[0]
        lo, hi, notes = iv.prop_interval([0.4], [0.0], [5], [20], m, 0.95)
        assert lo[0] == hi[0] == 0.4 and notes[0]
    lo, hi, notes = iv.t_interval([3.0], [1.0], [0])
    assert lo[0] == -np.inf and hi[0] == np.inf and notes[0]
    lo, hi, notes = iv.t_interval([3.0], [1.0], [0], normal=True)
    assert np.isfinite(lo[0]) and notes[0] is None


def test_arguments_checked():
    with pytest.raises(EstimationError, match="level"):
        iv.check_level(95)
    with pytest.raises(EstimationError, match="wilson"):
        iv.normalise_method("exact")
    assert iv.normalise_method("beta") == "clopper-pearson"
