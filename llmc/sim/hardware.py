"""The simulator's view of a device: frozen dataclasses built from a device file.

`from_device(device, **overrides)` reads a device of the hardware database
(llmc.hw: a target name, a device key, a device-file path or a `Device`) and
returns a `SimHardware`: the device's MAC array, clock, node, scratchpad and
its banking, main memory (bandwidth and latency), vector unit and scale-up
link, each figure with its source in the device file. Keyword overrides
replace single figures (`array="32x32"`, `dram_gbps=400.0`, ...) and are
recorded, so that output can say what differs from the device. A device that
lacks a figure the simulator needs (a GPU or the HNLPU has no MAC array) is
refused with one line naming the missing figures and the overrides to pass.

Units are in the field names (`kb`, `gbps` = 10^9 bytes/s, `ns`, `ghz`), as in
the rest of llmc (docs/style.md §10). Every class validates its fields and raises
`UsageError` with the bad value and what would be accepted. No figure has a
default here: hardware figures live in the device files only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from llmc.errors import UsageError
from llmc.hw import ArraySpec, Dataflow, Device, get_device


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

    lanes: int
    in_bits: int
    acc_bits: int
    pipeline_depth: int

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

    kb: float
    banks: int | None
    bank_width_bits: int
    ports_per_bank: int
    double_buffered: bool

    def __post_init__(self) -> None:
        _check(_is_number(self.kb) and self.kb > 0 and math.isfinite(self.kb),
               f"SRAM size must be a positive number of KB, got {self.kb!r}")
        _check(self.banks is None or (isinstance(self.banks, int) and self.banks >= 1),
               f"SRAM banks must be a positive integer, got {self.banks!r}")
        _check(isinstance(self.bank_width_bits, int) and self.bank_width_bits >= 8,
               f"SRAM bank width must be >= 8 bits, got {self.bank_width_bits!r}")
        _check(isinstance(self.ports_per_bank, int) and self.ports_per_bank >= 1,
               f"SRAM ports per bank must be >= 1, got {self.ports_per_bank!r}")
        _check(isinstance(self.double_buffered, bool),
               f"SRAM double_buffered must be true or false, got {self.double_buffered!r}")

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

    gbps: float
    latency_ns: float

    def __post_init__(self) -> None:
        _check(_is_number(self.gbps) and self.gbps > 0,
               f"DRAM bandwidth must be > 0 GB/s, got {self.gbps!r}")
        _check(_is_number(self.latency_ns) and 0 <= self.latency_ns < math.inf,
               f"DRAM latency must be a finite number >= 0 ns, got {self.latency_ns!r}")


@dataclass(frozen=True)
class LinkSpec:
    """A chip-to-chip link (one direction): bandwidth and latency per transfer."""

    gbps: float
    latency_ns: float

    def __post_init__(self) -> None:
        _check(_is_number(self.gbps) and self.gbps > 0,
               f"link bandwidth must be > 0 GB/s, got {self.gbps!r}")
        _check(_is_number(self.latency_ns) and 0 <= self.latency_ns < math.inf,
               f"link latency must be a finite number >= 0 ns, got {self.latency_ns!r}")


_NUMERICS = ("int", "fp")


@dataclass(frozen=True)
class SimHardware:
    """One accelerator unit: compute array, scratchpad, DRAM, vector unit, link.

    `numeric` says whether the MACs are integer or floating point: an int8
    array with 32-bit accumulators is `numeric="int"` with in_bits=8,
    acc_bits=32; an fp16 array accumulating in fp32 is `numeric="fp"` with
    in_bits=16, acc_bits=32. `node_nm` picks the energy table. `vector` and
    `link` are None on a device without them (steps that need them are
    refused). `device` names the device it was built from, `overrides` the
    figures that differ from it (see `from_device`).
    """

    array: ArraySpec
    sram: SramSpec
    dram: DramSpec
    clock_ghz: float
    node_nm: int
    numeric: str
    vector: VectorSpec | None = None
    link: LinkSpec | None = None
    device: str = ""
    overrides: tuple[str, ...] = ()
    array_count: int = 1   # identical arrays on the device; the simulator runs one

    def __post_init__(self) -> None:
        _check(isinstance(self.array, ArraySpec), f"array must be an ArraySpec, got {self.array!r}")
        _check(_is_number(self.clock_ghz) and 0 < self.clock_ghz < math.inf,
               f"clock must be a positive number of GHz, got {self.clock_ghz!r}")
        _check(isinstance(self.node_nm, int) and self.node_nm > 0,
               f"technology node must be a positive integer nm, got {self.node_nm!r}")
        _check(self.numeric in _NUMERICS,
               f"numeric must be one of {', '.join(_NUMERICS)}, got {self.numeric!r}")

    def need_vector(self) -> VectorSpec:
        """The vector unit, or a UsageError if this hardware has none."""
        if self.vector is None:
            raise UsageError(f"{self.device or 'this hardware'} has no vector unit for vector "
                             f"steps; give one (vector=VectorSpec(...))")
        return self.vector

    def need_link(self) -> LinkSpec:
        """The chip-to-chip link, or a UsageError if this hardware has none."""
        if self.link is None:
            raise UsageError(f"{self.device or 'this hardware'} has no chip-to-chip link for "
                             f"link steps; give one (link_gbps=..., link_latency_ns=...)")
        return self.link

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per array clock cycle (GB/s ÷ Gcycle/s)."""
        return self.dram.gbps / self.clock_ghz

    @property
    def dram_latency_cycles(self) -> float:
        return self.dram.latency_ns * self.clock_ghz

    @property
    def link_bytes_per_cycle(self) -> float:
        return self.need_link().gbps / self.clock_ghz

    @property
    def link_latency_cycles(self) -> float:
        return self.need_link().latency_ns * self.clock_ghz

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

    def describe(self) -> str:
        """One line: the device, its array, and the overrides."""
        a = self.array
        count = f" (one of {self.array_count})" if self.array_count > 1 else ""
        text = (f"{self.device or 'custom hardware'}: {a.rows}x{a.cols} {a.dataflow.value} "
                f"{self.mac_dtype}->{self.acc_dtype} array{count} @ {self.clock_ghz:g} GHz, "
                f"{self.node_nm} nm, SRAM {self.sram.kb:g} KB, DRAM {self.dram.gbps:g} GB/s")
        if self.overrides:
            text += f"; overrides: {', '.join(self.overrides)}"
        return text


