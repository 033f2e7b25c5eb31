"""What a simulation returns: cycles, stalls, action counts, energy, trace."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from llmc.sim.actions import Actions


@dataclass
class SimResult:
    """The outcome of simulating one GEMM, one step or a whole schedule.

    `compute_cycles` is the time the compute units need with ideal memory
    (SCALE-Sim 3.0's stall-free model for a GEMM, or the fold-overlap variant);
    `stall_cycles` = `cycles` − `compute_cycles`, split into scratchpad-port
    stalls and DRAM/link stalls. The rooflines are lower bounds on `cycles`:
    `compute_roofline_cycles` (= compute_cycles) and `memory_roofline_cycles`
    (DRAM bytes ÷ bytes per cycle).
    """

    name: str
    cycles: int
    compute_cycles: int
    sram_stall_cycles: int
    dram_stall_cycles: int
    macs: int
    peak_macs_per_cycle: int
    clock_ghz: float
    actions: Actions
    energy_breakdown_pj: dict[str, float]
    compute_roofline_cycles: float
    memory_roofline_cycles: float
    details: dict = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    trace_events: list[dict] | None = None

    @property
    def stall_cycles(self) -> int:
        return self.cycles - self.compute_cycles

    @property
    def utilization(self) -> float:
        """MACs done ÷ MACs the array could have done in `cycles`."""
        if self.cycles <= 0:
            return 0.0
        return self.macs / (self.peak_macs_per_cycle * self.cycles)

    @property
    def time_s(self) -> float:
        return self.cycles / (self.clock_ghz * 1e9)

    @property
    def energy_pj(self) -> float:
        return float(sum(self.energy_breakdown_pj.values()))

    def summary(self) -> dict:
        """The headline numbers, JSON-ready (no per-step list, no trace)."""
        return {
            "name": self.name,
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "sram_stall_cycles": self.sram_stall_cycles,
            "dram_stall_cycles": self.dram_stall_cycles,
            "utilization": self.utilization,
            "time_s": self.time_s,
            "macs": self.macs,
            "compute_roofline_cycles": self.compute_roofline_cycles,
            "memory_roofline_cycles": self.memory_roofline_cycles,
            "energy_pj": self.energy_pj,
            "energy_breakdown_pj": dict(self.energy_breakdown_pj),
        }

    def to_dict(self) -> dict:
        """Everything but the trace, JSON-ready."""
        out = self.summary()
        out["actions"] = self.actions.to_dict()
        out["details"] = dict(self.details)
        if self.steps:
            out["steps"] = list(self.steps)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def write_trace(self, path: str | Path) -> Path:
        """Write the timeline as Chrome/Perfetto trace JSON (open in ui.perfetto.dev)."""
        from llmc.sim.trace import write_trace

        return write_trace(self, path)
