"""Time and energy of a simulated run from its counts and the per-op figures
of the device file's [neuromorphic] section (llmc/hw/devices/spinnaker2.toml).

    time   = (sum over steps of the slowest PE of each layer, in cycles
              + steps x step_overhead_cycles) / clock
    energy = chips x idle power x time
           + active cycles x pj_per_active_cycle        (every PE's busy cycles)
           + synops x sram_bytes_per_synop x SRAM pJ/B
           + mesh link traversals x noc_pj_per_packet_hop
           + chip-to-chip packets x chip_link_pj_per_packet

step_overhead_cycles and pj_per_active_cycle are the two calibrated figures
(calibrate.py); everything else is a documented assumption or datasheet fact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from llmc.backends.neuromorphic.mapping import Mapping
from llmc.backends.neuromorphic.sim import Counts
from llmc.backends.neuromorphic.spec import NeuroSpec


@dataclass(frozen=True)
class Cost:
    """Time and energy of a run, with the parts of the energy."""

    steps: int
    time_s: float
    energy_j: float
    static_j: float
    compute_j: float
    sram_j: float
    noc_j: float
    active_cycles: float

    @property
    def per_step_s(self) -> float:
        return self.time_s / max(1, self.steps)

    @property
    def per_step_j(self) -> float:
        return self.energy_j / max(1, self.steps)

    def to_json(self) -> dict[str, float]:
        return {**asdict(self), "per_step_s": self.per_step_s, "per_step_j": self.per_step_j}


def active_cycles(counts: Counts, spec: NeuroSpec, mapping: Mapping) -> float:
    cyc = counts.synops * spec.cycles_per_synop + counts.packets * spec.cycles_per_packet
    units = 0.0
    for p in mapping.all_placements():
        units += float(p.units_per_pe.sum()) * counts.steps * spec.neuron_cycles(p.layer.kind)
    return float(np.sum(cyc)) + units


def cost_of(counts: Counts, mapping: Mapping, spec: NeuroSpec | None = None) -> Cost:
    """Time and energy of `counts` on `mapping` (spec: the mapping's unless given)."""
    spec = spec or mapping.spec
    cycles = counts.critical_cycles + counts.steps * spec.step_overhead_cycles
    t = cycles / spec.clock_hz
    act = active_cycles(counts, spec, mapping)
    static = mapping.chips * spec.idle_w * t
    compute = act * spec.pj_per_active_cycle * 1e-12
    sram = counts.total_synops * spec.sram_bytes_per_synop * spec.sram_pj_per_byte * 1e-12
    noc = (counts.mesh_links * spec.noc_pj_per_packet_hop
           + counts.chip_packets * spec.chip_link_pj_per_packet) * 1e-12
    return Cost(counts.steps, t, static + compute + sram + noc, static, compute, sram, noc, act)
