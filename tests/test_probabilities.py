"""Inclusion probabilities against R `sampling::inclusionprobabilities` (fixtures made by
tests/fixtures/r_sampling/make_fixtures.R) and their defining properties."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sampling.errors import SamplingError
from sampling.probabilities import inclusion_probabilities
from sampling.select import select_pps_grouped

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "r_sampling" / "fixtures.json").read_text())
CASES = {c["name"]: c for c in FIXTURES["inclusion"]}


@pytest.mark.r
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_r_inclusionprobabilities(name):
    case = CASES[name]
    pik = inclusion_probabilities(case["sizes"], case["n"])
    np.testing.assert_allclose(pik, case["pik"], rtol=1e-6, atol=1e-12)


def test_lazy_package_export_is_the_same_function():
    import sampling

    assert sampling.inclusion_probabilities is inclusion_probabilities


def test_certainty_units_capped_and_rest_rescaled_by_hand():
    # 4·200/336 > 1 and 4·100/336 > 1: both certain; the other 8 units share 2 in proportion to size (sum 36).
    sizes = [1, 2, 3, 4, 100, 5, 6, 200, 7, 8]
    pik = inclusion_probabilities(sizes, 4)
    assert pik[4] == 1.0 and pik[7] == 1.0
    rest = np.array([1, 2, 3, 4, 5, 6, 7, 8]) * 2 / 36
    np.testing.assert_allclose(np.delete(pik, [4, 7]), rest, rtol=1e-12)


def test_zeros_stay_zero_and_n_equal_to_positive_count_takes_all():
    pik = inclusion_probabilities([0, 1, 2, 3, 0, 4], 4)
    np.testing.assert_array_equal(pik, [0, 1, 1, 1, 0, 1])


def test_accepts_integral_float_n_and_numpy_int():
    np.testing.assert_allclose(inclusion_probabilities([1, 1, 2], 2.0), [0.5, 0.5, 1.0])
    np.testing.assert_allclose(inclusion_probabilities(np.array([1, 1, 2]), np.int64(2)), [0.5, 0.5, 1.0])


@pytest.mark.parametrize("sizes, n, argument, words", [
    ([1, -2, 3], 1, "sizes", ">= 0"),
    ([1, np.nan, 3], 1, "sizes", "finite"),
    ([1, np.inf, 3], 1, "sizes", "finite"),
    ([[1, 2], [3, 4]], 1, "sizes", "one-dimensional"),
    (["a", "b"], 1, "sizes", "numbers"),
    ([1, 2, 3], 2.5, "n", "whole number"),
    ([1, 2, 3], -1, "n", ">= 0"),
    ([1, 0, 3], 3, "n", "positive size"),
    ([1, 2, 3], True, "n", "whole number"),
])
def test_bad_arguments_name_the_argument(sizes, n, argument, words):
    with pytest.raises(SamplingError) as info:
        inclusion_probabilities(sizes, n)
    assert f"'{argument}'" in str(info.value) and words in str(info.value)


@pytest.mark.r
def test_grouped_probabilities_match_r_within_each_group():
    fx = FIXTURES["grouped"]
    _, pi = select_pps_grouped(fx["groups"], fx["sizes"], fx["n"], seed=1)
    np.testing.assert_allclose(pi, fx["pik"], rtol=1e-6, atol=1e-12)


def test_grouped_probabilities_equal_ungrouped_per_group_in_shuffled_order():
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 40, 3000)
    sizes = np.round(rng.lognormal(0, 1.5, 3000), 1)
    n = {g: int(min(7, np.count_nonzero(sizes[groups == g] > 0))) for g in np.unique(groups)}
    _, pi = select_pps_grouped(groups, sizes, n, seed=0)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        np.testing.assert_allclose(pi[idx], inclusion_probabilities(sizes[idx], n[g]), rtol=1e-9, atol=1e-15)


# Sizes are counts or areas: zero, or between 1e-6 and 1e6 (denormal sizes would make the ratio check meaningless).
size_lists = st.lists(st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e6)), min_size=1, max_size=60)


@settings(max_examples=100, deadline=None)
@given(size_lists, st.data())
def test_properties_sum_bounds_and_monotone(sizes, data):
    sizes = np.array(sizes)
    positive = int(np.count_nonzero(sizes > 0))
    n = data.draw(st.integers(min_value=0, max_value=positive))
    pik = inclusion_probabilities(sizes, n)
    assert pik.shape == sizes.shape
    assert abs(pik.sum() - n) <= 1e-9 * max(n, 1)
    assert np.all(pik >= 0) and np.all(pik <= 1)
    assert np.all(pik[sizes == 0] == 0)
    order = np.argsort(sizes, kind="stable")
    assert np.all(np.diff(pik[order]) >= -1e-12)       # larger size never gets a smaller π
    if n:
        # units that are not certain have π proportional to size
        free = (pik < 1) & (sizes > 0)
        if free.sum() >= 2:
            ratio = pik[free] / sizes[free]
            np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
