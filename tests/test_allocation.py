"""Allocation across strata: hand-computed allocations, bounds, exact totals, Series in/out, errors."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from sampling.allocation import ALLOCATION_METHODS, allocate
from sampling.errors import SamplingError


def test_proportional_largest_remainder_by_hand():
    # 37·N/1000 = 18.5, 11.1, 5.55, 1.85 → floors 18, 11, 5, 1 (35); the two largest remainders (.85, .55) get +1.
    np.testing.assert_array_equal(allocate([500, 300, 150, 50], 37), [18, 11, 6, 2])


def test_neyman_by_hand():
    # N·S = 4000, 6000, 1000, 4000 (Σ 15000); 60 × share = 16, 24, 4, 16 exactly.
    np.testing.assert_array_equal(allocate([400, 300, 200, 100], 60, "neyman", sd=[10, 20, 5, 40]), [16, 24, 4, 16])


def test_neyman_with_max_by_hand():
    # Stratum 2 capped at 20; 40 left for weights 4000, 1000, 4000: 17.78, 4.44, 17.78 → 17, 4, 17 + two
    # largest remainders (.78, .78, strata 1 and 4) → 18, 20, 4, 18.
    got = allocate([400, 300, 200, 100], 60, "neyman", sd=[10, 20, 5, 40], max_n=20)
    np.testing.assert_array_equal(got, [18, 20, 4, 18])


def test_kish_by_hand():
    # W = .9, .09, .01; sqrt(W² + 1/9) = .95974, .34527, .33349 → 100 × share = 58.575, 21.072, 20.353.
    np.testing.assert_array_equal(allocate([9000, 900, 100], 100, "kish"), [59, 21, 20])
    np.testing.assert_array_equal(allocate([9000, 900, 100], 100, "kish", kish_weight=0),
                                  allocate([9000, 900, 100], 100, "proportional"))


def test_sqrt_and_power_by_hand():
    np.testing.assert_array_equal(allocate([100, 400, 900, 1600], 50, "sqrt"), [5, 10, 15, 20])
    np.testing.assert_array_equal(allocate([100, 400, 900, 1600], 50, "power", q=0.5), [5, 10, 15, 20])
    np.testing.assert_array_equal(allocate([100, 400, 900, 1600], 30, "power", q=1.0),
                                  allocate([100, 400, 900, 1600], 30, "proportional"))
    np.testing.assert_array_equal(allocate([100, 400, 900, 1600], 20, "power", q=0.0), [5, 5, 5, 5])


def test_equal_never_exceeds_stratum_size():
    np.testing.assert_array_equal(allocate([3, 1000], 50, "equal"), [3, 47])
    np.testing.assert_array_equal(allocate([0, 10, 30], 5, "equal"), [0, 3, 2])


def test_min_n_raises_small_strata_and_takes_tiny_ones_whole():
    # 100·200/3205 = 6.2 raised to 10; the 5-unit stratum is below min_n and taken whole; the rest to stratum 3.
    np.testing.assert_array_equal(allocate([5, 200, 3000], 100, min_n=10), [5, 10, 85])


def test_per_stratum_bounds_and_series_alignment():
    N = pd.Series([1000, 1000, 1000], index=["520102", "520103", "520111"])
    max_n = pd.Series({"520111": 5, "520102": 100, "520103": 100})       # other order: aligned by label
    got = allocate(N, 45, max_n=max_n)
    assert isinstance(got, pd.Series) and list(got.index) == list(N.index)
    assert got.to_dict() == {"520102": 20, "520103": 20, "520111": 5}
    sd = pd.Series({"520103": 2.0, "520102": 1.0, "520111": 1.0})
    assert allocate(N, 40, "neyman", sd=sd).to_dict() == {"520102": 10, "520103": 20, "520111": 10}


def test_neyman_zero_sd_strata_receive_only_what_is_left():
    np.testing.assert_array_equal(allocate([100, 100], 150, "neyman", sd=[1, 0]), [100, 50])
    np.testing.assert_array_equal(allocate([100, 100], 60, "neyman", sd=[1, 0]), [60, 0])


@pytest.mark.parametrize("kwargs, argument, words", [
    (dict(population_sizes=[10, 20], n=31), "n", "population"),
    (dict(population_sizes=[10, 20], n=5, min_n=3, max_n=2), "min_n", "max_n"),
    (dict(population_sizes=[10, 20, 30], n=5, min_n=2), "n", "min_n"),
    (dict(population_sizes=[10, 20, 30], n=20, max_n=5), "n", "max_n"),
    (dict(population_sizes=[10, 20], n=5, method="optimal"), "method", "neyman"),
    (dict(population_sizes=[10, 20], n=5, method="neyman"), "sd", "required"),
    (dict(population_sizes=[10, 20], n=5, method="neyman", sd=[0, 0]), "sd", "N_h·S_h"),
    (dict(population_sizes=[10, -1], n=5), "population_sizes", ">= 0"),
    (dict(population_sizes=[10.5, 1], n=5), "population_sizes", "whole"),
    (dict(population_sizes=[10, 20], n=5, min_n=[1, 2, 3]), "min_n", "one value per stratum"),
    (dict(population_sizes=pd.Series([1, 2], index=["a", "b"]), n=2, sd=pd.Series({"a": 1.0}),
          method="neyman"), "sd", "'b'"),
    (dict(population_sizes=[10, 20], n=2.5), "n", "whole"),
    (dict(population_sizes=[], n=0), "population_sizes", "non-empty"),
])
def test_infeasible_or_bad_arguments_name_the_constraint(kwargs, argument, words):
    with pytest.raises(SamplingError) as info:
        allocate(**kwargs)
    assert f"'{argument}'" in str(info.value) and words in str(info.value)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=30), st.data())
def test_exact_total_and_bounds(N, data):
    N = np.array(N)
    method = data.draw(st.sampled_from(ALLOCATION_METHODS))
    min_n = data.draw(st.integers(min_value=0, max_value=5))
    max_n = data.draw(st.one_of(st.none(), st.integers(min_value=min_n, max_value=400)))
    low = np.minimum(min_n, N)
    high = N if max_n is None else np.minimum(max_n, N)
    if low.sum() > high.sum():
        return
    n = data.draw(st.integers(min_value=int(low.sum()), max_value=int(high.sum())))
    sd = data.draw(st.lists(st.floats(min_value=0.1, max_value=100), min_size=N.size, max_size=N.size))
    got = allocate(N, n, method, sd=sd, q=0.3, min_n=min_n, max_n=max_n)
    assert got.dtype.kind == "i" and got.sum() == n
    assert np.all(got >= low) and np.all(got <= high)
    if method == "proportional" and max_n is None and min_n == 0 and N.sum() > 0:
        # a larger stratum never gets fewer units, and each n_h is within 1 of its exact share
        larger = N[:, None] > N[None, :]
        assert np.all((got[:, None] >= got[None, :])[larger])
        assert np.all(np.abs(got - n * N / N.sum()) < 1)
