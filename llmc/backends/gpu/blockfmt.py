"""Block-format (BFP, OCP MX) weights and activations on the gpu backend.

The IR holds a block-format tensor as its float values (llmc/ir/formats.py
defines the rounding); the gpu artifact stores a weight packed, as element
codes + one int8 shared exponent per block, and the kernels dequantise in
registers:

  * integer elements (BFP `bfp{p}b{n}` with p <= 8, MXINT8): int8 mantissas m,
    w = m * 2^(E - SHIFT) (SHIFT = p - 2; MXINT8: 6);
  * minifloat elements (MXFP8 E4M3/E5M2, MXFP6 E3M2/E2M3, MXFP4 E2M1): u8 codes
    (sign | exponent field | mantissa field), MXFP4 two per byte in the int4
    layout `int4x2_lane32` (llmc/ir/pack.py; one 16-byte lane = one MX block),
    w = (-1)^s * sig * 2^(max(ef, 1) - BIAS - MB + X), sig = mf + 2^MB if ef > 0
    else mf (subnormals), X the block's E8M0 scale exponent.

`qlinear` (x @ w.T with w and/or x in a block format) lowers to a GEMM kernel
(llmc/backends/gpu/gemm.py) whose weight load is `weight_load` and, when x
comes from a `quantize` node, whose prologue rounds each x tile to the
activation format (`act_quantize`): the same rounding as the IR's
`quantize`, so that node costs no kernel of its own. `embedding` of a block
table followed by `dequantize` is one gather kernel per format
(`render_embedding`, in kernels/block_weights.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmc.errors import LlmcError, UsageError
from llmc.ir.formats import ELEMENTS, SCALE_MAX, SCALE_MIN
from llmc.ir.pack import pack_int4, unpack_int4


@dataclass(frozen=True)
class BlockFormat:
    """A block dtype as the kernels read it. int elements: SHIFT, TOP; float
    (minifloat) elements: EB, MB, BIAS; both: EMAX (the shared exponent is
    floor(log2 max|v|) - EMAX, clamped to +-127) and MAXN (largest magnitude
    of an element before the block scale)."""

    name: str
    block: int
    is_int: bool
    shift: int = 0
    top: int = 0
    eb: int = 0
    mb: int = 0
    emax: int = 0

    @property
    def bias(self) -> int:
        return 2 ** (self.eb - 1) - 1

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def maxn(self) -> float:
        if self.is_int:
            return self.top * 2.0 ** -self.shift
        return ELEMENTS[_ELEM[self.name]].max_normal

    @property
    def per_byte(self) -> int:
        return 2 if not self.is_int and self.eb + self.mb + 1 == 4 else 1

    def describe(self) -> str:
        if self.is_int:
            return (f"{self.name}: int8 mantissas m, one int8 exponent E per {self.block}, "
                    f"value m * 2^(E - {self.shift})")
        return (f"{self.name}: E{self.eb}M{self.mb} codes"
                f"{' two per byte (int4x2_lane32)' if self.per_byte == 2 else ''}, one E8M0 "
                f"exponent X per {self.block}, value (-1)^s * sig * 2^(max(ef, 1) - "
                f"{self.bias + self.mb} + X)")


_ELEM = {"mxfp8e4m3": "fp8e4m3", "mxfp8e5m2": "fp8e5m2", "mxfp6e3m2": "fp6e3m2",
         "mxfp6e2m3": "fp6e2m3", "mxfp4": "fp4e2m1"}


def block_format(dtype: Any) -> BlockFormat:
    """The BlockFormat of a block dtype (UsageError for BFP with more than 8-bit mantissas)."""
    name = dtype.name
    if name == "mxint8":
        return BlockFormat(name, dtype.block, True, shift=6, top=127)
    if name.startswith("bfp"):
        p = int(dtype.elem[3:])
        if p > 8:
            raise UsageError(f"the gpu backend stores BFP mantissas of at most 8 bits; "
                             f"{name} has {p}")
        return BlockFormat(name, dtype.block, True, shift=p - 2, top=2 ** (p - 1) - 1)
    if name in _ELEM:
        e = ELEMENTS[_ELEM[name]]
        return BlockFormat(name, dtype.block, False, eb=e.exp_bits, mb=e.man_bits, emax=e.emax)
    raise UsageError(f"the gpu backend has no kernels for the block format {name}")


# ---- packing at compile time (numpy) --------------------------------------------------


def _floor_log2(a: np.ndarray) -> np.ndarray:
    return (np.frexp(a)[1] - 1).astype(np.int64)


def pack(value: np.ndarray, fmt: BlockFormat) -> tuple[np.ndarray, np.ndarray]:
    """(codes, exponents) of `value` (float values already in the format; shape
    (..., K)): int8 mantissas or u8 minifloat codes (MXFP4: u8 (..., K / 2)),
    and int8 shared exponents (..., K / block). Checked: unpacking gives the
    values back exactly (LlmcError otherwise: the value was not in the format)."""
    v = np.asarray(value, np.float64)
    b = v.reshape(*v.shape[:-1], v.shape[-1] // fmt.block, fmt.block)
    amax = np.abs(b).max(axis=-1, keepdims=True)
    e = np.where(amax > 0, _floor_log2(np.where(amax > 0, amax, 1.0)), SCALE_MIN)
    x = np.clip(e - fmt.emax, SCALE_MIN, SCALE_MAX)                 # (..., nb, 1)
    if fmt.is_int:
        codes = np.rint(b / np.ldexp(1.0, x - fmt.shift)).astype(np.int8)
    else:
        y = np.abs(b / np.ldexp(1.0, x))
        ey = np.maximum(np.where(y > 0, _floor_log2(np.where(y > 0, y, 1.0)), fmt.emin),
                        fmt.emin)
        sig = np.rint(y / np.ldexp(1.0, ey - fmt.mb)).astype(np.int64)
        normal = sig >= 2 ** fmt.mb
        ef = np.where(normal, ey + fmt.bias, 0)
        mf = np.where(normal, sig - 2 ** fmt.mb, sig)
        codes = ((b < 0) << (fmt.eb + fmt.mb)) | (ef << fmt.mb) | mf
    codes = codes.reshape(v.shape)
    exps = x[..., 0].astype(np.int8)
    if not np.array_equal(unpack(codes, exps, fmt), v.astype(np.float32)):
        raise LlmcError(f"a tensor given as {fmt.name} holds values outside that format")
    if fmt.per_byte == 2:
        codes = pack_int4(np.where(codes >= 8, codes - 16, codes))
    elif not fmt.is_int:
        codes = codes.astype(np.uint8)
    return codes, exps


def unpack(codes: np.ndarray, exps: np.ndarray, fmt: BlockFormat) -> np.ndarray:
    """The float32 values of unpacked codes (..., K) and exponents (..., K / block)."""
    x = np.repeat(exps.astype(np.int64), fmt.block, axis=-1)
    c = np.asarray(codes).astype(np.int64)
    if fmt.is_int:
        return np.ldexp(c.astype(np.float64), x - fmt.shift).astype(np.float32)
    sign = np.where((c >> (fmt.eb + fmt.mb)) & 1, -1.0, 1.0)
    ef = (c >> fmt.mb) & (2 ** fmt.eb - 1)
    mf = c & (2 ** fmt.mb - 1)
    sig = np.where(ef > 0, mf + 2 ** fmt.mb, mf)
    return (sign * np.ldexp(sig.astype(np.float64),
                            np.maximum(ef, 1) - fmt.bias - fmt.mb + x)).astype(np.float32)


def unpack_stored(codes: np.ndarray, exps: np.ndarray, fmt: BlockFormat) -> np.ndarray:
    """`unpack` of codes as stored (MXFP4 two per byte)."""
    if fmt.per_byte == 2:
        codes = unpack_int4(codes) & 0xF
    return unpack(codes, exps, fmt)


def pack_weight(key: str, value: np.ndarray | None, dtype: Any) -> dict[str, Any]:
    """The artifact's entries for one block-format weight: arrays for
    weights.safetensors under `<key>.codes` / `<key>.exps` and the program's
    record of them ("block_weights")."""
    fmt = block_format(dtype)
    codes, exps = pack(np.asarray(value), fmt)
    return {"arrays": {f"{key}.codes": codes, f"{key}.exps": exps},
            "record": {"dtype": dtype.name, "codes": f"{key}.codes", "exps": f"{key}.exps"}}


def blocked_weights(program: dict[str, Any], tensors: dict[str, Any]) -> dict[str, Any]:
    """The block-format weights of a program as runtime values (Blocked pairs
    of the loaded code and exponent tensors), by key."""
    from llmc.backends.gpu.runtime import Blocked

    return {k: Blocked(tensors[r["codes"]], tensors[r["exps"]], r["dtype"])
            for k, r in program.get("block_weights", {}).items()}


# ---- kernel source ------------------------------------------------------------------


def _pow2(e: str) -> str:
    return f"tl.exp2(({e}).to(tl.float32))"


def decode_lines(fmt: BlockFormat, row: str, col: str, mask: str, K: str, ind: str,
                 out: str = "w") -> list[str]:
    """Lines that load and dequantise elements (row, col) of a packed (R, K)
    weight at w_ptr (codes) / s_ptr (exponents) into the float32 tile `out`."""
    exp_at = f"s_ptr + {row} * ({K} // {fmt.block}) + {col} // {fmt.block}"
    lines = [f"# {fmt.describe()} (llmc/backends/gpu/blockfmt.py)"]
    if fmt.is_int:
        lines += [f"m = tl.load(w_ptr + {row} * {K} + {col}, mask={mask}, other=0)",
                  f"E = tl.load({exp_at}, mask={mask}, other=0).to(tl.int32)",
                  f"{out} = m.to(tl.float32) * {_pow2(f'E - {fmt.shift}')}"]
        return [ind + x for x in lines]
    if fmt.per_byte == 2:
        lines += [f"byte = tl.load(w_ptr + {row} * ({K} // 2) + ({col} // 32) * 16 + {col} % 16,",
                  f"               mask={mask}, other=0).to(tl.int32)",
                  f"c = tl.where({col} % 32 < 16, byte & 0xF, (byte >> 4) & 0xF)"]
    else:
        lines += [f"c = tl.load(w_ptr + {row} * {K} + {col}, mask={mask}, other=0).to(tl.int32)"]
    top = fmt.eb + fmt.mb
    lines += [f"X = tl.load({exp_at}, mask={mask}, other=0).to(tl.int32)",
              f"ef = (c >> {fmt.mb}) & {2 ** fmt.eb - 1}",
              f"sig = (c & {2 ** fmt.mb - 1}) + tl.where(ef > 0, {2 ** fmt.mb}, 0)"
              "        # subnormal when ef == 0",
              f"sig = tl.where((c >> {top}) & 1 == 1, -sig, sig)",
              f"{out} = sig.to(tl.float32) * "
              f"{_pow2(f'tl.maximum(ef, 1) - {fmt.bias + fmt.mb} + X')}"]
    return [ind + x for x in lines]


def weight_load(fmt: BlockFormat) -> str:
    """The GEMM kernel's weight load: a (BLOCK_K, BLOCK_N) float32 tile of w.T."""
    return "\n".join(decode_lines(fmt, "rn[None, :]", "rk[:, None]",
                                  "(rn[None, :] < N) & k_ok[:, None]", "K", " " * 8)) \
        + "      # (BLOCK_K, BLOCK_N)"


