"""Plain-Python reference of every NPU instruction (no numpy): Python ints,
one element at a time, memories as bytearrays. It is slow on purpose; the
simulator (iss.py) must agree with it bit for bit (tests/backends/npu), and
bench/npu_bench.py times both.

    mem = {DRAM: bytearray(...), SPAD: bytearray(...)}
    run_program(program, mem)          # every instruction, in order
"""

from __future__ import annotations

import itertools
import math

from llmc.backends.npu.isa import (
    ALU_OPS,
    DTYPES,
    I4X2,
    NREGS,
    Desc,
    Instr,
    NpuError,
    Program,
    itemsize,
)

Mem = dict[int, bytearray]
SOFTMAX_K = 62
EXP_A = 0.35815147
EXP_B = 0.96963238 / (2 * EXP_A)
EXP_C = 1.0 - EXP_A * EXP_B**2


def _signed(code: int) -> bool:
    return DTYPES[code][0] in ("i8", "i16", "i32", "i64", "i4x2")


def base_of(d: Desc, regs: list[int]) -> int:
    return (d.base + regs[d.reg_a] * d.step_a + regs[d.reg_b] * d.step_b
            + (regs[d.reg_pp] & 1) * d.pp_step)


def addr(d: Desc, base: int, idx: tuple[int, ...]) -> int:
    return base + itemsize(d.dtype) * sum(i * s for i, s in zip(idx, d.strides, strict=True))


def load(mem: Mem, d: Desc, base: int, idx: tuple[int, ...]) -> int:
    a, n = addr(d, base, idx), itemsize(d.dtype)
    if a < 0 or a + n > len(mem[d.space]):
        raise NpuError(f"reference: address {a:#x} outside memory")
    return int.from_bytes(mem[d.space][a:a + n], "little", signed=_signed(d.dtype))


def wrap(v: int, code: int) -> int:
    """v as dtype `code` stores it (two's complement wrap; bool: v != 0)."""
    name = DTYPES[code][0]
    if name == "bool":
        return int(v != 0)
    bits = 8 * itemsize(code)
    v &= (1 << bits) - 1
    if _signed(code) and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def store(mem: Mem, d: Desc, base: int, idx: tuple[int, ...], v: int) -> None:
    a, n = addr(d, base, idx), itemsize(d.dtype)
    v = wrap(v, d.dtype)
    mem[d.space][a:a + n] = v.to_bytes(n, "little", signed=_signed(d.dtype))


def sat(v: int, code: int) -> int:
    _, _, lo, hi = DTYPES[code]
    return min(max(v, lo), hi)


def rshift(a: int, s: int) -> int:
    """floor((a + 2^(s-1)) / 2^s); a when s == 0."""
    return (a + (1 << (s - 1))) >> s if s > 0 else a


def rdiv(a: int, b: int) -> int:
    return (2 * a + b) // (2 * b)


def i_exp(x: int, frac: int) -> int:
    x0 = math.floor(-math.log(2) * 2**frac)
    b_q = math.floor(EXP_B * 2**frac)
    c_q = math.floor(EXP_C / EXP_A * 2 ** (2 * frac))
    x = max(x, 30 * x0)
    q = x // x0
    r = x - q * x0
    return ((r + b_q) ** 2 + c_q) >> q


def sigmoid(xf: int, frac: int) -> int:
    e = i_exp(-abs(xf), frac)
    one = round(2 ** (2 * frac) / EXP_A)
    return rdiv((one if xf >= 0 else e) << 15, one + e)


def nibble(byte: int, j: int) -> int:
    """Element j (0..31) of a 16-byte lane of packed int4 (int4x2_lane32)."""
    v = (byte & 0xF) if j < 16 else (byte >> 4)
    return v - 16 if v >= 8 else v


def b_elem(mem: Mem, d: Desc, base: int, n: int, k: int) -> int:
    if d.dtype != I4X2:
        return load(mem, d, base, (n, k))
    lane, j = divmod(k, 32)
    byte = load(mem, Desc(d.space, 1, d.base, d.shape, d.strides), base,
                (n, lane * 16 + j % 16))
    return nibble(byte, j)


