"""Field lists: byte-identical for the same inputs, Chinese headers, one sheet per village, labelled SAV/DTA,
and sealed exports whose seal anyone can check."""
import zipfile

import pandas as pd
import pytest

from samplehelp import small_frames
from sampling.draw import draw_sample, sample_households, verify_draw
from sampling.errors import SamplingError
from sampling.workspace import init_workspace


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    root = tmp_path_factory.mktemp("lists")
    v, h = small_frames(n_county=2, n_vill=6)
    v.to_csv(root / "villages.csv", index=False)
    h.to_parquet(root / "households.parquet")
    recs = []
    for name in ("a", "b"):
        ws = init_workspace(root / name)
        recs.append((ws, draw_sample(ws, "exit_check", 2019, villages=root / "villages.csv",
                                     households=root / "households.parquet")))
    return root, recs


def test_same_inputs_give_byte_identical_lists(drawn):
    root, [(ws_a, a), (ws_b, b)] = drawn
    assert a["draw_id"] == b["draw_id"]
    assert a["files"] == b["files"] and len(a["files"]) >= 8
    for rel in a["files"]:
        assert (root / "a" / "samples" / a["draw_id"] / rel).read_bytes() == \
            (root / "b" / "samples" / b["draw_id"] / rel).read_bytes(), rel


def test_county_workbook_has_a_sheet_per_village_with_chinese_headers(drawn):
    import openpyxl

    root, [(ws, rec), _] = drawn
    folder = root / "a" / "samples" / rec["draw_id"] / "counties"
    books = sorted(folder.glob("*.xlsx"))
    assert len(books) == 2
    sh = sample_households(ws)
    for book in books:
        county = book.name.split("_")[0]
        wb = openpyxl.load_workbook(book, read_only=True)
        villages = sorted(sh.loc[sh["county_code"] == county, "village_code"].unique())
        assert wb.sheetnames[0] == "说明" and len(wb.sheetnames) == 1 + len(villages)
        total = 0
        for name in wb.sheetnames[1:]:
            rows = list(wb[name].iter_rows(values_only=True))
            header = rows[1]
            for word in ("户编号", "户主姓名", "地址", "户类型", "备用顺序", "入样概率", "权重", "样本类型"):
                assert word in header
            body = [r for r in rows[2:] if r[0] is not None]
            idx = header.index("户编号")
            ids = [r[idx] for r in body]
            assert all(isinstance(i, str) and len(i) == 16 for i in ids)      # codes stay text
            assert {i[:6] for i in ids} == {county}                           # only this county's households
            kinds = {r[header.index("样本类型")] for r in body}
            assert kinds <= {"样本户", "备用户"}
            statuses = {r[header.index("户类型")] for r in body}
            assert statuses <= {"已脱贫", "未脱贫", "当年拟脱贫", "监测户", "一般户", "边缘户"}
            total += len(body)
        assert total == int((sh["county_code"] == county).sum())
        wb.close()


def test_analyst_files_carry_labels(drawn):
    import pyreadstat

    root, [(ws, rec), _] = drawn
    folder = root / "a" / "samples" / rec["draw_id"]
    csv = pd.read_csv(folder / "sample_households.csv", dtype={"household_id": str, "village_code": str})
    assert len(csv) == len(sample_households(ws))
    for ext in ("sav", "dta"):
        reader = pyreadstat.read_sav if ext == "sav" else pyreadstat.read_dta
        df, meta = reader(str(folder / f"sample_households.{ext}"))
        assert len(df) == len(csv)
        labels = meta.variable_value_labels["register_status"]
        assert labels[1] == "已脱贫" and labels[5] == "一般户"
        assert meta.column_names_to_labels["pi"] == "总入样概率"
        assert df["household_id"].iloc[0] == csv["household_id"].iloc[0]


def test_seal_and_check(drawn):
    from sampling.seal import check_archive, seal_draw

    root, [(ws, rec), _] = drawn
    sealed = seal_draw(ws)
    assert len(sealed["seal"]) == 64
    assert check_archive(sealed["archive"], sealed["seal"])["ok"]
    assert verify_draw(ws, seal=sealed["seal"])["ok"]
    assert not verify_draw(ws, seal="0" * 64)["ok"]
    # each county folder carries only its own lists
    for folder in sealed["county_folders"]:
        from pathlib import Path

        names = [p.name for p in Path(folder).iterdir()]
        county = Path(folder).name.split("_")[0]
        assert names and all(n.startswith(county) for n in names)
    # the archive is deterministic: sealing again gives the same bytes and the same seal
    first = open(sealed["archive"], "rb").read()
    again = seal_draw(ws)
    assert again["seal"] == sealed["seal"] and open(again["archive"], "rb").read() == first
    # a tampered archive fails the check
    bad = root / "tampered.zip"
    with zipfile.ZipFile(sealed["archive"]) as z, zipfile.ZipFile(bad, "w") as out:
        for info in z.infolist():
            data = z.read(info.filename)
            if info.filename == "sample_households.csv":
                data = data + b"5201010010010999\n"          # a household slipped in after sealing
            out.writestr(info, data)
    report = check_archive(bad, sealed["seal"])
    assert not report["ok"] and "sample_households.csv" in report["problems"][0]


def test_changed_list_file_cannot_be_sealed(drawn):
    from sampling.seal import seal_draw

    root, [_, (ws, rec)] = drawn
    path = root / "b" / "samples" / rec["draw_id"] / "sample_villages.csv"
    path.write_text(path.read_text(encoding="utf-8") + "x\n", encoding="utf-8")
    with pytest.raises(SamplingError, match="changed after the draw"):
        seal_draw(ws)
    report = verify_draw(ws)          # the draw itself still verifies: lists are re-made from the record
    assert report["ok"]
