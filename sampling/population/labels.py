"""Chinese value and variable labels of the population tables (written into SAV/DTA files)."""
from __future__ import annotations

from .profiles import STATUS_ZH

YES_NO = {0: "否", 1: "是"}
SATISFACTION = {1: "非常满意", 2: "满意", 3: "一般", 4: "不满意", 5: "非常不满意"}

VALUE_LABELS = {
    "register_status": dict(STATUS_ZH),
    "relation": {1: "户主", 2: "配偶", 3: "子女", 4: "父母", 5: "孙子女", 6: "兄弟姐妹", 7: "其他"},
    "sex": {1: "男", 2: "女"},
    "education": {0: "未上学", 1: "小学", 2: "初中", 3: "高中", 4: "大专及以上"},
    "school_exempt": {0: "无", 1: "送教上门", 2: "专家委员会认定不能就学"},
    "health": {1: "健康", 2: "长期慢性病", 3: "大病", 4: "残疾"},
    "labour": {1: "普通劳动力", 2: "技能劳动力", 3: "弱劳动力", 4: "丧失劳动力", 5: "无劳动力"},
    "insurance": {0: "未参保", 1: "城乡居民医保", 2: "职工医保"},
    **{c: SATISFACTION for c in ("sat_policy", "sat_measures", "sat_results", "sat_exit", "sat_cadres")},
    **{c: YES_NO for c in ("poor_village", "remote", "dibao", "dangerous_house", "chronic_illness", "no_labour",
                           "elderly_alone", "food_regular_protein", "food_stable", "clothing_seasonal",
                           "clothing_donation", "house_renovated", "water_quality_ok", "water_piped",
                           "rl_commercial_housing", "rl_company", "rl_empty_registration", "true_poor",
                           "true_wrongly_exited", "true_missed", "true_wrongly_included", "in_school",
                           "insurance_exempt", "public_servant", "village_committee", "poor_county")},
}

VARIABLE_LABELS = {
    "province_code": "省代码", "province_name": "省", "region": "区域（西部/中部）", "city_code": "市代码",
    "county_code": "县代码", "county_name": "县", "township_code": "乡镇代码", "township_name": "乡镇",
    "village_code": "行政村代码", "village_name": "行政村", "poor_village": "贫困村", "village_exit_year": "出列年份",
    "remote": "边远村", "terrain": "地形", "n_groups": "村民小组数", "households": "户数", "persons": "人数",
    "hh_registered": "建档立卡户数", "hh_exited": "已脱贫户数", "hh_not_exited": "未脱贫户数（含拟脱贫、监测户）",
    "hh_nonregistered": "非建档立卡户数", "persons_registered": "建档立卡人数", "persons_exited": "已脱贫人数",
    "persons_not_exited": "未脱贫人数", "persons_nonregistered": "非建档立卡人数", "rural_population": "乡村总人口",
    "poor_county": "国家级贫困县",
    "household_id": "户编号", "group_no": "村民小组", "head_name": "户主姓名", "head_id_number": "户主身份证号",
    "phone": "联系电话", "address": "住址", "gps_lat": "纬度", "gps_lon": "经度", "register_status": "户类型",
    "exit_year": "脱贫年度", "size": "户籍人数", "resident_size": "常住人数", "dibao": "低保户",
    "dangerous_house": "危房户", "chronic_illness": "大病慢性病户", "no_labour": "无劳力户", "elderly_alone": "独居老人户",
    "wage_income": "工资性收入", "business_income": "经营性收入", "business_cost": "生产经营支出",
    "property_income": "财产性收入", "transfer_income": "转移性收入", "exit_year_income_pc": "脱贫当年人均纯收入",
    "food_regular_protein": "经常吃肉蛋奶豆", "food_stable": "主粮稳定", "clothing_seasonal": "四季衣被齐全",
    "clothing_donation": "依赖捐助衣被", "house_grade": "房屋等级", "house_renovated": "已改造",
    "water_litres": "人均日供水量（升）", "water_quality_ok": "水质达标", "water_piped": "自来水入户",
    "water_round_trip_min": "取水往返时间（分钟）", "water_interrupt_days": "年停水天数", "causes": "致贫原因",
    "measures": "帮扶措施", "rl_vehicle_value": "车辆价值（元）", "rl_commercial_housing": "城镇商品房",
    "rl_company": "注册公司", "rl_empty_registration": "空挂户", "sat_policy": "政策满意度",
    "sat_measures": "帮扶措施满意度", "sat_results": "帮扶成效满意度", "sat_exit": "脱贫认可度",
    "sat_cadres": "干部帮扶满意度", "true_poor": "真实贫困（模拟）", "true_wrongly_exited": "真实错退（模拟）",
    "true_missed": "真实漏评（模拟）", "true_wrongly_included": "真实错评（模拟）",
    "person_id": "人员编号", "member_no": "成员序号", "name": "姓名", "id_number": "身份证号", "relation": "与户主关系",
    "sex": "性别", "age": "年龄", "ethnicity": "民族", "education": "文化程度", "in_school": "在校生",
    "school_exempt": "免于就学", "health": "健康状况", "labour": "劳动能力", "migrant_months": "务工月数",
    "insurance": "医疗保险", "insurance_exempt": "免于参保", "public_servant": "国家公职人员",
    "village_committee": "村委会成员",
}


def labels_for(columns) -> tuple[dict, dict]:
    cols = set(columns)
    return ({c: v for c, v in VALUE_LABELS.items() if c in cols},
            {c: v for c, v in VARIABLE_LABELS.items() if c in cols})
