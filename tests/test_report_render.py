"""Province and national reports rendered from a fixture context and read back from the PDFs.

One module-scoped render (a province report, a 数据不足 report and the national summary, in two worker
processes) is shared by every test. The fixture context (reports.sample_context) carries realistic indicators,
a county with zero 错退 (exact upper bound), a failing county, and problem cases with full ID numbers, phones
and markup that the reports must mask and escape.

Set TPA_REPORT_PNG_DIR=DIR to keep the page images (pdftoppm) for a person to look at.
"""
import os
import re
import shutil
import subprocess
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")

from reports import fonts  # noqa: E402
from reports.errors import ReportError  # noqa: E402
from reports.masking import find_personal_data  # noqa: E402
from reports.national import national_context  # noqa: E402
from reports.render import prepare_view, render_html, render_many, render_province  # noqa: E402
from reports.sample_context import sample_province_context  # noqa: E402

try:
    fonts.find_source_font("regular")
    fonts.find_source_font("bold")
except ReportError:  # pragma: no cover
    pytest.skip("Noto CJK fonts are not installed", allow_module_level=True)


def _pct(x):
    """Independent half-up percentage (2 decimals) for the expectations."""
    return str((Decimal(repr(float(x))) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) + "%"


def _squash(text):
    return re.sub(r"\s+", "", text)


def _workspace(base):
    """A small real pipeline: synthetic population → draw → simulated fieldwork → import → scores."""
    from sampling.draw import draw_sample
    from sampling.population import generate_population
    from sampling.workspace import init_workspace
    from survey.fieldwork import simulate_fieldwork
    from survey.importer import import_files
    from survey.score import score_workspace

    generate_population(base / "pop", ["宁夏"], 7, counties_per_province=2, villages_per_county=6, year=2019)
    ws = init_workspace(base / "ws", year=2019)
    draw_sample(ws, "annual", 3, villages=base / "pop" / "villages.parquet",
                households=base / "pop" / "households.parquet")
    sim = simulate_fieldwork(ws, base / "fieldwork", seed=5, refusal_rate=0.05, teams_per_county=1)
    import_files(ws, sim.paths, write_report=False)
    score_workspace(ws)
    return ws


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from reports.context import build_province_context

    out = tmp_path_factory.mktemp("reports")
    ws = _workspace(tmp_path_factory.mktemp("pipeline"))
    wctx = build_province_context(ws, "宁夏")
    prov = sample_province_context("520000", seed=3)
    empty = sample_province_context("140000", insufficient=True)
    nat = national_context([prov, sample_province_context("450000", seed=4), empty], band=True)
    results = render_many([(prov, out / "520000.pdf"), (empty, out / "140000.pdf"), (nat, out / "national.pdf"),
                           (wctx, out / "640000.pdf")], workers=2)
    docs = {"ws": ws, "ws_context": wctx}
    for key, res in zip(("province", "empty", "national", "workspace"), results):
        reader = pypdf.PdfReader(res["path"])
        pages = [p.extract_text() or "" for p in reader.pages]
        docs[key] = {"result": res, "reader": reader, "pages": pages, "text": "\n".join(pages),
                     "flat": _squash("".join(pages))}
    docs["context"] = prov
    docs["national_context"] = nat
    docs["out"] = out
    return docs


def test_every_section_is_present(rendered):
    flat = rendered["province"]["flat"]
    for heading in ("内部资料", "目录", "评估结论摘要", "一、基本情况", "二、指标分析", "三、存在问题", "四、综合评价",
                    "五、处理建议", "附录一数据质量", "附录二方法说明", "两不愁三保障", "收入结构与贫困线", "群众认可度",
                    "帮扶措施落实", "问题户清单", "抽样随机种子", "95%置信区间"):
        assert heading in flat, heading
    cover = rendered["province"]["pages"][0]
    assert "贵州省" in cover and "2019" in cover and "贫困县退出专项评估检查" in cover and "内部资料" in cover


def test_province_indicators_printed_equal_the_computed_ones(rendered):
    flat = rendered["province"]["flat"]
    for ind in rendered["context"]["indicators"]:
        official = ind["numerator"] / ind["denominator"]
        assert _pct(official) in flat, (ind["name_zh"], _pct(official))
        ci = f"[{_pct(ind['ci_low'])},{_pct(ind['ci_high'])}]"
        assert ci in flat, (ind["name_zh"], ci)
        assert _pct(ind["estimate"]) in flat
    # the summary table row of each indicator carries its verdict
    for ind in rendered["context"]["indicators"]:
        row = re.search(re.escape(ind["name_zh"]) + r"[^\n]*", rendered["province"]["text"]).group(0)
        assert ("达标" in row) or ("不作判定" in row)


def test_county_values_zero_bound_and_failing_county(rendered):
    ctx = rendered["context"]
    flat = rendered["province"]["flat"]
    zero = [i for i in ctx["county_indicators"] if i["numerator"] == 0 and i["zero_upper"] is not None]
    assert zero, "the fixture must hold a zero count"
    for i in zero:
        assert f"0（95%置信上限{_pct(i['zero_upper'])}）" in flat
    failing = [i for i in ctx["county_indicators"] if i["passed"] is False]
    assert failing, "the fixture must hold a failing county"
    for i in failing:
        name = ctx["county_names"][i["county_code"]]
        assert f"{name}（{i['name_zh']}" in flat          # named in 综合评价 and 处理建议
        assert _pct(i["numerator"] / i["denominator"]) in flat
    for i in ctx["county_indicators"]:
        if i["numerator"]:
            assert _pct(i["official"]) in flat
    assert "未达标" in flat


def test_workspace_report_prints_the_indicators_computed_from_the_workspace(rendered):
    """The report of a real (small) pipeline prints exactly what survey.indicators computes."""
    from survey.indicators import compute_indicators

    ws = rendered["ws"]
    assert rendered["ws_context"]["status"] == "ok"
    flat = rendered["workspace"]["flat"]
    province = compute_indicators(ws, by="province")
    county = compute_indicators(ws, by="county")
    assert province and county
    for ind in province + county:
        if ind.official is None:
            continue
        if ind.numerator == 0 and ind.zero_upper is not None:
            assert f"0（95%置信上限{_pct(ind.zero_upper)}）" in flat, ind.key
        else:
            assert _pct(ind.official) in flat, (ind.key, ind.county_code, _pct(ind.official))
        if ind.ci_low is not None and ind.level == "province":
            assert f"[{_pct(ind.ci_low)},{_pct(ind.ci_high)}]" in flat, ind.key
    # the stored, unmasked names and ID numbers of the problem households never reach the PDF
    from survey import store

    hh = store.read_households(ws)
    cases = rendered["ws_context"]["cases"]
    assert cases, "the simulated fieldwork plants problem households"
    raw = hh[hh["household_id"].isin([c["household_id"] for c in cases])]
    for name, idn, phone in raw[["head_name", "head_id_number", "phone"]].itertuples(index=False):
        assert str(idn) not in flat and str(phone) not in flat
        if isinstance(name, str) and len(name) > 1:
            assert name not in flat
    assert find_personal_data(rendered["workspace"]["text"]) == []


def test_no_full_id_or_phone_in_any_pdf(rendered):
    for key in ("province", "empty", "national", "workspace"):
        text = rendered[key]["text"]
        assert find_personal_data(text) == [], key
        assert find_personal_data(_squash(text)) == [], key
    text = rendered["province"]["flat"]
    for raw in ("52010219850312123X", "13812345678", "13987654321", "0851-86801234", "522401199001019876",
                "欧阳娜娜", "王小明", "李四"):
        assert raw not in text, raw
    for masked in ("520102********123X", "138****5678", "0851-****1234", "欧阳**", "王**", "李**"):
        assert masked in text, masked


def test_markup_in_data_prints_as_text(rendered):
    flat = rendered["province"]["flat"]
    assert "<script>alert('x')</script>" in flat
    html = render_html(prepare_view(dict(rendered["context"], county_names={
        **rendered["context"]["county_names"], "520102": "<i>县</i>"})))
    assert "&lt;i&gt;县&lt;/i&gt;" in html and "<i>县</i>" not in html


def test_fonts_embedded_and_only_ours(rendered):
    for key in ("province", "empty", "national", "workspace"):
        reader = rendered[key]["reader"]
        seen = set()
        for page in reader.pages:
            res = page.get("/Resources") or {}
            for f in (res.get("/Font") or {}).values():
                f = f.get_object()
                for d in f.get("/DescendantFonts") or [f]:
                    d = d.get_object()
                    desc = d["/FontDescriptor"].get_object()
                    assert any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3")), d["/BaseFont"]
                    seen.add(str(d["/BaseFont"]).split("+")[-1])
        assert seen and all(name.startswith("TPA-CJK") for name in seen), seen


def test_pages_numbered_and_toc_points_at_the_right_pages(rendered):
    pages = rendered["province"]["pages"]
    n = len(pages)
    assert f"第2页共{n}页" in _squash(pages[1])
    assert f"第{n}页共{n}页" in _squash(pages[-1])
    toc = _squash(pages[1])
    for heading in ("一、基本情况", "二、指标分析", "（一）全省指标", "（二）分县指标", "三、存在问题", "附录二方法说明"):
        number = int(re.search(re.escape(heading) + r"\.*(\d+)", toc).group(1))
        where = [k + 1 for k, p in enumerate(pages) if k > 1 and heading in _squash(p)]
        assert where and where[0] == number, (heading, number, where)
    # running header with the province name on inner pages
    assert "贵州省·第三方评估报告" in _squash(pages[3])


def test_insufficient_data_report_says_so(rendered):
    flat = rendered["empty"]["flat"]
    assert "数据不足" in flat
    for heading in ("一、基本情况", "二、指标分析", "三、存在问题", "四、综合评价", "五、处理建议"):
        assert heading in flat
    assert rendered["empty"]["result"]["status"] == "insufficient"


def test_national_summary_compares_provinces(rendered):
    flat = rendered["national"]["flat"]
    nat = rendered["national_context"]
    for row in nat["provinces"]:
        assert row["name"] in flat
        for ind in row["indicators"]:
            assert _pct(ind["numerator"] / ind["denominator"]) in flat
    assert "等次" in flat and "数据不足" in flat
    bands = [r["band"] for r in nat["provinces"] if r["band"]]
    assert bands and all(b in flat for b in bands)


def test_unmasked_personal_data_in_an_unexpected_field_fails_loudly(tmp_path):
    ctx = sample_province_context("520000", n_counties=2)
    ctx["cases"][0]["village"] = "石门村 联系人电话13812345678"
    with pytest.raises(ReportError) as info:
        render_province(ctx, tmp_path / "x.pdf")
    assert info.value.code == "personal_data"
    assert not (tmp_path / "x.pdf").exists()


def test_missing_glyph_fails_loudly(tmp_path):
    ctx = sample_province_context("520000", n_counties=2)
    ctx["county_names"][next(iter(ctx["county_names"]))] = "𪚥县"
    with pytest.raises(ReportError) as info:
        render_province(ctx, tmp_path / "x.pdf")
    assert "𪚥" in str(info.value)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_pages_as_png_for_a_person_to_look_at(rendered):
    keep = os.environ.get("TPA_REPORT_PNG_DIR")
    target = Path(keep) if keep else rendered["out"] / "png"
    target.mkdir(parents=True, exist_ok=True)
    pdf = rendered["province"]["result"]["path"]
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "5", pdf, str(target / "province")], check=True)
    pngs = sorted(target.glob("province-*.png"))
    assert len(pngs) == 5
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000


