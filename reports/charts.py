"""Vector charts of the reports, written directly as small SVG documents.

Each function takes plain data (lists of dicts, as in the report context) and returns the SVG as a string
(``None`` when there is nothing to draw). Text stays text in the report's own font family, so WeasyPrint
draws it with the embedded run font and the chart labels can be extracted from the PDF.

The SVG is built by hand rather than with matplotlib: matplotlib's SVG costs about 0.7 s of CPU per report
to produce and, with its hundreds of nodes (tick marks as ``<use>`` of ``<defs>``, clip paths, one style per
element), as much again for WeasyPrint to draw. These charts are a few dozen plain shapes each. Coordinates
are points (1/72 in), the figure sizes those the matplotlib versions had; the stylesheet scales every chart
to the text width. ``svg_texts`` lists the labels of a chart for the glyph-coverage check.
"""
from __future__ import annotations

import html
import math
import re

from .fonts import FAMILY
from .formatting import pct

COLORS = {"pass": "#2b7a3d", "fail": "#b3261e", "none": "#555555", "bar": "#3b6ea8", "ci": "#222222",
          "thr": "#b3261e", "light": "#9bb7d8"}
PALETTE = ["#1f4e79", "#3b6ea8", "#6f9fd8", "#9bb7d8", "#c9a227", "#8c6d1f", "#555555"]
AXIS = "#222222"
DASH = "3.7,1.6"


# ---------------------------------------------------------------------------------------------- drawing
def _blend(color: str, alpha: float) -> str:
    """``color`` at ``alpha`` over white, as an opaque colour: the same look as a transparent fill without
    the transparency group WeasyPrint would make for each shape."""
    r, g, b = (int(color[k:k + 2], 16) for k in (1, 3, 5))
    return "#%02x%02x%02x" % tuple(round(c * alpha + 255 * (1 - alpha)) for c in (r, g, b))


def _n(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def text_width(s: str, size: float) -> float:
    """Approximate advance width of ``s`` in points (Noto Sans CJK: ideographs and full-width forms are one
    em, Latin and digits about half an em). Used only to leave room for labels."""
    w = 0.0
    for c in s:
        o = ord(c)
        if o >= 0x2E80 or 0xFF01 <= o <= 0xFF60:
            w += 1.0
        elif c in ".,:;!|'ijl ":
            w += 0.28
        elif c in "%mwMW":
            w += 0.86
        else:
            w += 0.57
    return w * size


class _Svg:
    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.parts: list[str] = []

    def line(self, x1, y1, x2, y2, color=AXIS, width=0.8, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{color}" '
                          f'stroke-width="{_n(width)}"{d}/>')

    def rect(self, x, y, w, h, color):
        if w < 0:
            x, w = x + w, -w
        self.parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{color}"/>')

    def circle(self, cx, cy, r, color):
        self.parts.append(f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r)}" fill="{color}"/>')

    def diamond(self, cx, cy, r, color):
        pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in ((cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)))
        self.parts.append(f'<polygon points="{pts}" fill="{color}"/>')

    def text(self, x, y, s, size, anchor="start", color="#000000"):
        """``y`` is the baseline."""
        a = f' text-anchor="{anchor}"' if anchor != "start" else ""
        self.parts.append(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{color}"{a}>'
                          f'{html.escape(str(s), quote=False)}</text>')

    def svg(self) -> str:
        w, h = _n(self.width), _n(self.height)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}pt" height="{h}pt" viewBox="0 0 {w} {h}" '
                f'font-family="{FAMILY}">' + "".join(self.parts) + "</svg>")


# ---------------------------------------------------------------------------------------------- axes
def _ticks(lo: float, hi: float, most: int = 7) -> tuple[list[float], float]:
    """Round tick values (steps 1, 2, 2.5, 5 × 10^k) inside [lo, hi], at most ``most`` + 1 of them."""
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 0.01
    mag = 10 ** math.floor(math.log10(span / most))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        step = m * mag
        if span / step <= most + 1e-9:
            break
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)], step


def _pct_label(v: float, step: float) -> str:
    """A tick value in percent with as many decimals as the step needs (0.5% steps print one)."""
    if abs(v) < 1e-12:
        return "0%"
    s = step * 100
    d = next((d for d in range(0, 5) if abs(round(s, d) - s) < 1e-9), 4)
    return f"{v * 100:.{d}f}%"


