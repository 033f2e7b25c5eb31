"""A program as a schedule of steps, and its simulation.

A step is a GEMM (on the systolic array or the vector unit), an element-wise
vector step, a DMA transfer, a link transfer or a ring all-reduce. Steps run
back to back in list order (a conservative model: one step's prologue load does
not overlap the previous step); inside a GEMM, DMA overlaps compute. `count`
repeats a step (e.g. once per attention head); identical steps are simulated
once and scaled, and GEMM results are memoised across calls, which is what
makes a whole LLM step cost well under a second.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from llmc.errors import UsageError
from llmc.sim.actions import Actions
from llmc.sim.energy import energy_breakdown_pj
from llmc.sim.hardware import SimHardware
from llmc.sim.result import SimResult


def _count(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{what} must be a positive integer, got {value!r}")


def _nonneg(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 \
            or math.isinf(value):
        raise UsageError(f"{what} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class GemmStep:
    """C[M×N] = A[M×K]·B[K×N] on the array (`unit="array"`) or the vector unit."""

    m: int
    n: int
    k: int
    name: str = "gemm"
    count: int = 1
    unit: str = "array"
    fold_overlap: bool = False
    out_bits: int | None = None

    def __post_init__(self) -> None:
        for dim in ("m", "n", "k"):
            _count(getattr(self, dim), f"{self.name}: {dim.upper()}")
        _count(self.count, f"{self.name}: count")
        if self.unit not in ("array", "vector"):
            raise UsageError(f"{self.name}: unit must be 'array' or 'vector', got {self.unit!r}")


@dataclass(frozen=True)
class VectorStep:
    """`elements` × `ops_per_element` MAC-equivalent ops on the vector unit, streaming
    `read_bytes` in from DRAM and `write_bytes` out (softmax, norms, activations)."""

    elements: int
    ops_per_element: float = 1.0
    read_bytes: float = 0.0
    write_bytes: float = 0.0
    name: str = "vector"
    count: int = 1

    def __post_init__(self) -> None:
        _count(self.elements, f"{self.name}: elements")
        _nonneg(self.ops_per_element, f"{self.name}: ops_per_element")
        _nonneg(self.read_bytes, f"{self.name}: read_bytes")
        _nonneg(self.write_bytes, f"{self.name}: write_bytes")
        _count(self.count, f"{self.name}: count")


@dataclass(frozen=True)
class DmaStep:
    """A plain DRAM transfer (e.g. appending to the KV cache)."""

    read_bytes: float = 0.0
    write_bytes: float = 0.0
    name: str = "dma"
    count: int = 1

    def __post_init__(self) -> None:
        _nonneg(self.read_bytes, f"{self.name}: read_bytes")
        _nonneg(self.write_bytes, f"{self.name}: write_bytes")
        _count(self.count, f"{self.name}: count")


@dataclass(frozen=True)
class LinkStep:
    """`nbytes` sent to another chip over `hops` links in series (store-and-forward)."""

    nbytes: float
    hops: int = 1
    name: str = "link"
    count: int = 1

    def __post_init__(self) -> None:
        _nonneg(self.nbytes, f"{self.name}: nbytes")
        _count(self.hops, f"{self.name}: hops")
        _count(self.count, f"{self.name}: count")


@dataclass(frozen=True)
class AllReduceStep:
    """Ring all-reduce of `nbytes` across `chips`: 2(n−1) phases of nbytes/n each
    (Patarasuk & Yuan 2009); counts this chip's sent bytes."""

    nbytes: float
    chips: int
    name: str = "allreduce"
    count: int = 1

    def __post_init__(self) -> None:
        _nonneg(self.nbytes, f"{self.name}: nbytes")
        _count(self.chips, f"{self.name}: chips")
        _count(self.count, f"{self.name}: count")


Step = GemmStep | VectorStep | DmaStep | LinkStep | AllReduceStep


def streamed_step(name: str, hw: SimHardware, *, compute_cycles: int, dram_read_bytes: float = 0.0,
                  dram_write_bytes: float = 0.0, vector_ops: dict | None = None,
                  details: dict | None = None, macs: int = 0, peak: int | None = None,
                  link_bytes: float = 0.0, link_cycles: float = 0.0) -> SimResult:
    """A step whose data streams through double buffers: max(compute, memory) + latency."""
    nbytes = dram_read_bytes + dram_write_bytes
    mem = nbytes / hw.dram_bytes_per_cycle
    lat = hw.dram_latency_cycles if nbytes > 0 else 0.0
    cycles = int(math.ceil(max(compute_cycles, mem) + lat + link_cycles - 1e-9))
    actions = Actions(vector_ops=Counter(vector_ops or {}),
                      sram_read_bytes=nbytes, sram_write_bytes=nbytes,
                      dram_read_bytes=dram_read_bytes, dram_write_bytes=dram_write_bytes,
                      link_bytes=link_bytes)
    seconds = cycles / (hw.clock_ghz * 1e9)
    return SimResult(
        name=name, cycles=cycles, compute_cycles=int(compute_cycles), sram_stall_cycles=0,
        dram_stall_cycles=cycles - int(compute_cycles), macs=macs,
        peak_macs_per_cycle=peak or (hw.vector.lanes if hw.vector else hw.array.pes), clock_ghz=hw.clock_ghz, actions=actions,
        energy_breakdown_pj=energy_breakdown_pj(actions, hw, seconds),
        compute_roofline_cycles=float(compute_cycles), memory_roofline_cycles=mem,
        details=details or {},
    )


