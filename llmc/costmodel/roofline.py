"""Roofline per op and per phase, with energy and tensor parallelism.

For each op: compute time = FLOPs / peak of the unit its dtype runs on;
memory time = max over memory levels of bytes there / that level's
bandwidth (weights and KV live where `place` puts them, an op's activations
in the innermost level that holds them, else main memory). roofline_s is
max(compute, memory) at datasheet peaks; time_s divides each side by the
device's measured efficiency factor and adds a per-kernel overhead. Ops run
one after another, so a phase's time is the sum over its ops.

Energy = FLOPs x energy per FLOP of their unit + bytes x energy per byte of
each level + idle power x the phase's time.

Tensor parallelism over N devices (Megatron-style): attention heads, FFN
columns and the LM head split N ways (KV heads split too, or replicate when
N exceeds them); each device moves the activations Megatron's layout gives
it (workload.tp_split: a column-parallel linear reads its whole input, a
row-parallel one writes its whole output, norms and residuals are
replicated); every layer all-reduces its activations twice over the
scale-up link, ring time 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from llmc.costmodel.workload import OpRecord, Workload
from llmc.hw.device import Device, MemoryLevel

HEAVY = ("linalg", "attention", "moe", "norm")        # kinds charged a kernel overhead
_EFF = {"linalg": "matmul", "moe": "matmul", "attention": "attention"}


@dataclass(frozen=True)
class Placement:
    """Where the weights and the KV cache live (activations are placed per op)."""

    weights: MemoryLevel
    kv: MemoryLevel


@dataclass(frozen=True)
class OpTiming:
    """One record on one device (per copy; totals multiply by rec.count).

    compute_s / memory_s: roofline sides at peak (memory: the slowest level);
    time_s: expected (efficiency factors, kernel overhead); dynamic_j: energy
    of the FLOPs and bytes (idle power is charged per phase)."""

    rec: OpRecord
    unit: str
    peak_flops_per_s: float
    bytes_by_level: dict[str, float]
    level_s: dict[str, float]
    compute_s: float
    memory_s: float
    time_s: float
    dynamic_j: float
    eff_compute: float = 1.0
    eff_memory: float = 1.0

    @property
    def roofline_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        if self.rec.kind == "comm":
            return "interconnect"
        return "compute" if self.compute_s >= self.memory_s else "memory"

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved."""
        return self.rec.flops / self.rec.bytes if self.rec.bytes else float("inf")