def act_quantize(fmt: BlockFormat) -> str:
    """The GEMM prologue rounding the x tile (BLOCK_M, BLOCK_K) to `fmt`, as
    the IR's `quantize` does (llmc/ir/formats.py): blocks along K never straddle
    a tile (BLOCK_K % block == 0, K % block == 0)."""
    B = fmt.block
    ind = " " * 8
    if fmt.is_int:
        what = (f"m = clamp(rint(x / 2^(E - {fmt.shift})), +-{fmt.top}), "
                f"E = clamp(floor(log2 max|x|), -127, 127)")
    else:
        what = (f"X = clamp(floor(log2 max|x|) - {fmt.emax}, -127, 127), x / 2^X rounded to "
                f"E{fmt.eb}M{fmt.mb} (saturating at {fmt.maxn:g})")
    lines = [f"# x rounded to {fmt.name} in registers (the graph's `quantize`), per block of "
             f"{B} along K:",
             f"# {what};",
             "# round half to even" + (", 2^n applied in two halves (|n| may pass 127)"
                                      if fmt.is_int else ""),
             f"xb = tl.reshape(x.to(tl.float32), (BLOCK_M, BLOCK_K // {B}, {B}))",
             "amax = tl.max(tl.abs(xb), axis=2)",
             f"X = ((amax.to(tl.int32, bitcast=True) >> 23) & 0xFF) - {127 + fmt.emax}",
             "X = tl.minimum(tl.maximum(X, -127), 127)[:, :, None]"]
    if fmt.is_int:
        lines += [f"up = {fmt.shift} - X",
                  "half = up // 2",
                  f"y = xb * {_pow2('half')} * {_pow2('up - half')}",
                  "y = (y + 12582912.0) - 12582912.0",
                  f"y = tl.minimum(tl.maximum(y, -{fmt.top}.0), {fmt.top}.0)",
                  f"xb = y * {_pow2('-half')} * {_pow2('half - up')}"]
    else:
        lines += ["y = xb * " + _pow2("-X"),
                  "ey = ((tl.abs(y).to(tl.int32, bitcast=True) >> 23) & 0xFF) - 127",
                  f"ey = tl.maximum(ey, {fmt.emin}) - {fmt.mb}          # the element's quantum",
                  f"y = y * {_pow2('-ey')}",
                  "y = (y + 12582912.0) - 12582912.0",
                  f"y = y * {_pow2('ey')}",
                  f"y = tl.minimum(tl.maximum(y, -{fmt.maxn!r}), {fmt.maxn!r})",
                  "xb = y * " + _pow2("X")]
    lines.append("x = tl.reshape(xb, (BLOCK_M, BLOCK_K))")
    return "\n".join(ind + x for x in lines)


