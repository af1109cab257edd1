"""Clean questionnaire tables for the codebook and validation tests (small, deterministic)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from sampling.idnumber import check_digit


def id_number(region: str, birth: str, seq: int) -> str:
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + check_digit(first17)


def households(n: int = 4, status: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n clean registered households of 3 members each (head man 45, spouse woman 43, child 10 in school)."""
    rows, members = [], []
    for i in range(n):
        hid = f"520102001001{i + 1:04d}"
        rows.append({
            "household_id": hid, "village_code": "520102001001", "county_code": "520102", "province_code": "520000",
            "interview_start": "2019-05-01 09:00:00", "interview_end": "2019-05-01 10:00:00",
            "enumerator_1": "张三", "enumerator_2": "李四", "gps_lat": "26.5", "gps_lon": "106.7",
            "head_name": "王五", "head_id_number": id_number("520102", "19740301", 11 + 2 * i),
            "phone": "13800000000", "register_status": status,
            "exit_year": 2018 if status == 1 else None, "exit_year_income_pc": 5200 if status == 1 else None,
            "declared_size": 3, "resident_size": 3, "causes": "因病 缺资金" if status <= 4 else None,
            "dibao": 0, "dangerous_house": 0, "chronic_illness": 1, "no_labour": 0, "elderly_alone": 0,
            "food_regular_protein": 1, "food_stable": 1, "clothing_seasonal": 1, "clothing_donation": 0,
            "house_grade": "B", "house_renovated": 0, "water_litres": 60, "water_quality_ok": 1, "water_piped": 1,
            "water_round_trip_min": 0, "water_interrupt_days": 2, "measures": "产业 健康",
            "wage_income": 20000, "business_income": 8000, "business_cost": 3000, "property_income": 0,
            "transfer_income": 2000, "net_income_declared": 27000, "rl_vehicle_value": 0,
            "rl_commercial_housing": 0, "rl_company": 0, "rl_empty_registration": 0,
            "sat_policy": 1, "sat_measures": 2, "sat_results": 1, "sat_exit": 1 if status == 1 else None,
            "sat_cadres": 1,
        })
        for no, (rel, sex, age, birth, edu, school, health) in enumerate([
                (1, 1, 45, "19740301", 2, 0, 2), (2, 2, 43, "19760615", 1, 0, 1),
                (3, 1, 10, "20090101", 1, 1, 1)], start=1):
            seq = 11 + 2 * i if sex == 1 else 12 + 2 * i
            if no == 1:
                idn = rows[-1]["head_id_number"]
            else:
                idn = id_number("520102", birth, seq + 100 * no)
            members.append({
                "household_id": hid, "member_no": no, "person_id": f"{hid}{no:02d}", "name": f"成员{no}",
                "id_number": idn, "relation": rel, "sex": sex, "age": age, "ethnicity": "汉族", "education": edu,
                "in_school": school, "school_exempt": 0 if not school else None, "health": health, "labour": 1,
                "migrant_months": 6 if no == 1 else 0, "insurance": 1, "insurance_exempt": 0, "public_servant": 0,
                "village_committee": 0,
            })
    main = pd.DataFrame(rows).astype(object)
    roster = pd.DataFrame(members).astype(object)
    # As a CSV reader delivers them: text everywhere, empty cells missing.
    main = main.map(lambda x: None if x is None or (isinstance(x, float) and np.isnan(x)) else str(x))
    roster = roster.map(lambda x: None if x is None or (isinstance(x, float) and np.isnan(x)) else str(x))
    main.insert(0, "_row", range(2, len(main) + 2))
    roster.insert(0, "_row", range(2, len(roster) + 2))
    return main, roster


def villages(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "village_code": [f"520102001{i + 1:03d}" for i in range(n)], "county_code": "520102",
        "interview_date": "2019-05-01", "households": 300, "persons": 1200, "persons_registered": 200,
        "persons_exited": 150, "persons_nonregistered": 1000, "poor_village": 1, "remote": 0, "terrain": "山区",
    })


def drawn_workspace(base, seed: int, villages_per_county: int, draw_seed: int):
    """A workspace with an annual draw from a generated 宁夏 population of one county: (workspace, population
    folder)."""
    from sampling.draw import draw_sample
    from sampling.population import generate_population
    from sampling.workspace import init_workspace

    pop = base / "pop"
    generate_population(pop, ["宁夏"], seed, counties_per_province=1, villages_per_county=villages_per_county,
                        year=2019)
    ws = init_workspace(base / "ws", year=2019)
    draw_sample(ws, "annual", draw_seed, villages=pop / "villages.parquet", households=pop / "households.parquet",
                write_lists=False)
    return ws, pop
