"""Selection algorithms: fixed size, certainty units, reproducibility, and statistical agreement of every
design with its inclusion probabilities (first order from R `inclusionprobabilities`, pairs from R
`UPsystematicpi2` / `UPsampfordpi2`, fixtures in tests/fixtures/r_sampling)."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sampling.select as select_module
from sampling.errors import SamplingError
from sampling.probabilities import inclusion_probabilities
from sampling.select import select_pps, select_pps_grouped, select_srs, select_systematic

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "r_sampling" / "fixtures.json").read_text())
CASES = {c["name"]: c for c in FIXTURES["inclusion"]}
JOINT = FIXTURES["joint"]
METHODS = ("systematic", "brewer", "sampford")


def assert_frequencies(freq, pi, draws, what="unit"):
    """|f − π| ≤ 4.5·SE + 1/R for every unit: with ~100 checks per test, a correct design fails this with
    probability below 1e-3 (4.5 SE two-sided is 7e-6 each), while a design off by a few SE is caught."""
    freq, pi = np.asarray(freq, float), np.asarray(pi, float)
    bound = 4.5 * np.sqrt(pi * (1 - pi) / draws) + 1.0 / draws
    bad = np.flatnonzero(np.abs(freq - pi) > bound)
    assert bad.size == 0, [(what, int(k), float(freq.flat[k]), float(pi.flat[k])) for k in bad[:5]]


def draw_many(sizes, n, method, draws, seed):
    """`draws` independent samples of one design in one call: `draws` copies of the same unit list as groups
    (each group gets its own random start / uniforms / trials). Checks each sample's size and distinctness;
    returns unit counts and pair counts."""
    sizes = np.asarray(sizes, float)
    N = sizes.size
    groups = np.repeat(np.arange(draws), N)
    pos, _ = select_pps_grouped(groups, np.tile(sizes, draws), n, method, seed=seed)
    assert np.all(np.diff(pos) > 0) and pos.dtype.kind == "i"
    assert np.all(np.bincount(groups[pos], minlength=draws) == n)
    hits = np.zeros((draws, N))
    hits[groups[pos], pos % N] = 1
    return hits.sum(0), hits.T @ hits


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["lognormal", "certainty", "households"])
def test_select_pps_is_the_grouped_draw_with_one_group(method, name):
    # select_pps and select_pps_grouped share one kernel; the statistical tests below use the grouped form
    # to get thousands of independent draws in one call.
    case = CASES[name]
    for seed in range(3):
        s = select_pps(case["sizes"], case["n"], method, seed=seed)
        g, _ = select_pps_grouped(np.zeros(len(case["sizes"])), case["sizes"], case["n"], method, seed=seed)
        np.testing.assert_array_equal(s, g)
        assert s.size == case["n"] and np.unique(s).size == s.size
        assert np.all(np.isin(np.flatnonzero(np.array(case["pik"]) == 1), s))


@pytest.mark.r
@pytest.mark.parametrize("method", METHODS)
def test_unit_and_pair_frequencies_with_a_certainty_unit(method):
    draws = 2000
    counts, pairs = draw_many(JOINT["sizes"], JOINT["n"], method, draws, seed=11)
    pik = np.array(JOINT["pik"])
    assert pik[-1] == 1 and counts[-1] == draws           # the certainty unit is in every sample
    assert_frequencies(counts / draws, pik, draws)
    if method == "systematic":
        pi2 = np.array(JOINT["systematic_pi2"])
        # Systematic PPS in the given order never takes some pairs: the design, not just its margins.
        assert np.all(pairs[pi2 == 0] == 0)
        assert_frequencies(pairs / draws, pi2, draws, "pair")
    elif method == "sampford":
        assert_frequencies(pairs / draws, np.array(JOINT["sampford_pi2"]), draws, "pair")


@pytest.mark.r
@pytest.mark.parametrize("method", METHODS)
def test_unit_frequencies_very_unequal_sizes(method):
    case = CASES["lognormal"]                              # sizes from 0 to ~1000, several certainty units
    draws = 2000
    counts, _ = draw_many(case["sizes"], case["n"], method, draws, seed=12)
    pik = np.array(case["pik"])
    assert np.all(counts[pik == 1] == draws) and np.all(counts[pik == 0] == 0)
    assert_frequencies(counts / draws, pik, draws)


@pytest.mark.slow
@pytest.mark.r
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["certainty", "multi_round_caps", "lognormal", "zeros", "tied_certainty"])
def test_unit_frequencies_slow(method, name):
    case = CASES[name]
    draws = 20000
    counts, _ = draw_many(case["sizes"], case["n"], method, draws, seed=13)
    assert_frequencies(counts / draws, case["pik"], draws)


@pytest.mark.slow
@pytest.mark.r
@pytest.mark.parametrize("method", ["systematic", "sampford"])
def test_pair_frequencies_slow(method):
    draws = 20000
    _, pairs = draw_many(JOINT["sizes"], JOINT["n"], method, draws, seed=14)
    assert_frequencies(pairs / draws, np.array(JOINT[f"{method}_pi2"]), draws, "pair")


@pytest.mark.parametrize("method", METHODS)
def test_reproducible_and_seed_sensitive(method):
    case = CASES["households"]
    a = select_pps(case["sizes"], 25, method, seed=2020)
    b = select_pps(case["sizes"], 25, method, seed=2020)
    np.testing.assert_array_equal(a, b)
    samples = {tuple(select_pps(case["sizes"], 25, method, seed=s)) for s in range(10)}
    assert len(samples) == 10


def test_generator_seed_advances_between_calls():
    rng = np.random.default_rng(3)
    sizes = CASES["households"]["sizes"]
    assert not np.array_equal(select_pps(sizes, 25, seed=rng), select_pps(sizes, 25, seed=rng))


def test_lazy_package_export():
    import sampling

    assert sampling.select_pps is select_pps


def test_all_units_when_n_equals_positive_count():
    for method in METHODS:
        np.testing.assert_array_equal(select_pps([0, 1, 2, 3, 0, 4], 4, method, seed=1), [1, 2, 3, 5])
        assert select_pps([3, 1, 2], 0, method, seed=1).size == 0


def test_sampford_near_one_probabilities_terminates_with_right_frequencies():
    # π = 0.99 for five units and 0.01 for five: the rejective loop accepts rarely per trial but
    # vectorised batches keep it quick; frequencies must still match π.
    sizes = [99] * 5 + [1] * 5
    draws = 2000
    counts, _ = draw_many(sizes, 5, "sampford", draws, seed=15)
    assert_frequencies(counts / draws, [0.99] * 5 + [0.01] * 5, draws)


def test_sampford_gives_up_with_advice_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(select_module, "_SAMPFORD_MAX_TRIALS", 1)
    monkeypatch.setattr(select_module, "_SAMPFORD_BATCH", 1)
    sizes = [1e6 - 1] * 30 + [1] * 30                      # acceptance probability per trial is tiny
    with pytest.raises(SamplingError, match="brewer"):
        for s in range(50):
            select_pps(sizes, 30, "sampford", seed=s)


@pytest.mark.parametrize("call, argument", [
    (lambda: select_pps([1, 2, 3], 1, method="poisson"), "method"),
    (lambda: select_pps([1, 2, 3], 1, seed="x"), "seed"),
    (lambda: select_pps([1, 2, 3], 1, seed=-1), "seed"),
    (lambda: select_pps([1, 0, 3], 3), "n"),
    (lambda: select_srs(5, 6), "n"),
    (lambda: select_systematic(5, 6), "n"),
    (lambda: select_srs(-1, 0), "N"),
    (lambda: select_pps_grouped([1, 1], [1, 2, 3], 1), "groups"),
    (lambda: select_pps_grouped([1, 1, 2], [1, 2, 3], {1: 1}), "n"),
    (lambda: select_pps_grouped([1, 1, 2], [1, 2, 3], {1: 1, 2: 2}), "n"),
    (lambda: select_pps_grouped([1, 1, 2], [1, 2, 3], [1, 2, 1]), "n"),
    (lambda: select_pps_grouped([1, None, 2], [1, 2, 3], 1), "groups"),
])
def test_errors_name_the_argument(call, argument):
    with pytest.raises(SamplingError, match=f"'{argument}"):
        call()


def test_grouped_error_names_the_group():
    with pytest.raises(SamplingError, match="520102"):
        select_pps_grouped(["520101", "520102", "520102"], [1, 2, 0], {"520101": 1, "520102": 2})


# ---------------------------------------------------------------------------------------------- SRS, systematic

def test_srs_and_systematic_equal_probability():
    N, n, draws = 23, 5, 2000
    rng = np.random.default_rng(16)
    for fn in (select_srs, select_systematic):
        counts = np.zeros(N)
        for _ in range(draws):
            s = fn(N, n, seed=rng)
            assert s.size == n and np.all(np.diff(s) > 0) and s[0] >= 0 and s[-1] < N
            counts[s] += 1
        assert_frequencies(counts / draws, np.full(N, n / N), draws)


def test_systematic_interval_is_n_over_N():
    # N/n = 4.6: consecutive positions are 4 or 5 apart, and the sample spans the list.
    for seed in range(50):
        s = select_systematic(23, 5, seed=seed)
        assert set(np.diff(s)) <= {4, 5} and s[0] < 5
    np.testing.assert_array_equal(select_systematic(7, 7, seed=1), np.arange(7))
    assert select_systematic(7, 0, seed=1).size == 0


def test_srs_reproducible():
    np.testing.assert_array_equal(select_srs(1000, 30, seed=9), select_srs(1000, 30, seed=9))
    assert not np.array_equal(select_srs(1000, 30, seed=9), select_srs(1000, 30, seed=10))


# ---------------------------------------------------------------------------------------------- grouped

def replicated_groups(sizes, copies):
    sizes = np.asarray(sizes, float)
    return np.repeat(np.arange(copies), sizes.size), np.tile(sizes, copies), np.tile(np.arange(sizes.size), copies)


@pytest.mark.r
@pytest.mark.parametrize("method", METHODS)
def test_grouped_each_group_is_one_draw_of_the_design(method):
    # 2000 copies of one county: one grouped call = 2000 independent draws of that county's design.
    copies = 2000 if method == "systematic" else 1000
    sizes = JOINT["sizes"]
    groups, tiled, within = replicated_groups(sizes, copies)
    pos, pi = select_pps_grouped(groups, tiled, JOINT["n"], method, seed=17)
    np.testing.assert_allclose(pi, np.tile(JOINT["pik"], copies), rtol=1e-6)
    assert np.all(np.bincount(groups[pos], minlength=copies) == JOINT["n"])
    assert np.all(np.diff(pos) > 0)
    counts = np.bincount(within[pos], minlength=len(sizes))
    assert counts[-1] == copies
    assert_frequencies(counts / copies, JOINT["pik"], copies)
    if method == "systematic":
        hits = np.zeros((copies, len(sizes)))
        hits[groups[pos], within[pos]] = 1
        pairs = hits.T @ hits
        pi2 = np.array(JOINT["systematic_pi2"])
        assert np.all(pairs[pi2 == 0] == 0)
        assert_frequencies(pairs / copies, pi2, copies, "pair")


def test_grouped_systematic_keeps_given_order_within_interleaved_groups():
    # Rows of different counties interleaved: the systematic design inside each county must still follow that
    # county's own row order (pairs with π_ij = 0 never drawn together).
    copies = 1500
    rng = np.random.default_rng(18)
    sizes = np.array(JOINT["sizes"], float)
    groups = np.repeat(np.arange(copies), sizes.size)
    within = np.tile(np.arange(sizes.size), copies)
    # a random interleaving that keeps each group's order: sort by (random key of group-rank slot)
    keys = np.sort(rng.random((copies, sizes.size)), axis=1).ravel()
    order = np.argsort(keys, kind="stable")
    g, w = groups[order], within[order]
    labels = np.char.add("52", np.char.zfill(g.astype(str), 4))  # string county codes
    pos, pi = select_pps_grouped(labels, sizes[w], JOINT["n"], seed=19)
    np.testing.assert_allclose(pi, np.array(JOINT["pik"])[w], rtol=1e-6)
    hits = np.zeros((copies, sizes.size))
    hits[g[pos], w[pos]] = 1
    assert np.all(hits.sum(1) == JOINT["n"])
    pairs = hits.T @ hits
    pi2 = np.array(JOINT["systematic_pi2"])
    assert np.all(pairs[pi2 == 0] == 0)
    assert_frequencies(hits.mean(0), JOINT["pik"], copies)


def test_grouped_sizes_per_group_mapping_series_and_per_unit_array():
    import pandas as pd

    fx = FIXTURES["grouped"]
    groups, sizes = np.array(fx["groups"]), np.array(fx["sizes"], float)
    expected = {g: int(k) for g, k in fx["n"].items()}
    per_unit = np.array([expected[g] for g in groups])
    for n in (expected, pd.Series(expected), per_unit):
        pos, pi = select_pps_grouped(groups, sizes, n, seed=4)
        got = pd.Series(groups[pos]).value_counts().to_dict()
        assert got == expected
        assert np.all(pi[pos] > 0)
        assert np.all(np.isin(np.flatnonzero(pi >= 1), pos))       # certainty units always taken
        np.testing.assert_allclose(pi, fx["pik"], rtol=1e-6)
    a, _ = select_pps_grouped(pd.Series(groups), sizes, expected, seed=4)
    b, _ = select_pps_grouped(groups, sizes, expected, seed=4)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
def test_grouped_exact_size_in_every_group_under_extreme_sizes(method):
    rng = np.random.default_rng(20)
    G = 300 if method == "systematic" else 60
    counts = rng.integers(3, 40, G)
    groups = np.repeat(np.arange(G), counts)
    sizes = np.round(rng.lognormal(0, 3, groups.size), 3)
    sizes[rng.random(groups.size) < 0.1] = 0
    positive = np.bincount(groups, weights=sizes > 0, minlength=G).astype(int)
    n = {g: int(min(positive[g], rng.integers(0, 12))) for g in range(G)}
    pos, pi = select_pps_grouped(groups, sizes, n, method, seed=21)
    assert np.array_equal(np.bincount(groups[pos], minlength=G), [n[g] for g in range(G)])
    assert np.all(sizes[pos] > 0) and np.all(np.diff(pos) > 0)
    assert np.all(np.isin(np.flatnonzero(pi >= 1), pos))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e6)), min_size=1, max_size=40),
       st.sampled_from(METHODS), st.integers(min_value=0, max_value=2**32), st.data())
def test_any_sizes_give_n_distinct_units_with_certainties_and_no_zero_size(sizes, method, seed, data):
    sizes = np.array(sizes)
    positive = int(np.count_nonzero(sizes > 0))
    n = data.draw(st.integers(min_value=0, max_value=positive))
    pik = inclusion_probabilities(sizes, n)
    s = select_pps(sizes, n, method, seed=seed)
    assert s.size == n and np.unique(s).size == n
    assert np.all(sizes[s] > 0)
    assert np.all(np.isin(np.flatnonzero(pik >= 1), s))
