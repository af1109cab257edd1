import json

import numpy as np
import pandas as pd
import pytest

from sampling.errors import SamplingError
from sampling.idnumber import id_number_problems
from sampling.population import (FRAME_COLUMNS, HOUSEHOLD_COLUMNS, PERSON_COLUMNS, county_households,
                                 generate_population, village_frame, village_households)
from sampling.population import profiles as P

GROUPS = {"exited": [1], "not_exited": [2, 3, 4], "nonregistered": [5, 6]}


@pytest.fixture(scope="module")
def small():
    frame = village_frame(["贵州", "河南"], 11, counties_per_province=2, villages_per_county=12)
    hh, ps = county_households(11, frame)
    return frame, hh, ps


def test_frame_columns_codes_nest_and_sizes_add_up(small):
    frame, _, _ = small
    assert list(frame.columns) == FRAME_COLUMNS
    assert len(frame) == 2 * 2 * 12 and frame["village_code"].is_unique
    vc = frame["village_code"]
    assert (vc.str.len() == 12).all() and vc.str.fullmatch(r"\d{12}").all()
    assert (vc.str[:6] == frame["county_code"]).all()
    assert (vc.str[:9] + "000" == frame["township_code"]).all()
    assert (frame["county_code"].str[:4] + "00" == frame["city_code"]).all()
    assert (frame["county_code"].str[:2] + "0000" == frame["province_code"]).all()
    assert set(frame.loc[frame.province_code == "520000", "region"]) == {"west"}
    assert set(frame.loc[frame.province_code == "410000", "region"]) == {"central"}
    assert (frame["households"] == frame["hh_registered"] + frame["hh_nonregistered"]).all()
    assert (frame["hh_registered"] == frame["hh_exited"] + frame["hh_not_exited"]).all()
    assert (frame["persons"] == frame["persons_registered"] + frame["persons_nonregistered"]).all()
    assert (frame["persons_registered"] == frame["persons_exited"] + frame["persons_not_exited"]).all()
    assert (frame["rural_population"] == frame["persons"]).all()
    for g in GROUPS:
        assert (frame[f"persons_{g}"] >= frame[f"hh_{g}"]).all()
    # 出列年份 only for poor villages, never after the assessed year
    exit_year = frame["village_exit_year"]
    assert exit_year[frame["poor_village"] == 0].isna().all()
    assert (exit_year.dropna() <= 2019).all()


def test_default_counts_are_the_real_ones():
    assert sum(p["counties"] for p in P.PROFILES.values()) == 2166
    assert sum(p["poor"] for p in P.PROFILES.values()) == 832
    gz = village_frame(["520000"], 1, with_poor_county=True)
    counties = gz.drop_duplicates("county_code")
    assert len(counties) == 88 and counties["poor_county"].sum() == 66


@pytest.mark.slow
def test_national_frame_scale():
    frame = village_frame("all", 1, with_poor_county=True)
    counties = frame.drop_duplicates("county_code")
    assert len(counties) == 2166 and counties["poor_county"].sum() == 832
    assert 450_000 <= len(frame) <= 550_000 and frame["village_code"].is_unique


def test_frame_deterministic_and_province_independent():
    a = village_frame(["贵州"], 3, counties_per_province=3, villages_per_county=5)
    b = village_frame(["贵州", "河南"], 3, counties_per_province=3, villages_per_county=5)
    c = village_frame(["贵州"], 4, counties_per_province=3, villages_per_county=5)
    pd.testing.assert_frame_equal(a, b[b.province_code == "520000"].reset_index(drop=True))
    assert not a["households"].equals(c["households"])


def test_households_match_frame_sizes_exactly(small):
    frame, hh, ps = small
    assert list(hh.columns) == HOUSEHOLD_COLUMNS and list(ps.columns) == PERSON_COLUMNS
    by_v = hh.groupby("village_code").agg(n=("household_id", "size"), p=("size", "sum"))
    f = frame.set_index("village_code")
    assert (by_v["n"].reindex(f.index) == f["households"]).all()
    assert (by_v["p"].reindex(f.index) == f["persons"]).all()
    for g, codes in GROUPS.items():
        sub = hh[hh.register_status.isin(codes)].groupby("village_code")["size"].agg(["size", "sum"])
        sub = sub.reindex(f.index, fill_value=0)
        assert (sub["size"] == f[f"hh_{g}"]).all(), g
        assert (sub["sum"] == f[f"persons_{g}"]).all(), g
    # the persons table holds exactly `size` members per household
    assert (ps.groupby("household_id").size().reindex(hh.household_id).to_numpy() == hh["size"].to_numpy()).all()