@dataclass
class PhaseResult:
    """A phase on a device: time per device; energy and traffic for all N devices.

    On most devices ops run one after another (time = sum over ops). On a
    pipelined device (`pipeline_sequences`, e.g. the HNLPU) every unit and
    memory works at once on different tokens: time = the busiest resource's."""

    phase: str
    ops: list[OpTiming]
    tp: int
    placement: Placement
    idle_w: float = 0.0
    pipelined: bool = False

    def _serial(self, attr: str) -> float:
        return sum(getattr(o, attr) * o.rec.count for o in self.ops)

    def _busiest(self, expected: bool) -> float:
        busy: dict[str, float] = {}
        for o in self.ops:
            n = o.rec.count
            c = o.compute_s / (o.eff_compute if expected else 1.0)
            busy[f"unit:{o.unit}"] = busy.get(f"unit:{o.unit}", 0.0) + c * n
            for lvl, t in o.level_s.items():
                m = t / (o.eff_memory if expected else 1.0)
                busy[lvl] = busy.get(lvl, 0.0) + m * n
        return max(busy.values(), default=0.0)

    @property
    def time_s(self) -> float:
        return self._busiest(True) if self.pipelined else self._serial("time_s")

    @property
    def roofline_s(self) -> float:
        return self._busiest(False) if self.pipelined else self._serial("roofline_s")

    @property
    def static_scale(self) -> float:
        """Phase time over the sum of op times (1 unless pipelined)."""
        serial = self._serial("time_s")
        return self.time_s / serial if serial else 1.0

    def op_energy_j(self, o: OpTiming) -> float:
        """Energy of one copy of an op on one device, with its share of idle power."""
        return o.dynamic_j + self.idle_w * o.time_s * self.static_scale

    @property
    def energy_j(self) -> float:
        return (self._serial("dynamic_j") + self.idle_w * self.time_s) * self.tp

    @property
    def flops(self) -> float:
        """FLOPs of the whole phase (all devices)."""
        return sum(o.rec.flops * o.rec.count for o in self.ops if o.rec.kind != "comm") * self.tp

    @property
    def bytes(self) -> float:
        return sum(o.rec.bytes * o.rec.count for o in self.ops if o.rec.kind != "comm") * self.tp

    def bytes_by_level(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for o in self.ops:
            for lvl, b in o.bytes_by_level.items():
                out[lvl] = out.get(lvl, 0.0) + b * o.rec.count * self.tp
        return out

    def time_by_bound(self) -> dict[str, float]:
        """Roofline seconds spent in compute-, memory- and interconnect-bound ops."""
        out = {"compute": 0.0, "memory": 0.0, "interconnect": 0.0}
        for o in self.ops:
            out[o.bound] += o.roofline_s * o.rec.count
        return out

    @property
    def bound(self) -> str:
        t = self.time_by_bound()
        return max(t, key=lambda k: t[k])

    @property
    def power_w(self) -> float:
        """Average power of one device."""
        return self.energy_j / self.tp / self.time_s if self.time_s else 0.0


def place(dev: Device, weight_bytes: float, kv_bytes: float) -> Placement:
    """Weights in the innermost level that holds them all, then the KV cache
    in the innermost level with room left (else main memory)."""
    def first(kind: str, need: float, used: dict[str, float]) -> MemoryLevel:
        for m in dev.memory:
            if kind in m.holds and m.capacity_bytes - used.get(m.name, 0.0) >= need:
                return m
        return next(m for m in reversed(dev.memory) if kind in m.holds)

    w = first("weights", weight_bytes, {})
    return Placement(w, first("kv", kv_bytes, {w.name: weight_bytes}))


def _act_level(dev: Device, act_bytes: float) -> MemoryLevel:
    """Innermost level holding activations with room for half of it used by
    this op's activations (the rest holds its neighbours')."""
    for m in dev.memory:
        if "act" in m.holds and not m.hardwired and act_bytes <= m.capacity_bytes / 2:
            return m
    return next(m for m in reversed(dev.memory) if "act" in m.holds)


def time_op(dev: Device, rec: OpRecord, where: Placement, in_flight: int = 1) -> OpTiming:
    """Roofline, expected time and energy of one op on one device;
    in_flight: tokens being processed together (fills a pipelined device)."""
    levels: dict[str, float] = {}
    for lvl, b in ((where.weights, rec.weight_bytes), (where.kv, rec.kv_bytes),
                   (_act_level(dev, rec.act_bytes), rec.act_bytes)):
        if b and not lvl.hardwired:
            levels[lvl.name] = levels.get(lvl.name, 0.0) + b
    level_s = {n: b / dev.level(n).bytes_per_s for n, b in levels.items()}
    memory_s = max(level_s.values(), default=0.0)
    unit = dev.unit(rec.compute, rec.weight_operand)
    peak = unit.sparse_flops_per_s if rec.sparse and unit.sparse_flops_per_s else unit.flops_per_s
    peak *= dev.occupancy(in_flight)
    compute_s = rec.flops / peak
    eff_c, eff_m = dev.eff(_EFF.get(rec.kind, "vector")), dev.eff("memory")
    time_s = max(compute_s / eff_c, memory_s / eff_m)
    if rec.kind in HEAVY:
        time_s += dev.eff("kernel_overhead_s")
    executed = rec.flops / 2 if rec.sparse and unit.sparse_flops_per_s else rec.flops
    dynamic = (executed * unit.energy_pj_per_flop
               + sum(b * dev.level(n).energy_pj_per_byte for n, b in levels.items())) * 1e-12
    return OpTiming(rec, unit.dtype, peak, levels, level_s, compute_s, memory_s, time_s,
                    dynamic, eff_c, eff_m)


def time_comm(dev: Device, rec: OpRecord, tp: int) -> OpTiming:
    """A ring all-reduce of rec.act_bytes over the scale-up link."""
    link = dev.scale_up
    assert link is not None
    moved = 2 * (tp - 1) / tp * rec.act_bytes
    t = moved / link.bytes_per_s + 2 * (tp - 1) * link.latency_s
    return OpTiming(rec, "link", 0.0, {link.name: moved}, {link.name: t}, 0.0, t, t,
                    moved * link.energy_pj_per_byte * 1e-12)


def shard(rec: OpRecord, tp: int, kv_factor: float) -> OpRecord:
    """One device's share of a record under tensor parallelism: the split
    parts of its FLOPs and activations (rec.tp_flops, rec.tp_act_bytes: a
    column-parallel linear reads its whole input and writes 1/tp of its
    output, a row-parallel one the reverse), its weights if they are split,
    and its KV cache by kv_factor (KV heads split or replicated)."""
    if tp == 1:
        return rec
    keep = 1 - 1 / tp
    return replace(rec, flops=rec.flops - rec.tp_flops * keep,
                   weight_bytes=rec.weight_bytes / tp if rec.shard else rec.weight_bytes,
                   act_bytes=rec.act_bytes - rec.tp_act_bytes * keep,
                   kv_bytes=rec.kv_bytes * kv_factor, tp_flops=rec.tp_flops / tp,
                   tp_act_bytes=rec.tp_act_bytes / tp)


def allreduce_record(n_layers: int, batch: int, tokens: int, hidden: int,
                     act_bits: float) -> OpRecord:
    """The two per-layer all-reduces of tensor parallelism, as one record."""
    payload = batch * tokens * hidden * act_bits / 8
    return OpRecord("all_reduce", "all_reduce", "comm", "layers.*", 0.0, 0.0, 0.0, payload,
                    "vector", count=2 * n_layers)


def run_phase(dev: Device, w: Workload, *, tp: int = 1, kv_factor: float = 1.0,
              comm: OpRecord | None = None, kv_resident_bytes: float | None = None
              ) -> PhaseResult:
    """Time every op of workload `w` on `dev` (one of `tp` devices).

    kv_resident_bytes: KV bytes held per device (for placement; default: what
    this phase reads)."""
    weights = w.weight_bytes - w.weight_bytes_sharded * (1 - 1 / tp)
    kv = kv_resident_bytes if kv_resident_bytes is not None else sum(
        r.kv_bytes * r.count for r in w.records) * kv_factor
    where = place(dev, weights, kv)
    ops = [time_op(dev, shard(r, tp, kv_factor), where, w.batch * w.tokens) for r in w.records]
    if comm is not None and tp > 1:
        ops.append(time_comm(dev, comm, tp))
    return PhaseResult(w.phase, ops, tp, where, dev.idle_w.value, dev.pipelined)
