"""The CJK font of the reports: subset once, cached on disk, and a coverage check of every document.

WeasyPrint subsets each font it embeds, and subsetting a 20–27 MB Noto CJK collection costs 4–5 s per
document (NOTES.md). So the font is cut down ONCE to the characters a report can contain — ASCII, Latin-1
symbols, general and CJK punctuation, full-width forms, the GB2312 symbols and level-1 and level-2 hanzi —
and each run then cuts that font once more to exactly the characters of its documents (``run_fonts``); the
small run font is what the stylesheet declares with ``@font-face``. The subset is cached in the user cache directory, keyed by the hash of the source font file,
of the character set and of this module's recipe, so every later run and every worker process reuses it.

WeasyPrint drops characters the font has no glyph for without a warning. ``check_coverage(text, fonts)``
compares every character of the document with the subset's cmap and raises ``ReportError`` naming the
characters that would disappear.
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ReportError

RECIPE_VERSION = "3"
FAMILY = "TPA CJK"

# Candidate source fonts (Debian/Ubuntu fonts-noto-cjk, Fedora, macOS Homebrew); the SC face is taken.
_SEARCH = {
    "regular": ["/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
                "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
                "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"],
    "bold": ["/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
             "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
             "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
             "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc"],
}

# Characters that are layout, not glyphs: they need no coverage.
_IGNORED = {"\n", "\r", "\t", "\u00ad", "\u200b", "\ufeff"}


@dataclass(frozen=True)
class FontSet:
    """The subset fonts of one run: paths of the regular and bold faces and the characters they cover."""
    regular: Path
    bold: Path
    source_regular: str
    source_bold: str

    @property
    def covered(self) -> frozenset:
        return _cmap_chars(str(self.regular)) & _cmap_chars(str(self.bold))


def cache_dir() -> Path:
    base = os.environ.get("TPA_CACHE_DIR")
    if base:
        d = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        d = (Path(xdg) if xdg else Path.home() / ".cache") / "tpa"
    d = d / "fonts"
    d.mkdir(parents=True, exist_ok=True)
    return d


def find_source_font(weight: str = "regular") -> Path:
    env = os.environ.get("TPA_CJK_FONT_BOLD" if weight == "bold" else "TPA_CJK_FONT")
    candidates = ([env] if env else []) + _SEARCH[weight]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise ReportError(f"no Noto CJK {weight} font found (looked in {', '.join(_SEARCH[weight][:2])})",
                      code="no_cjk_font",
                      fix="install the CJK fonts (`apt-get install fonts-noto-cjk`) or set TPA_CJK_FONT / "
                          "TPA_CJK_FONT_BOLD to a Noto Sans CJK .ttc/.otf file")


def _gb2312_rows(first: int, last: int) -> str:
    """Every character of GB2312 rows ``first``..``last`` (lead bytes 0xA0 + row)."""
    out = []
    for hi in range(0xA0 + first, 0xA0 + last + 1):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return "".join(out)


def gb2312_hanzi() -> str:
    """The 6,763 hanzi of GB2312 (level 1: rows 16–55, level 2: rows 56–87)."""
    return _gb2312_rows(16, 87)


def gb2312_symbols() -> str:
    """Rows 1–9 of GB2312: punctuation, numerals, Greek, Cyrillic, kana, box drawing."""
    return _gb2312_rows(1, 9)


def template_chars() -> str:
    from templates import TEMPLATE_DIR

    chars = set()
    for p in sorted(Path(TEMPLATE_DIR).rglob("*")):
        if p.suffix in (".html", ".css", ".txt") and p.is_file():
            chars.update(p.read_text(encoding="utf-8"))
    return "".join(sorted(chars))


@lru_cache(maxsize=1)
def charset() -> str:
    """Every character a report may contain (the subset's coverage)."""
    chars = set(chr(c) for c in range(0x20, 0x7F))
    chars.update(chr(c) for c in range(0xA0, 0x180))               # Latin-1 and Latin Extended-A
    chars.update(chr(c) for c in range(0x2000, 0x2070))            # general punctuation
    chars.update(chr(c) for c in range(0x2100, 0x2200))            # letterlike, number forms, arrows
    chars.update(chr(c) for c in range(0x2200, 0x2300))            # mathematical operators (≤ ≥ ± …)
    chars.update(chr(c) for c in range(0x2460, 0x24A0))            # ① …
    chars.update(chr(c) for c in range(0x2500, 0x2600))            # box drawing, blocks, shapes (■ ● ▲)
    chars.update(chr(c) for c in range(0x3000, 0x3040))            # CJK symbols and punctuation
    chars.update(chr(c) for c in range(0xFF01, 0xFF5F))            # full-width forms
    chars.update(chr(c) for c in range(0xFFE0, 0xFFE7))
    chars.update(gb2312_symbols())
    chars.update(gb2312_hanzi())
    extra = os.environ.get("TPA_REPORT_EXTRA_CHARS", "")
    chars.update(extra)
    return "".join(sorted(c for c in chars if c not in _IGNORED and unicodedata.category(c) != "Cs"))


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sc_index(path: Path) -> int | None:
    """Index of the Simplified Chinese face in a .ttc collection (None for a single font)."""
    from fontTools.ttLib import TTCollection

    if path.suffix.lower() not in (".ttc", ".otc"):
        return None
    col = TTCollection(str(path), lazy=True)
    for i, f in enumerate(col.fonts):
        name = f["name"].getDebugName(1) or ""
        if "SC" in name.split() and "Mono" not in name:
            return i
    return 0


def _subset_font(source: Path, chars: str, target: Path, *, lazy: bool = False) -> None:
    """``lazy``: read only the tables and glyphs the subset keeps (same output for a TrueType source, and
    about five times faster for the run font, which keeps a few hundred of the GB2312 subset's glyphs)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    index = _sc_index(source)
    font = TTFont(str(source), fontNumber=index if index is not None else -1, lazy=lazy)
    options = subset.Options()
    # no substitution features: their closure (vertical forms, locale variants) doubles the glyph count, and
    # the cost of WeasyPrint's own subsetting grows with the number of glyphs in the font
    options.layout_features = ["kern", "tnum", "lnum"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.desubroutinize = False
    options.drop_tables += ["VORG", "vhea", "vmtx", "DSIG"]
    sub = subset.Subsetter(options)
    sub.populate(text=chars)
    sub.subset(font)
    # one family name for both faces, so the CSS never falls back to a system font by accident
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    font.save(str(tmp))
    font.close()
    os.replace(tmp, target)


def _subset_target(weight: str, source: Path) -> Path:
    key = hashlib.sha256((_file_hash(source) + "|" + RECIPE_VERSION + "|" + charset()).encode()).hexdigest()[:20]
    return cache_dir() / f"tpa-cjk-{weight}-{key}.ttf"


def subsets_cached() -> bool:
    """True when both faces' subsets are in the cache (the first report run on a machine makes them, ~40 s)."""
    try:
        return all(_subset_target(w, find_source_font(w)).is_file() for w in ("regular", "bold"))
    except ReportError:
        return False


def subset_path(weight: str = "regular", source: Path | None = None) -> Path:
    """The cached subset of one face, made on first use (atomic: safe with parallel workers)."""
    source = Path(source) if source else find_source_font(weight)
    chars = charset()
    target = _subset_target(weight, source)
    if not target.is_file():
        try:
            tmp = target.with_name(target.name + f".otf.tmp{os.getpid()}")
            _subset_font(source, chars, tmp)
            _to_truetype(tmp, target)       # TrueType: later subsets (per run, per document) are cheap
            tmp.unlink()
        except ReportError:
            raise
        except Exception as exc:  # a broken or unexpected font file
            raise ReportError(f"could not subset the CJK font {source}: {exc}", code="font_subset",
                              file=source, fix="reinstall fonts-noto-cjk or point TPA_CJK_FONT to a Noto CJK font") from exc
    return target


@lru_cache(maxsize=1)
def report_fonts() -> FontSet:
    """The subset regular and bold faces (made once, then read from the cache)."""
    reg_src, bold_src = find_source_font("regular"), find_source_font("bold")
    return FontSet(regular=subset_path("regular", reg_src), bold=subset_path("bold", bold_src),
                   source_regular=str(reg_src), source_bold=str(bold_src))


@lru_cache(maxsize=8)
def _cmap_chars(path: str) -> frozenset:
    from fontTools.ttLib import TTFont

    font = TTFont(path, lazy=True)
    try:
        return frozenset(chr(c) for c in font.getBestCmap())
    finally:
        font.close()


def font_face_css(fonts: FontSet | None = None) -> str:
    """The @font-face rules declaring the subset faces (file URLs, embedded by WeasyPrint)."""
    fonts = fonts or report_fonts()
    return (f'@font-face {{ font-family: "{FAMILY}"; font-weight: normal; font-style: normal; '
            f'src: url("{fonts.regular.as_uri()}"); }}\n'
            f'@font-face {{ font-family: "{FAMILY}"; font-weight: bold; font-style: normal; '
            f'src: url("{fonts.bold.as_uri()}"); }}\n')


def uncovered(text: str, fonts: FontSet | None = None) -> list[str]:
    """Characters of ``text`` the subset fonts cannot draw (sorted, unique)."""
    covered = (fonts or report_fonts()).covered
    return sorted({c for c in set(text) if c not in covered and c not in _IGNORED
                   and not unicodedata.category(c).startswith("C")})


def check_coverage(text: str, fonts: FontSet | None = None, *, where: str = "the report") -> None:
    """Raise ReportError if any character of ``text`` has no glyph in the report fonts."""
    missing = uncovered(text, fonts)
    if missing:
        shown = "".join(missing[:20])
        codes = ", ".join(f"U+{ord(c):04X}" for c in missing[:20])
        raise ReportError(f"{where} contains {len(missing)} character(s) the report font cannot draw: "
                          f"{shown} ({codes})", code="font_coverage",
                          fix="replace the characters in the data or configuration text, or add them with "
                              "TPA_REPORT_EXTRA_CHARS if the source font has them")


# ---------------------------------------------------------------------------------------------- per-run font
# ASCII, common punctuation and the glyphs CSS draws itself (list bullets, leaders), which are in no text node
_ALWAYS = "".join(chr(c) for c in range(0x20, 0x7F)) + "（）：；，。、％—…·×±≤≥《》“”‘’•◦▪■□●○◆◇▲△★☆\u00a0"
_RUN_KEEP = 24          # run fonts kept in the cache; older ones are deleted


def run_fonts(text: str, base: FontSet | None = None) -> FontSet:
    """Fonts cut down to exactly the characters of one run's documents (``text`` = all of them together).

    WeasyPrint subsets every embedded font again for each document, at a cost that grows with the glyph
    count of the font: ~8,000 glyphs of the GB2312 subset cost seconds per document, the few hundred to two
    thousand glyphs a run of reports really uses cost a fraction of a second. The run font is made once per
    distinct character set (cached, so re-rendering the same reports costs nothing) after the coverage check.
    """
    base = base or report_fonts()
    check_coverage(text, base)
    covered = base.covered
    chars = "".join(sorted((set(text) | set(_ALWAYS)) & covered))
    key = hashlib.sha256((base.regular.name + "|" + base.bold.name + "|" + chars).encode()).hexdigest()[:20]
    d = cache_dir() / "run"
    d.mkdir(exist_ok=True)
    out = {}
    for weight, src in (("regular", base.regular), ("bold", base.bold)):
        target = d / f"tpa-run-{weight}-{key}.ttf"
        if not target.is_file():
            _subset_font(src, chars, target, lazy=True)
        else:
            os.utime(target)
        out[weight] = target
    _prune(d)
    return FontSet(regular=out["regular"], bold=out["bold"], source_regular=base.source_regular,
                   source_bold=base.source_bold)


def _prune(d: Path) -> None:
    files = sorted(d.glob("tpa-run-*.ttf"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in files[2 * _RUN_KEEP:]:
        try:
            p.unlink()
        except OSError:
            pass


def _to_truetype(source: Path, target: Path) -> None:
    """CFF outlines → TrueType quadratic outlines (fontTools' otf2ttf recipe, error ≤ 1 unit of 1000).

    WeasyPrint (without HarfBuzz-subset) subsets the embedded fonts of every document with fontTools, which
    executes every CFF charstring to drop hints and subroutines; TrueType glyphs are copied as they are, so the
    per-document cost nearly vanishes. Done once per run font.
    """
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    font = TTFont(str(source))
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    del font["CFF "]
    for tag in ("VORG",):
        if tag in font:
            del font[tag]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, g in glyf.glyphs.items():
        if hasattr(g, "xMin"):
            hmtx[name] = (hmtx[name][0], g.xMin)
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    maxp.compile(font)
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font.sfntVersion = "\x00\x01\x00\x00"
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    font.save(str(tmp))
    font.close()
    os.replace(tmp, target)
