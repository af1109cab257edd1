"""Sealed export of a draw's lists (SPEC §5: only the sampling officer sees the full list before fieldwork).

``seal_draw(ws)`` writes, under ``samples/<draw_id>/sealed/`` (or ``out``):

- ``full_lists.zip``: every list of the draw, for the sampling officer (deterministic ZIP: sorted entries,
  fixed timestamps, so the same draw always gives the same archive);
- ``MANIFEST.sha256``: one line ``<sha256>  <path>`` per list file (the format ``sha256sum -c`` reads);
- ``SEAL.txt``: the seal, the SHA-256 of the manifest's bytes;
- ``county/<county_code>_<name>/``: each county's own workbook and CSV, nothing from other counties, to hand
  to that county's team.

The seal is a commitment: it is published (or handed to the supervising office) before fieldwork; after
fieldwork anyone can check with ``tpa sample verify --seal <digest>`` that the lists used are the ones drawn,
because the lists are a pure function of the recorded frames, design and seed.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

from .errors import SamplingError
from .fieldlists import sha256_file

ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def manifest_text(files: dict) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(files.items()))


def manifest_digest(files: dict) -> str:
    return hashlib.sha256(manifest_text(files).encode("utf-8")).hexdigest()


def _deterministic_zip(archive: Path, folder: Path, names: list[str], extra: dict[str, bytes]) -> None:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        entries = [(n, (folder / n).read_bytes()) for n in names] + sorted(extra.items())
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            z.writestr(info, data)


def seal_draw(ws, draw_id=None, *, out=None) -> dict:
    """Seal a draw's lists; refuses when a list file no longer matches the hash recorded at the draw."""
    from .draw import _DDL, get_draw

    row = get_draw(ws, draw_id)
    did = row["draw_id"]
    recorded = row["summary"].get("files") or {}
    folder = Path(row["summary"].get("list_dir") or ws.dir("samples") / did)
    if not recorded:
        raise SamplingError(f"draw {did} has no field lists to seal", code="no_lists",
                            fix="draw again with field lists (without --no-lists)")
    for rel, digest in sorted(recorded.items()):
        p = folder / rel
        if not p.is_file():
            raise SamplingError(f"list file {rel} of draw {did} is missing", code="list_missing", file=p,
                                fix=f"restore it, or re-create the lists with `tpa sample verify --draw {did}`")
        if sha256_file(p) != digest:
            raise SamplingError(f"list file {rel} of draw {did} was changed after the draw", code="list_changed",
                                file=p, fix="restore the file as drawn; a changed list cannot be sealed")
    target = Path(out) if out else folder / "sealed"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    manifest = manifest_text(recorded)
    seal = manifest_digest(recorded)
    _deterministic_zip(target / "full_lists.zip", folder, sorted(recorded),
                       {"MANIFEST.sha256": manifest.encode("utf-8")})
    (target / "MANIFEST.sha256").write_text(manifest, encoding="utf-8")
    (target / "SEAL.txt").write_text(f"{seal}\n", encoding="utf-8")
    counties = []
    for rel in sorted(recorded):
        if rel.startswith("counties/"):
            stem = Path(rel).stem
            dest = target / "county" / stem
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, dest / Path(rel).name)
            if stem not in counties:
                counties.append(stem)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with ws.transaction() as con:
        for ddl in _DDL:
            con.execute(ddl)
        con.execute("CREATE TABLE IF NOT EXISTS draw_seals (draw_id TEXT NOT NULL, seal TEXT NOT NULL, "
                    "created TEXT NOT NULL, archive TEXT, manifest TEXT, PRIMARY KEY (draw_id, seal))")
        con.execute("INSERT OR REPLACE INTO draw_seals VALUES (?, ?, ?, ?, ?)",
                    (did, seal, created, str(target / "full_lists.zip"), manifest))
    return {"draw_id": did, "seal": seal, "archive": str(target / "full_lists.zip"),
            "manifest": str(target / "MANIFEST.sha256"), "county_folders": [str(target / "county" / c)
                                                                               for c in counties],
            "files": len(recorded)}


def check_archive(archive, seal: str) -> dict:
    """Check a sealed archive against a published seal: every file's hash and the manifest's digest."""
    archive = Path(archive)
    if not archive.is_file():
        raise SamplingError("sealed archive not found", code="file_not_found", file=archive,
                            fix="give the path of full_lists.zip")
    problems = []
    with zipfile.ZipFile(archive) as z:
        try:
            manifest = z.read("MANIFEST.sha256").decode("utf-8")
        except KeyError:
            raise SamplingError("the archive holds no MANIFEST.sha256", code="not_sealed", file=archive,
                                fix="give the full_lists.zip written by `tpa sample seal`") from None
        files = {}
        for line in manifest.splitlines():
            digest, _, path = line.partition("  ")
            files[path] = digest
            try:
                data = z.read(path)
            except KeyError:
                problems.append(f"{path} missing from the archive")
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                problems.append(f"{path} does not match its hash in the manifest")
        extra = sorted(set(z.namelist()) - set(files) - {"MANIFEST.sha256"})
        problems += [f"{p} is in the archive but not in the manifest" for p in extra]
    digest = manifest_digest(files)
    if digest != seal.strip().lower():
        problems.append(f"the manifest's digest is {digest}, not the seal given")
    return {"archive": str(archive), "seal": seal, "ok": not problems, "problems": problems,
            "files": len(files)}


def draw_seals(ws, draw_id=None) -> list[dict]:
    if not ws.table_exists("draw_seals"):
        return []
    sql = "SELECT draw_id, seal, created, archive FROM draw_seals"
    df = ws.read_sql(sql + (" WHERE draw_id = ?" if draw_id else "") + " ORDER BY created",
                     (draw_id,) if draw_id else ())
    return json.loads(df.to_json(orient="records"))
