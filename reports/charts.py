"""Vector charts of the reports (matplotlib → SVG with the CJK subset font).

Each function takes plain data (lists of dicts, as in the report context) and returns the SVG as a string.
Text stays text (``svg.fonttype = "none"``) in the report's own font family, so WeasyPrint draws it with the
embedded run font: the chart labels can be extracted from the PDF and cost no outline paths. matplotlib
measures the labels with the same (GB2312 subset) font, so the layout matches. ``svg_texts`` lists the
labels of a chart for the glyph-coverage check.
"""
from __future__ import annotations

import io
import math
import re

from .fonts import FAMILY
from .formatting import pct

_READY = False
_FAMILY = re.compile(r"font-family: [^;\"]*")
COLORS = {"pass": "#2b7a3d", "fail": "#b3261e", "none": "#555555", "bar": "#3b6ea8", "ci": "#222222",
          "thr": "#b3261e", "light": "#9bb7d8"}


def _setup():
    global _READY
    import matplotlib

    matplotlib.use("Agg", force=True)
    if _READY:
        return
    from matplotlib import font_manager, rcParams

    from .fonts import report_fonts

    fonts = report_fonts()
    font_manager.fontManager.addfont(str(fonts.regular))
    name = font_manager.FontProperties(fname=str(fonts.regular)).get_name()
    rcParams.update({
        "font.family": "sans-serif", "font.sans-serif": [name, "DejaVu Sans"], "axes.unicode_minus": False,
        "svg.fonttype": "none", "svg.hashsalt": "tpa", "font.size": 8, "axes.titlesize": 9,
        "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 72,
    })
    _READY = True


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    text = _FAMILY.sub(f"font-family: '{FAMILY}'", text[text.index("<svg"):])
    return text


def _pct_axis(ax, axis="x"):
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v * 100:.{0 if abs(v) >= 0.1 or v == 0 else 1}f}%")
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def _value(ind):
    return ind.get("official")


def indicator_chart(indicators: list[dict]) -> str | None:
    """One small panel per indicator: official ratio (diamond), design-based estimate with its 95% interval
    (dot and bar), threshold (red line). Each panel has its own scale (1% rates and 95% recognition)."""
    inds = [i for i in indicators if i.get("official") is not None]
    if not inds:
        return None
    _setup()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(inds), 1, figsize=(6.3, 0.78 * len(inds) + 0.3), squeeze=False)
    for ax, ind in zip(axes[:, 0], inds):
        vals = [v for v in (ind.get("official"), ind.get("estimate"), ind.get("ci_low"), ind.get("ci_high"),
                            ind.get("threshold"), ind.get("zero_upper")) if v is not None]
        lo, hi = min(vals), max(vals)
        pad = max((hi - lo) * 0.25, 0.002)
        ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad) if hi + pad <= 1 else 1.0)
        color = COLORS["none"] if ind.get("passed") is None else COLORS["pass" if ind["passed"] else "fail"]
        if ind.get("ci_low") is not None and ind.get("ci_high") is not None:
            ax.plot([ind["ci_low"], ind["ci_high"]], [0, 0], color=COLORS["ci"], lw=1.6, solid_capstyle="butt")
            ax.plot([ind["ci_low"]] * 2, [-0.18, 0.18], color=COLORS["ci"], lw=1)
            ax.plot([ind["ci_high"]] * 2, [-0.18, 0.18], color=COLORS["ci"], lw=1)
        if ind.get("estimate") is not None:
            ax.plot([ind["estimate"]], [0], "o", color=COLORS["bar"], ms=5, label="加权估计")
        ax.plot([ind["official"]], [0.42], "D", color=color, ms=5, label="样本比率")
        if ind.get("threshold") is not None:
            ax.axvline(ind["threshold"], color=COLORS["thr"], lw=1, ls="--")
        ax.set_ylim(-0.6, 0.8)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_title(ind["name_zh"], loc="left", pad=2)
        _pct_axis(ax)
        ax.tick_params(axis="x", labelsize=7, length=2)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], color=COLORS["ci"], lw=1.6), Line2D([], [], color=COLORS["thr"], lw=1, ls="--")]
    labels += ["95%置信区间", "标准（阈值）"]
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=7, bbox_to_anchor=(0.5, 0.0))
    h = 0.78 * len(inds) + 0.3
    fig.subplots_adjust(left=0.03, right=0.97, top=1 - 0.25 / h, bottom=0.45 / h, hspace=1.1)
    return _svg(fig)


