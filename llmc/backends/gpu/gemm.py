"""GEMM kernels with fused epilogues, generated per fusion group's shape.

A fusion group that starts with `linear` (x @ w.T [+ b]) or `wq_linear`
(packed int4 weights with group scales, w4a16) and continues with pointwise
ops on the product (a residual `add`, `silu` then `mul` by the up
projection, ...) becomes one Triton kernel: the product accumulates in a
float32 tile and each epilogue op is one line on that tile, taken from
EPILOGUE, before the single store. `GemmKind` names a kernel; `render`
writes its source. The K loop and the tile sizes are the same for every
kind; only the weight load and the epilogue differ.
"""

from __future__ import annotations

from dataclasses import dataclass

# epilogue op -> the line it adds (acc: the f32 tile; e: its external operand's tile)
EPILOGUE: dict[str, str] = {
    "add": "acc = acc + {e}",
    "mul": "acc = acc * {e}",
    "sub": "acc = acc - {e}",
    "rsub": "acc = {e} - acc",
    "silu": "acc = acc * tl.sigmoid(acc)",
    "relu": "acc = tl.maximum(acc, 0.0)",
    # GELU (Hendrycks & Gimpel 2016), erf form; tanh form as x * sigmoid(2u),
    # u = sqrt(2/pi) (x + 0.044715 x^3): (1 + tanh u) / 2 = sigmoid(2u)
    "gelu": "acc = 0.5 * acc * (1.0 + tl.erf(acc * 0.7071067811865476))",
    "gelu_tanh": "acc = acc * tl.sigmoid(1.5957691216057308 * (acc + 0.044715 * acc * acc * acc))",
}
UNARY = frozenset({"silu", "relu", "gelu", "gelu_tanh"})


@dataclass(frozen=True)
class GemmKind:
    """weight: "dense" (float w (N, K)) or "int4" (u8 (N, K/2) int4x2_lane32 and
    scales (N, K/group)), or a block dtype's name (codes and exponents,
    llmc/backends/gpu/blockfmt.py); bias: linear's third input; epilogue: the
    ops after the product, in order (binary ones read the next external
    operand); act: a block dtype x is rounded to in the prologue ("" none)."""

    weight: str
    bias: bool
    epilogue: tuple[str, ...]
    rope: bool = False   # then RoPE, the output stored as (B, H, T, D)
    act: str = ""

    @property
    def name(self) -> str:
        parts = ["gemm", {"int4": "w4"}.get(self.weight, self.weight)]
        if self.act:
            parts.append("x" + self.act)
        if self.bias:
            parts.append("bias")
        return "_".join(parts + list(self.epilogue) + (["rope"] if self.rope else []))

    @property
    def operands(self) -> int:
        return sum(op not in UNARY for op in self.epilogue)


_DENSE_LOAD = """\
        w = tl.load(w_ptr + rn[None, :] * K + rk[:, None],
                    mask=(rn[None, :] < N) & k_ok[:, None], other=0.0)      # (BLOCK_K, BLOCK_N)"""

_INT4_LOAD = """\
        # int4x2_lane32: element k of a row is in byte 16 * (k // 32) + k % 16,
        # low nibble for k % 32 < 16, high nibble otherwise (llmc/ir/pack.py)
        byte = tl.load(w_ptr + rn[None, :] * (KP // 2) + (rk[:, None] // 32) * 16 + rk[:, None] % 16,
                       mask=(rn[None, :] < N) & k_ok[:, None], other=0).to(tl.int32)
        nib = tl.where(rk[:, None] % 32 < 16, byte & 0xF, (byte >> 4) & 0xF)
        q = nib - ((nib & 8) << 1)                                          # sign-extend -8..7
        scale = tl.load(s_ptr + rn[None, :] * (KP // GROUP) + rk[:, None] // GROUP,
                        mask=(rn[None, :] < N) & k_ok[:, None], other=0.0)
        w = q.to(tl.float32) * scale.to(tl.float32)                        # (BLOCK_K, BLOCK_N)"""


