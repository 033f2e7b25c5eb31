"""The chip figures the neuromorphic backend reads: the device file's
[neuromorphic] section (every figure with its source) plus its clock and idle
power. Nothing here is a number of its own."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from llmc.errors import UsageError


@dataclass(frozen=True)
class NeuroSpec:
    """Figures of one SpiNNaker 2 chip and the event cost model (see
    llmc/hw/devices/spinnaker2.toml, [neuromorphic])."""

    usable_pes: int
    pe_data_bytes: int
    qpe_grid: tuple[int, int]
    synapse_bytes: int
    source_ptr_bytes: int
    neuron_bytes_egru: int
    neuron_bytes_lif: int
    neuron_bytes_readout: int
    cycles_per_synop: float
    cycles_per_packet: float
    cycles_per_neuron_egru: float
    cycles_per_neuron_lif: float
    cycles_per_readout: float
    sram_bytes_per_synop: float
    noc_pj_per_packet_hop: float
    chip_link_pj_per_packet: float
    tokens_per_inference: int
    step_overhead_cycles: float
    pj_per_active_cycle: float
    chips_per_target: dict[str, int]
    clock_hz: float        # the device's clock_hz
    idle_w: float          # the device's power.idle_w
    sram_pj_per_byte: float  # the device's sram level

    def neuron_bytes(self, kind: str) -> int:
        return getattr(self, f"neuron_bytes_{kind}")

    def neuron_cycles(self, kind: str) -> float:
        return self.cycles_per_readout if kind == "readout" else \
            getattr(self, f"cycles_per_neuron_{kind}")

    def chips_for(self, target: str) -> int:
        return int(self.chips_per_target.get(target, 1))

    def with_(self, **kw: Any) -> NeuroSpec:
        return replace(self, **kw)


def load_spec(device: Any = "spinnaker2") -> NeuroSpec:
    """The NeuroSpec of a device (a llmc.hw Device or a device name)."""
    from llmc.hw.database import get_device

    dev = get_device(device) if isinstance(device, str) else device
    raw = tomllib.loads(Path(dev.path).read_text()).get("neuromorphic")
    if raw is None:
        raise UsageError(f"device {dev.name} has no [neuromorphic] section; the neuromorphic "
                         "backend needs its event cost figures")
    names = {f.name for f in fields(NeuroSpec)}
    vals = {k: v["value"] for k, v in raw.items() if k in names}
    vals["qpe_grid"] = tuple(vals["qpe_grid"])
    if dev.clock_hz is None:
        raise UsageError(f"device {dev.name} has no clock_hz; the event cost model needs it")
    return NeuroSpec(**vals, clock_hz=float(dev.clock_hz.value), idle_w=float(dev.idle_w.value),
                     sram_pj_per_byte=float(dev.level("sram").energy_pj_per_byte))
