"""The CJK font of the reports: one cached subset, a small per-run font, and the loud coverage check."""
import os

import pytest

pytest.importorskip("fontTools")

from reports import fonts  # noqa: E402
from reports.errors import ReportError  # noqa: E402


def _have_font():
    try:
        fonts.find_source_font("regular")
        fonts.find_source_font("bold")
        return True
    except ReportError:
        return False


pytestmark = pytest.mark.skipif(not _have_font(), reason="Noto CJK fonts are not installed (fonts-noto-cjk)")


def test_charset_holds_gb2312_and_ascii():
    hanzi = fonts.gb2312_hanzi()
    assert len(hanzi) == 6763                        # GB2312 level 1 (3,755) + level 2 (3,008)
    cs = set(fonts.charset())
    assert set(hanzi) <= cs
    assert {"A", "0", "%", "（", "）", "≤", "≥", "…", "—"} <= cs


def test_subset_is_cached_and_covers_the_charset():
    first = fonts.report_fonts()
    mtime = first.regular.stat().st_mtime_ns
    fonts.report_fonts.cache_clear()
    again = fonts.report_fonts()
    assert again.regular == first.regular and again.regular.stat().st_mtime_ns == mtime   # not made again
    assert first.regular.parent == fonts.cache_dir()
    covered = first.covered
    assert set(fonts.gb2312_hanzi()) <= covered
    assert set("综合贫困发生率脱贫人口错退率漏评群众认可度两不愁三保障置信上限") <= covered
    assert os.path.getsize(first.regular) < 4_000_000     # vs 20+ MB for the whole collection


def test_coverage_check_names_the_missing_characters():
    fonts.check_coverage("贵州省 综合贫困发生率 0.12%（95%置信上限 0.30%）")   # fine
    with pytest.raises(ReportError) as info:
        fonts.check_coverage("户主 王𪚥 家", where="the test document")
    message = str(info.value)
    assert "𪚥" in message and "U+2A6A5" in message and "the test document" in message
    assert info.value.code == "font_coverage"


def test_run_font_is_small_truetype_and_only_what_the_run_uses():
    from fontTools.ttLib import TTFont

    text = "贵州省第三方评估报告 综合贫困发生率 1.23%"
    run = fonts.run_fonts(text)
    again = fonts.run_fonts(text)
    assert run.regular == again.regular                  # cached by character set
    font = TTFont(str(run.regular))
    assert "glyf" in font and "CFF " not in font         # TrueType outlines: cheap to subset per document
    cmap = {chr(c) for c in font.getBestCmap()}
    assert set(text) <= cmap
    assert "漏" not in cmap                               # only the characters of the run (plus ASCII etc.)
    assert font["maxp"].numGlyphs < 400
    with pytest.raises(ReportError):
        fonts.run_fonts("𪚥")
