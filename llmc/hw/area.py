"""First-order silicon area of a device's MAC arrays and scratchpad.

`area_mm2(device)` = MACs x (multiplier + accumulator adder) + on-chip SRAM
bits x bit cell / macro efficiency, from `data/area_45nm.json` (Horowitz,
ISSCC 2014, 45 nm arithmetic areas; published 6T cell sizes per node). It
is the area axis of a design-space sweep (llmc.dse), comparable between
points of one node, not a die size: control, wiring, PHYs and vector units
are left out. None when the device has no MAC array or its node has no
bit-cell figure.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmc.hw.device import Device

AREA_TABLE = Path(__file__).parent / "data" / "area_45nm.json"


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return json.loads(AREA_TABLE.read_text())


def _fig(name: str) -> float:
    return float(_table()["figures"][name]["value"])


def mac_area_um2(numeric: str, in_bits: int, acc_bits: int) -> float:
    """One multiply-accumulate unit at 45 nm: a multiplier of `in_bits`
    operands (bits^2 rule from 8 or 16 bits) and an adder of `acc_bits`."""
    if numeric == "int":
        mult = _fig("int8_mult_area_um2") * (in_bits / 8) ** 2
        add = _fig("int32_add_area_um2") * acc_bits / 32
    else:
        mult = _fig("fp16_mult_area_um2") * (in_bits / 16) ** 2
        add = _fig("fp32_add_area_um2") * acc_bits / 32
    return mult + add


def sram_cell_um2(node_nm: int) -> float | None:
    cells = _table()["sram_bit_cell_um2"]
    return float(cells[str(node_nm)]["value"]) if str(node_nm) in cells else None


def area_mm2(device: Device) -> float | None:
    """MAC arrays plus on-chip SRAM (the scratchpad's memory level, or the
    scratchpad alone), in mm² at the device's node; None where not known."""
    cell = sram_cell_um2(device.node_nm)
    ref = sram_cell_um2(_table()["node_nm"])
    if device.array is None or cell is None or ref is None:
        return None
    a = device.array
    logic = a.macs_per_cycle * mac_area_um2(a.numeric, a.spec.in_bits, a.spec.acc_bits)
    logic *= cell / ref
    s = device.scratchpad
    sram_bytes = 0.0
    if s is not None:
        sram_bytes = (device.level(s.level).capacity_bytes if s.level is not None
                      else s.capacity_bytes * a.count)
    sram = sram_bytes * 8 * cell / _fig("sram_macro_efficiency")
    return (logic + sram) / 1e6
