"""The multi-stage draw: design properties, reproducibility, records and a statistical check of π."""
import numpy as np
import pandas as pd
import pytest

from samplehelp import STAT_DESIGN, small_frames
from sampling.design import design_from_text, load_design
from sampling.draw import (HOUSEHOLD_COLUMNS, draw_sample, latest_draw, sample_households, sample_villages,
                           select_sample, verify_draw)
from sampling.errors import DesignError, FrameError, SamplingError


@pytest.fixture(scope="module")
def frames():
    return small_frames()


def _check_cells(units, pcol, design_stage):
    """Σπ = n over each cell's population, exact sizes, 0 < π ≤ 1 for every selected unit."""
    for cell, g in units.groupby("cell"):
        method = design_stage.method_of(design_stage.strata[int(g["stratum_index"].iloc[0])])
        n = int(g["n_stratum"].iloc[0])
        assert int(g["selected"].sum()) == n, (cell, method)
        if method not in ("purposive",) and not design_stage.strata[int(g["stratum_index"].iloc[0])].groups:
            assert g[pcol].sum() == pytest.approx(n, abs=1e-9), (cell, method)
        sel = g.loc[g["selected"], pcol]
        assert ((sel > 0) & (sel <= 1)).all()


@pytest.mark.parametrize("preset", ["exit_check", "annual", "local_50plus10", "local_20pct", "local_4or6_villages"])
def test_design_properties_hold_for_every_preset(frames, preset):
    v, h = frames
    d = load_design(preset)
    r = select_sample(d, v, h, seed=11)
    _check_cells(r.counties, "pi_county", d.county)
    _check_cells(r.villages, "pi_village", d.village)
    _check_cells(r.households, "pi_household", d.household)
    sh = r.sample_households
    assert not sh["household_id"].duplicated().any()            # no unit twice; reserves disjoint from sample
    s = sh[sh["role"] == "sample"]
    np.testing.assert_allclose(s["pi"], s["pi_county"] * s["pi_village"] * s["pi_household"])
    np.testing.assert_allclose(s["weight"], 1 / s["pi"])
    assert ((s["pi"] > 0) & (s["pi"] <= 1)).all()
    res = sh[sh["role"] == "reserve"]
    assert res["reserve_order"].notna().all() and s["reserve_order"].isna().all()
    for (_, stratum), g in res.groupby(["village_code", "hh_stratum"]):
        k = len(g)
        assert sorted(g["reserve_order"].astype(int)) == list(range(1, k + 1))
    # reserves: k per village and stratum, or all that remain
    hres = r.households
    for (village, stratum), g in hres.groupby(["village_code", "stratum"]):
        st = next(x for x in d.household.strata if x.name == stratum)
        want = 0 if d.household.method_of(st) == "take_all" else d.household.reserve_of(st)
        left = int((~g["selected"]).sum())
        assert int((g["reserve_order"] > 0).sum()) == min(want, left)
        assert not (g["selected"] & (g["reserve_order"] > 0)).any()


def test_exit_check_sizes_and_take_all_groups(frames):
    v, h = frames
    r = select_sample("exit_check", v, h, seed=3)
    assert set(r.counties["pi_county"]) == {1.0}
    sv = r.sample_villages
    per = sv.groupby(["county_code", "stratum"]).size().unstack(fill_value=0)
    # the small frame has 2 remote-poor villages per county: the stratum is taken whole, the others as designed
    assert (per["remote_poor"] == 2).all() and (per["nonpoor"] == 2).all()
    risk = r.households[r.households["stratum"] == "risk"]
    for village, g in risk.groupby("village_code"):
        groups_taken = g.loc[g["selected"], "group_no"].unique()
        assert len(groups_taken) <= 1
        all_groups = h.loc[h["village_code"] == village, "group_no"].nunique()
        assert g["pi_household"].iloc[0] == pytest.approx(1 / all_groups)
        # every risk household of the chosen group is taken, none outside it
        assert g.loc[g["group_no"].isin(groups_taken), "selected"].all()
        assert not g.loc[~g["group_no"].isin(groups_taken), "selected"].any()
    assert (r.sample_households.loc[r.sample_households["hh_stratum"] == "risk", "take_all"] == 1).all()