def county_chart(rows: list[dict], name_zh: str, threshold=None, direction="<=") -> str | None:
    """Counties compared on one indicator: official ratio (bar), 95% interval (whisker), threshold (line).
    ``rows``: dicts with ``label``, ``official``, ``ci_low``, ``ci_high``, ``passed``."""
    rows = [r for r in rows if r.get("official") is not None]
    if not rows:
        return None
    _setup()
    import matplotlib.pyplot as plt

    height = 0.22 * len(rows) + 0.7
    fig, ax = plt.subplots(figsize=(6.3, height))
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows):
        color = COLORS["none"] if r.get("passed") is None else COLORS["pass" if r["passed"] else "fail"]
        ax.barh(y, r["official"], height=0.55, color=color, alpha=0.75)
        if r.get("ci_low") is not None and r.get("ci_high") is not None:
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=COLORS["ci"], lw=1)
    if threshold is not None:
        ax.axvline(threshold, color=COLORS["thr"], lw=1, ls="--")
    ax.set_yticks(ys)
    ax.set_yticklabels([r["label"] for r in rows], fontsize=7)
    vals = [v for r in rows for v in (r["official"], r.get("ci_high")) if v is not None] + (
        [threshold] if threshold is not None else [])
    top = max(vals) if vals else 1
    if direction == ">=":
        low = min([v for r in rows for v in (r["official"], r.get("ci_low")) if v is not None] + (
            [threshold] if threshold is not None else []))
        ax.set_xlim(max(0.0, low - 0.03), min(1.0, top + 0.01))
    else:
        ax.set_xlim(0, top * 1.12 if top > 0 else 0.01)
    _pct_axis(ax)
    ax.set_title(f"{name_zh}（分县，柱为样本比率，线段为95%置信区间，虚线为标准）", loc="left", fontsize=8)
    fig.tight_layout()
    return _svg(fig)


def shortfall_chart(items: list[dict]) -> str | None:
    """两不愁三保障: share of households failing each item (``label``, ``share``, ``failed``)."""
    if not items:
        return None
    _setup()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.3, 0.28 * len(items) + 0.6))
    ys = list(range(len(items)))[::-1]
    shares = [i["share"] or 0 for i in items]
    ax.barh(ys, shares, height=0.6, color=COLORS["bar"])
    for y, i in zip(ys, items):
        ax.text((i["share"] or 0), y, f" {pct(i['share'])}（{int(i['failed'])}户）", va="center", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels([i["label"] for i in items])
    ax.set_xlim(0, max(max(shares) * 1.35, 0.001))
    _pct_axis(ax)
    ax.set_title("两不愁三保障未达标户占比（按项目）", loc="left")
    h = 0.28 * len(items) + 0.6
    fig.subplots_adjust(left=0.16, right=0.97, top=1 - 0.28 / h, bottom=0.25 / h)
    return _svg(fig)


def satisfaction_chart(items: list[dict], rows: list[dict]) -> str | None:
    """Satisfaction (top-box share) by item, one bar per household type."""
    if not items or not rows:
        return None
    _setup()
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("n")]
    fig, ax = plt.subplots(figsize=(6.3, 2.6))
    k = len(rows)
    width = 0.8 / max(k, 1)
    palette = ["#1f4e79", "#3b6ea8", "#6f9fd8", "#9bb7d8", "#c9a227", "#8c6d1f", "#555555"]
    lows = []
    for j, r in enumerate(rows):
        xs = [i + (j - (k - 1) / 2) * width for i in range(len(items))]
        vals = [v if v is not None else math.nan for v in r["rates"]]
        lows += [v for v in r["rates"] if v is not None]
        ax.bar(xs, vals, width=width * 0.95, color=palette[j % len(palette)], label=r["label"])
    ax.set_xticks(range(len(items)))
    ax.set_xticklabels([i["label"] for i in items], fontsize=7)
    low = min(lows) if lows else 0.8
    ax.set_ylim(max(0.0, math.floor((low - 0.02) * 20) / 20), 1.0)
    _pct_axis(ax, "y")
    ax.legend(ncol=min(k, 6), fontsize=6.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title("各项认可（满意）比例，按户类型", loc="left")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.26)
    return _svg(fig)


