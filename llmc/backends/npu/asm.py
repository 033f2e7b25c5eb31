"""program.s: the assembly listing of an `Image`, and its assembler.

    .target rows=128 cols=128 lanes=256 spad=8388608 dram=4194304 clock=1373300000.0
    .program prefill
    .desc d0 spad i8 base=0x0 shape=[128,256] strides=[256,1]
    .desc d1 dram i8 base=0x400 shape=[128,256] strides=[256,1] ra=r1 sa=32768
        dma dst=d0 src=d1                      ; layers.0.attn.q_proj: weight tile
        matmul acc=d2 a=d3 b=d0 gs=- group=0 accumulate=1

Every operand and flag is written by name, so `assemble(disassemble(image))`
gives the same bytes (comments after `;` are not encoded).
"""

from __future__ import annotations

import re

from llmc.backends.npu.binary import check_image
from llmc.backends.npu.isa import (
    ALU_OPS,
    DTYPE_CODE,
    DTYPES,
    OPS,
    REDUCE_OPS,
    SPACES,
    Desc,
    Image,
    Instr,
    NpuError,
    Program,
    Target,
)

_SPACE_CODE = {v: k for k, v in SPACES.items()}


def _flag_text(ins: Instr) -> list[str]:
    out = []
    for i, name in enumerate(ins.spec.flags):
        v = ins.flags[i]
        if name == "op":
            table = ALU_OPS if ins.op == "valu" else REDUCE_OPS
            out.append(f"op={table[v] if v < len(table) else v}")
        else:
            out.append(f"{name}={v}")
    return out


def _desc_text(k: int, d: Desc) -> str:
    s = (f".desc d{k} {SPACES[d.space]} {DTYPES[d.dtype][0]} base={d.base:#x} "
         f"shape=[{','.join(map(str, d.shape))}] strides=[{','.join(map(str, d.strides))}]")
    for name, r, step in (("a", d.reg_a, d.step_a), ("b", d.reg_b, d.step_b),
                          ("pp", d.reg_pp, d.pp_step)):
        if r or step:
            s += f" r{name}=r{r} s{name}={step}"
    return s


def disassemble(image: Image) -> str:
    """The assembly text of `image` (see the module docstring)."""
    t = image.target
    lines = [f".target rows={t.array_rows} cols={t.array_cols} lanes={t.vector_lanes} "
             f"spad={t.spad_bytes} dram={t.dram_bytes} clock={t.clock_hz!r}"]
    for p in image.programs:
        lines += ["", f".program {p.name}"]
        lines += [_desc_text(k, d) for k, d in enumerate(p.descs)]
        indent = 4
        for ins in p.instrs:
            if ins.op == "endloop":
                indent -= 2
            ops = []
            for (name, kind), v in zip(ins.spec.operands, ins.args, strict=True):
                if kind in "do":
                    ops.append(f"{name}={'-' if v < 0 else f'd{v}'}")
                elif kind == "r":
                    ops.append(f"{name}=r{v}")
                else:
                    ops.append(f"{name}={v}")
            text = " " * indent + " ".join([ins.op, *ops, *_flag_text(ins)])
            if ins.comment:
                text = f"{text:<60} ; {ins.comment}"
            lines.append(text)
            if ins.op == "loop":
                indent += 2
    return "\n".join(lines) + "\n"


_KV = re.compile(r"^([a-z_]+)=(\S+)$")