class _Scale:
    def __init__(self, lo, hi, p0, p1):
        self.lo, self.hi, self.p0, self.p1 = lo, hi, p0, p1
        self.k = (p1 - p0) / (hi - lo) if hi > lo else 0.0

    def __call__(self, v):
        return self.p0 + (v - self.lo) * self.k


def _x_axis(svg: _Svg, sx: _Scale, y: float, size: float = 7.0, most: int = 8):
    svg.line(sx.p0, y, sx.p1, y, width=0.8)
    ticks, step = _ticks(sx.lo, sx.hi, most)
    for t in ticks:
        x = sx(t)
        svg.line(x, y, x, y + 2, width=0.8)
        svg.text(x, y + 2.5 + size, _pct_label(t, step), size, "middle")


def _color(passed) -> str:
    return COLORS["none"] if passed is None else COLORS["pass" if passed else "fail"]


# ---------------------------------------------------------------------------------------------- charts
def indicator_chart(indicators: list[dict]) -> str | None:
    """One small panel per indicator: official ratio (diamond), design-based estimate with its 95% interval
    (dot and bar), threshold (red dashed line). Each panel has its own scale (1% rates and 95% recognition)."""
    inds = [i for i in indicators if i.get("official") is not None]
    if not inds:
        return None
    width, panel, top, legend = 453.6, 56.2, 6.0, 26.0
    svg = _Svg(width, top + panel * len(inds) + legend)
    x0, x1 = width * 0.03, width * 0.97
    for k, ind in enumerate(inds):
        y0 = top + k * panel
        vals = [v for v in (ind.get("official"), ind.get("estimate"), ind.get("ci_low"), ind.get("ci_high"),
                            ind.get("threshold"), ind.get("zero_upper")) if v is not None]
        lo, hi = min(vals), max(vals)
        pad = max((hi - lo) * 0.25, 0.002)
        sx = _Scale(max(0.0, lo - pad), min(1.0, hi + pad), x0, x1)
        svg.text(x0, y0 + 10, ind["name_zh"], 9)
        base = y0 + 38                        # the axis line; marks sit above it
        mid, upper = base - 11, base - 21
        if ind.get("threshold") is not None:
            svg.line(sx(ind["threshold"]), y0 + 14, sx(ind["threshold"]), base, COLORS["thr"], 1, DASH)
        if ind.get("ci_low") is not None and ind.get("ci_high") is not None:
            a, b = sx(ind["ci_low"]), sx(ind["ci_high"])
            svg.line(a, mid, b, mid, COLORS["ci"], 1.6)
            svg.line(a, mid - 3.5, a, mid + 3.5, COLORS["ci"], 1)
            svg.line(b, mid - 3.5, b, mid + 3.5, COLORS["ci"], 1)
        if ind.get("estimate") is not None:
            svg.circle(sx(ind["estimate"]), mid, 2.6, COLORS["bar"])
        svg.diamond(sx(ind["official"]), upper, 3.4, _color(ind.get("passed")))
        _x_axis(svg, sx, base)
    # legend, centred under the panels
    y = top + panel * len(inds) + 12
    items = [("o", "加权估计"), ("d", "样本比率"), ("l", "95%置信区间"), ("t", "标准（阈值）")]
    widths = [22 + text_width(label, 7) + 14 for _, label in items]
    x = (width - sum(widths)) / 2
    for (kind, label), w in zip(items, widths):
        if kind == "o":
            svg.circle(x + 9, y - 2.5, 2.6, COLORS["bar"])
        elif kind == "d":
            svg.diamond(x + 9, y - 2.5, 3.4, COLORS["pass"])
        else:
            svg.line(x, y - 2.5, x + 18, y - 2.5, COLORS["ci"] if kind == "l" else COLORS["thr"],
                     1.6 if kind == "l" else 1, None if kind == "l" else DASH)
        svg.text(x + 22, y, label, 7)
        x += w
    return svg.svg()


