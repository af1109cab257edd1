"""Small hand-built frames for the draw tests: every stratum of the shipped designs is present and small, so
that inclusion probabilities are far from 0 and 1 and a few hundred draws test them."""
from __future__ import annotations

import numpy as np
import pandas as pd

RISK = ["dibao", "dangerous_house", "chronic_illness", "no_labour", "elderly_alone"]


def small_frames(n_prov=1, n_county=4, n_vill=8, hh_per=(10, 20), seed=0):
    rng = np.random.default_rng(seed)
    vrows, hrows = [], []
    for p in range(n_prov):
        pc = f"{52 + p:02d}0000"
        for c in range(n_county):
            cc = f"{52 + p:02d}01{c + 1:02d}"
            for v in range(n_vill):
                tc = cc + f"{v // 4 + 1:03d}000"
                vc = cc + f"{v // 4 + 1:03d}{v + 1:03d}"
                poor = int(v % 3 != 2)
                remote = int(poor and v % 4 == 0)
                nh = int(rng.integers(*hh_per))
                ng = int(rng.integers(2, 4))
                status = rng.choice([1, 2, 3, 5, 6], size=nh, p=[0.35, 0.05, 0.05, 0.5, 0.05])
                for h in range(nh):
                    row = dict(household_id=vc + f"{h + 1:04d}", village_code=vc, township_code=tc, county_code=cc,
                               province_code=pc, group_no=int(h % ng) + 1, head_name=f"张{c}{v}{h}",
                               phone=f"138{c:02d}{v:02d}{h:04d}", address=f"{v}村{h}号", register_status=int(status[h]),
                               size=int(rng.integers(1, 6)))
                    for k, f in enumerate(RISK):
                        row[f] = int(status[h] >= 5 and rng.random() < 0.12)
                    hrows.append(row)
                reg = int((status <= 4).sum())
                vrows.append(dict(
                    province_code=pc, province_name="贵州省", region="west", city_code=cc[:4] + "00",
                    county_code=cc, county_name=f"测试{c + 1}县", township_code=tc, township_name=f"乡{v // 4 + 1}",
                    village_code=vc, village_name=f"村{v + 1}", poor_village=poor, remote=remote, n_groups=ng,
                    households=nh, persons=nh * 3, hh_registered=reg, persons_registered=reg * 3 + 5 * c,
                    persons_exited=int((status == 1).sum()) * 3, persons_not_exited=int((status == 2).sum()) * 3,
                    hh_nonregistered=nh - reg))
    return pd.DataFrame(vrows), pd.DataFrame(hrows)


STAT_DESIGN = """
[design]
name = "stat_test"
[county]
method = "pps_systematic"
size = "persons_registered"
n = 2
[village]
method = "pps_systematic"
size = "households"
[[village.strata]]
name = "remote_poor"
where = { poor_village = 1, remote = 1 }
n = 1
[[village.strata]]
name = "poor"
where = { poor_village = 1 }
n = 2
[[village.strata]]
name = "nonpoor"
where = { poor_village = 0 }
n = 1
[household]
method = "srs"
reserve = 2
[[household.strata]]
name = "risk"
where = { register_status = [5, 6] }
any_flag = ["dibao", "dangerous_house", "chronic_illness", "no_labour", "elderly_alone"]
take_all = true
groups = 1
[[household.strata]]
name = "exited"
where = { register_status = 1 }
n = 4
[[household.strata]]
name = "not_exited"
where = { register_status = [2, 3] }
n = 1
method = "systematic"
[[household.strata]]
name = "nonregistered"
where = { register_status = [5, 6] }
n = 4
"""