# ---- the view of a device ---------------------------------------------------

# Flat names of the figures `from_device` needs, grouped as a device file
# holds them, with the overrides (CLI flags) that supply them.
_NEEDS: dict[str, tuple[str, str]] = {
    "array": ("[array]", "--array RxC, e.g. --array 128x128"),
    "clock_ghz": ("clock_hz", "--clock-ghz GHZ"),
    "sram_kb": ("[scratchpad] capacity", "--sram KB"),
    "sram_banks": ("[scratchpad] banking", "--sram-banks N|auto, --sram-bank-bits BITS, "
                   "--sram-ports N and --double-buffer or --single-buffer"),
    "sram_bank_bits": ("[scratchpad] banking", ""),
    "sram_ports": ("[scratchpad] banking", ""),
    "double_buffered": ("[scratchpad] banking", ""),
    "dram_gbps": ("main memory bytes_per_s", "--dram-gbps X"),
    "dram_latency_ns": ("main memory latency_s", "--dram-latency-ns NS"),
}
_ARRAY_PARTS = ("dataflow", "in_bits", "acc_bits")
OVERRIDES = (*_NEEDS, *_ARRAY_PARTS, "numeric", "node_nm", "link_gbps", "link_latency_ns",
             "vector", "link")


def device_figures(device: Device) -> dict[str, Any]:
    """The simulator's figures of `device` by flat name; absent where the file lacks them."""
    f: dict[str, Any] = {"node_nm": device.node_nm}
    if device.array is not None:
        f.update(array=device.array.spec, numeric=device.array.numeric)
    if device.clock_hz is not None:
        f["clock_ghz"] = device.clock_hz.value / 1e9
    s = device.scratchpad
    if s is not None:
        f["sram_kb"] = s.capacity_bytes / 1024
        if s.banked:
            f.update(sram_banks=s.banks, sram_bank_bits=s.bank_width_bits,
                     sram_ports=s.ports_per_bank, double_buffered=s.double_buffered)
    main = device.main
    if not main.hardwired:
        f["dram_gbps"] = main.bytes_per_s / 1e9
        if main.latency_s is not None:
            f["dram_latency_ns"] = main.latency_s * 1e9
    if device.scale_up is not None:
        f["link"] = LinkSpec(device.scale_up.bytes_per_s / 1e9, device.scale_up.latency_s * 1e9)
    v = device.vector
    if v is not None:
        f["vector"] = VectorSpec(v.lanes, v.in_bits, v.acc_bits, v.pipeline_depth)
    return f


