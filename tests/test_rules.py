"""The rules object: built from the configuration, hashed, poverty lines by series/year/province."""
import pytest

from sampling.errors import ConfigError
from sampling.workspace import _merge, default_config
from survey.rules import Rules


def test_shipped_lines_follow_the_spec_table():
    r = Rules.defaults()
    assert r.series == "planning" and r.year == 2019
    # SPEC §4: planning series 2800 × 1.06ⁿ as published; NBS current-price line
    assert [r.line(year=y) for y in range(2014, 2021)] == [2800, 2968, 3146, 3335, 3535, 3747, 3972]
    assert r.line(year=2019, series="nbs") == 3218
    assert r.line(year=2016, series="nbs") == 2952
    assert r.line(year=2010, series="nbs") == 2300


@pytest.mark.parametrize("year", [2017, 2018, 2020])
def test_unconfirmed_nbs_line_must_be_configured(year):
    r = Rules.defaults(poverty_line={"series": "nbs"}, assessment={"year": year})
    with pytest.raises(ConfigError) as err:
        r.line("520000")
    text = str(err.value)
    assert f"poverty_line.nbs.{year}" in text and "not confirmed" in text and "[poverty_line.nbs]" in text
    configured = Rules.defaults(poverty_line={"series": "nbs", "nbs": {str(year): 3400}}, assessment={"year": year})
    assert configured.line("520000") == 3400


def test_province_override_number_and_per_year_table():
    r = Rules.defaults(poverty_line={"province_overrides": {"520000": 4000, "410000": {"2019": 3800}}})
    assert r.line("520000") == 4000
    assert r.line("520102") == 4000                     # a county code finds its province
    assert r.line("410000") == 3800
    assert r.line("410000", year=2018) == 3535          # no override for that year: the series
    assert r.line("430000") == 3747
    # the other series is always the national figure
    assert r.line("520000", series="nbs") == 3218


def test_bad_override_is_named():
    with pytest.raises(ConfigError, match="poverty_line.province_overrides.520000"):
        Rules.defaults(poverty_line={"province_overrides": {"520000": "lots"}})


def test_hash_is_stable_and_changes_with_any_rule():
    a = Rules.from_config(default_config())
    b = Rules.from_config(_merge(default_config(), {}))
    assert a.hash == b.hash and len(a.hash) == 16
    c = Rules.defaults(satisfaction={"top_box": 3})
    d = Rules.defaults(red_lines={"vehicle_value_yuan": 50000})
    assert len({a.hash, c.hash, d.hash}) == 3
    # the report section is not a scoring rule
    e = Rules.defaults(report={"summary_text": "x"})
    assert e.hash == a.hash


@pytest.mark.parametrize("section,value,key", [
    ({"satisfaction": {"top_box": 7}}, None, "satisfaction.top_box"),
    ({"satisfaction": {"rule": "most"}}, None, "satisfaction.rule"),
    ({"incidence": {"denominator": "everyone"}}, None, "incidence.denominator"),
    ({"incidence": {"missed_denominator": "x"}}, None, "incidence.missed_denominator"),
    ({"thresholds": {"missed_rate": ["<", 0.02]}}, None, "thresholds.missed_rate"),
    ({"thresholds": {"missed_rate": ["<=", 2]}}, None, "thresholds.missed_rate"),
    ({"assessment": {"units": {"missed_rate": "people"}}}, None, "assessment.units.missed_rate"),
    ({"poverty_line": {"household_size": "all"}}, None, "poverty_line.household_size"),
    ({"review": {"unreviewed": "maybe"}}, None, "review.unreviewed"),
])
def test_bad_values_name_the_key_and_the_fix(section, value, key):
    with pytest.raises(ConfigError) as err:
        Rules.defaults(**section)
    assert key in str(err.value) and "Fix:" in str(err.value)


def test_thresholds_by_region_and_counties_treated_as_west():
    r = Rules.defaults()
    assert r.threshold("incidence", "520102") == ("<=", 0.03)       # 贵州: west
    assert r.threshold("incidence", "410102") == ("<=", 0.02)       # 河南: central
    assert r.threshold("wrongly_exited_rate") == ("<=", 0.02)
    assert r.threshold("recognition_rate") == (">=", 0.90)
    assert r.threshold("identification_accuracy") is None           # regime A sets none by default
    w = Rules.defaults(regions={"counties_as_west": ["410102"]})
    assert w.threshold("incidence", "410102") == ("<=", 0.03)
    assert w.threshold("incidence", "410103") == ("<=", 0.02)


def test_regime_chooses_its_indicators_and_units():
    assert Rules.defaults().indicators == ("incidence", "wrongly_exited_rate", "missed_rate", "recognition_rate",
                                           "registered_rate_gate")
    a = Rules.defaults(assessment={"regime": "A"})
    assert a.indicators == ("identification_accuracy", "exit_accuracy", "satisfaction")
    c = Rules.defaults(assessment={"regime": "C", "indicators": ["missed_rate"]})
    assert c.indicators == ("missed_rate",)
    assert Rules.defaults().unit("recognition_rate") == "households"
    assert Rules.defaults().unit("wrongly_exited_rate") == "persons"