def test_same_seed_same_sample_whatever_the_row_order(frames):
    v, h = frames
    a = select_sample("exit_check", v, h, seed=5).sample_households
    b = select_sample("exit_check", v.sample(frac=1, random_state=1), h.sample(frac=1, random_state=2),
                      seed=5).sample_households
    pd.testing.assert_frame_equal(a, b)
    c = select_sample("exit_check", v, h, seed=6).sample_households
    assert set(c["household_id"]) != set(a["household_id"])


def test_purposive_villages_flagged_with_null_weight(frames):
    v, h = frames
    hand = [v["village_code"].iloc[1], v["village_code"].iloc[9]]
    text = load_design("exit_check")
    d = text.to_dict()
    d.pop("name"), d.pop("title"), d.pop("description"), d.pop("pattern"), d.pop("source")
    import tomllib

    toml = open(__import__("sampling").__path__[0] + "/presets/exit_check.toml", encoding="utf-8").read()
    toml = toml.replace("[[village.strata]]\nname = \"remote_poor\"",
                        f"[[village.strata]]\nname = \"hand\"\nlabel = \"指定村\"\npurposive = true\n"
                        f"units = {hand!r}\n\n[[village.strata]]\nname = \"remote_poor\"".replace("'", '"'), 1)
    tomllib.loads(toml)
    design = design_from_text(toml)
    r = select_sample(design, v, h, seed=2)
    sv = r.sample_villages.set_index("village_code")
    for code in hand:
        assert sv.loc[code, "purposive"] == 1 and np.isnan(sv.loc[code, "weight_village"])
        assert sv.loc[code, "stratum"] == "hand"
    hh = r.sample_households
    inside = hh[hh["village_code"].isin(hand)]
    assert len(inside) and (inside["purposive"] == 1).all() and inside["weight"].isna().all()
    assert inside["pi_household"].notna().all()
    assert hh.loc[~hh["village_code"].isin(hand), "weight"].notna().all()
    # hand-named villages are out of the random strata
    others = r.villages[r.villages["stratum"] != "hand"]
    assert not others["village_code"].isin(hand).any()
    with pytest.raises(DesignError, match="not in the frame"):
        select_sample(design_from_text(toml.replace(hand[0], "520199999999")), v, h, seed=2)


def test_local_rules_n_rule_rate_and_cap():
    v, h = small_frames(n_county=2, n_vill=6, hh_per=(40, 120), seed=4)
    r = select_sample("local_50plus10", v, h, seed=1)
    vv = v.set_index("village_code")
    for (village, stratum), g in r.households.groupby(["village_code", "stratum"]):
        big = vv.loc[village, "hh_registered"] >= 50
        want = {"poor": 50 if big else 25, "nonpoor": 10 if big else 5}[stratum]
        assert int(g["selected"].sum()) == min(want, len(g))
    r = select_sample("local_20pct", v, h, seed=1)
    for village, g in r.households.groupby("village_code"):
        N = len(g)
        assert int(g["selected"].sum()) == min(200, int(np.floor(0.2 * N + 0.5)))
    assert (r.sample_villages.groupby("county_code").size() == 2).all()
    # 4 or 6 villages: persons_not_exited summed over the county decides
    v2 = v.copy()
    first = v2["county_code"] == v2["county_code"].iloc[0]
    v2.loc[first, "persons_not_exited"] = 100           # county total 600 ≥ 500 → 4 villages
    v2.loc[~first, "persons_not_exited"] = 10           # county total 60 → 6 villages
    r = select_sample("local_4or6_villages", v2, h, seed=1)
    sizes = r.sample_villages.groupby("county_code").size()
    assert sizes.iloc[0] == 4 and sizes.iloc[1] == 6
    assert (r.sample_households["register_status"].isin([1, 2, 3])).all()
    assert (r.sample_households["pi_household"] == 1).all()


