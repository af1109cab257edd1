"""Sample size from a precision target; expected values computed in R (qnorm, plain arithmetic)."""
import pytest

from sampling.errors import SamplingError
from sampling.samplesize import SampleSize, sample_size


def test_classic_three_points_at_95_percent():
    # R: qnorm(0.975) = 1.95996398454005; z²·0.25/0.03² = 1067.07189464 → 1068
    s = sample_size(0.03)
    assert isinstance(s, SampleSize)
    assert s.z == pytest.approx(1.95996398454005, rel=1e-12)
    assert s.n_srs == pytest.approx(1067.07189464, rel=1e-10)
    assert s.n0 == s.n_srs and s.n_fpc == s.n0 and s.n_response == s.n0
    assert s.n == 1068 and not s.capped_at_population


def test_finite_population_correction_cochran_form():
    # R: n0/(1 + (n0 − 1)/5000) = 879.54108785 → 880 (the form n0/(1 + n0/N) would give 879.40)
    s = sample_size(0.03, population=5000)
    assert s.n_fpc == pytest.approx(879.54108785, rel=1e-10)
    assert s.n == 880


def test_deff_and_response_inflation():
    # R: 1067.07189464 × 2 / 0.8 = 2667.67973659 → 2668
    s = sample_size(0.03, deff=2, response_rate=0.8)
    assert s.n0 == pytest.approx(2134.14378928, rel=1e-10)
    assert s.n_response == pytest.approx(2667.67973659, rel=1e-10)
    assert s.n == 2668


def test_all_steps_together():
    # R: qnorm(0.95)²·0.2·0.8/0.05²·1.5 = 259.732171593; fpc N=400 → 157.71640299; /0.9 → 175.240447766 → 176
    s = sample_size(0.05, p=0.2, level=0.90, deff=1.5, response_rate=0.9, population=400)
    assert s.n0 == pytest.approx(259.732171593, rel=1e-10)
    assert s.n_fpc == pytest.approx(157.71640299, rel=1e-10)
    assert s.n_response == pytest.approx(175.240447766, rel=1e-10)
    assert s.n == 176
    assert s.to_dict()["population"] == 400


def test_exact_integer_is_not_rounded_up():
    # e = z/20 makes n_srs = z²·0.25·400/z² = 100 up to floating-point noise: must give 100, not 101
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.975)
    assert sample_size(z / 20).n == 100


def test_never_more_than_the_population():
    s = sample_size(0.01, population=300, response_rate=0.5)
    assert s.n == 300 and s.capped_at_population


@pytest.mark.parametrize("kwargs, argument", [
    (dict(margin=0), "margin"), (dict(margin=3), "margin"), (dict(margin="0.03"), "margin"),
    (dict(margin=0.03, p=0), "p"), (dict(margin=0.03, p=1.2), "p"),
    (dict(margin=0.03, level=95), "level"), (dict(margin=0.03, deff=0), "deff"),
    (dict(margin=0.03, response_rate=0), "response_rate"), (dict(margin=0.03, response_rate=1.1), "response_rate"),
    (dict(margin=0.03, population=0), "population"), (dict(margin=0.03, population=10.5), "population"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(SamplingError, match=f"'{argument}'"):
        sample_size(**kwargs)
