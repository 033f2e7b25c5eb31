"""The edge NPU's instruction set, as data (docs/npu-isa.md is its manual).

Two memories, both byte-addressed: DRAM (LPDDR: weights, the KV cache,
inputs and outputs) and SPAD (the on-chip scratchpad: activations, tiles,
int32 accumulators). Compute instructions read and write SPAD only; DMA
moves tensors between the two.

An instruction names its tensors through *descriptors* (a program's table of
strided views, `Desc`): memory, dtype, up to 4 dims with element strides, and
a base address that loop registers may move (base + r_a * step_a +
r_b * step_b + (r_pp & 1) * pp_step: tile loops and ping/pong buffers).
Registers r1..r8 hold loop counters and scalars loaded from memory (LDREG);
r0 reads 0.

`OPS` is the one table of opcodes: mnemonic, operand kinds, unit, doc. The
binary form (binary.py), the assembly text (asm.py), the simulator (iss.py),
the plain-Python references (ref.py) and the manual all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmc.errors import LlmcError


class NpuError(LlmcError):
    """A program the NPU refuses: malformed binary or assembly, an address
    outside a memory, an operand that breaks an instruction's rules, or a
    fault while running (an index out of range, a read of a buffer a DMA is
    still writing)."""


# ---- memories and element types -----------------------------------------------------

DRAM, SPAD = 0, 1
SPACES = {DRAM: "dram", SPAD: "spad"}
NREGS = 8  # r1..r8

# code -> (name, numpy dtype, saturation range lo, hi); i4x2 is two int4 per byte
DTYPES: dict[int, tuple[str, str, int, int]] = {
    0: ("i8", "int8", -127, 127),
    1: ("u8", "uint8", 0, 255),
    2: ("i16", "int16", -32767, 32767),
    3: ("u16", "uint16", 0, 65535),
    4: ("i32", "int32", -(2**31 - 1), 2**31 - 1),
    5: ("i64", "int64", -(2**63 - 1), 2**63 - 1),
    6: ("bool", "bool", 0, 1),
    7: ("i4x2", "uint8", -7, 7),
}
DTYPE_CODE = {name: code for code, (name, *_rest) in DTYPES.items()}
I4X2 = 7


def np_dtype(code: int) -> np.dtype:
    return np.dtype(DTYPES[code][1])


def itemsize(code: int) -> int:
    return np_dtype(code).itemsize


@dataclass(frozen=True)
class Desc:
    """A strided tensor view: `space` (DRAM/SPAD), dtype code, `shape` and
    element `strides` (rank 1..4), `base` byte address, and how registers
    move the base (reg 0: unused)."""

    space: int
    dtype: int
    base: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    reg_a: int = 0
    step_a: int = 0
    reg_b: int = 0
    step_b: int = 0
    reg_pp: int = 0
    pp_step: int = 0

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.numel * itemsize(self.dtype)

    @property
    def dynamic(self) -> bool:
        return bool(self.reg_a or self.reg_b or self.reg_pp)

    def extent(self, base: int | None = None) -> tuple[int, int]:
        """[lo, hi) bytes this view touches at `base` (default: its own)."""
        lo = self.base if base is None else base
        size = itemsize(self.dtype)
        return lo, lo + size * (1 + sum((n - 1) * s for n, s in zip(self.shape, self.strides,
                                                                     strict=True)))


# ---- opcodes --------------------------------------------------------------------------

# operand kinds: d descriptor index, o optional descriptor (-1: none), i signed
# immediate, n count (>= 0), r register 1..8
@dataclass(frozen=True)
class OpSpec:
    code: int
    name: str
    operands: tuple[tuple[str, str], ...]   # (name, kind)
    unit: str                               # dma, array, vector, seq
    doc: str
    flags: tuple[str, ...] = ()             # names of the flag bytes used


def _ops(*specs: OpSpec) -> dict[str, OpSpec]:
    return {s.name: s for s in specs}


OPS: dict[str, OpSpec] = _ops(
    OpSpec(0x00, "nop", (), "seq", "do nothing"),
    OpSpec(0x01, "dma", (("dst", "d"), ("src", "d")), "dma",
           "copy the view src to the view dst (same dtype and shape, any memories); "
           "asynchronous: the DMA queue runs it, WAIT retires it"),
    OpSpec(0x02, "gather", (("dst", "d"), ("table", "d"), ("idx", "d")), "dma",
           "dst[i, :] = table[idx[i], :]: rows of a 2-D table at integer indices "
           "(embedding lookup); a fault if an index is outside the table"),
    OpSpec(0x03, "wait", (("n", "n"),), "seq",
           "stall until at most n DMA transfers are outstanding (oldest retire first)"),
    OpSpec(0x04, "barrier", (), "seq", "stall until every DMA and compute instruction is done"),
    OpSpec(0x05, "loop", (("reg", "r"), ("count", "n")), "seq",
           "reg = 0, then run the body up to the matching endloop `count` times (count >= 1)"),
    OpSpec(0x06, "endloop", (("reg", "r"),), "seq",
           "reg += 1; jump back to the body of the matching loop while reg < count"),
    OpSpec(0x07, "ldreg", (("reg", "r"), ("src", "d")), "seq",
           "reg = the integer scalar at src (one element, i32 or i64, >= 0)"),
    OpSpec(0x08, "halt", (), "seq", "end of program"),
    OpSpec(0x10, "matmul", (("acc", "d"), ("a", "d"), ("b", "d"), ("gs", "o"), ("group", "n")),
           "array",
           "int32 acc (M, N) [+]= a (M, K) @ b (N, K)^T; a i8/u8/i16/u16, b i8 or i4x2 "
           "(SIMD 4-bit mode: two int4 weights per byte, int4x2_lane32 layout, (N, K/2)); "
           "with gs u8 (N, K/group): acc [+]= sum_g gs[n, g] * sum_(k in g) a_mk b_nk",
           ("accumulate",)),
    OpSpec(0x11, "requant", (("dst", "d"), ("src", "d"), ("mult", "o"), ("imm", "i"),
                             ("shift", "n"), ("zp", "i")), "vector",
           "dst = clamp(rshift(src * m, shift) + zp) to dst's range (i8 -127..127 ...); m "
           "is the per-channel (last dim) i32 vector `mult` or the immediate; rshift rounds "
           "half up"),
    OpSpec(0x12, "valu", (("dst", "d"), ("a", "d"), ("b", "o")), "vector",
           "dst = a OP b elementwise in 64-bit integers, wrapped to dst's dtype; a and b "
           "broadcast to dst (numpy rules); OP in flag 0 (ALU_OPS)", ("op",)),
    OpSpec(0x13, "viota", (("dst", "d"), ("start", "i"), ("step", "i")), "vector",
           "dst[i] = start + i * step (flat order)"),
    OpSpec(0x14, "vrmsnorm", (("dst", "d"), ("x", "d"), ("g", "d"), ("eps", "i"),
                              ("rbits", "n"), ("shift", "n")), "vector",
           "integer RMSNorm over the last dim (IR int_rms_norm): ms = sum(x^2) // C + eps; "
           "r = isqrt(ms << 2 rbits); dst = round(x g 2^rbits / (r 2^shift)) saturated"),
    OpSpec(0x15, "vsilu", (("dst", "d"), ("x", "d"), ("in_mult", "i"), ("in_shift", "n"),
                           ("frac", "n"), ("out_mult", "i"), ("out_shift", "n")), "vector",
           "integer SiLU (IR int_silu): xf = rshift(x in_mult, in_shift); sigmoid from "
           "i-exp(-|xf|) with 15 fraction bits; dst = rshift(x sigmoid out_mult, out_shift)"),
    OpSpec(0x16, "vsoftmax", (("dst", "d"), ("s", "d"), ("mask", "o"), ("mult", "i"),
                              ("shift", "n"), ("frac", "n"), ("bits", "n")), "vector",
           "I-BERT integer softmax along the last dim of int32 scores s (Tq, Tk): "
           "xf = rshift(s mult, shift); row max, i-exp, factor = 2^62 // sum; dst = "
           "min((e factor) >> (62 - bits), 2^bits - 1); masked-out (mask 0, or above the "
           "causal diagonal with offset Tk - Tq when flag causal) give 0", ("causal",)),
    OpSpec(0x17, "vreduce", (("dst", "d"), ("x", "d")), "vector",
           "dst[..., 0] = sum (flag 0) or max (flag 1) of x over its last dim, wrapped to "
           "dst's dtype", ("op",)),
    OpSpec(0x18, "vlut", (("dst", "d"), ("x", "d"), ("table", "d"), ("offset", "i")), "vector",
           "dst = table[x + offset] (a 1-D table in SPAD); a fault if an index is outside it"),
)
BY_CODE: dict[int, OpSpec] = {s.code: s for s in OPS.values()}

ALU_OPS = ("add", "sub", "mul", "max", "min", "shl", "shr", "neg", "mov", "le", "lt",
           "eq", "ge", "gt", "ne")
UNARY_ALU = ("neg", "mov")
REDUCE_OPS = ("sum", "max")


@dataclass(frozen=True)
class Instr:
    """One instruction: its mnemonic, operand values in OPS order, flag
    bytes, and a comment (where it came from; not encoded)."""

    op: str
    args: tuple[int, ...] = ()
    flags: tuple[int, int, int] = (0, 0, 0)
    comment: str = field(default="", compare=False)

    @property
    def spec(self) -> OpSpec:
        return OPS[self.op]

    def arg(self, name: str) -> int:
        for (n, _), v in zip(self.spec.operands, self.args, strict=True):
            if n == name:
                return v
        raise KeyError(name)


@dataclass(frozen=True)
class Target:
    """The NPU parameters a program is built for (the binary's header)."""

    array_rows: int
    array_cols: int
    vector_lanes: int
    spad_bytes: int
    dram_bytes: int          # the size of the program's DRAM image
    clock_hz: float


@dataclass
class Program:
    """One entry point (a phase): its descriptor table and instructions."""

    name: str
    descs: list[Desc] = field(default_factory=list)
    instrs: list[Instr] = field(default_factory=list)
    _index: dict[Desc, int] = field(default_factory=dict, repr=False)

    def desc(self, d: Desc) -> int:
        """The index of `d` in the table (added once)."""
        if d not in self._index:
            self._index[d] = len(self.descs)
            self.descs.append(d)
        return self._index[d]

    def emit(self, op: str, *args: int, flags: tuple[int, int, int] = (0, 0, 0),
             comment: str = "") -> None:
        self.instrs.append(Instr(op, tuple(int(a) for a in args), flags, comment))


@dataclass
class Image:
    """A whole program file: target parameters and the programs (phases)."""

    target: Target
    programs: list[Program]

    def program(self, name: str) -> Program:
        for p in self.programs:
            if p.name == name:
                return p
        raise NpuError(f"the program has no entry point {name!r} "
                       f"(it has {', '.join(p.name for p in self.programs)})")
