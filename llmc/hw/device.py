"""Devices as data: the dataclasses a device file (TOML or JSON) becomes.

A device file names its compute units per dtype (peak FLOP/s dense and 2:4
sparse, energy per FLOP), its memory levels innermost first (capacity,
bandwidth, latency, energy per byte, which tensors may live there), its links
(scale-up for tensor parallelism, host for swapping KV), host memory, power
and the efficiency factors that turn datasheet peaks into expected times.
Where a reader needs them it also names the clock, the MAC array (rows, cols,
dataflow, operand and accumulator bits, how many), the vector unit, the
scratchpad one tile loop may use (with its banking) and the attention-tiling
rules. Every figure carries a `source`; `llmc/hw/devices/*.toml` are the
examples to copy. Units are in the names (`bytes_per_s`, `energy_pj_per_flop`).
The cost model, the simulator (`llmc.sim.hardware.from_device`), tiling
(`llmc.passes.tiling.on_chip`) and the RTL generator read views of a Device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmc.errors import UsageError
from llmc.hw.array import ArraySpec

HOLDS = ("weights", "kv", "act")
EFFICIENCY_KEYS = ("matmul", "attention", "vector", "memory", "kernel_overhead_s")

# When a device lacks a unit for an op's dtype, the op runs on the next one
# in its chain (an fp8 matmul on an A100 runs at the bf16 rate).
FALLBACK = {
    "fp4": ("fp4", "fp8", "int8", "bf16", "f32"),
    "fp8": ("fp8", "bf16", "f32"),
    "int4": ("int4", "int8", "bf16", "f32"),
    "int8": ("int8", "bf16", "f32"),
    "bf16": ("bf16", "f32"),
    "f32": ("f32", "bf16"),
    "vector": ("vector", "f32", "bf16"),
}


@dataclass(frozen=True)
class Figure:
    """One number and where it comes from."""

    value: float
    source: str


@dataclass(frozen=True)
class ComputeUnit:
    """Peak rate of the units that run `dtype` ops. weights_only: the unit
    multiplies activations by stored weights only (a hardwired or
    weight-stationary array), so attention's activation x activation
    products cannot use it."""

    dtype: str
    flops_per_s: float
    energy_pj_per_flop: float
    source: str
    energy_source: str
    sparse_flops_per_s: float | None = None
    weights_only: bool = False


@dataclass(frozen=True)
class MemoryLevel:
    """A level of the memory hierarchy. hardwired: the weights are the
    circuit (no capacity limit, no traffic cost)."""

    name: str
    capacity_bytes: float
    bytes_per_s: float
    energy_pj_per_byte: float
    holds: frozenset[str]
    source: str
    energy_source: str = ""
    hardwired: bool = False
    latency_s: float | None = None            # request to first data; None: not given
    latency_source: str = ""


@dataclass(frozen=True)
class Link:
    """A point-to-point link; bytes_per_s is per direction."""

    name: str
    bytes_per_s: float
    latency_s: float
    energy_pj_per_byte: float
    source: str
    description: str = ""


@dataclass(frozen=True)
class MacArray:
    """`count` identical R x C arrays of multiply-accumulate units. numeric:
    "int" or "fp" multipliers of spec.in_bits bits."""

    spec: ArraySpec
    count: int
    numeric: str
    source: str

    @property
    def dtype(self) -> str:
        """The compute unit key its peak is listed under ("int8", "bf16", ...)."""
        if self.numeric == "int":
            return f"int{self.spec.in_bits}"
        return {16: "bf16", 8: "fp8", 4: "fp4"}.get(self.spec.in_bits, "f32")

    @property
    def macs_per_cycle(self) -> int:
        return self.count * self.spec.pes


@dataclass(frozen=True)
class VectorUnit:
    """`count` vector units of `lanes` lanes, each one multiply-add per cycle;
    `pipeline_depth` cycles of latency per step."""

    lanes: int
    in_bits: int
    acc_bits: int
    pipeline_depth: int
    count: int
    source: str


@dataclass(frozen=True)
class Scratchpad:
    """The on-chip memory one tile loop may use (an NPU array's SRAM, one GPU
    thread block's shared memory, one PE's SRAM). level: the memory level it
    is part of, if the cost model lists it. Banking (banks of bank_width_bits
    with ports_per_bank ports; double_buffered operand buffers) is None where
    the file does not give it."""

    capacity_bytes: int
    source: str
    level: str | None = None
    banks: int | None = None
    bank_width_bits: int | None = None
    ports_per_bank: int | None = None
    double_buffered: bool | None = None
    banking_source: str = ""

    @property
    def banked(self) -> bool:
        return self.banks is not None


@dataclass(frozen=True)
class TilingRules:
    """How attention tiles are cut on this device (llmc.passes.tiling): tile
    sizes are multiples of `align` (and powers of two where `pow2`); GPU query
    tiles are split over warps of `rows_per_warp` rows, at most `max_block_q`
    rows; `scores_on_chip`: the score tile S_ij takes room in the scratchpad
    (False on GPUs, whose S_ij stays in registers)."""

    align: int
    pow2: bool
    max_block_q: int | None
    rows_per_warp: int
    scores_on_chip: bool
    source: str


@dataclass(frozen=True)
class Device:
    """One device (or one system modelled as a device) of the database."""

    name: str
    description: str
    kind: str
    node_nm: int
    default_quant: str
    compute: Mapping[str, ComputeUnit]
    memory: tuple[MemoryLevel, ...]            # innermost first
    tdp_w: Figure
    idle_w: Figure
    reserved_bytes: Figure
    max_tp: Figure
    efficiency: Mapping[str, Figure]
    scale_up: Link | None = None
    host_link: Link | None = None
    host_memory: Figure | None = None          # capacity; bandwidth in host_memory_bytes_per_s
    host_memory_bytes_per_s: float = 0.0
    pipeline_sequences: Figure | None = None   # work items in flight to reach peak
    clock_hz: Figure | None = None
    array: MacArray | None = None
    vector: VectorUnit | None = None
    scratchpad: Scratchpad | None = None
    tiling: TilingRules | None = None
    sm_count: Figure | None = None             # [gpu]: streaming multiprocessors
    path: str = ""

    @property
    def main(self) -> MemoryLevel:
        """The outermost level: where weights and KV live unless a faster one holds them."""
        return self.memory[-1]

    def level(self, name: str) -> MemoryLevel:
        for m in self.memory:
            if m.name == name:
                return m
        raise UsageError(f"device {self.name} has no memory level {name!r}")

    def unit(self, dtype: str, weight_operand: bool = True) -> ComputeUnit:
        """The unit an op of `dtype` runs on (following FALLBACK)."""
        for key in FALLBACK.get(dtype, (dtype,)):
            u = self.compute.get(key)
            if u is not None and (weight_operand or not u.weights_only):
                return u
        raise UsageError(f"device {self.name} has no compute unit for {dtype} ops "
                         f"(it has {', '.join(self.compute)})")

    def eff(self, key: str) -> float:
        return self.efficiency[key].value

    @property
    def pipelined(self) -> bool:
        """Units work concurrently on different tokens (a layer-per-stage pipeline)."""
        return self.pipeline_sequences is not None and self.pipeline_sequences.value > 1

    def occupancy(self, in_flight: int) -> float:
        """Fraction of peak a pipelined device reaches with `in_flight` tokens."""
        if not self.pipelined:
            return 1.0
        return min(1.0, in_flight / self.pipeline_sequences.value)


