"""Design files: presets, validation errors that name the key and the fix, YAML and TOML alike."""
import json

import pytest

from sampling.design import design_from_json, design_from_text, load_design, preset_names
from sampling.errors import DesignError

BASE = """
[county]
method = "take_all"
[village]
method = "pps_systematic"
size = "households"
[[village.strata]]
name = "poor"
where = { poor_village = 1 }
n = 3
[household]
method = "srs"
[[household.strata]]
name = "exited"
where = { register_status = 1 }
n = 5
"""


def test_presets_ship_exit_check_annual_and_local_rules():
    names = preset_names()
    for name in ("exit_check", "annual", "local_4or6_villages", "local_50plus10", "local_20pct"):
        assert name in names
        d = load_design(name)
        assert d.name == name and d.title and d.source
    exit_check = load_design("exit_check")
    assert exit_check.county.method == "take_all"
    v = {s.name: s for s in exit_check.village.strata}
    assert v["remote_poor"].where == {"poor_village": [1], "remote": [1]}
    # poor : non-poor = 2 : 1 and about 27 villages
    assert v["remote_poor"].n + v["poor"].n == 2 * v["nonpoor"].n
    assert 25 <= sum(s.n for s in exit_check.village.strata) <= 30
    h = {s.name: s for s in exit_check.household.strata}
    assert h["risk"].take_all and h["risk"].groups == 1 and exit_check.household.strata[0].name == "risk"
    annual = load_design("annual")
    assert annual.county.by == ["province_code"] and annual.county.n == 5
    assert annual.county.method == "pps_systematic"
    assert load_design("local_20pct").household.strata[0].rate == 0.2
    assert load_design("local_20pct").household.strata[0].max_n == 200
    rule = load_design("local_50plus10").household.strata[0].n_rule
    assert rule == {"column": "hh_registered", "at_least": 50.0, "n": 50, "otherwise": 25}


def test_design_json_round_trip_and_stable_digest():
    for name in preset_names():
        d = load_design(name)
        again = design_from_json(d.to_json())
        assert again.to_json() == d.to_json()
        assert again.digest() == d.digest()


def test_yaml_and_toml_give_the_same_design(tmp_path):
    import tomllib

    import yaml

    data = tomllib.loads(BASE)
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (tmp_path / "d.toml").write_text(BASE, encoding="utf-8")
    a = load_design(tmp_path / "d.yaml")
    b = load_design(tmp_path / "d.toml")
    assert a.to_json() == b.to_json()


@pytest.mark.parametrize("edit, key, fix_word", [
    (("method = \"srs\"", "method = \"random\""), "household.method", "srs"),
    (("n = 3", "n = 3\nsample = 4"), "village.strata[0].sample", "remove"),
    (("n = 3", "n = -1"), "village.strata[0].n", ">= 0"),
    (("n = 3", "n = 2.5"), "village.strata[0].n", "whole"),
    (('size = "households"', ""), "village.size", "size"),
    (("n = 5", "n = 5\nrate = 0.2"), "household.strata[0].rate", "keep one"),
    (("n = 5", "rate = 1.5"), "household.strata[0].rate", "range"),
    (("n = 5", "take_all = true\ngroups = 0"), "household.strata[0].groups", "at least"),
    (("n = 3", "groups = 1"), "village.strata[0].groups", "take_all"),
    (('name = "poor"', 'name = "贫困"'), "village.strata[0].name", "label"),
    (("n = 5", "purposive = true"), "household.strata[0].units", "units"),
    (('method = "srs"', 'method = "pps_systematic"\nsize = "size"'), "household.method", "srs"),
])
def test_errors_name_the_key_and_the_fix(edit, key, fix_word):
    text = BASE.replace(*edit, 1)
    with pytest.raises(DesignError) as err:
        design_from_text(text)
    assert err.value.column == key
    assert fix_word in (err.value.fix or "") or fix_word in err.value.message
    assert key in str(err.value)


def test_missing_stage_and_missing_size():
    with pytest.raises(DesignError, match="missing stage") as err:
        design_from_text(BASE.split("[household]")[0])
    assert err.value.column == "household"
    text = BASE.replace("n = 3", "")
    with pytest.raises(DesignError, match="no sample size") as err:
        design_from_text(text)
    assert "allocated" in err.value.fix


def test_stage_allocation_and_precision_target_parse():
    text = BASE.replace("n = 3", "").replace('size = "households"', 'size = "households"\nn = 6\n'
                                                                      'allocation = "power"\nq = 0.5\nmin_n = 1')
    d = design_from_text(text)
    assert d.village.n == 6 and d.village.allocation == "power" and d.village.q == 0.5
    text = BASE.replace("n = 5", "n = { margin = 0.05, p = 0.1, deff = 1.5, per = \"county\" }")
    d = design_from_text(text)
    assert d.household.strata[0].target["per"] == "county"
    with pytest.raises(DesignError) as err:
        design_from_text(BASE.replace('size = "households"', 'size = "households"\nn = 6\nallocation = "neyman"')
                         .replace("n = 3", ""))
    assert err.value.column == "village.strata[0].sd"


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(DesignError, match="neither a design file nor a preset") as err:
        load_design("exitcheck")
    assert "exit_check" in err.value.fix
    with pytest.raises(DesignError, match="not found"):
        load_design(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[county\n", encoding="utf-8")
    with pytest.raises(DesignError, match="not valid TOML") as err:
        load_design(bad)
    assert err.value.file == str(bad)


def test_design_json_is_canonical_text():
    d = load_design("exit_check")
    parsed = json.loads(d.to_json())
    assert parsed["village"]["strata"][0]["name"] == "remote_poor"
    assert "origin" not in parsed