def test_stage_total_allocated_exactly_and_precision_target(frames):
    v, h = frames
    toml = """
[county]
method = "take_all"
[village]
method = "pps_systematic"
size = "households"
n = 5
allocation = "proportional"
min_n = 1
[[village.strata]]
name = "poor"
where = { poor_village = 1 }
[[village.strata]]
name = "nonpoor"
where = { poor_village = 0 }
[household]
method = "systematic"
[[household.strata]]
name = "registered"
where = { register_status = [1, 2, 3] }
n = { margin = 0.2, p = 0.3, deff = 1.0 }
"""
    r = select_sample(design_from_text(toml), v, h, seed=9)
    per = r.sample_villages.groupby("county_code").size()
    assert (per == 5).all()
    from sampling.samplesize import sample_size

    for village, g in r.households.groupby("village_code"):
        want = sample_size(0.2, p=0.3, deff=1.0, population=len(g)).n
        assert int(g["selected"].sum()) == min(want, len(g))


def test_short_strata_are_taken_whole_and_reported(frames):
    v, h = frames
    r = select_sample("exit_check", v, h, seed=1)
    from sampling.draw import design_summary

    s = design_summary(r)
    rows = {x["stratum"]: x for x in s["stages"]["village"]["strata"]}
    assert rows["remote_poor"]["short"] == 4            # 4 counties with only 2 remote poor villages for n = 9
    assert s["counts"]["villages"] == len(r.sample_villages)
    assert s["pi"]["min"] > 0 and s["pi"]["max"] <= 1
    assert s["precision"]["by_hh_stratum"]


def test_missing_column_names_the_column_and_the_design_part(frames):
    v, h = frames
    with pytest.raises(FrameError) as err:
        select_sample("exit_check", v.drop(columns=["remote"]), h, seed=1)
    assert err.value.column == "remote" and "village" in str(err.value)
    with pytest.raises(FrameError) as err:
        select_sample("exit_check", v, h.drop(columns=["dibao"]), seed=1)
    assert err.value.column == "dibao"
    with pytest.raises(SamplingError, match="seed"):
        select_sample("exit_check", v, h, seed=-1)
    dup = pd.concat([h, h.iloc[:1]])
    with pytest.raises(FrameError, match="twice"):
        select_sample("exit_check", v, dup, seed=1)


def _frequencies(v, h, design, draws):
    """Selection counts over seeded draws, with each household's π (constant across draws) and Σw per stratum."""
    counts = pd.Series(0, index=h["household_id"].astype(str).to_numpy())
    pi = pd.Series(np.nan, index=counts.index)
    totals = []
    for seed in range(draws):
        r = select_sample(design, v, h, seed=seed, describe=False)
        hh = r.households
        full = hh["pi_county"] * hh["pi_village"] * hh["pi_household"]
        ids = hh["household_id"].astype(str).to_numpy()
        known = pi.loc[ids]
        assert np.allclose(known.dropna(), full[known.notna().to_numpy()].to_numpy())
        pi.loc[ids] = full.to_numpy()
        s = r.sample_households[r.sample_households["role"] == "sample"]
        counts.loc[s["household_id"].to_numpy()] += 1
        totals.append(s.groupby("hh_stratum")["weight"].sum())
    return counts, pi, pd.DataFrame(totals).fillna(0.0)


def _check_frequencies(v, h, draws, z_max):
    design = design_from_text(STAT_DESIGN)
    counts, pi, totals = _frequencies(v, h, design, draws)
    checked = pi.notna()
    assert checked.mean() > 0.95                        # nearly every household had its village drawn at least once
    p = pi[checked]
    freq = counts[checked] / draws
    z = (freq - p) / np.sqrt(p * (1 - p) / draws).clip(lower=1e-12)
    assert np.abs(z).max() < z_max, z.abs().sort_values().tail()
    # households never in a drawn village must have a small π
    assert counts[~checked].sum() == 0
    # Σ weights estimates each stratum's population count without bias
    strata = design.household.strata
    from sampling.draw import _match

    for s in strata:
        if s.name not in totals:
            continue
        left = h.copy()
        for prev in strata[:strata.index(s)]:
            left = left[~_match(left, prev.where, prev.any_flag)]
        N = int(_match(left, s.where, s.any_flag).sum())
        est = totals[s.name]
        se = est.std(ddof=1) / np.sqrt(draws)
        assert abs(est.mean() - N) < 4 * se + 1e-9, (s.name, est.mean(), N, se)
    return z, p


