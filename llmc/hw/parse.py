"""A parsed device file (TOML or JSON as a mapping) becomes a `Device`.

Every number must be finite (TOML's `inf` and `nan` are refused: a level
whose weights are the circuit says `hardwired = true` instead), every figure
needs a non-empty source, and figures that other figures derive from must
agree with them: a MAC array's rows x cols x count x 2 x clock is the peak of
the compute unit of its dtype, a vector unit's lanes x count x 2 x clock is
`compute.vector`, a banked scratchpad's ports move the bandwidth of the
memory level it belongs to (each within 1%). Errors are one `UsageError`
line naming the file and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from llmc.errors import UsageError
from llmc.hw.array import ArraySpec, Dataflow
from llmc.hw.device import (
    EFFICIENCY_KEYS,
    FALLBACK,
    HOLDS,
    ComputeUnit,
    Device,
    Figure,
    Link,
    MacArray,
    MemoryLevel,
    Scratchpad,
    TilingRules,
    VectorUnit,
)

NUMERICS = ("int", "fp")
AGREE = 0.01  # derived figures must agree with what they derive from within 1%


def _num(d: Mapping[str, Any], key: str, where: str, *, positive: bool = True,
         default: float | None = None) -> float:
    if key not in d:
        if default is not None:
            return default
        raise UsageError(f"{where}: missing {key!r}")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise UsageError(f"{where}: {key} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise UsageError(f"{where}: {key} must be a finite number, got {v!r} (a level whose "
                         f"weights are the circuit says hardwired = true instead)")
    if v < 0 or (positive and v == 0):
        raise UsageError(f"{where}: {key} must be {'positive' if positive else '>= 0'}, "
                         f"got {v!r}")
    return float(v)


def _int(d: Mapping[str, Any], key: str, where: str, *, low: int = 1) -> int:
    v = _num(d, key, where, positive=low > 0)
    if v != int(v) or v < low:
        raise UsageError(f"{where}: {key} must be an integer >= {low}, got {d[key]!r}")
    return int(v)


def _bool(d: Mapping[str, Any], key: str, where: str) -> bool:
    v = d.get(key)
    if not isinstance(v, bool):
        raise UsageError(f"{where}: {key} must be true or false, got {v!r}")
    return v


def _src(d: Mapping[str, Any], key: str, where: str) -> str:
    s = d.get(key)
    if not isinstance(s, str) or not s.strip():
        raise UsageError(f"{where}: every figure needs a non-empty {key!r} (where it comes from)")
    return s


def _table(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    t = raw.get(key)
    if t is not None and not isinstance(t, Mapping):
        raise UsageError(f"{where}: [{key}] must be a table")
    return t


def _figure(d: Mapping[str, Any], key: str, where: str, positive: bool = True) -> Figure:
    f = d.get(key)
    if not isinstance(f, Mapping):
        raise UsageError(f"{where}: {key} must be a table {{ value = ..., source = \"...\" }}")
    return Figure(_num(f, "value", f"{where}.{key}", positive=positive),
                  _src(f, "source", f"{where}.{key}"))


def _compute(d: Any, where: str) -> dict[str, ComputeUnit]:
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
        w = f"{where}.memory[{i}] ({name})"
        holds = m.get("holds", [])
        if not isinstance(holds, list) or not holds or any(h not in HOLDS for h in holds):
            raise UsageError(f"{w}: holds must list some of {', '.join(HOLDS)}")
        if m.get("hardwired"):
            # the weights are the circuit: no capacity limit, no traffic
            out.append(MemoryLevel(name, math.inf, math.inf, 0.0, frozenset(holds),
                                   _src(m, "source", w), hardwired=True))
            continue
        latency = None
        if "latency_s" in m:
            latency = _num(m, "latency_s", w, positive=False)
        out.append(MemoryLevel(name, _num(m, "capacity_bytes", w), _num(m, "bytes_per_s", w),
                               _num(m, "energy_pj_per_byte", w, positive=False),
                               frozenset(holds), _src(m, "source", w),
                               _src(m, "energy_source", w), latency_s=latency,
                               latency_source="" if latency is None
                               else _src(m, "latency_source", w)))
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


def _array(t: Mapping[str, Any] | None, where: str) -> MacArray | None:
    if t is None:
        return None
    w = f"{where}.array"
    numeric = t.get("numeric")
    if numeric not in NUMERICS:
        raise UsageError(f"{w}: numeric must be one of {', '.join(NUMERICS)}, got {numeric!r}")
    try:
        dataflow = Dataflow.parse(t.get("dataflow", ""))
    except UsageError as exc:
        raise UsageError(f"{w}: {exc}") from None
    spec = ArraySpec(_int(t, "rows", w), _int(t, "cols", w), dataflow,
                     _int(t, "in_bits", w), _int(t, "acc_bits", w))
    return MacArray(spec, _int(t, "count", w), numeric, _src(t, "source", w))


def _vector(t: Mapping[str, Any] | None, where: str) -> VectorUnit | None:
    if t is None:
        return None
    w = f"{where}.vector"
    return VectorUnit(_int(t, "lanes", w), _int(t, "in_bits", w), _int(t, "acc_bits", w),
                      _int(t, "pipeline_depth", w, low=0), _int(t, "count", w),
                      _src(t, "source", w))


def _scratchpad(t: Mapping[str, Any] | None, memory: tuple[MemoryLevel, ...],
                where: str) -> Scratchpad | None:
    if t is None:
        return None
    w = f"{where}.scratchpad"
    level = t.get("level")
    if level is not None and level not in {m.name for m in memory if not m.hardwired}:
        raise UsageError(f"{w}: level {level!r} is not one of the device's memory levels")
    if "capacity_bytes" in t:
        capacity = _int(t, "capacity_bytes", w)
    elif level is not None:
        capacity = int(next(m for m in memory if m.name == level).capacity_bytes)
    else:
        raise UsageError(f"{w}: give capacity_bytes, or the memory level it is (level = ...)")
    banking = ("banks", "bank_width_bits", "ports_per_bank", "double_buffered")
    given = [k for k in banking if k in t]
    if given and len(given) < len(banking):
        missing = ", ".join(k for k in banking if k not in t)
        raise UsageError(f"{w}: banking needs all of {', '.join(banking)} (missing {missing})")
    if not given:
        return Scratchpad(capacity, _src(t, "source", w), level)
    return Scratchpad(capacity, _src(t, "source", w), level, _int(t, "banks", w),
                      _int(t, "bank_width_bits", w), _int(t, "ports_per_bank", w),
                      _bool(t, "double_buffered", w), _src(t, "banking_source", w))


def _tiling(t: Mapping[str, Any] | None, where: str) -> TilingRules | None:
    if t is None:
        return None
    w = f"{where}.tiling"
    align = _int(t, "align", w)
    pow2 = _bool(t, "pow2", w)
    if pow2 and align & (align - 1):
        raise UsageError(f"{w}: align must be a power of two when pow2 = true, got {align}")
    max_q = _int(t, "max_block_q", w) if "max_block_q" in t else None
    per_warp = _int(t, "rows_per_warp", w, low=0) if "rows_per_warp" in t else 0
    if max_q is not None and per_warp and max_q % per_warp:
        raise UsageError(f"{w}: max_block_q {max_q} is not a whole number of warps of "
                         f"{per_warp} rows")
    return TilingRules(align, pow2, max_q, per_warp, _bool(t, "scores_on_chip", w),
                       _src(t, "source", w))


def _agree(got: float, want: float, what: str, where: str) -> None:
    if abs(got - want) > AGREE * want:
        raise UsageError(f"{where}: {what}: {got:.6g} vs {want:.6g} (they must agree within "
                         f"{AGREE:.0%}; fix one of them)")


def _sm_count(gpu: Mapping[str, Any] | None, where: str) -> Figure | None:
    """[gpu] sm_count: a GPU's streaming multiprocessors (a positive integer)."""
    if gpu is None or "sm_count" not in gpu:
        return None
    fig = _figure(gpu, "sm_count", f"{where}.gpu")
    if fig.value != int(fig.value):
        raise UsageError(f"{where}.gpu: sm_count must be an integer")
    return fig