def _int(text: str, where: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise NpuError(f"{where}: {text!r} is not an integer") from None


def _ints(text: str, where: str) -> tuple[int, ...]:
    if not (text.startswith("[") and text.endswith("]")):
        raise NpuError(f"{where}: expected [a,b,...], got {text!r}")
    return tuple(_int(x, where) for x in text[1:-1].split(",") if x)


def _pairs(words: list[str], where: str) -> dict[str, str]:
    out = {}
    for w in words:
        m = _KV.match(w)
        if not m:
            raise NpuError(f"{where}: expected name=value, got {w!r}")
        out[m.group(1)] = m.group(2)
    return out


def _reg(text: str, where: str) -> int:
    if not re.fullmatch(r"r\d+", text):
        raise NpuError(f"{where}: expected a register rN, got {text!r}")
    return int(text[1:])


def _parse_desc(words: list[str], where: str) -> Desc:
    if len(words) < 4 or words[1] not in _SPACE_CODE or words[2] not in DTYPE_CODE:
        raise NpuError(f"{where}: expected .desc dN MEMORY DTYPE base=.. shape=[..] "
                       "strides=[..]")
    kv = _pairs(words[3:], where)
    regs = {}
    for n in ("a", "b", "pp"):
        regs[n] = (_reg(kv.pop(f"r{n}"), where) if f"r{n}" in kv else 0,
                   _int(kv.pop(f"s{n}"), where) if f"s{n}" in kv else 0)
    try:
        base, shape, strides = (kv.pop("base"), kv.pop("shape"), kv.pop("strides"))
    except KeyError as e:
        raise NpuError(f"{where}: .desc lacks {e.args[0]}") from None
    if kv:
        raise NpuError(f"{where}: unknown descriptor fields {sorted(kv)}")
    shape_t, strides_t = _ints(shape, where), _ints(strides, where)
    if len(shape_t) != len(strides_t):
        raise NpuError(f"{where}: shape and strides have different ranks")
    return Desc(_SPACE_CODE[words[1]], DTYPE_CODE[words[2]], _int(base, where), shape_t,
                strides_t, regs["a"][0], regs["a"][1], regs["b"][0], regs["b"][1],
                regs["pp"][0], regs["pp"][1])


def _parse_instr(words: list[str], comment: str, where: str) -> Instr:
    spec = OPS.get(words[0])
    if spec is None:
        raise NpuError(f"{where}: unknown instruction {words[0]!r}")
    kv = _pairs(words[1:], where)
    args = []
    for name, kind in spec.operands:
        if name not in kv:
            raise NpuError(f"{where}: {spec.name} lacks operand {name}")
        v = kv.pop(name)
        if kind in "do":
            if v == "-" and kind == "o":
                args.append(-1)
            elif v.startswith("d"):
                args.append(_int(v[1:], where))
            else:
                raise NpuError(f"{where}: operand {name} must be a descriptor dN, got {v!r}")
        elif kind == "r":
            args.append(_reg(v, where))
        else:
            args.append(_int(v, where))
    flags = [0, 0, 0]
    for i, name in enumerate(spec.flags):
        if name not in kv:
            raise NpuError(f"{where}: {spec.name} lacks flag {name}")
        v = kv.pop(name)
        if name == "op":
            table = ALU_OPS if spec.name == "valu" else REDUCE_OPS
            if v not in table:
                raise NpuError(f"{where}: unknown {spec.name} op {v!r} ({', '.join(table)})")
            flags[i] = table.index(v)
        else:
            flags[i] = _int(v, where)
    if kv:
        raise NpuError(f"{where}: unknown operands {sorted(kv)} for {spec.name}")
    return Instr(spec.name, tuple(args), (flags[0], flags[1], flags[2]), comment)


def assemble(text: str) -> Image:
    """The `Image` written in `text` (checked like a decoded binary)."""
    target: Target | None = None
    programs: list[Program] = []
    for no, raw in enumerate(text.splitlines(), 1):
        where = f"line {no}"
        line, _, comment = raw.partition(";")
        words = line.split()
        if not words:
            continue
        if words[0] == ".target":
            kv = _pairs(words[1:], where)
            try:
                target = Target(_int(kv["rows"], where), _int(kv["cols"], where),
                                _int(kv["lanes"], where), _int(kv["spad"], where),
                                _int(kv["dram"], where), float(kv["clock"]))
            except (KeyError, ValueError) as e:
                raise NpuError(f"{where}: bad .target ({e})") from None
        elif words[0] == ".program":
            if len(words) != 2:
                raise NpuError(f"{where}: expected .program NAME")
            programs.append(Program(words[1]))
        elif not programs:
            raise NpuError(f"{where}: {words[0]} before any .program")
        elif words[0] == ".desc":
            if words[1:2] != [f"d{len(programs[-1].descs)}"]:
                raise NpuError(f"{where}: descriptors must be numbered in order from d0")
            programs[-1].descs.append(_parse_desc(words[1:], where))
        else:
            programs[-1].instrs.append(_parse_instr(words, comment.strip(), where))
    if target is None or not programs:
        raise NpuError("assembly has no .target line or no .program")
    image = Image(target, programs)
    check_image(image)
    return image