def _bcast(idx: tuple[int, ...], d: Desc) -> tuple[int, ...]:
    idx = idx[len(idx) - d.rank:]
    return tuple(0 if n == 1 else i for i, n in zip(idx, d.shape, strict=True))


def _all(shape: tuple[int, ...]):  # noqa: ANN202
    return itertools.product(*(range(n) for n in shape))


def execute(ins: Instr, p: Program, mem: Mem, regs: list[int]) -> None:
    """Run one data instruction (not loop/wait control) on `mem`."""
    ds = {name: (p.descs[v] if kind in "do" and v >= 0 else None)
          for (name, kind), v in zip(ins.spec.operands, ins.args, strict=True)}
    bs = {k: base_of(d, regs) for k, d in ds.items() if d is not None}
    a = dict(zip([n for n, _ in ins.spec.operands], ins.args, strict=True))
    op = ins.op
    if op == "dma":
        for i in _all(ds["dst"].shape):
            store(mem, ds["dst"], bs["dst"], i, load(mem, ds["src"], bs["src"], i))
    elif op == "gather":
        dst, table, idx = ds["dst"], ds["table"], ds["idx"]
        flat = [load(mem, idx, bs["idx"], i) for i in _all(idx.shape)]
        for r, row in enumerate(flat):
            if not 0 <= row < table.shape[0]:
                raise NpuError(f"reference: gather index {row} outside the table")
            for c in range(table.shape[1]):
                store(mem, dst, bs["dst"], (r, c), load(mem, table, bs["table"], (row, c)))
    elif op == "matmul":
        acc, x, w, gs = ds["acc"], ds["a"], ds["b"], ds["gs"]
        (m, n), k = acc.shape, x.shape[1]
        for i in range(m):
            for j in range(n):
                total = 0
                for g0 in range(0, k, a["group"] or k):
                    part = sum(load(mem, x, bs["a"], (i, kk)) * b_elem(mem, w, bs["b"], j, kk)
                               for kk in range(g0, min(k, g0 + (a["group"] or k))))
                    scale = load(mem, gs, bs["gs"], (j, g0 // a["group"])) if gs else 1
                    total += part * scale
                if ins.flags[0]:
                    total += load(mem, acc, bs["acc"], (i, j))
                store(mem, acc, bs["acc"], (i, j), total)
    elif op == "requant":
        dst, src, mult = ds["dst"], ds["src"], ds["mult"]
        for i in _all(dst.shape):
            mm = load(mem, mult, bs["mult"], _bcast(i, mult)) if mult else a["imm"]
            v = rshift(load(mem, src, bs["src"], i) * mm, a["shift"]) + a["zp"]
            store(mem, dst, bs["dst"], i, sat(v, dst.dtype))
    elif op == "valu":
        name = ALU_OPS[ins.flags[0]]
        dst, x, y = ds["dst"], ds["a"], ds["b"]
        for i in _all(dst.shape):
            u = load(mem, x, bs["a"], _bcast(i, x))
            v = load(mem, y, bs["b"], _bcast(i, y)) if y else 0
            store(mem, dst, bs["dst"], i, _alu(name, u, v))
    elif op == "viota":
        dst = ds["dst"]
        for n, i in enumerate(_all(dst.shape)):
            store(mem, dst, bs["dst"], i, a["start"] + n * a["step"])
    elif op == "vrmsnorm":
        _rmsnorm(mem, ds, bs, a)
    elif op == "vsilu":
        dst, x = ds["dst"], ds["x"]
        for i in _all(dst.shape):
            v = load(mem, x, bs["x"], i)
            s = sigmoid(rshift(v * a["in_mult"], a["in_shift"]), a["frac"])
            store(mem, dst, bs["dst"], i, sat(rshift(v * s * a["out_mult"], a["out_shift"]),
                                               dst.dtype))
    elif op == "vsoftmax":
        _softmax(mem, ds, bs, a, bool(ins.flags[0]))
    elif op == "vreduce":
        dst, x = ds["dst"], ds["x"]
        for i in _all(x.shape[:-1]):
            vals = [load(mem, x, bs["x"], i + (c,)) for c in range(x.shape[-1])]
            store(mem, dst, bs["dst"], i + (0,), sum(vals) if ins.flags[0] == 0 else max(vals))
    elif op == "vlut":
        dst, x, t = ds["dst"], ds["x"], ds["table"]
        for i in _all(dst.shape):
            j = load(mem, x, bs["x"], i) + a["offset"]
            if not 0 <= j < t.shape[0]:
                raise NpuError("reference: vlut index outside the table")
            store(mem, dst, bs["dst"], i, load(mem, t, bs["table"], (j,)))
    else:
        raise NpuError(f"reference: {op} is a control instruction")


def _alu(name: str, u: int, v: int) -> int:
    if name in ("shl", "shr"):
        v = min(max(v, 0), 63 if name == "shl" else 62)
    return {"add": u + v, "sub": u - v, "mul": u * v, "max": max(u, v), "min": min(u, v),
            "shl": u << v if name == "shl" else 0, "shr": rshift(u, v), "neg": -u, "mov": u,
            "le": int(u <= v), "lt": int(u < v), "eq": int(u == v), "ge": int(u >= v),
            "gt": int(u > v), "ne": int(u != v)}[name]


def _rmsnorm(mem: Mem, ds: dict, bs: dict, a: dict) -> None:
    dst, x, g = ds["dst"], ds["x"], ds["g"]
    c = x.shape[-1]
    for row in _all(x.shape[:-1]):
        xs = [load(mem, x, bs["x"], row + (j,)) for j in range(c)]
        ms = sum(v * v for v in xs) // c + a["eps"]
        r = max(math.isqrt(ms << (2 * a["rbits"])), 1)
        for j, v in enumerate(xs):
            y = rdiv((v * load(mem, g, bs["g"], (j,))) << a["rbits"], r << a["shift"])
            store(mem, dst, bs["dst"], row + (j,), sat(y, dst.dtype))


def _softmax(mem: Mem, ds: dict, bs: dict, a: dict, causal: bool) -> None:
    dst, s, mask = ds["dst"], ds["s"], ds["mask"]
    tq, tk = s.shape
    for i in range(tq):
        vis = [(not causal or j <= i + tk - tq)
               and (mask is None or load(mem, mask, bs["mask"], _bcast((i, j), mask)) != 0)
               for j in range(tk)]
        xf = [rshift(load(mem, s, bs["s"], (i, j)) * a["mult"], a["shift"]) for j in range(tk)]
        top = max((x for x, v in zip(xf, vis, strict=True) if v), default=0)
        e = [i_exp(x - top, a["frac"]) if v else 0 for x, v in zip(xf, vis, strict=True)]
        factor = (1 << SOFTMAX_K) // max(sum(e), 1)
        for j in range(tk):
            p = min((e[j] * factor) >> (SOFTMAX_K - a["bits"]), 2 ** a["bits"] - 1)
            store(mem, dst, bs["dst"], (i, j), p)


def run_program(p: Program, mem: Mem) -> None:
    """Every instruction of `p` in program order (loops unrolled by the registers)."""
    regs = [0] * (NREGS + 1)
    loops: list[tuple[int, int, int]] = []
    pc = 0
    while pc < len(p.instrs):
        ins = p.instrs[pc]
        if ins.op == "loop":
            regs[ins.args[0]] = 0
            loops.append((ins.args[0], ins.args[1], pc + 1))
        elif ins.op == "endloop":
            reg, count, body = loops[-1]
            regs[reg] += 1
            if regs[reg] < count:
                pc = body
                continue
            loops.pop()
        elif ins.op == "ldreg":
            d = p.descs[ins.args[1]]
            regs[ins.args[0]] = load(mem, d, base_of(d, regs), (0,) * d.rank)
        elif ins.op == "halt":
            return
        elif ins.op not in ("nop", "wait", "barrier"):
            execute(ins, p, mem, regs)
        pc += 1
