"""The instruction-set simulator: runs an NPU program bit-exactly and times it.

Functional side: DRAM and SPAD are numpy byte arrays; a descriptor becomes a
strided numpy view of one of them (its extent checked, at load for static
descriptors and at each use for register-moved ones), so no instruction can
touch a byte outside its memory. Integer matmul runs on BLAS in float32 or
float64 where every product and partial sum is an integer below 2^24 / 2^53
(exact), else in int64. Macro-instructions call the IR's own integer
functions (llmc.ir.ops.intops), so their semantics are the IR's.

Timing side (docs/npu-isa.md, "Timing"): one in-order sequencer feeds the
compute pipeline (array, vector unit) and a DMA queue. A compute instruction
starts when the previous one ends; a DMA starts when the DMA engine is free
and every compute instruction issued before it is done (so it never
overwrites a buffer still being read); WAIT n stalls compute until at most n
DMAs are outstanding. The array's cycles are llmc.hw.array's closed form
(SCALE-Sim's), DMA cycles are latency + bytes / bandwidth of the device's
DRAM, vector cycles are ops / lanes + pipeline depth. Action counts go
through llmc.sim's energy tables. A compute instruction that touches bytes a
DMA is still writing (no WAIT before it) is a fault, not a silent race.

Shape-only mode (`execute=False`) runs the timing alone, without memories.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmc.backends.npu.binary import check_extent, memory_bytes
from llmc.backends.npu.isa import (
    ALU_OPS,
    DRAM,
    I4X2,
    NREGS,
    SPAD,
    Desc,
    Image,
    Instr,
    NpuError,
    Program,
    itemsize,
    np_dtype,
)
from llmc.hw.array import ArraySpec, compute_cycles
from llmc.ir.ops.intops import SOFTMAX_K, i_exp, int_sigmoid, isqrt, qrange, rdiv, rshift
from llmc.ir.pack import unpack_int4
from llmc.sim.actions import Actions
from llmc.sim.energy import energy_breakdown_pj
from llmc.sim.hardware import SimHardware


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run BLAS single-threaded inside the block (numpy's bundled OpenBLAS; a
    no-op elsewhere). The simulator issues many small matmuls, and a threaded
    BLAS on a shared 2-core machine spends far more time synchronising than
    multiplying (measured: a 128x256x576 product 44 ms threaded, 0.3 ms on
    one thread, at a load average of 12)."""
    lib = _openblas()
    if lib is None:
        yield
        return
    before = lib.scipy_openblas_get_num_threads64_()
    lib.scipy_openblas_set_num_threads64_(1)
    try:
        yield
    finally:
        lib.scipy_openblas_set_num_threads64_(before)


@functools.cache
def _openblas() -> Any:
    import ctypes
    import glob
    import os

    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so"))):
        try:
            lib = ctypes.CDLL(path)
            lib.scipy_openblas_get_num_threads64_.restype = ctypes.c_int
            lib.scipy_openblas_set_num_threads64_.argtypes = [ctypes.c_int]
            return lib
        except (OSError, AttributeError):
            continue
    return None


# vector-unit operations per element of each instruction (the IR registry's
# streaming costs for the same ops: requant 2, int_rms_norm 6, int_silu 12,
# attention's i-softmax ~8 per score)
VECTOR_OPS = {"requant": 2, "valu": 1, "viota": 1, "vrmsnorm": 6, "vsilu": 12,
              "vsoftmax": 8, "vreduce": 1, "vlut": 1}
SEQ_CYCLES = {"ldreg": 1}