def _check_derived(d: Device, where: str) -> None:
    """Figures that derive from others must agree with them (see module doc)."""
    clock = d.clock_hz.value if d.clock_hz else None
    if d.array is not None:
        a = d.array
        unit = d.compute.get(a.dtype)
        if unit is None:
            raise UsageError(f"{where}.array: an {a.numeric}{a.spec.in_bits} array needs "
                             f"[compute.{a.dtype}], its peak")
        if clock is not None:
            _agree(unit.flops_per_s, 2 * a.macs_per_cycle * clock,
                   f"compute.{a.dtype}.flops_per_s vs 2 x {a.count} x {a.spec.rows} x "
                   f"{a.spec.cols} MACs x clock_hz", where)
    if d.vector is not None and clock is not None:
        v = d.vector
        unit = d.compute.get("vector")
        if unit is None:
            raise UsageError(f"{where}.vector: a vector unit needs [compute.vector], its peak")
        _agree(unit.flops_per_s, 2 * v.count * v.lanes * clock,
               f"compute.vector.flops_per_s vs 2 x {v.count} x {v.lanes} lanes x clock_hz",
               where)
    s = d.scratchpad
    if s is not None and s.level is not None:
        units = d.array.count if d.array else 1
        level = d.level(s.level)
        if s.capacity_bytes * units > level.capacity_bytes:
            raise UsageError(f"{where}.scratchpad: {units} x {s.capacity_bytes} bytes exceed "
                             f"memory level {s.level}'s {level.capacity_bytes:.0f}")
        if s.banked and clock is not None:
            _agree(level.bytes_per_s,
                   units * s.banks * s.ports_per_bank * s.bank_width_bits / 8 * clock,
                   f"memory {s.level}.bytes_per_s vs {units} x {s.banks} banks x "
                   f"{s.ports_per_bank} ports x {s.bank_width_bits} bits x clock_hz", where)
    if d.tiling is not None and s is None:
        raise UsageError(f"{where}: [tiling] needs a [scratchpad] (the memory a tile uses)")


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
    memory = _memory(raw.get("memory"), where)
    device = Device(
        name=raw["name"], description=raw["description"], kind=str(raw.get("kind", "")),
        node_nm=int(_num(raw, "node_nm", where)),
        default_quant=str(raw.get("default_quant", "bf16")),
        compute=MappingProxyType(_compute(raw.get("compute"), where)),
        memory=memory,
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
        clock_hz=_figure(raw, "clock_hz", where) if "clock_hz" in raw else None,
        array=_array(_table(raw, "array", where), where),
        vector=_vector(_table(raw, "vector", where), where),
        scratchpad=_scratchpad(_table(raw, "scratchpad", where), memory, where),
        tiling=_tiling(_table(raw, "tiling", where), where),
        sm_count=_sm_count(_table(raw, "gpu", where), where),
        path=where)
    _check_derived(device, where)
    return device
