"""The hardware database: the shipped device files, a user's own files, and
the lookup `get_device(name)` that accepts a target (`a100`), a device key
(`a100-sxm4-80gb`) or a path to a device file.

A user adds a device without touching code: copy a file of
`llmc/hw/devices/`, edit it, and either pass its path as the target
(`llmc report MODEL --target ./my-gpu.toml`) or put it in a directory named
by the `LLMC_DEVICE_PATH` environment variable (os.pathsep-separated).
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmc.errors import UsageError
from llmc.hw.device import Device
from llmc.hw.parse import parse_device
from llmc.hw.targets import TARGETS

DEVICES_DIR = Path(__file__).parent / "devices"
LINKS_FILE = Path(__file__).parent / "links.toml"
ENV_PATH = "LLMC_DEVICE_PATH"
LLMC_DEVICE_PATH = ENV_PATH


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".json":
            raw = json.loads(path.read_text())
        elif path.suffix == ".toml":
            raw = tomllib.loads(path.read_text())
        else:
            raise UsageError(f"{path}: a device file must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a table/object at the top level")
    return raw


@lru_cache(maxsize=1)
def links() -> dict[str, Any]:
    """The interconnect catalogue (links.toml): name -> figures."""
    return _read(LINKS_FILE)


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> Device:
    return parse_device(_read(Path(path)), path, links())


def load_device_file(path: str | os.PathLike[str]) -> Device:
    """Parse one device file (TOML or JSON)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"device file {p} does not exist")
    return _load_cached(str(p.resolve()), p.stat().st_mtime_ns)


def _files() -> list[Path]:
    """Shipped device files, then the user's (a user file may shadow a shipped one)."""
    files = sorted(DEVICES_DIR.glob("*.toml"))
    for entry in filter(None, os.environ.get(ENV_PATH, "").split(os.pathsep)):
        p = Path(entry)
        if p.is_dir():
            files += sorted([*p.glob("*.toml"), *p.glob("*.json")])
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"{ENV_PATH} names {entry}, which does not exist")
    return files


def shipped_keys() -> list[str]:
    """Keys of the shipped devices (their file stems), without parsing the files."""
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


def list_devices() -> dict[str, Device]:
    """Every device of the database by key (user files override shipped ones)."""
    return {d.name: d for d in map(load_device_file, _files())}


def get_device(name: str) -> Device:
    """A device by target name, device key, or device-file path."""
    if not name or not name.strip():
        raise UsageError("empty device/target name")
    if name.endswith((".toml", ".json")) or os.sep in name:
        return load_device_file(name)
    key = TARGETS[name].device if name in TARGETS else name
    devices = list_devices()
    if key in devices:
        return devices[key]
    known = sorted({*TARGETS, *devices})
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(f"unknown device or target {name!r}{hint} (known: {', '.join(known)}; "
                     f"or pass a device file path)")


def target_label(name: str) -> str:
    """The name to show for a target argument (a file path shows as its stem)."""
    return Path(name).stem if name.endswith((".toml", ".json")) else name