def compare_chart(panels: list[dict], unit_label: str = "县") -> str | None:
    """Places (counties, or provinces in the national summary) compared on several indicators in ONE figure:
    one panel per indicator side by side, places on the shared vertical axis; bar = official ratio (green
    passes, red fails, grey no verdict), whisker = 95% interval, dashed line = threshold.
    ``panels``: dicts with ``name_zh``, ``threshold``, ``direction`` and ``rows`` (``label``, ``official``,
    ``ci_low``, ``ci_high``, ``passed``), all panels listing the same places in the same order."""
    panels = [p for p in panels if any(r.get("official") is not None for r in p["rows"])]
    if not panels:
        return None
    _setup()
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in panels[0]["rows"]]
    n = len(labels)
    height = 0.2 * n + 0.9
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5, height), sharey=True, squeeze=False)
    ys = list(range(n))[::-1]
    for ax, p in zip(axes[0], panels):
        lo_vals, hi_vals = [], []
        for y, r in zip(ys, p["rows"]):
            if r.get("official") is None:
                continue
            color = COLORS["none"] if r.get("passed") is None else COLORS["pass" if r["passed"] else "fail"]
            ax.barh(y, r["official"], height=0.6, color=color, alpha=0.75)
            lo_vals.append(r["official"] if r.get("ci_low") is None else r["ci_low"])
            hi_vals.append(r["official"] if r.get("ci_high") is None else r["ci_high"])
            if r.get("ci_low") is not None and r.get("ci_high") is not None:
                ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=COLORS["ci"], lw=0.9)
        thr = p.get("threshold")
        if thr is not None:
            ax.axvline(thr, color=COLORS["thr"], lw=0.9, ls="--")
            lo_vals.append(thr)
            hi_vals.append(thr)
        top = max(hi_vals) if hi_vals else 0.01
        if p.get("direction") == ">=":
            ax.set_xlim(max(0.0, min(lo_vals) - 0.03), min(1.0, top + 0.01))
        else:
            ax.set_xlim(0, top * 1.15 if top > 0 else 0.01)
        _pct_axis(ax)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
        ax.tick_params(axis="x", labelsize=6.5, length=2)
        ax.set_title(p["name_zh"], fontsize=7.5 if len(panels) < 5 else 6.5)
    ax0 = axes[0, 0]
    ax0.set_yticks(ys)
    ax0.set_yticklabels(labels, fontsize=7)
    ax0.set_ylim(-0.7, n - 0.3)
    left = min(0.3, 0.04 + 0.013 * max(len(x) for x in labels))
    fig.subplots_adjust(left=left, right=0.98, top=1 - 0.32 / height, bottom=0.3 / height, wspace=0.3)
    return _svg(fig)


def chart_texts(context_view: dict) -> str:
    """The fixed label texts of the charts, for the glyph-coverage check."""
    return ("加权估计样本比率95%置信区间标准（阈值）分县，柱为样本比率，线段为95%置信区间，虚线为标准"
            "两不愁三保障未达标户占比（按项目）户各项认可（满意）比例，按户类型0123456789.%")


_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)


def svg_texts(svg: str) -> str:
    import html

    return "".join(html.unescape(t) for t in _TEXT.findall(svg or ""))
