"""Hardware parameters of a simulated accelerator, as frozen dataclasses.

Units are in the field names (`kb`, `gbps` = 10^9 bytes/s, `ns`, `ghz`), as in
the rest of llmc (docs/style.md §10). Every class validates its fields and raises
`UsageError` with the bad value and what would be accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmc.errors import UsageError
from llmc.sim.systolic import ArraySpec, Dataflow


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise UsageError(message)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and not math.isnan(x)


@dataclass(frozen=True)
class VectorSpec:
    """A 1-D vector/MAC unit: `lanes` multiply-accumulates (or element ops) per cycle.

    Used for element-wise steps (softmax, norms, activations) and as a compute
    array of its own for GEMMs mapped lanes-over-N. `pipeline_depth` cycles of
    latency are paid once per step.
    """

    lanes: int = 128
    in_bits: int = 16
    acc_bits: int = 32
    pipeline_depth: int = 4

    def __post_init__(self) -> None:
        for name in ("lanes", "in_bits", "acc_bits"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1,
                   f"vector unit {name} must be a positive integer, got {value!r}")
        _check(isinstance(self.pipeline_depth, int) and self.pipeline_depth >= 0,
               f"vector unit pipeline_depth must be >= 0, got {self.pipeline_depth!r}")


@dataclass(frozen=True)
class SramSpec:
    """An on-chip scratchpad feeding the compute array.

    `banks` banks of `bank_width_bits` each, with `ports_per_bank` ports that can
    each move one bank word per cycle. `banks=None` sizes the banks so that the
    array is never starved (an ideal scratchpad). `double_buffered` splits the
    operand buffers into ping/pong halves so that DMA overlaps compute.
    """

    kb: float = 2048.0
    banks: int | None = None
    bank_width_bits: int = 64
    ports_per_bank: int = 2
    double_buffered: bool = True

    def __post_init__(self) -> None:
        _check(_is_number(self.kb) and self.kb > 0 and math.isfinite(self.kb),
               f"SRAM size must be a positive number of KB, got {self.kb!r}")
        _check(self.banks is None or (isinstance(self.banks, int) and self.banks >= 1),
               f"SRAM banks must be a positive integer, got {self.banks!r}")
        _check(isinstance(self.bank_width_bits, int) and self.bank_width_bits >= 8,
               f"SRAM bank width must be >= 8 bits, got {self.bank_width_bits!r}")
        _check(isinstance(self.ports_per_bank, int) and self.ports_per_bank >= 1,
               f"SRAM ports per bank must be >= 1, got {self.ports_per_bank!r}")

    @property
    def bytes(self) -> int:
        """Capacity in bytes (1 KB = 1024 bytes)."""
        return int(self.kb * 1024)


@dataclass(frozen=True)
class DramSpec:
    """Off-chip DRAM/HBM: sustained bandwidth and access latency.

    `gbps` is 10^9 bytes/s and may be `math.inf` (an ideal memory). Transfers
    are pipelined: a transfer of b bytes occupies the channel for b/bandwidth
    and its data lands `latency_ns` later.
    """

    gbps: float = 100.0
    latency_ns: float = 100.0

    def __post_init__(self) -> None:
        _check(_is_number(self.gbps) and self.gbps > 0,
               f"DRAM bandwidth must be > 0 GB/s, got {self.gbps!r}")
        _check(_is_number(self.latency_ns) and 0 <= self.latency_ns < math.inf,
               f"DRAM latency must be a finite number >= 0 ns, got {self.latency_ns!r}")


@dataclass(frozen=True)
class LinkSpec:
    """A chip-to-chip link (one direction): bandwidth and latency per transfer."""

    gbps: float = 50.0
    latency_ns: float = 500.0

    def __post_init__(self) -> None:
        _check(_is_number(self.gbps) and self.gbps > 0,
               f"link bandwidth must be > 0 GB/s, got {self.gbps!r}")
        _check(_is_number(self.latency_ns) and 0 <= self.latency_ns < math.inf,
               f"link latency must be a finite number >= 0 ns, got {self.latency_ns!r}")


_NUMERICS = ("int", "fp")


@dataclass(frozen=True)
class SimHardware:
    """One accelerator chip: compute array, vector unit, scratchpad, DRAM, link.

    `numeric` says whether the MACs are integer or floating point: an int8
    array with 32-bit accumulators is `numeric="int"` with in_bits=8,
    acc_bits=32; an fp16 array accumulating in fp32 is `numeric="fp"` with
    in_bits=16, acc_bits=32. `node_nm` picks the energy table.
    """

    array: ArraySpec = field(default_factory=lambda: ArraySpec(128, 128, Dataflow.WS))
    sram: SramSpec = field(default_factory=SramSpec)
    dram: DramSpec = field(default_factory=DramSpec)
    link: LinkSpec = field(default_factory=LinkSpec)
    vector: VectorSpec = field(default_factory=VectorSpec)
    clock_ghz: float = 1.0
    node_nm: int = 7
    numeric: str = "int"

    def __post_init__(self) -> None:
        _check(isinstance(self.array, ArraySpec), f"array must be an ArraySpec, got {self.array!r}")
        _check(_is_number(self.clock_ghz) and 0 < self.clock_ghz < math.inf,
               f"clock must be a positive number of GHz, got {self.clock_ghz!r}")
        _check(isinstance(self.node_nm, int) and self.node_nm > 0,
               f"technology node must be a positive integer nm, got {self.node_nm!r}")
        _check(self.numeric in _NUMERICS,
               f"numeric must be one of {', '.join(_NUMERICS)}, got {self.numeric!r}")

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per array clock cycle (GB/s ÷ Gcycle/s)."""
        return self.dram.gbps / self.clock_ghz

    @property
    def dram_latency_cycles(self) -> float:
        return self.dram.latency_ns * self.clock_ghz

    @property
    def link_bytes_per_cycle(self) -> float:
        return self.link.gbps / self.clock_ghz

    @property
    def link_latency_cycles(self) -> float:
        return self.link.latency_ns * self.clock_ghz

    @property
    def mac_dtype(self) -> str:
        """Multiplier dtype name, e.g. "int8" or "fp16"."""
        return f"{self.numeric}{self.array.in_bits}"

    @property
    def acc_dtype(self) -> str:
        """Accumulator (adder) dtype name, e.g. "int32" or "fp32"."""
        return f"{self.numeric}{self.array.acc_bits}"

    @property
    def array_demand_bits_per_cycle(self) -> int:
        """Scratchpad bits the array moves per streaming cycle.

        os: R operands of A enter on the left and C of B on top; ws/is: R
        streamed operands enter on the left, C partial sums are read and C
        written at acc_bits.
        """
        a = self.array
        if a.dataflow is Dataflow.OS:
            return (a.rows + a.cols) * a.in_bits
        return a.rows * a.in_bits + 2 * a.cols * a.acc_bits

    @property
    def sram_banks(self) -> int:
        """Banks of the scratchpad: as given, or just enough to feed the array every cycle."""
        if self.sram.banks is not None:
            return self.sram.banks
        per_bank = self.sram.bank_width_bits * self.sram.ports_per_bank
        return max(1, -(-self.array_demand_bits_per_cycle // per_bank))

    @property
    def sram_bank_kb(self) -> float:
        return self.sram.kb / self.sram_banks

    @property
    def sram_bytes_per_cycle(self) -> float:
        """Bytes per cycle all banks' ports deliver; inf for an auto-sized (ideal) scratchpad."""
        if self.sram.banks is None:
            return math.inf
        return self.sram.banks * self.sram.ports_per_bank * self.sram.bank_width_bits / 8

    def cycles_to_us(self, cycles: float) -> float:
        """Convert array clock cycles to microseconds."""
        return cycles / (self.clock_ghz * 1e3)
