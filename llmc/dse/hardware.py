"""A device with a sweep point's hardware overrides, as a device file.

The overrides (array shape, SRAM size, DRAM bandwidth, clock) are applied to
the device file's own tables, and the figures that derive from them move
with them so the file still passes the hardware database's checks
(llmc.hw.parse): every array compute unit's peak scales with MACs x clock,
the vector unit's with the clock, a banked scratchpad's bandwidth with the
clock. Each changed figure's source says what changed it. A worker writes
the derived file once into its own cache directory and loads it like any
device file, so the cost model and the simulator read it unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from llmc.errors import UsageError
from llmc.hw.database import load_device_file

MIB = 2**20


def _overrides(point: dict) -> dict[str, Any]:
    return {k: point[k] for k in ("array", "sram_mib", "dram_gbps", "clock_ghz")
            if point.get(k) is not None}


def derive(raw: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A copy of the device file `raw` with the overrides applied."""
    d = copy.deepcopy(raw)
    note = "sweep override of " + str(raw.get("name"))
    scale_macs, scale_clock = 1.0, 1.0
    if "array" in over:
        a = d["array"]
        rows, cols = (int(x) for x in over["array"].split("x"))
        scale_macs = rows * cols / (a["rows"] * a["cols"])
        a.update(rows=rows, cols=cols, source=f"{note}: array {rows}x{cols}")
    if "clock_ghz" in over:
        old = d["clock_hz"]["value"]
        d["clock_hz"] = {"value": over["clock_ghz"] * 1e9,
                         "source": f"{note}: clock {over['clock_ghz']:g} GHz"}
        scale_clock = over["clock_ghz"] * 1e9 / old
    for key, unit in d.get("compute", {}).items():
        s = scale_clock if key == "vector" else scale_macs * scale_clock
        if s != 1.0:
            unit["flops_per_s"] = unit["flops_per_s"] * s
            unit["source"] = f"{note}: x{s:g} with the array's MACs x clock; was: {unit['source']}"
    mem = d["memory"]
    sp = d.get("scratchpad")
    if sp is not None and sp.get("level") is not None:
        level = next(m for m in mem if m["name"] == sp["level"])
        if scale_clock != 1.0 and "banks" in sp:
            level["bytes_per_s"] = level["bytes_per_s"] * scale_clock
            level["source"] = f"{note}: bandwidth x{scale_clock:g} with the clock"
        if "sram_mib" in over:
            level["capacity_bytes"] = int(over["sram_mib"] * MIB)
            level["source"] = f"{note}: {over['sram_mib']:g} MiB of SRAM"
            if "capacity_bytes" in sp:
                count = d["array"].get("count", 1) if "array" in d else 1
                sp["capacity_bytes"] = int(over["sram_mib"] * MIB) // count
    elif sp is not None and "sram_mib" in over:
        sp["capacity_bytes"] = int(over["sram_mib"] * MIB)
    if "dram_gbps" in over:
        main = mem[-1]
        if main.get("hardwired"):
            raise UsageError(f"{raw.get('name')}: its outer memory is hardwired; "
                             "dram_gbps does not apply")
        main["bytes_per_s"] = over["dram_gbps"] * 1e9
        main["source"] = f"{note}: {over['dram_gbps']:g} GB/s"
    return d


def read_raw(entry: dict) -> dict[str, Any]:
    """A device file's tables from its text (entry: label, suffix, text)."""
    text = entry["text"]
    return json.loads(text) if entry["suffix"] == ".json" else tomllib.loads(text)


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"llmc-dse-devices-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def device_file(point: dict, entry: dict) -> Path:
    """The path of the point's device (its file with its overrides), written
    once per machine into a cache keyed by the content."""
    over = _overrides(point)
    body = json.dumps({"device": point["device"], "over": over}, sort_keys=True)
    key = hashlib.sha256(body.encode()).hexdigest()[:16]
    path = _cache_dir() / f"{key}.json"
    if not path.is_file():
        data = json.dumps(derive(read_raw(entry), over), sort_keys=True, indent=1)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(data)
        os.replace(tmp, path)  # atomic: another process may write the same file
    return path


def load(point: dict, entry: dict):  # noqa: ANN201 - llmc.hw.device.Device
    """(path, Device) of the point's device."""
    path = device_file(point, entry)
    return path, load_device_file(path)