def compare_chart(panels: list[dict], unit_label: str = "县") -> str | None:
    """Places (counties, or provinces in the national summary) compared on several indicators in ONE figure:
    one panel per indicator side by side, places on the shared vertical axis; bar = official ratio (green
    passes, red fails, grey no verdict), whisker = 95% interval, dashed line = threshold.
    ``panels``: dicts with ``name_zh``, ``threshold``, ``direction`` and ``rows`` (``label``, ``official``,
    ``ci_low``, ``ci_high``, ``passed``), all panels listing the same places in the same order."""
    panels = [p for p in panels if any(r.get("official") is not None for r in p["rows"])]
    if not panels:
        return None
    labels = [str(r["label"]) for r in panels[0]["rows"]]
    n = len(labels)
    width = 468.0
    row = 14.4
    top, bottom = 23.0, 21.6
    height = top + bottom + row * (n + 0.4)
    svg = _Svg(width, height)
    left = min(width * 0.3, max(text_width(x, 7) for x in labels) + 10)
    right = width * 0.98
    gap_share = 0.3                                  # space between panels, as a share of a panel's width
    pw = (right - left) / (len(panels) + gap_share * (len(panels) - 1))
    y_top, y_bottom = top, height - bottom

    def yc(i):                                       # centre of the i-th place (first place on top)
        return y_top + row * (i + 0.5 + 0.2)

    title_size = 7.5 if len(panels) < 5 else 6.5
    for k, p in enumerate(panels):
        px0 = left + k * pw * (1 + gap_share)
        px1 = px0 + pw
        lo_vals, hi_vals = [], []
        for r in p["rows"]:
            if r.get("official") is None:
                continue
            lo_vals.append(r["official"] if r.get("ci_low") is None else r["ci_low"])
            hi_vals.append(r["official"] if r.get("ci_high") is None else r["ci_high"])
        thr = p.get("threshold")
        if thr is not None:
            lo_vals.append(thr)
            hi_vals.append(thr)
        top_v = max(hi_vals) if hi_vals else 0.01
        if p.get("direction") == ">=":
            lo, hi = max(0.0, min(lo_vals) - 0.03), min(1.0, top_v + 0.01)
        else:
            lo, hi = 0.0, (top_v * 1.15 if top_v > 0 else 0.01)
        if hi <= lo:
            hi = lo + 0.01
        sx = _Scale(lo, hi, px0, px1)
        for i, r in enumerate(p["rows"]):
            if r.get("official") is None:
                continue
            y = yc(i)
            svg.rect(sx(lo), y - row * 0.3, sx(max(lo, r["official"])) - sx(lo), row * 0.6,
                     _blend(_color(r.get("passed")), 0.75))
            if r.get("ci_low") is not None and r.get("ci_high") is not None:
                svg.line(sx(max(lo, r["ci_low"])), y, sx(min(hi, r["ci_high"])), y, COLORS["ci"], 0.9)
        if thr is not None:
            svg.line(sx(thr), y_top, sx(thr), y_bottom, COLORS["thr"], 0.9, DASH)
        svg.line(px0, y_top, px0, y_bottom, width=0.8)
        _x_axis(svg, sx, y_bottom, size=6.5, most=3)
        # a long indicator name shrinks to its panel and the gap beside it rather than run into the next one
        room = pw * (1 + gap_share * 0.8)
        size = min(title_size, room / max(text_width(p["name_zh"], 1.0), 1e-9))
        svg.text((px0 + px1) / 2, y_top - 5, p["name_zh"], size, "middle")
    for i, label in enumerate(labels):
        svg.line(left - 2, yc(i), left, yc(i), width=0.8)
        svg.text(left - 4, yc(i) + 2.5, label, 7, "end")
    return svg.svg()


def county_chart(rows: list[dict], name_zh: str, threshold=None, direction="<=") -> str | None:
    """Counties compared on one indicator (a one-panel ``compare_chart``).
    ``rows``: dicts with ``label``, ``official``, ``ci_low``, ``ci_high``, ``passed``."""
    return compare_chart([{"name_zh": f"{name_zh}（分县，柱为样本比率，线段为95%置信区间，虚线为标准）",
                           "threshold": threshold, "direction": direction, "rows": rows}])


