"""The scoring and indicator rules of one assessment, built from its configuration (SPEC §2, §4).

Nothing here is a constant of the code: every value comes from ``assessment.toml`` (the shipped defaults in
``sampling/data/assessment.toml`` carry their sources). ``Rules.from_config(config)`` validates what scoring
needs and names the key and the fix when something is missing. ``rules.hash`` is a stable hash of the
configuration sections scoring and indicators read; it is stored with every household score, so a result
can always be traced to the rules that made it.

Shipped defaults and their sources (see the comments in ``assessment.toml``):

* poverty lines: SPEC §4 table. Planning series 2800 × 1.06ⁿ as published (2014–2020); NBS current-price
  series 2010–2016 and 2019. The NBS figures of 2017, 2018 and 2020 are not confirmed: using that series
  for those years without configuring the figure raises ``ConfigError``.
* 两不愁三保障: SPEC §4 (school age 6–15 in whole years; houses A/B safe, C/D only after renovation or
  relocation; water 35 L wet / 20 L dry, round trip ≤ 20 min, interruptions ≤ 36 days).
* red lines: SPEC §4 (public servant, village committee, vehicle ≥ 30,000 yuan, commercial housing, company,
  empty registration).
* satisfaction: top-2 box, all applicable items (SPEC §4).
* thresholds: SPEC §2 (incidence ≤ 2% central, ≤ 3% west; 错退率, 漏评率 ≤ 2%; 认可度 ≥ 90%; registered rate
  gate ≤ 3%). Comparisons use the unrounded value; exactly at the threshold passes.
Keys not in the shipped file yet (read with these defaults; the lead owns ``assessment.toml``):

* ``[review] unreviewed = "confirmed"``: a case the supervisor has not reviewed counts as confirmed;
  ``"suspected"`` shows it as suspected only.
* ``[estimation] rate_ci = "logit-truncated"``: the interval of the indicator rates (see
  ``survey.indicators``); ``korn-graubard-truncated``, ``wilson-truncated``, ``logit``, ``wilson``,
  ``clopper-pearson``, ``wald`` or ``t`` on request.
* ``[assessment] indicators = [...]``: the indicators of a provincial variant (regime C); A and B have theirs.
* ``[satisfaction] type_weights`` keys are ``register_status`` codes, e.g. ``{"1" = 0.4, "2" = 0.1, ...}``.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from sampling.errors import ConfigError
from sampling.geography import region as _region

SERIES = ("planning", "nbs")
SERIES_ZH = {"planning": "扶贫规划口径", "nbs": "国家统计局现价口径"}
REGISTERED = (1, 2, 3, 4)
NOT_EXITED = (2, 3, 4)
NONREGISTERED = (5, 6)
STATUS_ZH = {1: "已脱贫", 2: "未脱贫", 3: "当年拟脱贫", 4: "监测户", 5: "一般户", 6: "边缘户"}
INDICATOR_KEYS = ("incidence", "wrongly_exited_rate", "missed_rate", "recognition_rate",
                  "identification_accuracy", "exit_accuracy", "satisfaction", "registered_rate_gate")
REGIME_INDICATORS = {
    "A": ("identification_accuracy", "exit_accuracy", "satisfaction"),
    "B": ("incidence", "wrongly_exited_rate", "missed_rate", "recognition_rate", "registered_rate_gate"),
}
INCIDENCE_DENOMINATORS = ("rural_population", "agricultural_hukou", "rural_hukou", "rural_resident")
MISSED_DENOMINATORS = ("village_nonregistered", "surveyed_nonregistered")
RATE_CI = ("logit-truncated", "korn-graubard-truncated", "wilson-truncated", "logit", "wilson", "clopper-pearson",
           "korn-graubard", "wald", "t")
# the sections of the configuration that scoring and indicators read; their content is hashed
RULE_SECTIONS = ("assessment", "regions", "poverty_line", "production_costs", "guarantees", "red_lines",
                 "fell_back", "satisfaction", "thresholds", "incidence", "estimation", "review")


def _fail(key: str, message: str, fix: str):
    raise ConfigError(f"configuration key {key}: {message}", column=key, fix=fix)


def _year_table(table, key: str) -> dict[int, float]:
    out = {}
    for year, value in (table or {}).items():
        try:
            y = int(year)
        except (TypeError, ValueError):
            _fail(key, f"{year!r} is not a year", f"write lines as {key}.2019 = 3747")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            _fail(f"{key}.{year}", f"{value!r} is not a positive number of yuan",
                  f"set {key}.{year} to the line in yuan per person per year")
        out[y] = float(value)
    return out


@dataclass(frozen=True)
class Rules:
    """Every rule scoring and indicators use. Build with ``Rules.from_config(config)``."""

    year: int
    regime: str
    series: str
    lines: dict = field(repr=False)                 # series -> {year: line}
    province_overrides: dict = field(repr=False)    # province code -> line or {year: line}
    income_basis: str = "net"
    household_size: str = "registered"
    near_line_margin: float = 0.10
    impute_costs: bool = False
    cost_shares: dict = field(default_factory=dict, repr=False)
    guarantee_failure_is_poor: bool = True
    school_age_min: int = 6
    school_age_max: int = 15
    safe_house_grades: tuple = ("A", "B")
    water_rule: str = "2018"
    water_litres_wet: float = 35.0
    water_litres_dry: float = 20.0
    water_round_trip_minutes: float = 20.0
    water_interrupt_days_max: float = 36.0
    water_required_for_standard: bool = False
    dry_provinces: tuple = ()
    red_lines: dict = field(default_factory=dict, repr=False)
    unknown_exit_income_is_wrongly_exited: bool = True
    top_box: int = 2
    satisfaction_rule: str = "all"
    satisfaction_items: tuple = ("sat_policy", "sat_measures", "sat_results", "sat_exit", "sat_cadres")
    type_weights: dict = field(default_factory=dict, repr=False)
    thresholds: dict = field(default_factory=dict, repr=False)
    units: dict = field(default_factory=dict, repr=False)
    indicators: tuple = ()
    west_provinces: tuple = ()
    counties_as_west: tuple = ()
    incidence_denominator: str = "rural_population"
    missed_denominator: str = "village_nonregistered"
    level: float = 0.95
    prop_ci: str = "logit"
    rate_ci: str = "logit-truncated"
    df_normal: bool = False
    lonely_psu: str = "fail"
    unreviewed: str = "confirmed"
    hash: str = ""
    source: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: dict) -> "Rules":
        a = config.get("assessment", {})
        regime = a.get("regime")
        if regime not in ("A", "B", "C"):
            _fail("assessment.regime", f"must be A, B or C, not {regime!r}", 'set regime = "B" for the county exit check')
        year = a.get("year")
        if not isinstance(year, int):
            _fail("assessment.year", f"must be a year, not {year!r}", "set year = 2019")
        pl = config.get("poverty_line", {})
        series = pl.get("series")
        if series not in SERIES:
            _fail("poverty_line.series", f"must be planning or nbs, not {series!r}", 'set series = "planning"')
        lines = {s: _year_table(pl.get(s), f"poverty_line.{s}") for s in SERIES}
        overrides = {}
        for prov, value in (pl.get("province_overrides") or {}).items():
            key = f"poverty_line.province_overrides.{prov}"
            if isinstance(value, dict):
                overrides[str(prov)] = _year_table(value, key)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                overrides[str(prov)] = float(value)
            else:
                _fail(key, f"{value!r} is not a line", f'set {key} = 4000 or a table {{2019 = 4000}}')
        basis = pl.get("income_basis", "net")
        if basis not in ("net", "disposable"):
            _fail("poverty_line.income_basis", f"must be net or disposable, not {basis!r}", 'set income_basis = "net"')
        hsize = pl.get("household_size", "registered")
        if hsize not in ("registered", "resident"):
            _fail("poverty_line.household_size", f"must be registered or resident, not {hsize!r}",
                  'set household_size = "registered"')
        g = config.get("guarantees", {})
        if g.get("water_rule", "2018") not in ("2018", "2004"):
            _fail("guarantees.water_rule", f"must be \"2018\" or \"2004\", not {g.get('water_rule')!r}",
                  'set water_rule = "2018"')
        s = config.get("satisfaction", {})
        top_box = s.get("top_box", 2)
        if top_box not in (1, 2, 3, 4):
            _fail("satisfaction.top_box", f"must be 2 (top-2 box) or 3 (top-3), not {top_box!r}", "set top_box = 2")
        rule = s.get("rule", "all")
        if rule not in ("all", "majority"):
            _fail("satisfaction.rule", f"must be all or majority, not {rule!r}", 'set rule = "all"')
        inc = config.get("incidence", {})
        denom = inc.get("denominator", "rural_population")
        if denom not in INCIDENCE_DENOMINATORS:
            _fail("incidence.denominator", f"must be one of {', '.join(INCIDENCE_DENOMINATORS)}, not {denom!r}",
                  'set denominator = "rural_population"')
        mden = inc.get("missed_denominator", "village_nonregistered")
        if mden not in MISSED_DENOMINATORS:
            _fail("incidence.missed_denominator", f"must be one of {', '.join(MISSED_DENOMINATORS)}, not {mden!r}",
                  'set missed_denominator = "village_nonregistered"')
        thresholds = {}
        for key, value in (config.get("thresholds") or {}).items():
            ok = (isinstance(value, (list, tuple)) and len(value) == 2 and value[0] in ("<=", ">=")
                  and isinstance(value[1], (int, float)) and not isinstance(value[1], bool))
            if not ok:
                _fail(f"thresholds.{key}", f"{value!r} is not [direction, proportion]",
                      f'write thresholds.{key} = ["<=", 0.02]')
            if not 0 <= value[1] <= 1:
                _fail(f"thresholds.{key}", f"{value[1]!r} is not a proportion between 0 and 1",
                      "write 2% as 0.02")
            thresholds[key] = (value[0], float(value[1]))
        units = dict(a.get("units") or {})
        for key, unit in units.items():
            if unit not in ("persons", "households"):
                _fail(f"assessment.units.{key}", f"must be persons or households, not {unit!r}",
                      f'set {key} = "persons"')
        indicators = a.get("indicators")
        if indicators is None:
            indicators = REGIME_INDICATORS.get(regime, INDICATOR_KEYS)
        for key in indicators:
            if key not in INDICATOR_KEYS:
                _fail("assessment.indicators", f"unknown indicator {key!r}",
                      f"choose among {', '.join(INDICATOR_KEYS)}")
        e = config.get("estimation", {})
        level = e.get("level", 0.95)
        if not isinstance(level, (int, float)) or not 0.5 <= level < 1:
            _fail("estimation.level", f"{level!r} is not a confidence level", "set level = 0.95")
        rate_ci = e.get("rate_ci", "logit-truncated")
        if rate_ci not in RATE_CI:
            _fail("estimation.rate_ci", f"must be one of {', '.join(RATE_CI)}, not {rate_ci!r}",
                  'set rate_ci = "logit-truncated"')
        review = config.get("review", {}) or {}
        unreviewed = review.get("unreviewed", "confirmed")
        if unreviewed not in ("confirmed", "suspected"):
            _fail("review.unreviewed", f"must be confirmed or suspected, not {unreviewed!r}",
                  'set unreviewed = "confirmed"')
        rl = config.get("red_lines", {}) or {}
        fb = config.get("fell_back", {}) or {}
        regions = config.get("regions", {}) or {}
        source = {k: config.get(k) for k in RULE_SECTIONS if k in config}
        digest = hashlib.sha256(json.dumps(source, sort_keys=True, ensure_ascii=False, default=str)
                                .encode()).hexdigest()[:16]
        pc = config.get("production_costs", {}) or {}
        return cls(
            year=year, regime=regime, series=series, lines=lines, province_overrides=overrides,
            income_basis=basis, household_size=hsize,
            near_line_margin=float(pl.get("near_line_margin", 0.10)),
            impute_costs=bool(pc.get("impute", False)),
            cost_shares={k: float(v) for k, v in pc.items() if k != "impute"},
            guarantee_failure_is_poor=bool(g.get("guarantee_failure_is_poor", True)),
            school_age_min=int(g.get("school_age_min", 6)), school_age_max=int(g.get("school_age_max", 15)),
            safe_house_grades=tuple(g.get("safe_house_grades", ("A", "B"))),
            water_rule=str(g.get("water_rule", "2018")),
            water_litres_wet=float(g.get("water_litres_wet", 35)),
            water_litres_dry=float(g.get("water_litres_dry", 20)),
            water_round_trip_minutes=float(g.get("water_round_trip_minutes", 20)),
            water_interrupt_days_max=float(g.get("water_interrupt_days_max", 36)),
            water_required_for_standard=bool(g.get("water_required_for_standard", False)),
            dry_provinces=tuple(str(p) for p in g.get("dry_provinces", ())),
            red_lines=dict(rl),
            unknown_exit_income_is_wrongly_exited=bool(fb.get("unknown_exit_income_counts_as_wrongly_exited", True)),
            top_box=int(top_box), satisfaction_rule=rule,
            satisfaction_items=tuple(s.get("items", cls.satisfaction_items)),
            type_weights={str(k): float(v) for k, v in (s.get("type_weights") or {}).items()},
            thresholds=thresholds, units=units, indicators=tuple(indicators),
            west_provinces=tuple(str(p) for p in regions.get("west", ())),
            counties_as_west=tuple(str(c) for c in regions.get("counties_as_west", ())),
            incidence_denominator=denom, missed_denominator=mden,
            level=float(level), prop_ci=str(e.get("prop_ci", "logit")), rate_ci=rate_ci, df_normal=bool(e.get("df_normal", False)),
            lonely_psu=str(e.get("lonely_psu", "fail")), unreviewed=unreviewed, hash=digest, source=source,
        )

    @classmethod
    def defaults(cls, **overrides) -> "Rules":
        """The shipped defaults, with top-level config sections replaced/merged by ``overrides``."""
        from sampling.workspace import _merge, default_config

        return cls.from_config(_merge(default_config(), overrides))

    def to_json(self) -> str:
        """The configuration these rules were built from (what the hash covers)."""
        return json.dumps(self.source, sort_keys=True, ensure_ascii=False, default=str)

    # ------------------------------------------------------------------ poverty lines
    @property
    def other_series(self) -> str:
        return "nbs" if self.series == "planning" else "planning"

    def line(self, province_code=None, year: int | None = None, series: str | None = None) -> float:
        """The poverty line (yuan per person per year) for a province and year.

        A province override (``poverty_line.province_overrides``) applies to the assessment's own series;
        asking for the other series explicitly gives the national figure of that series.
        """
        year = self.year if year is None else int(year)
        explicit = series is not None
        series = self.series if series is None else series
        if series not in SERIES:
            raise ConfigError(f"unknown poverty-line series {series!r}", fix="use planning or nbs")
        if province_code is not None and not explicit:
            prov = str(province_code)[:2] + "0000"
            ov = self.province_overrides.get(prov)
            if isinstance(ov, float):
                return ov
            if isinstance(ov, dict) and year in ov:
                return ov[year]
        table = self.lines[series]
        if year not in table:
            if series == "nbs" and year in (2017, 2018, 2020):
                why = f"the NBS line of {year} is not confirmed (SPEC §4) and must be configured"
            else:
                why = f"no {series} poverty line is configured for {year}"
            raise ConfigError(f"configuration key poverty_line.{series}.{year}: {why}",
                              column=f"poverty_line.{series}.{year}",
                              fix=f"add `{year} = <yuan>` under [poverty_line.{series}] in assessment.toml, "
                                  f"or choose the other series with poverty_line.series")
        return table[year]

    def line_or_nan(self, province_code=None, year=None, series=None) -> float:
        try:
            return self.line(province_code, year, series)
        except ConfigError:
            return math.nan

    def line_label_zh(self, year=None) -> str:
        return f"{SERIES_ZH[self.series]}{self.year if year is None else year}年"

    # ------------------------------------------------------------------ places and thresholds
    def region(self, code) -> str:
        code = str(code)
        if code[:6] in self.counties_as_west:
            return "west"
        prov = code[:2] + "0000"
        if self.west_provinces:
            return "west" if prov in self.west_provinces else "central"
        return _region(code, self.counties_as_west)

    def is_dry(self, province_code) -> bool:
        return str(province_code)[:2] + "0000" in self.dry_provinces

    def threshold(self, key: str, code=None):
        """(direction, value) for an indicator at a place, or None when the assessment sets none."""
        if key == "incidence":
            reg = self.region(code) if code is not None else "central"
            return self.thresholds.get(f"incidence_{reg}", self.thresholds.get("incidence"))
        return self.thresholds.get(key)

    def unit(self, key: str) -> str:
        default = "households" if key in ("recognition_rate", "satisfaction") else "persons"
        return self.units.get(key, default)