def test_empirical_frequencies_match_pi_quick():
    v, h = small_frames(n_county=3, n_vill=6, hh_per=(6, 12), seed=8)
    z, p = _check_frequencies(v, h, draws=50, z_max=5.0)
    assert (p == 1).any() or p.max() > 0.3              # includes high-probability (take-all-like) units
    assert p.min() < 0.2


@pytest.mark.slow
def test_empirical_frequencies_match_pi_many_draws():
    v, h = small_frames(n_county=4, n_vill=8, hh_per=(8, 16), seed=8)
    _check_frequencies(v, h, draws=1200, z_max=5.0)


# ------------------------------------------------------------------------------------------------------------
# Workspace records
# ------------------------------------------------------------------------------------------------------------

@pytest.fixture()
def ws(tmp_path):
    from sampling.workspace import init_workspace

    return init_workspace(tmp_path / "ws")


def test_draw_records_and_verify(ws, frames, tmp_path):
    v, h = frames
    v.to_csv(tmp_path / "villages.csv", index=False)
    h.to_parquet(tmp_path / "households.parquet")
    rec = draw_sample(ws, "exit_check", 42, villages=tmp_path / "villages.csv",
                      households=tmp_path / "households.parquet")
    row = latest_draw(ws)
    assert row["draw_id"] == rec["draw_id"] and row["seed"] == 42
    assert row["design"]["name"] == "exit_check"
    assert len(row["frames"]["villages"]["sha256"]) == 64 and row["frames"]["households"]["kind"] == "file"
    assert row["software_version"]
    sh = sample_households(ws)
    for c in HOUSEHOLD_COLUMNS:
        assert c in sh.columns
    assert "N_hh_stratum" in sh.columns and "n_hh_stratum" in sh.columns
    assert len(sh) == rec["summary"]["counts"]["households"] + rec["summary"]["counts"]["reserves"]
    assert set(sample_villages(ws)["village_code"]) == set(sh["village_code"])
    assert str(sh["household_id"].iloc[0]).isdigit() and len(sh["household_id"].iloc[0]) == 16
    rep = verify_draw(ws)
    assert rep["ok"], rep
    with pytest.raises(SamplingError, match="already exists"):
        draw_sample(ws, "exit_check", 42, villages=tmp_path / "villages.csv", households=tmp_path / "households.parquet")
    # a second draw becomes the latest
    rec2 = draw_sample(ws, "annual", 42, villages=tmp_path / "villages.csv", households=tmp_path / "households.parquet")
    assert latest_draw(ws)["draw_id"] == rec2["draw_id"]
    assert verify_draw(ws, rec["draw_id"])["ok"]
    # a changed frame is refused with a clear message
    v2 = v.copy()
    v2.loc[0, "households"] += 1
    v2.to_csv(tmp_path / "villages.csv", index=False)
    with pytest.raises(FrameError, match="changed since draw") as err:
        verify_draw(ws, rec["draw_id"])
    assert err.value.code == "frame_changed"


def test_household_source_callable_only_for_sampled_villages(frames):
    v, h = frames
    asked = []

    def make(row):
        asked.append(row.village_code)
        return h[h["village_code"] == row.village_code]

    r = select_sample("annual", v, make, seed=1)
    assert sorted(asked) == sorted(r.sample_villages["village_code"])
    ref = select_sample("annual", v, h, seed=1)
    pd.testing.assert_frame_equal(r.sample_households, ref.sample_households)