@dataclass
class Stats:
    """What a run cost: cycles, busy and stall cycles per unit, counts and energy
    (`clock_hz` and `pes`: the simulated device's, for seconds and utilisation)."""

    clock_hz: float
    pes: int
    cycles: int = 0
    instructions: int = 0
    array_cycles: int = 0
    vector_cycles: int = 0
    dma_cycles: int = 0
    stall_dma_cycles: int = 0     # compute waiting for a DMA (WAIT / BARRIER)
    macs: int = 0
    actions: Actions = field(default_factory=Actions)
    energy_pj: dict[str, float] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    matmul_wall_s: float = 0.0

    @property
    def seconds(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def energy_j(self) -> float:
        return sum(self.energy_pj.values()) * 1e-12

    @property
    def utilisation(self) -> float:
        """MACs done / MACs the array could do in the run's cycles."""
        return self.macs / max(self.cycles * self.pes, 1)

    def to_json(self) -> dict[str, Any]:
        return {"cycles": self.cycles, "seconds": self.seconds,
                "instructions": self.instructions, "array_cycles": self.array_cycles,
                "vector_cycles": self.vector_cycles, "dma_cycles": self.dma_cycles,
                "stall_dma_cycles": self.stall_dma_cycles, "macs": self.macs,
                "utilisation": self.utilisation, "energy_pj": self.energy_pj,
                "energy_j": self.energy_j, "actions": self.actions.to_dict()}


class Machine:
    """The NPU's memories and registers; `run` executes one program of an image."""

    def __init__(self, image: Image, hw: SimHardware, dram: np.ndarray | None = None,
                 execute: bool = True, dram_pj_per_byte: float | None = None) -> None:
        self.image, self.hw, self.execute = image, hw, execute
        self.dram_pj_per_byte = dram_pj_per_byte
        t = image.target
        if execute:
            self.dram = np.zeros(t.dram_bytes, np.uint8) if dram is None else dram
            if self.dram.dtype != np.uint8 or self.dram.size != t.dram_bytes:
                raise NpuError(f"DRAM image is {self.dram.size} bytes; the program needs "
                               f"{t.dram_bytes}")
            self.spad = np.zeros(t.spad_bytes, np.uint8)
        self.regs = [0] * (NREGS + 1)
        self.regs_default: dict[int, int] = {}
        self._costs: dict[str, list[tuple]] = {}

    # ---- memory ---------------------------------------------------------------

    def base(self, d: Desc) -> int:
        if not d.dynamic:
            return d.base
        r = self.regs
        b = d.base + r[d.reg_a] * d.step_a + r[d.reg_b] * d.step_b + (r[d.reg_pp] & 1) * d.pp_step
        check_extent(d, b, memory_bytes(d.space, self.image.target), "at run time")
        return b

    def view(self, d: Desc) -> np.ndarray:
        mem = self.dram if d.space == DRAM else self.spad
        size = itemsize(d.dtype)
        return np.ndarray(d.shape, np_dtype(d.dtype), buffer=mem, offset=self.base(d),
                          strides=tuple(s * size for s in d.strides))

    def read(self, name: str, addr: int, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        dt = np.dtype(dtype)
        n = int(np.prod(shape)) * dt.itemsize
        return self.dram[addr:addr + n].view(dt).reshape(shape).copy()

    def write(self, addr: int, value: np.ndarray) -> None:
        raw = np.ascontiguousarray(value).view(np.uint8).reshape(-1)
        self.dram[addr:addr + raw.size] = raw

    # ---- running --------------------------------------------------------------

    def run(self, name: str, trace: bool = False, limit: int | None = None) -> Stats:
        """Execute (or, shape-only, time) entry point `name` from its first
        instruction; registers start at 0. `limit`: the most instructions to
        run before refusing (a program that loops too long)."""
        if not self.execute:
            return self._run(name, trace, limit)
        with single_thread_blas():
            return self._run(name, trace, limit)

    def _run(self, name: str, trace: bool, limit: int | None) -> Stats:
        import time

        p = self.image.program(name)
        costs = self._costs.get(name)
        if costs is None:
            costs = self._costs[name] = [instr_cost(i, p, self.hw) for i in p.instrs]
        stats = Stats(clock_hz=self.hw.clock_ghz * 1e9, pes=self.hw.array.pes)
        t0 = time.perf_counter()
        compute = dma = 0.0
        outq: deque[tuple[float, int, int, int]] = deque()  # (end, space, lo, hi) of DMA dsts
        loops: list[list[int]] = []  # [reg, count, body start]
        regs = self.regs
        for r in range(len(regs)):
            regs[r] = self.regs_default.get(r, 0)
        pc, n = 0, len(p.instrs)
        counts = [0] * n  # executions per instruction; actions are static per instruction
        while pc < n:
            ins = p.instrs[pc]
            unit, cyc, _ = costs[pc]
            stats.instructions += 1
            if limit is not None and stats.instructions > limit:
                raise NpuError(f"{name}: more than {limit:,} instructions run (a loop too long "
                               "for this run's limit)")
            op = ins.op
            if unit == "dma":
                start = max(dma, compute)
                dma = start + cyc
                stats.dma_cycles += cyc
                if self.execute:
                    dst = p.descs[ins.args[0]]
                    lo, hi = dst.extent(self.base(dst))
                    outq.append((dma, dst.space, lo, hi))
                    _EXEC[op](self, ins, p)
                else:
                    outq.append((dma, -1, 0, 0))
                if trace:
                    stats.events.append(_event(ins, "dma", start, cyc, stats))
            elif unit in ("array", "vector"):
                if self.execute:
                    if outq:
                        self._hazard(ins, p, outq, pc)
                    if op == "matmul":
                        tm = time.perf_counter()
                        _EXEC[op](self, ins, p)
                        stats.matmul_wall_s += time.perf_counter() - tm
                    else:
                        _EXEC[op](self, ins, p)
                if trace:
                    stats.events.append(_event(ins, unit, compute, cyc, stats))
                compute += cyc
                if unit == "array":
                    stats.array_cycles += cyc
                else:
                    stats.vector_cycles += cyc
            elif op in ("wait", "barrier"):
                keep = ins.args[0] if op == "wait" else 0
                while len(outq) > keep:
                    end = outq.popleft()[0]
                    if end > compute:
                        stats.stall_dma_cycles += end - compute
                        compute = end
                if op == "barrier":
                    compute = max(compute, dma)
            elif op == "loop":
                regs[ins.args[0]] = 0
                loops.append([ins.args[0], ins.args[1], pc + 1])
            elif op == "endloop":
                reg, count, body = loops[-1]
                regs[reg] += 1
                if regs[reg] < count:
                    pc = body
                    continue
                loops.pop()
            elif op == "ldreg":
                compute += cyc
                if self.execute:
                    v = int(self.view(p.descs[ins.args[1]]).reshape(-1)[0])
                    if v < 0 or v >= 2**40:
                        raise NpuError(f"{name}: instruction {pc} (ldreg) loaded {v}, outside "
                                       "0..2^40")
                    regs[ins.args[0]] = v
            elif op == "halt":
                break
            counts[pc] += 1
            pc += 1
        stats.cycles = int(math.ceil(max(compute, dma)))
        acts = stats.actions = total_actions(costs, counts)
        stats.macs = acts.total_macs
        stats.energy_pj = energy_breakdown_pj(acts, self.hw, stats.seconds)
        if self.dram_pj_per_byte is not None:  # the device file's own DRAM figure
            stats.energy_pj["dram"] = acts.dram_bytes * self.dram_pj_per_byte
        stats.wall_s = time.perf_counter() - t0
        return stats

    def _hazard(self, ins: Instr, p: Program, outq: deque, pc: int) -> None:
        for (name, kind), v in zip(ins.spec.operands, ins.args, strict=True):
            if kind not in "do" or v < 0:
                continue
            d = p.descs[v]
            lo, hi = d.extent(self.base(d))
            for _, space, dlo, dhi in outq:
                if space == d.space and lo < dhi and dlo < hi:
                    raise NpuError(f"{p.name}: instruction {pc} ({ins.op}) touches {name} "
                                   f"bytes [{lo:#x}, {hi:#x}) while a DMA still writes "
                                   f"[{dlo:#x}, {dhi:#x}) (missing WAIT)")


def total_actions(costs: list[tuple], counts: list[int]) -> Actions:
    """The sum of each instruction's actions times its executions."""
    out = Actions()
    for (_, _, act), c in zip(costs, counts, strict=True):
        if not c or act is None:
            continue
        for k, v in act.macs.items():
            out.macs[k] += v * c
        for k, v in act.vector_ops.items():
            out.vector_ops[k] += v * c
        out.sram_read_bytes += act.sram_read_bytes * c
        out.sram_write_bytes += act.sram_write_bytes * c
        out.dram_read_bytes += act.dram_read_bytes * c
        out.dram_write_bytes += act.dram_write_bytes * c
    return out


def _event(ins: Instr, track: str, start: float, cyc: float, stats: Stats) -> dict:
    us = 1e6 / stats.clock_hz
    tid = {"array": 1, "vector": 2, "dma": 3}[track]
    return {"name": ins.op, "cat": track, "ph": "X", "pid": 1, "tid": tid,
            "ts": start * us, "dur": max(cyc, 1) * us,
            "args": {"comment": ins.comment} if ins.comment else {}}


# ---- cost of one instruction ----------------------------------------------------------


def instr_cost(ins: Instr, p: Program, hw: SimHardware) -> tuple[str, float, Actions | None]:
    """(unit, cycles, actions) of one execution of `ins` (shapes are static)."""
    spec = ins.spec
    d = [p.descs[v] if kind in "do" and v >= 0 else None
         for (_, kind), v in zip(spec.operands, ins.args, strict=True)]
    if spec.unit == "dma":
        dst, src = d[0], d[1]
        nbytes = dst.nbytes
        act = Actions()
        dram_side = DRAM in (dst.space, src.space)
        if dram_side:
            cyc = hw.dram_latency_cycles + nbytes / hw.dram_bytes_per_cycle
        else:
            cyc = nbytes / hw.sram_bytes_per_cycle
        for x, write in ((dst, True), (src, False)):
            if x.space == DRAM:
                if write:
                    act.dram_write_bytes += nbytes
                else:
                    act.dram_read_bytes += nbytes
            elif write:
                act.sram_write_bytes += nbytes
            else:
                act.sram_read_bytes += nbytes
        if ins.op == "gather":
            act.sram_read_bytes += d[2].nbytes if d[2].space == SPAD else 0
        return "dma", cyc, act
    if spec.unit == "array":
        acc, a, b = d[0], d[1], d[2]
        (m, n), k = acc.shape, a.shape[1]
        int4 = b.dtype == I4X2
        arr = hw.array
        if int4:  # two int4 weights per 8-bit lane: each PE column computes two outputs
            arr = ArraySpec(arr.rows, arr.cols * 2, arr.dataflow, arr.in_bits, arr.acc_bits)
        passes = max(1, itemsize(a.dtype))   # 16-bit activations: two passes of 8 bits
        cyc = compute_cycles(m, n, k, arr) * passes
        act = Actions()
        act.macs[f"{'int4' if int4 else 'int8'}:int32"] += m * n * k * passes
        act.sram_read_bytes += a.nbytes + b.nbytes + (acc.nbytes if ins.flags[0] else 0)
        act.sram_write_bytes += acc.nbytes
        return "array", cyc, act
    if spec.unit == "vector":
        dst = d[0]
        vec = hw.need_vector()
        ops = VECTOR_OPS[ins.op]
        elems = d[1].numel if ins.op in ("vreduce", "vsoftmax") else dst.numel
        cyc = math.ceil(elems * ops / vec.lanes) + vec.pipeline_depth
        act = Actions()
        act.vector_ops["int16"] += elems * ops
        act.sram_read_bytes += sum(x.nbytes for x in d[1:] if x is not None)
        act.sram_write_bytes += dst.nbytes
        return "vector", cyc, act
    return "seq", SEQ_CYCLES.get(ins.op, 0), None


# ---- functional semantics (fast) -------------------------------------------------------


def _dma(m: Machine, ins: Instr, p: Program) -> None:
    dst, src = (p.descs[a] for a in ins.args)
    m.view(dst)[...] = m.view(src)


def _gather(m: Machine, ins: Instr, p: Program) -> None:
    dst, table, idx = (p.descs[a] for a in ins.args)
    i = m.view(idx).reshape(-1).astype(np.int64)
    rows = table.shape[0]
    if i.size and (i.min() < 0 or i.max() >= rows):
        bad = int(i[(i < 0) | (i >= rows)][0])
        raise NpuError(f"{p.name}: gather index {bad} outside the table's {rows} rows")
    m.view(dst)[...] = m.view(table)[i]


def exact_matmul(a: np.ndarray, b: np.ndarray, amax: int, bmax: int) -> np.ndarray:
    """a (M, K) @ b (N, K)^T in int64, exact (BLAS where the bound allows)."""
    bound = amax * bmax * a.shape[1]
    if bound < 2**24:
        return (a.astype(np.float32) @ b.astype(np.float32).T).astype(np.int64)
    if bound < 2**53:
        return (a.astype(np.float64) @ b.astype(np.float64).T).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64).T


def _weights(m: Machine, ins: Instr, p: Program, k: int) -> tuple[np.ndarray, int]:
    """b as integers (N, K) with group scales folded in, and its largest magnitude."""
    bd = p.descs[ins.args[2]]
    b = m.view(bd)
    if bd.dtype == I4X2:
        b = unpack_int4(np.ascontiguousarray(b))
        bmax = 8
    else:
        bmax = 128
    b = b[:, :k]
    if ins.args[3] >= 0:
        group = ins.args[4]
        gs = m.view(p.descs[ins.args[3]]).astype(np.int32)
        scale = np.repeat(gs, group, axis=1)[:, :k]
        return b.astype(np.int32) * scale, bmax * 255
    return b, bmax


def _matmul(m: Machine, ins: Instr, p: Program) -> None:
    acc_d, a_d = p.descs[ins.args[0]], p.descs[ins.args[1]]
    a = m.view(a_d)
    b, bmax = _weights(m, ins, p, a.shape[1])
    r = exact_matmul(a, b, 2 ** (8 * itemsize(a_d.dtype)), bmax)
    acc = m.view(acc_d)
    if ins.flags[0]:
        r = r + acc
    acc[...] = r  # wraps to int32 as the accumulators do


def _sat(x: np.ndarray, d: Desc) -> np.ndarray:
    from llmc.backends.npu.isa import DTYPES

    _, _, lo, hi = DTYPES[d.dtype]
    return np.clip(x, lo, hi)


def _requant(m: Machine, ins: Instr, p: Program) -> None:
    dst_d, src_d = p.descs[ins.args[0]], p.descs[ins.args[1]]
    mult = m.view(p.descs[ins.args[2]]) if ins.args[2] >= 0 else ins.args[3]
    y = rshift(m.view(src_d).astype(np.int64) * np.asarray(mult, np.int64), ins.args[4])
    m.view(dst_d)[...] = _sat(y + ins.args[5], dst_d)


def alu(op: str, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """One ALU op in int64 (comparisons give 0/1)."""
    a = np.asarray(a).astype(np.int64)
    if b is not None:
        b = np.asarray(b).astype(np.int64)
    match op:
        case "add":
            return a + b
        case "sub":
            return a - b
        case "mul":
            return a * b
        case "max":
            return np.maximum(a, b)
        case "min":
            return np.minimum(a, b)
        case "shl":
            return np.left_shift(a, np.clip(b, 0, 63))
        case "shr":
            return rshift(a, np.clip(b, 0, 62))
        case "neg":
            return -a
        case "mov":
            return a
    cmp = {"le": np.less_equal, "lt": np.less, "eq": np.equal, "ge": np.greater_equal,
           "gt": np.greater, "ne": np.not_equal}[op]
    return cmp(a, b).astype(np.int64)


def _valu(m: Machine, ins: Instr, p: Program) -> None:
    dst_d = p.descs[ins.args[0]]
    a = m.view(p.descs[ins.args[1]])
    b = m.view(p.descs[ins.args[2]]) if ins.args[2] >= 0 else None
    y = alu(ALU_OPS[ins.flags[0]], a, b)
    dst = m.view(dst_d)
    dst[...] = np.broadcast_to(y, dst.shape).astype(dst.dtype)  # wraps like numpy


def _viota(m: Machine, ins: Instr, p: Program) -> None:
    dst = m.view(p.descs[ins.args[0]])
    n = dst.size
    dst[...] = (ins.args[1] + ins.args[2] * np.arange(n, dtype=np.int64)).reshape(
        dst.shape).astype(dst.dtype)


def _vrmsnorm(m: Machine, ins: Instr, p: Program) -> None:
    dst_d = p.descs[ins.args[0]]
    x = m.view(p.descs[ins.args[1]]).astype(np.int64)
    g = m.view(p.descs[ins.args[2]]).astype(np.int64)
    eps, rbits, shift = ins.args[3:6]
    ms = np.sum(x * x, axis=-1, keepdims=True) // x.shape[-1] + eps
    r = np.maximum(isqrt(ms << (2 * rbits)), 1)
    m.view(dst_d)[...] = _sat(rdiv((x * g) << rbits, r << shift), dst_d)


def _vsilu(m: Machine, ins: Instr, p: Program) -> None:
    dst_d = p.descs[ins.args[0]]
    x = m.view(p.descs[ins.args[1]]).astype(np.int64)
    in_mult, in_shift, frac, out_mult, out_shift = ins.args[2:7]
    s = int_sigmoid(rshift(x * in_mult, in_shift), frac)
    m.view(dst_d)[...] = _sat(rshift(x * s * out_mult, out_shift), dst_d)


def softmax_rows(s: np.ndarray, visible: np.ndarray, mult: int, shift: int, frac: int,
                 bits: int) -> np.ndarray:
    """vsoftmax's semantics on int32 scores (Tq, Tk) and a visibility mask."""
    xf = rshift(s.astype(np.int64) * mult, shift)
    low = np.iinfo(np.int64).min // 4
    xf = np.where(visible, xf, low)
    xf = xf - xf.max(axis=-1, keepdims=True)
    e = np.where(visible, i_exp(xf, frac), 0)
    total = np.maximum(e.sum(axis=-1, keepdims=True), 1)
    factor = (np.int64(1) << SOFTMAX_K) // total
    return np.minimum((e * factor) >> (SOFTMAX_K - bits), 2**bits - 1)


def _vsoftmax(m: Machine, ins: Instr, p: Program) -> None:
    dst_d, s_d = p.descs[ins.args[0]], p.descs[ins.args[1]]
    s = m.view(s_d)
    tq, tk = s.shape
    visible = np.ones((tq, tk), bool)
    if ins.flags[0]:
        visible = np.arange(tk)[None, :] <= np.arange(tq)[:, None] + (tk - tq)
    if ins.args[2] >= 0:
        visible = visible & (m.view(p.descs[ins.args[2]]) != 0)
    m.view(dst_d)[...] = softmax_rows(s, visible, *ins.args[3:7])


def _vreduce(m: Machine, ins: Instr, p: Program) -> None:
    dst = m.view(p.descs[ins.args[0]])
    x = m.view(p.descs[ins.args[1]]).astype(np.int64)
    y = x.sum(axis=-1, keepdims=True) if ins.flags[0] == 0 else x.max(axis=-1, keepdims=True)
    dst[...] = y.astype(dst.dtype)


def _vlut(m: Machine, ins: Instr, p: Program) -> None:
    dst = m.view(p.descs[ins.args[0]])
    x = m.view(p.descs[ins.args[1]]).astype(np.int64) + ins.args[3]
    table = m.view(p.descs[ins.args[2]])
    if x.size and (x.min() < 0 or x.max() >= table.shape[0]):
        raise NpuError(f"{p.name}: vlut index outside the table's {table.shape[0]} entries")
    dst[...] = table[x].astype(dst.dtype)


_EXEC = {"dma": _dma, "gather": _gather, "matmul": _matmul, "requant": _requant,
         "valu": _valu, "viota": _viota, "vrmsnorm": _vrmsnorm, "vsilu": _vsilu,
         "vsoftmax": _vsoftmax, "vreduce": _vreduce, "vlut": _vlut}

__all__ = ["Machine", "Stats", "alu", "exact_matmul", "instr_cost", "qrange", "softmax_rows"]