def test_village_alone_equals_village_in_county_run(small):
    frame, hh, ps = small
    row = frame.iloc[13]
    h1, p1 = village_households(11, row)
    h2 = hh[hh.village_code == row.village_code].reset_index(drop=True)
    p2 = ps[ps.household_id.str[:12] == row.village_code].reset_index(drop=True)
    pd.testing.assert_frame_equal(h1, h2)
    pd.testing.assert_frame_equal(p1, p2)
    h3, _ = village_households(11, row.to_dict())
    pd.testing.assert_frame_equal(h1, h3)
    h4, _ = village_households(12, row)
    assert not h4["head_name"].equals(h1["head_name"])


def test_ids_codes_and_personal_fields(small):
    frame, hh, ps = small
    assert hh["household_id"].is_unique and ps["person_id"].is_unique
    assert (hh["household_id"].str[:12] == hh["village_code"]).all()
    assert (ps["person_id"].str[:16] == ps["household_id"]).all()
    assert id_number_problems(ps["id_number"]).isna().all()
    assert ps["id_number"].is_unique                      # no two persons share an ID number
    county = ps["household_id"].str[:6]
    assert (ps["id_number"].str[:6] == county).all()
    # birth year = 2019 − age (ages are whole years on 31 December of the assessed year)
    assert (ps["id_number"].str[6:10].astype(int) == 2019 - ps["age"]).all()
    assert ((ps["id_number"].str[16].astype(int) % 2 == 1) == (ps["sex"] == 1)).all()
    heads = ps[ps.member_no == 1].set_index("household_id")
    assert (heads.loc[hh.household_id, "id_number"].to_numpy() == hh["head_id_number"].to_numpy()).all()
    assert (heads.loc[hh.household_id, "name"].to_numpy() == hh["head_name"].to_numpy()).all()
    assert (heads["relation"] == 1).all() and ((ps.relation == 1).groupby(ps.household_id).sum() == 1).all()
    assert hh["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert ps["name"].str.len().between(2, 3).all()
    gz = hh.province_code == "520000"
    assert hh.loc[gz, "gps_lat"].between(24.5, 29.5).all() and hh.loc[gz, "gps_lon"].between(103.5, 109.5).all()


def _truth_by_rule(hh, ps, line):
    """The scoring rule, written out independently of the generator."""
    pc = (hh.wage_income + hh.business_income - hh.business_cost + hh.property_income + hh.transfer_income) / hh["size"]
    kids = ps[(ps.age >= 6) & (ps.age <= 15) & (ps.in_school != 1) & ~ps.school_exempt.isin([1, 2])]
    uninsured = ps[~ps.insurance.isin([1, 2]) & (ps.insurance_exempt != 1)]
    relocated = hh.measures.str.split().apply(lambda m: "易地搬迁" in m)
    guarantees = ((hh.food_regular_protein == 1) & (hh.food_stable == 1) & (hh.clothing_seasonal == 1)
                  & (hh.clothing_donation == 0) & ~hh.household_id.isin(kids.household_id)
                  & ~hh.household_id.isin(uninsured.household_id)
                  & (hh.house_grade.isin(["A", "B"]) | (hh.house_renovated == 1) | relocated))
    poor = (pc <= line) | ~guarantees
    red_people = ps[(ps.public_servant == 1) | (ps.village_committee == 1)].household_id
    red = (hh.household_id.isin(red_people) | (hh.rl_vehicle_value >= 30000) | (hh.rl_commercial_housing == 1)
           | (hh.rl_company == 1) | (hh.rl_empty_registration == 1))
    st = hh.register_status
    return pd.DataFrame({
        "true_poor": poor, "true_wrongly_exited": (st == 1) & poor, "true_missed": (st >= 5) & poor,
        "true_wrongly_included": (st.between(2, 4) & ~poor) | ((st <= 4) & red)}).astype(np.int8)


def test_truth_columns_follow_the_scoring_rule(small):
    _, hh, ps = small
    expected = _truth_by_rule(hh, ps, 3747)   # 2019 planning-series line (SPEC §4)
    pd.testing.assert_frame_equal(hh[expected.columns].reset_index(drop=True), expected.reset_index(drop=True))


def test_truth_agrees_with_the_scorer(small):
    score = pytest.importorskip("survey.score")
    from survey.rules import Rules

    from sampling.workspace import default_config

    _, hh, ps = small
    sc = score.score_households(hh, ps, Rules.from_config(default_config()))
    for ours, theirs in [("true_poor", "poor"), ("true_wrongly_exited", "wrongly_exited"),
                         ("true_missed", "missed"), ("true_wrongly_included", "wrongly_included")]:
        assert (sc[theirs].astype(int).to_numpy() == hh[ours].to_numpy()).all(), ours


def test_injected_error_rates_close_to_requested():
    rates = {"wrongly_exited": 0.05, "missed": 0.03, "wrongly_included": 0.20}
    frame = village_frame(["云南"], 5, counties_per_province=1, villages_per_county=40)
    hh, _ = county_households(5, frame, error_rates=rates)
    st = hh.register_status
    for key, mask in [("wrongly_exited", st == 1), ("missed", st >= 5), ("wrongly_included", st.between(2, 4))]:
        n = int(mask.sum())
        got = hh.loc[mask, f"true_{key}"].mean()
        sd = np.sqrt(rates[key] * (1 - rates[key]) / n)
        assert abs(got - rates[key]) < 4 * sd + 1e-9, (key, got, n)
    # an exited household planted as 错退 really fails the standard: some by income, some by a guarantee
    we = hh[(st == 1) & (hh.true_wrongly_exited == 1)]
    pc = (we.wage_income + we.business_income - we.business_cost + we.property_income + we.transfer_income) / we["size"]
    assert (pc <= 3747).any() and (pc > 3747).any()


def test_default_rates_and_realistic_figures():
    frame = village_frame(["贵州", "河南"], 2, counties_per_province=1, villages_per_county=40)
    hh, ps = county_households(2, frame)
    st = hh.register_status
    assert hh.loc[st == 1, "true_wrongly_exited"].mean() < 0.03
    assert hh.loc[st >= 5, "true_missed"].mean() < 0.03
    assert 0.01 < hh.loc[st.between(2, 4), "true_wrongly_included"].mean() < 0.12
    # household sizes (SPEC §3.1): 低保 1.2–1.4, registered west larger than central
    assert 1.1 <= hh.loc[hh.dibao == 1, "size"].mean() <= 1.45
    west = hh.province_code == "520000"
    assert 3.2 <= hh.loc[west & (st == 1), "size"].mean() <= 3.9
    assert 2.3 <= hh.loc[~west & (st == 1), "size"].mean() <= 3.0
    # satisfaction: 认可度 about 95–98 % (every applicable item in the top-2 box)
    items = hh[["sat_policy", "sat_measures", "sat_results", "sat_cadres"]]
    rec = (items <= 2).all(axis=1) & (hh["sat_exit"].isna() | (hh["sat_exit"] <= 2))
    assert 0.94 <= rec.mean() <= 0.99
    assert hh.loc[st != 1, "sat_exit"].isna().all() and hh.loc[st == 1, "sat_exit"].notna().all()
    assert hh.loc[st == 1, "exit_year"].between(2014, 2019).all() and hh.loc[st != 1, "exit_year"].isna().all()
    assert (hh.loc[st <= 4, "causes"] != "").all() and (hh.loc[st >= 5, "causes"] == "").all()
    causes = hh.loc[st <= 4, "causes"].str.split().explode().value_counts() / (st <= 4).sum()
    assert 0.3 < causes["因病"] < 0.55


@pytest.mark.parametrize("year,lo,hi,status", [(2014, 1500, 2600, [2, 3]), (2020, 9000, 16000, [1])])
def test_registered_income_by_year(year, lo, hi, status):
    frame = village_frame(["湖南"], 4, counties_per_province=1, villages_per_county=30, year=year)
    hh, _ = county_households(4, frame, year=year)
    sel = hh[hh.register_status.isin(status)]
    pc = (sel.wage_income + sel.business_income - sel.business_cost + sel.property_income + sel.transfer_income) / sel["size"]
    assert lo <= pc.median() <= hi


def test_bad_arguments():
    with pytest.raises(SamplingError):
        village_frame(["北京"], 1)
    with pytest.raises(SamplingError):
        village_frame(["贵州"], 1, year=2013)
    frame = village_frame(["贵州"], 1, counties_per_province=1, villages_per_county=2)
    with pytest.raises(SamplingError):
        county_households(1, frame, error_rates={"missing": 0.1})
    bad = frame.iloc[0].copy()
    bad["persons_exited"] = bad["hh_exited"] - 1
    with pytest.raises(SamplingError, match="persons_exited"):
        village_households(1, bad)


def test_generate_population_files_equal_direct_generation(tmp_path):
    from sampling.readers import read_table

    s = generate_population(tmp_path / "pop", ["宁夏"], 7, counties_per_province=2, villages_per_county=3,
                            formats=("parquet", "csv"))
    frame = village_frame(["宁夏"], 7, counties_per_province=2, villages_per_county=3)
    hh, ps = county_households(7, frame)
    for fmt in ("parquet", "csv"):
        got_h = read_table(tmp_path / "pop" / f"households.{fmt}")
        got_p = read_table(tmp_path / "pop" / f"persons.{fmt}")
        assert got_h["household_id"].tolist() == hh["household_id"].tolist()
        assert got_p["id_number"].tolist() == ps["id_number"].tolist()
        assert got_h["true_missed"].sum() == hh["true_missed"].sum()
        v = read_table(tmp_path / "pop" / f"villages.{fmt}")
        assert v["village_code"].tolist() == frame["village_code"].tolist()
    assert s["households"] == len(hh) and s["persons"] == len(ps) and s["counties"] == 2
    meta = json.loads((tmp_path / "pop" / "population.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 7 and meta["truth_households"]["true_missed"] == int(hh["true_missed"].sum())


def test_generate_sav_has_chinese_value_labels(tmp_path):
    from sampling.readers import read_table

    generate_population(tmp_path, ["海南"], 1, counties_per_province=1, villages_per_county=1, formats=("sav",))
    got = read_table(tmp_path / "households.sav")
    assert got.attrs["value_labels"]["register_status"][1] == "已脱贫"
    assert got.attrs["variable_labels"]["head_name"] == "户主姓名"


def test_xlsx_refused_for_large_populations(tmp_path):
    with pytest.raises(SamplingError, match="Parquet"):
        generate_population(tmp_path, ["贵州"], 1, formats=("xlsx",))
    assert not any(tmp_path.iterdir())


def test_cli_population_generate(tmp_path):
    from tpa.cli import main

    out = tmp_path / "p"
    assert main(["population", "generate", "--provinces", "宁夏", "--counties-per-province", "1",
                 "--villages-per-county", "2", "--seed", "3", "--out", str(out), "--format", "csv",
                 "--error-rate", "missed=0.05"]) == 0
    assert (out / "households.csv").exists() and (out / "villages.csv").exists()
    assert json.loads((out / "population.json").read_text(encoding="utf-8"))["error_rates"]["missed"] == 0.05
    assert main(["population", "generate", "--out", str(out)]) == 2          # neither --provinces nor --all
    assert main(["population", "generate", "--provinces", "北京", "--out", str(out)]) == 2


def test_year_follows_the_frame():
    frame = village_frame(["陕西"], 8, counties_per_province=1, villages_per_county=2, year=2016)
    h1, p1 = village_households(8, frame.iloc[0])
    assert h1.loc[h1.register_status == 1, "exit_year"].max() <= 2016
    assert (p1["id_number"].str[6:10].astype(int) + p1["age"] == 2016).all()
    h2, _ = village_households(8, frame.iloc[0], year=2016)
    pd.testing.assert_frame_equal(h1, h2)


def test_no_contradictions_the_register_validators_flag(small):
    """SPEC §6 validators: the clean population must not trip them (errors are planted on purpose only)."""
    _, hh, ps = small
    assert not ((hh.business_income > 0) & (hh.business_cost == 0)).any()
    assert (hh[["wage_income", "business_income", "business_cost", "property_income", "transfer_income"]] >= 0).all().all()
    migrants = ps.loc[ps.migrant_months > 0, "household_id"].unique()
    assert (hh.set_index("household_id").loc[migrants, "wage_income"] > 0).all()
    assert ps["migrant_months"].between(0, 12).all()
    couple = ps[ps.relation.isin([1, 2])]
    pairs = couple.groupby("household_id").agg(n=("sex", "size"), sexes=("sex", "nunique"))
    assert not ((pairs.n == 2) & (pairs.sexes == 1)).any()
    students = set(ps.loc[ps.in_school == 1, "household_id"])
    ill = set(ps.loc[ps.health.isin([2, 3]), "household_id"])
    has = lambda word: hh.loc[hh.causes.str.split().apply(lambda c: word in c), "household_id"]  # noqa: E731
    assert set(has("因学")) <= students and set(has("因病")) <= ill