_NULLABLE = ("sram_banks", "vector", "link")  # None means: ideal banks / no unit


def _shown(key: str, value: Any) -> str:
    if isinstance(value, ArraySpec):
        return (f"array {value.rows}x{value.cols} {value.dataflow.value} "
                f"{value.in_bits}/{value.acc_bits}-bit")
    if value is None:
        return f"{key} {'auto' if key == 'sram_banks' else 'none'}"
    return f"{key} {value:g}" if _is_number(value) else f"{key} {value}"


def from_device(device: Device | str, **overrides: Any) -> SimHardware:
    """The SimHardware of `device` (a Device, target name, device key or file path)
    with `overrides` (names in OVERRIDES; None leaves a figure as the device has
    it, except sram_banks=None for an ideal scratchpad and vector/link=None for
    none) replacing its figures."""
    dev = device if isinstance(device, Device) else get_device(device)
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise UsageError(f"unknown hardware override {', '.join(unknown)}; known: "
                         f"{', '.join(OVERRIDES)}")
    over = {k: v for k, v in overrides.items() if v is not None or k in _NULLABLE}
    if isinstance(over.get("array"), str):
        over["array"] = ArraySpec.parse(over["array"])
    fig = device_figures(dev)
    base_array = fig.get("array")
    array = over.pop("array", base_array)
    parts = {k: over.pop(k) for k in _ARRAY_PARTS if k in over}
    if array is not None:
        array = dataclasses.replace(array, **parts)
        fig["array"] = array
        # an array given on a device without one is ArraySpec's generic int array
        fig.setdefault("numeric", "int")
    shown = [] if array == base_array else [_shown("array", array)]
    link_parts = {k: over.pop(k) for k in ("link_gbps", "link_latency_ns") if k in over}
    shown += [_shown(k, v) for k, v in {**over, **link_parts}.items()
              if k not in fig or fig[k] != v]
    fig.update(over)
    missing = dict.fromkeys(_NEEDS[k][0] for k in _NEEDS if k not in fig)
    if missing:
        flags = {what: flag for what, flag in _NEEDS.values() if flag}
        raise UsageError(f"{dev.name} lacks what the simulator needs: "
                         + "; ".join(f"{what} (pass {flags[what]})" for what in missing))
    link = fig.get("link")
    if link_parts:
        if link is None and len(link_parts) < 2:
            raise UsageError(f"{dev.name} has no scale-up link: give both link_gbps and "
                             f"link_latency_ns")
        gbps = link_parts["link_gbps"] if "link_gbps" in link_parts else link.gbps
        latency = (link_parts["link_latency_ns"] if "link_latency_ns" in link_parts
                   else link.latency_ns)
        link = LinkSpec(gbps, latency)
    return SimHardware(
        array=fig["array"],
        sram=SramSpec(fig["sram_kb"], fig["sram_banks"], fig["sram_bank_bits"],
                      fig["sram_ports"], fig["double_buffered"]),
        dram=DramSpec(fig["dram_gbps"], fig["dram_latency_ns"]),
        clock_ghz=fig["clock_ghz"], node_nm=fig["node_nm"], numeric=fig["numeric"],
        vector=fig.get("vector"), link=link, device=dev.name, overrides=tuple(shown),
        array_count=dev.array.count if dev.array is not None and array == base_array else 1)