def embedding_name(fmt: BlockFormat) -> str:
    return f"embedding_{fmt.name}"


def render_embedding(fmt: BlockFormat) -> str:
    """A row gather from a packed table that writes the rows dequantised
    (ops `embedding` then `dequantize`)."""
    lines = ["@triton.jit",
             f"def {embedding_name(fmt)}(w_ptr, s_ptr, idx_ptr, out_ptr, R, C,",
             "        BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):",
             f'    """out[r, :] = dequantize(table[idx[r], :]), table (V, C) in {fmt.name}"""',
             "    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)",
             "    ids = tl.load(idx_ptr + rows, mask=rows < R, other=0)",
             "    for c0 in range(0, C, BLOCK_C):",
             "        cols = c0 + tl.arange(0, BLOCK_C)",
             "        ok = (rows[:, None] < R) & (cols[None, :] < C)",
             *decode_lines(fmt, "ids[:, None]", "cols[None, :]", "ok", "C", " " * 8, "v"),
             "        tl.store(out_ptr + rows[:, None] * C + cols[None, :],",
             "                 v.to(out_ptr.dtype.element_ty), mask=ok)"]
    return "\n".join(lines) + "\n"


def embedding_file(fmts: list[BlockFormat], head: str) -> str:
    parts = [head, '"""Row gathers from block-format tables, dequantised as they are stored."""\n\n',
             "import triton\nimport triton.language as tl\n"]
    for f in sorted(set(fmts), key=lambda f: f.name):
        parts.append("\n\n" + render_embedding(f))
    return "".join(parts)


