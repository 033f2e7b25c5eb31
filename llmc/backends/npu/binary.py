"""program.npu: the binary form of an `Image`, and the checks every program
passes before it runs (docs/npu-isa.md, "Binary format").

    header   magic "LLMCNPU\\0", version, program count, target parameters,
             body length, CRC-32 of the body
    body     per program: name (32 bytes), descriptor count, instruction
             count, descriptors (104 bytes each), instructions (64 bytes each)

Little-endian throughout. `decode` refuses (NpuError, one line saying what
and where) a bad magic, version, checksum or length, an unknown opcode or
dtype, a descriptor whose extent leaves its memory, and an operand that
breaks its instruction's rules; it reads only the bytes it was given.
"""

from __future__ import annotations

import struct
import zlib

from llmc.backends.npu.isa import (
    ALU_OPS,
    BY_CODE,
    DRAM,
    DTYPES,
    I4X2,
    NREGS,
    OPS,
    REDUCE_OPS,
    SPACES,
    SPAD,
    Desc,
    Image,
    Instr,
    NpuError,
    Program,
    Target,
    itemsize,
)

MAGIC = b"LLMCNPU\0"
VERSION = 1
_HEADER = struct.Struct("<8sHHIIIIQQdQI")   # magic ver nprog pad rows cols lanes spad dram clk len crc
_PROGRAM = struct.Struct("<32sII")
_DESC = struct.Struct("<BBBBBBBBq4I4q5q")   # 8 + 8 + 16 + 32 + 40 = 104
_INSTR = struct.Struct("<BBBB4x7q")         # 64
HEADER_BYTES = _HEADER.size


def encode(image: Image) -> bytes:
    """The bytes of `image` (checked first)."""
    check_image(image)
    body = b"".join(_encode_program(p) for p in image.programs)
    t = image.target
    header = _HEADER.pack(MAGIC, VERSION, len(image.programs), 0, t.array_rows, t.array_cols,
                          t.vector_lanes, t.spad_bytes, t.dram_bytes, t.clock_hz, len(body),
                          zlib.crc32(body))
    return header + body


def _encode_program(p: Program) -> bytes:
    name = p.name.encode()
    out = [_PROGRAM.pack(name, len(p.descs), len(p.instrs))]
    for d in p.descs:
        shape = d.shape + (1,) * (4 - d.rank)
        strides = d.strides + (0,) * (4 - d.rank)
        out.append(_DESC.pack(d.space, d.dtype, d.rank, d.reg_a, d.reg_b, d.reg_pp, 0, 0,
                              d.base, *shape, *strides, d.step_a, d.step_b, d.pp_step, 0, 0))
    for i in p.instrs:
        args = i.args + (0,) * (7 - len(i.args))
        out.append(_INSTR.pack(i.spec.code, *i.flags, *args))
    return b"".join(out)


