"""Provenance lives in the project: every document a source file, a device
file or a doc cites by file name is in the repository (docs/references.md
holds the public figures with their sources)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("llmc", "tests", "bench", "docs")
SUFFIXES = {".py", ".toml", ".json", ".md"}
# a cited document: one under docs/, or an upper-case name such as README.md;
# lower-case names elsewhere are files llmc writes (report.md, plan.md)
CITED = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*(?:[A-Z][A-Z_]+|docs/[\w-]+)\.md)\b")


def _files() -> list[Path]:
    out = [ROOT / "README.md"]
    for d in SCANNED:
        out += [p for p in (ROOT / d).rglob("*") if p.suffix in SUFFIXES and p.is_file()
                and "results" not in p.parts]
    return out


def _resolves(name: str, where: Path) -> bool:
    return any((base / name).is_file() for base in (ROOT, where.parent, ROOT / "docs",
                                                  ROOT / "bench" / "results"))


def test_every_cited_document_is_in_the_repository() -> None:
    missing = []
    for path in _files():
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for name in CITED.findall(line):
                if not _resolves(name, path):
                    missing.append(f"{path.relative_to(ROOT)}:{i}: {name}")
    assert not missing, "cited documents not in the repository:\n" + "\n".join(missing)


def test_references_name_their_sources() -> None:
    text = (ROOT / "docs" / "references.md").read_text()
    for needle in ("arXiv:2405.08944", "arXiv:2508.16151", "Horowitz", "datasheet"):
        assert needle in text