def simulate_step(step: Step, hw: SimHardware, *, trace: bool = False) -> SimResult:
    """One instance of `step` (its `count` is applied by `simulate_schedule`)."""
    from llmc.sim.gemm import simulate_gemm, simulate_vector_gemm

    if isinstance(step, GemmStep):
        if step.unit == "vector":
            return simulate_vector_gemm(step.m, step.n, step.k, hw, out_bits=step.out_bits,
                                        name=step.name)
        return simulate_gemm(step.m, step.n, step.k, hw, fold_overlap=step.fold_overlap,
                             out_bits=step.out_bits, trace=trace, name=step.name)
    if isinstance(step, VectorStep):
        vec = hw.need_vector()
        dtype = f"{hw.numeric}{vec.in_bits}"
        ops = step.elements * step.ops_per_element
        compute = int(math.ceil(ops / vec.lanes)) + vec.pipeline_depth
        return streamed_step(step.name, hw, compute_cycles=compute,
                             dram_read_bytes=step.read_bytes, dram_write_bytes=step.write_bytes,
                             vector_ops={dtype: ops}, details={"kind": "vector"})
    if isinstance(step, DmaStep):
        return streamed_step(step.name, hw, compute_cycles=0, dram_read_bytes=step.read_bytes,
                             dram_write_bytes=step.write_bytes, details={"kind": "dma"})
    if isinstance(step, LinkStep):
        per_hop = hw.link_latency_cycles + step.nbytes / hw.link_bytes_per_cycle
        return streamed_step(step.name, hw, compute_cycles=0, link_bytes=step.nbytes * step.hops,
                             link_cycles=step.hops * per_hop, details={"kind": "link"})
    if isinstance(step, AllReduceStep):
        n = step.chips
        phases = 2 * (n - 1)
        chunk = step.nbytes / n
        per_phase = hw.link_latency_cycles + chunk / hw.link_bytes_per_cycle
        return streamed_step(step.name, hw, compute_cycles=0, link_bytes=phases * chunk,
                             link_cycles=phases * per_phase if n > 1 else 0.0,
                             details={"kind": "allreduce", "chips": n})
    raise UsageError(f"not a simulator step: {step!r}")


def simulate_schedule(steps: list[Step], hw: SimHardware, *, trace: bool | str = False,
                      name: str = "schedule") -> SimResult:
    """Simulate `steps` back to back on `hw`; per-step results are in `.steps`.

    `trace`: False, True/"steps" (one event per step) or "folds" (also every
    fold of every array GEMM; large).
    """
    if not steps:
        raise UsageError("empty schedule: give at least one step")
    total = Actions()
    cycles = compute = sram_stall = macs = 0
    per_step, events, t0 = [], [], 0
    for step in steps:
        res = simulate_step(step, hw, trace=(trace == "folds"))
        count = step.count
        per_step.append({**res.summary(), "count": count, "kind": res.details.get("kind")})
        if trace:
            from llmc.sim.trace import step_events

            events += step_events(res, hw, t0, count)
        t0 += res.cycles * count
        cycles += res.cycles * count
        compute += res.compute_cycles * count
        sram_stall += res.sram_stall_cycles * count
        if res.details.get("unit") == "array":
            macs += res.macs * count
        total = total + res.actions.scaled(count)
    seconds = cycles / (hw.clock_ghz * 1e9)
    return SimResult(
        name=name, cycles=cycles, compute_cycles=compute, sram_stall_cycles=sram_stall,
        dram_stall_cycles=cycles - compute - sram_stall, macs=macs,
        peak_macs_per_cycle=hw.array.pes, clock_ghz=hw.clock_ghz, actions=total,
        energy_breakdown_pj=energy_breakdown_pj(total, hw, seconds),
        compute_roofline_cycles=float(compute),
        memory_roofline_cycles=total.dram_bytes / hw.dram_bytes_per_cycle,
        details={"kind": "schedule", "steps": len(steps)}, steps=per_step,
        trace_events=events if trace else None,
    )