def shortfall_chart(items: list[dict]) -> str | None:
    """两不愁三保障: share of households failing each item (``label``, ``share``, ``failed``)."""
    if not items:
        return None
    width = 453.6
    row, top, bottom = 20.2, 20.0, 18.0
    height = top + bottom + row * len(items)
    svg = _Svg(width, height)
    left, right = width * 0.16, width * 0.97
    shares = [i["share"] or 0 for i in items]
    sx = _Scale(0.0, max(max(shares) * 1.35, 0.001), left, right)
    svg.text(left, 12, "两不愁三保障未达标户占比（按项目）", 9)
    y_bottom = height - bottom
    for k, (i, share) in enumerate(zip(items, shares)):
        y = top + row * (k + 0.5)
        svg.rect(left, y - row * 0.3, sx(share) - left, row * 0.6, COLORS["bar"])
        svg.text(sx(share) + 2, y + 2.5, f"{pct(i['share'])}（{int(i['failed'])}户）", 7)
        svg.line(left - 2, y, left, y, width=0.8)
        svg.text(left - 4, y + 3, i["label"], 8, "end")
    svg.line(left, top, left, y_bottom, width=0.8)
    _x_axis(svg, sx, y_bottom)
    return svg.svg()


def satisfaction_chart(items: list[dict], rows: list[dict]) -> str | None:
    """Satisfaction (top-box share) by item, one bar per household type."""
    if not items or not rows:
        return None
    rows = [r for r in rows if r.get("n")]
    width, height = 453.6, 187.2
    svg = _Svg(width, height)
    left, right, top, bottom = width * 0.08, width * 0.98, height * 0.1, height * 0.74
    k = len(rows)
    lows = [v for r in rows for v in r["rates"] if v is not None]
    low = min(lows) if lows else 0.8
    sy = _Scale(max(0.0, math.floor((low - 0.02) * 20) / 20), 1.0, bottom, top)
    slot = (right - left) / max(len(items), 1)
    bw = slot * 0.8 / max(k, 1)
    for j, r in enumerate(rows):
        color = PALETTE[j % len(PALETTE)]
        for i, v in enumerate(r["rates"]):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            x = left + slot * (i + 0.5) + (j - (k - 1) / 2) * bw
            yv = sy(max(v, sy.lo))
            svg.rect(x - bw * 0.475, yv, bw * 0.95, bottom - yv, color)
    svg.text(left, top - 6, "各项认可（满意）比例，按户类型", 9)
    svg.line(left, bottom, right, bottom, width=0.8)
    svg.line(left, top, left, bottom, width=0.8)
    ticks, step = _ticks(sy.lo, sy.hi, 6)
    for t in ticks:
        svg.line(left - 2, sy(t), left, sy(t), width=0.8)
        svg.text(left - 4, sy(t) + 2.5, _pct_label(t, step), 7, "end")
    for i, it in enumerate(items):
        x = left + slot * (i + 0.5)
        svg.line(x, bottom, x, bottom + 2, width=0.8)
        svg.text(x, bottom + 10, it["label"], 7, "middle")
    # legend: one row of up to six entries under the axis labels
    ncol = max(1, min(k, 6))
    entries = [(PALETTE[j % len(PALETTE)], str(r["label"])) for j, r in enumerate(rows)]
    for start in range(0, len(entries), ncol):
        chunk = entries[start:start + ncol]
        widths = [12 + text_width(label, 6.5) + 10 for _, label in chunk]
        x = (width - sum(widths)) / 2
        y = bottom + 26 + 11 * (start // ncol)
        for (color, label), w in zip(chunk, widths):
            svg.rect(x, y - 6, 8, 6, color)
            svg.text(x + 12, y, label, 6.5)
            x += w
    return svg.svg()


def chart_texts(context_view: dict) -> str:
    """The fixed label texts of the charts, for the glyph-coverage check."""
    return ("加权估计样本比率95%置信区间标准（阈值）分县，柱为样本比率，线段为95%置信区间，虚线为标准"
            "两不愁三保障未达标户占比（按项目）户各项认可（满意）比例，按户类型0123456789.%")


_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)


def svg_texts(svg: str) -> str:
    return "".join(html.unescape(t) for t in _TEXT.findall(svg or ""))