def test_xlsx_holds_every_indicator_table(rendered, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from reports.tables_xlsx import write_indicator_tables

    ctxs = [rendered["context"], rendered["ws_context"]]
    path = write_indicator_tables(ctxs, tmp_path / "t.xlsx", national=rendered["national_context"])
    wb = openpyxl.load_workbook(path, read_only=True)
    assert {"省级指标", "县级指标", "样本构成", "两不愁三保障", "收入", "认可度", "帮扶措施", "问题户", "数据质量",
            "等次（内部）"} <= set(wb.sheetnames)
    rows = list(wb["县级指标"].iter_rows(values_only=True))
    head = rows[0]
    got = {(r[head.index("县代码")], r[head.index("指标")]): r for r in rows[1:]}
    for ctx in ctxs:
        for ind in ctx["county_indicators"]:
            r = got[(ind["county_code"], ind["name_zh"])]
            assert r[head.index("样本分子")] == pytest.approx(ind["numerator"])
            assert r[head.index("样本比率")] == pytest.approx(ind["official"])
    text = " ".join(c for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row
                    if isinstance(c, str))           # text cells (a float's digits are no ID number)
    assert find_personal_data(text) == []


def test_cli_report(rendered, tmp_path):
    import json

    from click.testing import CliRunner

    from tpa.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["report", "-w", str(rendered["ws"].path)])
    assert res.exit_code != 0 and "--province" in str(res.exception) + res.output
    res = runner.invoke(cli, ["report", "-w", str(rendered["ws"].path), "--province", "山西", "--workers", "1",
                              "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["provinces"][0]["status"] == "insufficient"
    assert Path(out["provinces"][0]["path"]).is_file()
