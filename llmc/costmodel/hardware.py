"""Devices as data: the dataclasses a device file (TOML or JSON) becomes.

A device file names its compute units per dtype (peak FLOP/s dense and 2:4
sparse, energy per FLOP), its memory levels innermost first (capacity,
bandwidth, energy per byte, which tensors may live there), its links
(scale-up for tensor parallelism, host for swapping KV), host memory, power
and the efficiency factors that turn datasheet peaks into expected times.
Every figure carries a `source`; `llmc/costmodel/devices/*.toml` are the
examples to copy. Units are in the names (`bytes_per_s`, `energy_pj_per_flop`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from llmc.errors import UsageError

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


# ---- parsing ----------------------------------------------------------------

def _num(d: Mapping[str, Any], key: str, where: str, *, positive: bool = True,
         default: float | None = None) -> float:
    if key not in d:
        if default is not None:
            return default
        raise UsageError(f"{where}: missing {key!r}")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        raise UsageError(f"{where}: {key} must be a number, got {v!r}")
    if v < 0 or (positive and v == 0):
        raise UsageError(f"{where}: {key} must be {'positive' if positive else '>= 0'}, "
                         f"got {v!r}")
    return float(v)


def _src(d: Mapping[str, Any], key: str, where: str) -> str:
    s = d.get(key)
    if not isinstance(s, str) or not s.strip():
        raise UsageError(f"{where}: every figure needs a non-empty {key!r} (where it comes from)")
    return s


def _figure(d: Mapping[str, Any], key: str, where: str, positive: bool = True) -> Figure:
    f = d.get(key)
    if not isinstance(f, Mapping):
        raise UsageError(f"{where}: {key} must be a table {{ value = ..., source = \"...\" }}")
    return Figure(_num(f, "value", f"{where}.{key}", positive=positive),
                  _src(f, "source", f"{where}.{key}"))


def _compute(d: Mapping[str, Any], where: str) -> dict[str, ComputeUnit]:
    if not isinstance(d, Mapping) or not d:
        raise UsageError(f"{where}: [compute.<dtype>] tables are required")
    units = {}
    for key, u in d.items():
        w = f"{where}.compute.{key}"
        if key not in FALLBACK:
            raise UsageError(f"{w}: unknown compute dtype {key!r}; expected one of "
                             f"{', '.join(FALLBACK)}")
        sparse = u.get("sparse_flops_per_s")
        units[key] = ComputeUnit(
            key, _num(u, "flops_per_s", w), _num(u, "energy_pj_per_flop", w, positive=False),
            _src(u, "source", w), _src(u, "energy_source", w),
            None if sparse is None else _num(u, "sparse_flops_per_s", w),
            bool(u.get("weights_only", False)))
    return units


def _memory(levels: Any, where: str) -> tuple[MemoryLevel, ...]:
    if not isinstance(levels, list) or not levels:
        raise UsageError(f"{where}: at least one [[memory]] level is required")
    out = []
    for i, m in enumerate(levels):
        w = f"{where}.memory[{i}]"
        name = m.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"{w}: missing name")
        holds = m.get("holds", [])
        if not isinstance(holds, list) or not holds or any(h not in HOLDS for h in holds):
            raise UsageError(f"{w} ({name}): holds must list some of {', '.join(HOLDS)}")
        if m.get("hardwired"):
            out.append(MemoryLevel(name, math.inf, math.inf, 0.0, frozenset(holds),
                                   _src(m, "source", w), hardwired=True))
            continue
        out.append(MemoryLevel(name, _num(m, "capacity_bytes", w), _num(m, "bytes_per_s", w),
                               _num(m, "energy_pj_per_byte", w, positive=False),
                               frozenset(holds), _src(m, "source", w),
                               _src(m, "energy_source", w)))
    if not {"weights", "kv"} <= out[-1].holds and not any(m.hardwired for m in out):
        raise UsageError(f"{where}: the outermost memory level must hold weights and kv")
    return tuple(out)


def _link(spec: Any, catalogue: Mapping[str, Any], where: str) -> Link | None:
    if spec is None:
        return None
    name = spec if isinstance(spec, str) else spec.get("name", where.rsplit(".", 1)[-1])
    d = catalogue.get(spec) if isinstance(spec, str) else spec
    if d is None:
        raise UsageError(f"{where}: unknown link {spec!r}; known: {', '.join(catalogue)}")
    w = f"{where} ({name})"
    return Link(name, _num(d, "bytes_per_s", w), _num(d, "latency_s", w, positive=False),
                _num(d, "energy_pj_per_byte", w, positive=False), _src(d, "source", w),
                d.get("description", ""))


def parse_device(raw: Mapping[str, Any], where: str, links: Mapping[str, Any]) -> Device:
    """Build a Device from a parsed device file; UsageError names what is wrong."""
    for key in ("name", "description"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise UsageError(f"{where}: missing {key!r}")
    power = raw.get("power", {})
    eff = raw.get("efficiency", {})
    missing = [k for k in EFFICIENCY_KEYS if k not in eff]
    if missing:
        raise UsageError(f"{where}: [efficiency] lacks {', '.join(missing)}")
    efficiency = {k: _figure(eff, k, f"{where}.efficiency", positive=(k != "kernel_overhead_s"))
                  for k in EFFICIENCY_KEYS}
    for k in ("matmul", "attention", "vector", "memory"):
        if efficiency[k].value > 1:
            raise UsageError(f"{where}: efficiency.{k} is a fraction of peak (<= 1), "
                             f"got {efficiency[k].value}")
    lk = raw.get("links", {})
    host = raw.get("host_memory")
    max_tp = _figure(raw, "max_tp", where)
    if max_tp.value != int(max_tp.value):
        raise UsageError(f"{where}: max_tp must be an integer")
    return Device(
        name=raw["name"], description=raw["description"], kind=str(raw.get("kind", "")),
        node_nm=int(_num(raw, "node_nm", where)),
        default_quant=str(raw.get("default_quant", "bf16")),
        compute=MappingProxyType(_compute(raw.get("compute"), where)),
        memory=_memory(raw.get("memory"), where),
        tdp_w=_figure(power, "tdp_w", f"{where}.power"),
        idle_w=_figure(power, "idle_w", f"{where}.power", positive=False),
        reserved_bytes=_figure(raw, "reserved_bytes", where, positive=False),
        max_tp=max_tp, efficiency=MappingProxyType(efficiency),
        scale_up=_link(lk.get("scale_up"), links, f"{where}.links.scale_up"),
        host_link=_link(lk.get("host"), links, f"{where}.links.host"),
        host_memory=None if host is None else Figure(
            _num(host, "capacity_bytes", f"{where}.host_memory"),
            _src(host, "source", f"{where}.host_memory")),
        host_memory_bytes_per_s=0.0 if host is None else _num(
            host, "bytes_per_s", f"{where}.host_memory"),
        pipeline_sequences=(_figure(raw, "pipeline_sequences", where)
                            if "pipeline_sequences" in raw else None),
        path=where)