# ---- lowering -----------------------------------------------------------------------


def gemm_step(low: Any, n: Any, chain: list[Any], ops: tuple[str, ...], extra: list[str]
              ) -> None:
    """qlinear -> one GEMM step (llmc/backends/gpu/lower.py's Lowering `low`):
    a block weight read packed, a block x from a `quantize` node rounded in
    the prologue (the node absorbed when every user is such a GEMM)."""
    from llmc.backends.gpu.gemm import GemmKind
    from llmc.backends.gpu.lower import ref

    x, w = n.inputs[0], n.inputs[1]
    act, xin = "", x
    try:
        if w.type.dtype.kind == "block":
            block_format(w.type.dtype)
        if x.type.dtype.kind == "block":
            if x.node.op != "quantize":
                raise UsageError("x")
            act = block_format(x.type.dtype).name
            xin = x.node.inputs[0]
    except UsageError:
        low.bad.setdefault(f"qlinear on {x.type.dtype} x {w.type.dtype}", f"%{n.name}")
        low.absorbed.add(n.name)
        return
    if w.node.op != "param" and w.type.dtype.kind == "block":
        low.bad.setdefault("qlinear with a computed block-format weight", f"%{n.name}")
        low.absorbed.add(n.name)
        return
    wfmt = w.type.dtype.name if w.type.dtype.kind == "block" else "dense"
    kind = GemmKind(wfmt, len(n.inputs) > 2, ops, act=act)
    low.kinds[kind.name] = kind
    K = x.type.shape[-1]
    block = w.type.dtype.block if wfmt != "dense" else 0
    step = {"op": "gemm", "kernel": kind.name, "x": ref(xin), "w": ref(w), "scales": None,
            "bias": ref(n.inputs[2]) if kind.bias else None, "extra": extra,
            "M": math.prod(x.type.shape[:-1]), "N": n.type.shape[-1], "K": K, "KP": K,
            "group_size": block}
    if act:
        q = x.node
        if all(u.op == "qlinear" and u.inputs[0] == x and u.inputs[1] != x
               for u in low.users.get(q, [])):
            low.absorbed.add(q.name)
    low.emit(chain, step)


def embedding_step(low: Any, n: Any) -> bool:
    """embedding of a block-format param table whose only user is `dequantize`
    -> one gather step; False when the pattern does not hold."""
    from llmc.backends.gpu.lower import dtype_of, ref

    table = n.inputs[0]
    u = low.only_user(n)
    try:
        if table.node.op != "param" or u is None or u.op != "dequantize":
            raise UsageError("pattern")
        fmt = block_format(table.type.dtype)
    except UsageError:
        low.bad.setdefault(f"embedding of a {table.type.dtype} table", f"%{n.name}")
        return False
    low.emit([n, u], {"op": "block_embedding", "kernel": embedding_name(fmt),
                      "table": ref(table), "idx": ref(n.inputs[1]), "dtype": dtype_of(u.out())})
    return True