def render(kind: GemmKind, where: str = "") -> str:
    """The Triton source of one GEMM kind (`where`: the layers that use it)."""
    extra = "".join(f"e{i}_ptr, " for i in range(kind.operands))
    strides = "".join(f"s_e{i}, " for i in range(kind.operands))
    if kind.rope:
        extra += "cos_ptr, sin_ptr, T, "
        strides += "s_cs, HEAD_D: tl.constexpr, "
    then = list(kind.epilogue) + (["RoPE"] if kind.rope else [])
    wdoc = {"int4": "dequant(w4, scales).T", "dense": "w.T"}.get(kind.weight,
                                                                f"dequant(w {kind.weight}).T")
    doc = (f"y = {f'quant_{kind.act}(x)' if kind.act else 'x'} @ {wdoc}"
           f"{' + b' if kind.bias else ''}, then {', '.join(then) or 'nothing'}")
    lines = [
        "@triton.jit",
        f"def {kind.name}(x_ptr, w_ptr, s_ptr, b_ptr, y_ptr, {extra}M, N, K, KP, GROUP,",
        f"        s_xm, {strides}BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,",
        "        BLOCK_K: tl.constexpr, DOT_F32: tl.constexpr, PRECISION: tl.constexpr):",
        f'    """{doc}"""' + (f"  # {where}" if where else ""),
        "    # x (M, K) row stride s_xm; y (M, N) row-major; KP: w's K (padded)",
        "    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)",
        "    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)",
        "    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)",
        "    for k0 in range(0, K, BLOCK_K):",
        "        rk = k0 + tl.arange(0, BLOCK_K)",
        "        k_ok = rk < K",
        "        x = tl.load(x_ptr + rm[:, None] * s_xm + rk[None, :],",
        "                    mask=(rm[:, None] < M) & k_ok[None, :], other=0.0)  # (BLOCK_M, BLOCK_K)",
        *_block_lines(kind),
        "        if DOT_F32:",
        "            x = x.to(tl.float32)",
        "            w = w.to(tl.float32)",
        "        else:",
        "            w = w.to(x.dtype)",
        "        acc += tl.dot(x, w, input_precision=PRECISION)",
        "    out_ok = (rm[:, None] < M) & (rn[None, :] < N)",
    ]
    if kind.bias:
        lines.append("    acc = acc + tl.load(b_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]")
    i = 0
    for op in kind.epilogue:
        if op in UNARY:
            lines.append(f"    {EPILOGUE[op]}")
            continue
        lines.append(f"    e{i} = tl.load(e{i}_ptr + rm[:, None] * s_e{i} + rn[None, :], "
                     "mask=out_ok, other=0.0).to(tl.float32)")
        lines.append(f"    {EPILOGUE[op].format(e=f'e{i}')}")
        i += 1
    if kind.rope:
        lines.append(_ROPE)
    else:
        lines.append("    tl.store(y_ptr + rm[:, None] * N + rn[None, :], "
                     "acc.to(y_ptr.dtype.element_ty), mask=out_ok)")
    return "\n".join(lines) + "\n"


def _block_lines(kind: GemmKind) -> list[str]:
    """The weight load, after the x prologue of a block-format activation
    (llmc/backends/gpu/blockfmt.py)."""
    if kind.weight in ("int4", "dense") and not kind.act:
        return [_INT4_LOAD if kind.weight == "int4" else _DENSE_LOAD]
    from llmc.backends.gpu import blockfmt
    from llmc.ir.dtypes import parse_dtype

    out = [blockfmt.act_quantize(blockfmt.block_format(parse_dtype(kind.act)))] if kind.act else []
    if kind.weight in ("int4", "dense"):
        return [*out, _INT4_LOAD if kind.weight == "int4" else _DENSE_LOAD]
    return [*out, blockfmt.weight_load(blockfmt.block_format(parse_dtype(kind.weight)))]


# RoPE, rotate-half (Su et al. 2021), on whole heads: BLOCK_N is a multiple of HEAD_D.
# rotate_half moves column n of a head to its partner n -+ D/2 with a sign; that
# shuffle is the product with a signed permutation matrix (exact in f32).
_ROPE = """\
    # RoPE: y = acc * cos + rotate_half(acc) * sin, rotate_half(acc) = acc @ P
    HALF: tl.constexpr = HEAD_D // 2
    j = tl.arange(0, BLOCK_N)
    dj = j % HEAD_D
    partner = tl.where(dj < HALF, j + HALF, j - HALF)
    sign = tl.where(dj < HALF, -1.0, 1.0)
    P = tl.where(j[:, None] == partner[None, :], sign[None, :], 0.0)   # (BLOCK_N, BLOCK_N)
    rot = tl.dot(acc, P, input_precision="ieee")
    t = rm % T
    d = rn % HEAD_D
    cos = tl.load(cos_ptr + t[:, None] * s_cs + d[None, :], mask=out_ok, other=0.0)
    sin = tl.load(sin_ptr + t[:, None] * s_cs + d[None, :], mask=out_ok, other=0.0)
    acc = acc * cos.to(tl.float32) + rot * sin.to(tl.float32)
    # stored as (B, H, T, D): row m = b * T + t, column n = h * HEAD_D + d
    H = N // HEAD_D
    b = rm // T
    h = rn // HEAD_D
    tl.store(y_ptr + ((b[:, None] * H + h[None, :]) * T + t[:, None]) * HEAD_D + d[None, :],
             acc.to(y_ptr.dtype.element_ty), mask=out_ok)"""
