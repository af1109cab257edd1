"""`tpa demo`: the whole pipeline on a small synthetic assessment, as a newcomer runs it."""
import json
import re

from pypdf import PdfReader

from tpa.cli import main as tpa_main


def test_demo_runs_end_to_end_and_compares_with_the_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    assert tpa_main(["demo", "--provinces", "贵州", "--villages-per-county", "20", "--out", str(out),
                     "--workers", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["step"] for s in doc["steps"]] == ["workspace", "population", "frame check", "draw", "fieldwork",
                                                 "import", "score", "indicators", "reports"]
    # every imported row is accounted for
    m = re.search(r"rows in ([\d,]+) = accepted ([\d,]+) \+ quarantined ([\d,]+) \+ duplicates ([\d,]+)",
                  next(s["detail"] for s in doc["steps"] if s["step"] == "import"))
    n_in, acc, q, dup = (int(g.replace(",", "")) for g in m.groups())
    assert n_in == acc + q + dup and acc > 0 and q > 0          # planted mistakes are quarantined
    # one row per indicator of the province, beside its true value
    comp = doc["comparison"]
    assert {r["code"] for r in comp} == {"520000"}
    keys = {r["indicator"] for r in comp}
    assert len(keys) >= 4 and all(r["truth"] is not None and 0 <= r["truth"] <= 1 for r in comp)
    assert all(r["ci_low"] <= r["estimate"] <= r["ci_high"] for r in comp)
    # the province's PDF report, with no unmasked ID number or phone in it
    pdfs = sorted((out / "reports").rglob("*.pdf"))
    assert len(pdfs) >= 2                                        # the province and the national summary
    text = "".join(page.extract_text() for pdf in pdfs for page in PdfReader(str(pdf)).pages)
    assert "错退率" in text
    assert not re.search(r"\d{17}[\dX]", text) and not re.search(r"1[3-9]\d{9}", text)
