"""An artifact directory and its manifest.json.

`llmc compile` writes the manifest last: which backend emitted the artifact,
for which target and device, with which llmc version and artifact format,
the sha256 of the model and of the compile options, and the sha256 of every
other file. `open_artifact` is the only way back in: it refuses (UsageError,
one line) a directory that is not an artifact, one written by another llmc
version or format, and one whose files are missing or differ from their
hashes, before any of them is used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmc.errors import UsageError

MANIFEST = "manifest.json"
FORMAT = "llmc-artifact"
FORMAT_VERSION = 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(directory: Path) -> list[str]:
    """Every file under `directory` but the manifest, as sorted POSIX paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST)


def manifest_text(directory: Path, llmc_version: str, fields: Mapping[str, Any]) -> str:
    """manifest.json for the files now in `directory`: `fields` (backend,
    target, device, model, options, ...) plus the format, the llmc version
    and every file's sha256."""
    files = {name: sha256((directory / name).read_bytes()) for name in _files(directory)}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "llmc_version": llmc_version, **fields, "files": files}
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Artifact:
    """A checked artifact directory: its manifest and its files' bytes."""

    path: Path
    manifest: dict[str, Any]

    @property
    def backend(self) -> str:
        return self.manifest["backend"]

    def read_bytes(self, name: str) -> bytes:
        if name not in self.manifest["files"]:
            raise UsageError(f"{self.path}: the artifact has no file {name!r} "
                             f"(backend {self.backend})")
        return (self.path / name).read_bytes()

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode()


def open_artifact(path: str | Path, llmc_version: str) -> Artifact:
    """The artifact at `path`, checked against its manifest (see the module
    docstring for what is refused) for this `llmc_version`."""
    path = Path(path)
    manifest = _read_manifest(path)
    built = (manifest.get("llmc_version"), manifest.get("format_version"))
    if built != (llmc_version, FORMAT_VERSION):
        raise UsageError(f"{path} was built by llmc {built[0]} (artifact format {built[1]}); "
                         f"this is llmc {llmc_version} (format {FORMAT_VERSION}): compile it "
                         "again with this llmc")
    lacking = [k for k in ("backend", "target", "device") if not isinstance(manifest.get(k), str)]
    if lacking:
        raise UsageError(f"{path}/{MANIFEST} lacks {', '.join(lacking)}; compile it again")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise UsageError(f"{path}/{MANIFEST} has no valid file list; compile it again")
    for name, digest in sorted(files.items()):
        f = path / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise UsageError(f"{path}/{MANIFEST} lists {name!r}, outside the artifact")
        if not f.is_file():
            raise UsageError(f"{path} is incomplete: {name} (listed in {MANIFEST}) is missing; "
                             "compile it again")
        if sha256(f.read_bytes()) != digest:
            raise UsageError(f"{path} was modified after compile: {name} does not match its "
                             f"sha256 in {MANIFEST}; compile it again")
    return Artifact(path, manifest)


def _read_manifest(path: Path) -> dict[str, Any]:
    what = "make one with `llmc compile MODEL --target T -o DIR`"
    if not path.is_dir():
        raise UsageError(f"{path} is not an llmc artifact (not a directory); {what}")
    if not (path / MANIFEST).is_file():
        raise UsageError(f"{path} is not an llmc artifact (no {MANIFEST}); {what}")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}/{MANIFEST} cannot be read ({exc}); {what}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UsageError(f"{path} is not an llmc artifact ({MANIFEST} is not llmc's); {what}")
    return manifest
