"""The report charts: small hand-written SVG documents, well formed, with their labels as text."""
import math
import xml.etree.ElementTree as ET

from reports import charts

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    w, h = (float(root.get(k)[:-2]) for k in ("width", "height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')[:-2]} {root.get('height')[:-2]}"
    assert w > 0 and h > 0
    return root, w, h


def _inside(root, w, h):
    """Every coordinate of every shape lies on the canvas."""
    for el in root.iter():
        for k in ("x", "x1", "x2", "cx"):
            if el.get(k) is not None:
                assert -0.5 <= float(el.get(k)) <= w + 0.5, (el.tag, k, el.get(k))
        for k in ("y", "y1", "y2", "cy"):
            if el.get(k) is not None:
                assert -0.5 <= float(el.get(k)) <= h + 0.5, (el.tag, k, el.get(k))


def _ind(name, official, est, lo, hi, thr, direction="<=", passed=True):
    return {"name_zh": name, "official": official, "estimate": est, "ci_low": lo, "ci_high": hi,
            "threshold": thr, "direction": direction, "passed": passed, "zero_upper": None}


def test_indicator_chart_has_a_panel_per_indicator_and_a_legend():
    inds = [_ind("综合贫困发生率", 0.012, 0.021, 0.0116, 0.0307, 0.02),
            _ind("群众认可度", 0.968, 0.963, 0.95, 0.973, 0.9, ">="),
            _ind("无数据", None, None, None, None, 0.02)]
    root, w, h = _parse(charts.indicator_chart(inds))
    _inside(root, w, h)
    texts = charts.svg_texts(charts.indicator_chart(inds))
    assert "综合贫困发生率" in texts and "群众认可度" in texts and "无数据" not in texts
    for label in ("加权估计", "样本比率", "95%置信区间", "标准（阈值）"):
        assert label in texts
    assert "2.0%" in texts and "90%" in texts              # tick labels in percent
    assert len(root.findall(f"{NS}polygon")) == 3             # two diamonds and the legend's
    assert charts.indicator_chart([_ind("x", None, None, None, None, None)]) is None


def test_compare_chart_lists_every_place_and_fits_long_titles():
    rows = [{"label": f"第{k}县", "official": 0.01 * k, "ci_low": 0.005 * k, "ci_high": 0.02 * k,
             "passed": k != 3} for k in range(1, 8)]
    rows.append({"label": "无数据县", "official": None})
    panels = [{"name_zh": "建档立卡贫困发生率（退出门槛）", "threshold": 0.03, "direction": "<=", "rows": rows}
              for _ in range(5)]
    svg = charts.compare_chart(panels)
    root, w, h = _parse(svg)
    _inside(root, w, h)
    texts = charts.svg_texts(svg)
    for r in rows:
        assert r["label"] in texts
    fills = {el.get("fill") for el in root.iter(f"{NS}rect")}
    assert charts._blend(charts.COLORS["fail"], 0.75) in fills and charts._blend(charts.COLORS["pass"], 0.75) in fills
    titles = [el for el in root.iter(f"{NS}text") if el.text == "建档立卡贫困发生率（退出门槛）"]
    assert len(titles) == 5
    panel = (w * 0.98 - 40) / 5
    for t in titles:
        assert charts.text_width(t.text, float(t.get("font-size"))) <= panel * 1.3   # shrunk to its panel
    assert charts.compare_chart([{"name_zh": "x", "rows": [{"label": "a", "official": None}]}]) is None


def test_shortfall_and_satisfaction_charts():
    items = [{"label": "不愁吃", "share": 0.0018, "failed": 2}, {"label": "饮水安全", "share": 0.0088, "failed": 10},
             {"label": "住房安全保障", "share": None, "failed": 0}]
    svg = charts.shortfall_chart(items)
    root, w, h = _parse(svg)
    _inside(root, w, h)
    assert "0.88%（10户）" in charts.svg_texts(svg) and "饮水安全" in charts.svg_texts(svg)
    sat_items = [{"key": "a", "label": "政策认可"}, {"key": "b", "label": "脱贫退出"}]
    sat_rows = [{"label": "已脱贫", "n": 405, "rates": [1.0, 0.9926]},
                {"label": "一般户", "n": 642, "rates": [0.9969, None]},
                {"label": "空", "n": 0, "rates": [None, None]},
                {"label": "未脱贫", "n": 27, "rates": [math.nan, 1.0]}]
    svg = charts.satisfaction_chart(sat_items, sat_rows)
    root, w, h = _parse(svg)
    _inside(root, w, h)
    texts = charts.svg_texts(svg)
    assert "已脱贫" in texts and "一般户" in texts and "空" not in texts and "100%" in texts
    bars = [el for el in root.iter(f"{NS}rect") if float(el.get("height")) > 6.5]
    assert len(bars) == 4                                        # missing rates draw no bar
    assert charts.shortfall_chart([]) is None and charts.satisfaction_chart([], sat_rows) is None


def test_ticks_are_round_and_labels_have_the_decimals_the_step_needs():
    ticks, step = charts._ticks(0.0, 0.035)
    assert step == 0.005 and ticks[0] == 0 and abs(ticks[-1] - 0.035) < 1e-12
    assert [charts._pct_label(t, step) for t in ticks[:3]] == ["0%", "0.5%", "1.0%"]
    ticks, step = charts._ticks(0.88, 0.99, most=3)
    assert len(ticks) <= 4 and all(0.88 <= t <= 0.99 for t in ticks)
    assert charts._pct_label(0.95, 0.05) == "95%"


def test_markup_in_labels_is_escaped():
    svg = charts.compare_chart([{"name_zh": "<b>率</b>", "threshold": None, "direction": "<=",
                                 "rows": [{"label": "A&B县", "official": 0.1}]}])
    _parse(svg)
    assert "A&amp;B县" in svg and "&lt;b&gt;" in svg and "<b>" not in svg