def decode(data: bytes) -> Image:
    """The `Image` in `data`, checked (see the module docstring)."""
    data = bytes(data)
    if len(data) < HEADER_BYTES:
        raise NpuError(f"program too short: {len(data)} bytes, the header alone is "
                       f"{HEADER_BYTES}")
    (magic, version, nprog, pad, rows, cols, lanes, spad, dram, clock, length,
     crc) = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise NpuError(f"not an llmc NPU program: magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise NpuError(f"NPU program version {version}; this llmc reads version {VERSION}")
    body = data[HEADER_BYTES:]
    if len(body) != length:
        raise NpuError(f"NPU program truncated or padded: the header says {length} body bytes, "
                       f"the file has {len(body)}")
    if zlib.crc32(body) != crc:
        raise NpuError(f"NPU program checksum mismatch: CRC-32 {zlib.crc32(body):#010x}, "
                       f"header says {crc:#010x} (the file is corrupted)")
    if pad or nprog == 0 or min(rows, cols, lanes) == 0 or not clock > 0:
        raise NpuError("NPU program header has invalid target parameters")
    target = Target(rows, cols, lanes, spad, dram, clock)
    programs, at = [], 0
    for _ in range(nprog):
        p, at = _decode_program(body, at)
        programs.append(p)
    if at != len(body):
        raise NpuError(f"NPU program has {len(body) - at} trailing bytes after its programs")
    image = Image(target, programs)
    check_image(image)
    return image


def _take(body: bytes, at: int, n: int, what: str) -> int:
    if at + n > len(body):
        raise NpuError(f"NPU program truncated inside {what} (byte {HEADER_BYTES + at})")
    return at + n


def _decode_program(body: bytes, at: int) -> tuple[Program, int]:
    end = _take(body, at, _PROGRAM.size, "a program header")
    raw, nd, ni = _PROGRAM.unpack_from(body, at)
    try:
        name = raw.rstrip(b"\0").decode()
    except UnicodeDecodeError:
        raise NpuError("NPU program name is not UTF-8") from None
    at = end
    _take(body, at, nd * _DESC.size + ni * _INSTR.size, f"program {name!r}")
    p = Program(name)
    for k in range(nd):
        f = _DESC.unpack_from(body, at)
        at += _DESC.size
        space, dt, rank, ra, rb, rp, p0, p1 = f[:8]
        base, shape, strides = f[8], f[9:13], f[13:17]
        sa, sb, spp, z0, z1 = f[17:22]
        if p0 or p1 or z0 or z1 or not 1 <= rank <= 4:
            raise NpuError(f"{name}: descriptor {k} is malformed (rank {rank} or reserved "
                           "fields not zero)")
        if any(s != 1 for s in shape[rank:]) or any(s != 0 for s in strides[rank:]):
            raise NpuError(f"{name}: descriptor {k} has dims beyond its rank {rank}")
        p.descs.append(Desc(space, dt, base, tuple(shape[:rank]), tuple(strides[:rank]),
                            ra, sa, rb, sb, rp, spp))
    for k in range(ni):
        code, f0, f1, f2, *args = _INSTR.unpack_from(body, at)
        at += _INSTR.size
        spec = BY_CODE.get(code)
        if spec is None:
            raise NpuError(f"{name}: instruction {k} has unknown opcode {code:#04x}")
        n = len(spec.operands)
        if any(args[n:]):
            raise NpuError(f"{name}: instruction {k} ({spec.name}) has non-zero unused operands")
        p.instrs.append(Instr(spec.name, tuple(args[:n]), (f0, f1, f2)))
    return p, at


# ---- checks -------------------------------------------------------------------------


def check_image(image: Image) -> None:
    """NpuError unless every program is well formed for `image.target`."""
    names = [p.name for p in image.programs]
    if len(set(names)) != len(names):
        raise NpuError(f"NPU program has duplicate entry points: {names}")
    for p in image.programs:
        if not p.name or len(p.name.encode()) > 32:
            raise NpuError(f"NPU program entry point name {p.name!r} must be 1..32 bytes")
        for k, d in enumerate(p.descs):
            check_desc(d, image.target, f"{p.name}: descriptor {k}")
        check_instrs(p)


def memory_bytes(space: int, target: Target) -> int:
    return target.dram_bytes if space == DRAM else target.spad_bytes


def check_desc(d: Desc, target: Target, where: str) -> None:
    if d.space not in SPACES:
        raise NpuError(f"{where}: unknown memory {d.space}")
    if d.dtype not in DTYPES:
        raise NpuError(f"{where}: unknown dtype code {d.dtype}")
    if any(n < 1 for n in d.shape) or any(s < 0 for s in d.strides):
        raise NpuError(f"{where}: shape {d.shape} must be >= 1 and strides {d.strides} >= 0")
    for r in (d.reg_a, d.reg_b, d.reg_pp):
        if not 0 <= r <= NREGS:
            raise NpuError(f"{where}: register r{r} does not exist (r0..r{NREGS})")
    size = itemsize(d.dtype)
    if d.base % size or d.step_a % size or d.step_b % size or d.pp_step % size:
        raise NpuError(f"{where}: address {d.base:#x} is not aligned to its {size}-byte "
                       f"elements")
    if d.base < 0:
        raise NpuError(f"{where}: negative address {d.base}")
    if not d.dynamic:
        check_extent(d, d.base, memory_bytes(d.space, target), where)


def check_extent(d: Desc, base: int, limit: int, where: str) -> None:
    lo, hi = d.extent(base)
    if lo < 0 or hi > limit:
        raise NpuError(f"{where}: {SPACES[d.space]} bytes [{lo:#x}, {hi:#x}) are outside the "
                       f"{limit:#x}-byte {SPACES[d.space]}")


def check_instrs(p: Program) -> None:
    """Operand kinds, loop nesting and each instruction's own rules."""
    depth: list[int] = []
    for k, ins in enumerate(p.instrs):
        where = f"{p.name}: instruction {k} ({ins.op})"
        if len(ins.args) != len(ins.spec.operands):
            raise NpuError(f"{where}: {len(ins.args)} operands, expected "
                           f"{len(ins.spec.operands)}")
        for (name, kind), v in zip(ins.spec.operands, ins.args, strict=True):
            if kind == "d" and not 0 <= v < len(p.descs):
                raise NpuError(f"{where}: {name} names descriptor {v}; the program has "
                               f"{len(p.descs)}")
            if kind == "o" and not -1 <= v < len(p.descs):
                raise NpuError(f"{where}: {name} names descriptor {v}; the program has "
                               f"{len(p.descs)}")
            if kind == "n" and not 0 <= v < 2**40:
                raise NpuError(f"{where}: {name} = {v} is out of range")
            if kind == "r" and not 1 <= v <= NREGS:
                raise NpuError(f"{where}: register r{v} does not exist (r1..r{NREGS})")
        allowed = len(ins.spec.flags)
        if any(ins.flags[allowed:]) or any(not 0 <= f < 256 for f in ins.flags):
            raise NpuError(f"{where}: flags {ins.flags} not allowed")
        if ins.op == "loop":
            if ins.args[1] < 1:
                raise NpuError(f"{where}: loop count must be >= 1")
            depth.append(ins.args[0])
        elif ins.op == "endloop":
            if not depth or depth.pop() != ins.args[0]:
                raise NpuError(f"{where}: endloop r{ins.args[0]} matches no open loop")
        _RULES.get(ins.op, lambda i, p, w: None)(ins, p, where)
    if depth:
        raise NpuError(f"{p.name}: loop on r{depth[-1]} is never closed")


def _d(p: Program, i: int) -> Desc:
    return p.descs[i]


def _need_spad(where: str, **ds: Desc) -> None:
    for name, d in ds.items():
        if d.space != SPAD:
            raise NpuError(f"{where}: operand {name} is in {SPACES[d.space]}; compute "
                           "instructions read and write the scratchpad only")


def _name(d: Desc) -> str:
    return DTYPES[d.dtype][0]


def _dma(ins: Instr, p: Program, where: str) -> None:
    dst, src = _d(p, ins.args[0]), _d(p, ins.args[1])
    if dst.dtype != src.dtype or dst.shape != src.shape:
        raise NpuError(f"{where}: dst {_name(dst)}{list(dst.shape)} and src "
                       f"{_name(src)}{list(src.shape)} differ")


def _gather(ins: Instr, p: Program, where: str) -> None:
    dst, table, idx = (_d(p, a) for a in ins.args)
    if table.rank != 2 or dst.rank != 2 or dst.shape != (idx.numel, table.shape[1]) or \
            dst.dtype != table.dtype or DTYPES[idx.dtype][0] not in ("i32", "i64"):
        raise NpuError(f"{where}: needs table (V, E), integer idx of n elements and dst (n, E)")


def _matmul(ins: Instr, p: Program, where: str) -> None:
    acc, a, b = (_d(p, x) for x in ins.args[:3])
    _need_spad(where, acc=acc, a=a, b=b)
    if acc.rank != 2 or a.rank != 2 or b.rank != 2 or _name(acc) != "i32":
        raise NpuError(f"{where}: acc (M, N) i32, a (M, K) and b (N, K) must be 2-D")
    if _name(a) not in ("i8", "u8", "i16", "u16") or b.dtype not in (0, I4X2):
        raise NpuError(f"{where}: a must be i8/u8/i16/u16 and b i8 or i4x2, got "
                       f"{_name(a)} and {_name(b)}")
    kb = b.shape[1] * (2 if b.dtype == I4X2 else 1)
    (m, n), k = acc.shape, a.shape[1]
    if a.shape[0] != m or b.shape[0] != n or kb < k:
        raise NpuError(f"{where}: shapes acc {list(acc.shape)}, a {list(a.shape)}, b "
                       f"{list(b.shape)} do not match")
    gs, group = ins.args[3], ins.args[4]
    if gs >= 0:
        g = _d(p, gs)
        _need_spad(where, gs=g)
        if group < 1 or _name(g) != "u8" or g.rank != 2 or g.shape[0] != n or \
                g.shape[1] * group < k:
            raise NpuError(f"{where}: group scales must be u8 (N, K/group) with group >= 1")
    elif group:
        raise NpuError(f"{where}: group {group} given without group scales")


def _requant(ins: Instr, p: Program, where: str) -> None:
    dst, src = _d(p, ins.args[0]), _d(p, ins.args[1])
    _need_spad(where, dst=dst, src=src)
    if dst.shape != src.shape or ins.args[4] > 62:
        raise NpuError(f"{where}: dst and src shapes differ or shift > 62")
    if ins.args[2] >= 0:
        m = _d(p, ins.args[2])
        _need_spad(where, mult=m)
        if m.rank != 1 or m.shape[0] not in (1, src.shape[-1]) or _name(m) != "i32":
            raise NpuError(f"{where}: mult must be i32 [1] or [{src.shape[-1]}]")


def _broadcasts(where: str, dst: Desc, *xs: Desc) -> None:
    for x in xs:
        if x.rank > dst.rank or any(a not in (1, b) for a, b in
                                    zip(x.shape[::-1], dst.shape[::-1], strict=False)):
            raise NpuError(f"{where}: operand {list(x.shape)} does not broadcast to "
                           f"{list(dst.shape)}")


def _valu(ins: Instr, p: Program, where: str) -> None:
    dst, a = _d(p, ins.args[0]), _d(p, ins.args[1])
    if ins.flags[0] >= len(ALU_OPS):
        raise NpuError(f"{where}: unknown ALU op {ins.flags[0]}")
    op = ALU_OPS[ins.flags[0]]
    unary = op in ("neg", "mov")
    if unary != (ins.args[2] < 0):
        raise NpuError(f"{where}: {op} takes {'one operand' if unary else 'two operands'}")
    xs = [a] + ([] if unary else [_d(p, ins.args[2])])
    _need_spad(where, dst=dst, **{f"x{i}": x for i, x in enumerate(xs)})
    if I4X2 in (dst.dtype, *[x.dtype for x in xs]):
        raise NpuError(f"{where}: packed int4 is for matmul weights only")
    _broadcasts(where, dst, *xs)


def _unary_same(ins: Instr, p: Program, where: str) -> None:
    dst, x = _d(p, ins.args[0]), _d(p, ins.args[1])
    _need_spad(where, dst=dst, x=x)
    if dst.shape != x.shape:
        raise NpuError(f"{where}: dst {list(dst.shape)} and x {list(x.shape)} differ")


def _vrmsnorm(ins: Instr, p: Program, where: str) -> None:
    _unary_same(ins, p, where)
    g = _d(p, ins.args[2])
    _need_spad(where, g=g)
    if g.shape != (_d(p, ins.args[1]).shape[-1],) or _name(g) != "i32":
        raise NpuError(f"{where}: gain must be i32 [C]")


def _vsoftmax(ins: Instr, p: Program, where: str) -> None:
    dst, s = _d(p, ins.args[0]), _d(p, ins.args[1])
    _need_spad(where, dst=dst, s=s)
    if dst.shape != s.shape or s.rank != 2 or not 1 <= ins.args[6] <= 16:
        raise NpuError(f"{where}: scores and dst must be (Tq, Tk) with 1..16 bits")
    if ins.args[2] >= 0:
        m = _d(p, ins.args[2])
        _need_spad(where, mask=m)
        _broadcasts(where, dst, m)


def _vreduce(ins: Instr, p: Program, where: str) -> None:
    dst, x = _d(p, ins.args[0]), _d(p, ins.args[1])
    _need_spad(where, dst=dst, x=x)
    if dst.shape != x.shape[:-1] + (1,) or ins.flags[0] >= len(REDUCE_OPS):
        raise NpuError(f"{where}: dst must be x's shape with a last dim of 1")


def _vlut(ins: Instr, p: Program, where: str) -> None:
    _unary_same(ins, p, where)
    t = _d(p, ins.args[2])
    _need_spad(where, table=t)
    if t.rank != 1:
        raise NpuError(f"{where}: the table must be 1-D")


def _viota(ins: Instr, p: Program, where: str) -> None:
    _need_spad(where, dst=_d(p, ins.args[0]))


def _ldreg(ins: Instr, p: Program, where: str) -> None:
    s = _d(p, ins.args[1])
    if s.numel != 1 or _name(s) not in ("i32", "i64"):
        raise NpuError(f"{where}: source must be one i32 or i64 element")


_RULES = {"dma": _dma, "gather": _gather, "matmul": _matmul, "requant": _requant,
          "valu": _valu, "vrmsnorm": _vrmsnorm, "vsilu": _unary_same, "vsoftmax": _vsoftmax,
          "vreduce": _vreduce, "vlut": _vlut, "viota": _viota, "ldreg": _ldreg}
assert set(_RULES) <= set(OPS)
