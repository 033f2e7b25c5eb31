"""Integer-only ops (after I-BERT, Kim et al. 2021, and MobileQuant).

Every op here computes with integers only; compile-time constants (dyadic
requantization multipliers m * 2^-s, fixed-point fraction bits) are
attributes or integer param tensors, so the interpreter checks every integer
path bit-exactly. Rounding is "half up": rshift(a, s) = floor((a + 2^(s-1)) / 2^s).
Accumulators are int32: an op whose int32 accumulator would overflow raises
instead of wrapping. The last op of an integer graph is `dequantize_int`,
which turns int32 logits into float (docs/references.md, "Integer-only kernels").

Signed outputs saturate symmetrically (i8: -127..127) so negation is exact.
"""

from __future__ import annotations

import math

import numpy as np

from llmc.errors import IRError
from llmc.ir import dtypes
from llmc.ir.ops.nn import attention_gemms, attention_pairs
from llmc.ir.ops.quant import INT4_LAYOUT, _check_int_weight, weight_k
from llmc.ir.ops.registry import (
    Cost,
    define,
    format_data,
    io_bytes,
    linear_gemms,
    quantized_weight,
    streaming_cost,
)
from llmc.ir.ops.tiled import check_sparse_attrs, kept_keys, pattern_visibility
from llmc.ir.pack import unpack_int4
from llmc.ir.types import TensorType

INT32_MAX = 2**31 - 1

# I-BERT's second-order fit of exp on (-ln2, 0]: a (r + b)^2 + c
# (docs/references.md: 0.35815147 r^2 + 0.96963238 r + 1).
EXP_A = 0.35815147
EXP_B = 0.96963238 / (2 * EXP_A)
EXP_C = 1.0 - EXP_A * EXP_B**2
EXP_CLAMP = 30  # exp(x) is 0 below 30 * x0 = -30 ln2 (I-BERT)
SOFTMAX_K = 62  # softmax reciprocal: factor = floor(2^62 / sum of i-exp)


def qrange(dtype: dtypes.DType) -> tuple[int, int]:
    """Symmetric saturation range of a signed integer dtype (u8: 0..255)."""
    if dtype.kind == "uint":
        return 0, 2 ** int(dtype.bits) - 1
    top = 2 ** (int(dtype.bits) - 1) - 1
    return -top, top


def rshift(a: np.ndarray, s: int | np.ndarray) -> np.ndarray:
    """floor((a + 2^(s-1)) / 2^s) for s > 0 (round half up); a for s == 0."""
    a = np.asarray(a, np.int64)
    s = np.asarray(s, np.int64)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return np.right_shift(a + half, s)


def rdiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """round(a / b) half up, b > 0, integers."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return np.floor_divide(2 * a + b, 2 * b)


def isqrt(n: np.ndarray) -> np.ndarray:
    """floor(sqrt(n)) elementwise for int64 n >= 0: Newton's x <- (x + n // x) // 2
    from a start above the root, which decreases monotonically to it."""
    n0 = np.asarray(n, np.int64)
    if n0.size and n0.min() < 0:
        raise IRError("isqrt of a negative number")
    n = np.maximum(n0, 1)
    bits = np.zeros(n.shape, np.int64)
    m = n.copy()
    while np.any(m):                       # bit length, at most 63 steps
        nz = m > 0
        bits += nz
        m = m >> 1
    x = np.left_shift(np.int64(1), (bits + 1) // 2)  # >= sqrt(n)
    x = np.maximum(x, 1)
    while True:
        y = (x + n // x) // 2
        done = y >= x
        if np.all(done):
            return np.where(n0 == 0, 0, x)
        x = np.where(done, x, y)


def exp_consts(frac: int) -> tuple[int, int, int]:
    """(x0, b_q, c_q) of i-exp for inputs with `frac` fraction bits:
    x0 = floor(-ln2 * 2^frac), b_q = floor(b * 2^frac), c_q = floor(c / a * 2^(2 frac)).
    The result of i_exp has scale a * 2^(-2 frac)."""
    x0 = math.floor(-math.log(2) * 2**frac)
    return x0, math.floor(EXP_B * 2**frac), math.floor(EXP_C / EXP_A * 2 ** (2 * frac))


def exp_one(frac: int) -> int:
    """1.0 at i_exp's output scale: round(2^(2 frac) / a)."""
    return round(2 ** (2 * frac) / EXP_A)


def i_exp(x: np.ndarray, frac: int) -> np.ndarray:
    """I-BERT integer exp of x <= 0 (fixed point, `frac` fraction bits):
    x = q * x0 + r with r in (x0, 0]; e^x = 2^-q * e^r; e^r ~ (r + b)^2 + c."""
    x0, b_q, c_q = exp_consts(frac)
    x = np.maximum(np.asarray(x, np.int64), EXP_CLAMP * x0)
    q = x // x0
    r = x - q * x0
    return ((r + b_q) ** 2 + c_q) >> q


# ---- requantization ----------------------------------------------------------------


def _requant_type(types, attrs):  # noqa: ANN001, ANN202
    x, to = types[0], attrs["dtype"]
    if not x.dtype.is_int or not to.is_int:
        raise IRError(f"requant: {x} -> {to} must be integer to integer")
    if len(types) > 1:
        m = types[1]
        if m.dtype not in (dtypes.i32, dtypes.i64) or m.rank != 1 or m.shape[0] not in (
                1, x.shape[-1]):
            raise IRError(f"requant: multiplier {m} must be i32 [1] or [{x.shape[-1]}]")
    elif "mult" not in attrs:
        raise IRError("requant: needs a `mult` attribute or a multiplier tensor")
    return (TensorType(x.shape, to),)


def _requant(xs, attrs):  # noqa: ANN001, ANN202
    m = xs[1] if len(xs) > 1 else attrs["mult"]
    y = rshift(np.asarray(xs[0], np.int64) * np.asarray(m, np.int64), attrs["shift"])
    return np.clip(y, *qrange(attrs["dtype"]))


define("requant", infer=_requant_type, run=_requant, cost=streaming_cost(2), arity=(1, 2),
       kind="elementwise", attrs=("shift", "dtype"), optional_attrs=("mult",),
       weights=format_data(1),
       doc="dyadic requantization: clamp(rshift(x * m, shift)) to dtype's symmetric range; "
           "m is the `mult` attribute or a per-channel (last dim) i32 tensor")


# ---- integer matmul --------------------------------------------------------------


def _int_linear_type(types, attrs):  # noqa: ANN001, ANN202
    x, w = types[0], types[1]
    _check_int_weight("int_linear", w)
    k_pad = weight_k(w)
    if x.dtype not in (dtypes.i8, dtypes.i16) or x.shape[-1] > k_pad:
        raise IRError(f"int_linear: x {x} must be i8/i16 with K <= the weight's {k_pad}")
    if len(types) > 2:
        g = attrs.get("group", 0)
        if not g or k_pad % g or types[2].shape != (w.shape[0], k_pad // g) or \
                types[2].dtype != dtypes.u8:
            raise IRError(f"int_linear: group scales {types[2]} must be u8 (N, K/group) "
                          f"with a `group` attribute dividing {k_pad}")
    return (TensorType(x.shape[:-1] + (w.shape[0],), dtypes.i32),)


def int_weight(w: np.ndarray) -> np.ndarray:
    """Integer weight values (N, K) of a stored i8 or packed int4 weight."""
    if w.dtype == np.uint8:
        return unpack_int4(w)
    return w.astype(np.int8)


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer a @ b.T, exact: float64 products and sums of these small integers
    stay below 2^53, so BLAS returns the exact integer result."""
    if a.size and b.size:
        bound = float(np.abs(a).max()) * float(np.abs(b).max()) * a.shape[-1]
        if bound >= 2.0**53:
            raise IRError("integer matmul operands too large for exact evaluation")
    return np.rint(a.astype(np.float64) @ b.astype(np.float64).T).astype(np.int64)


def check_int32(acc: np.ndarray, what: str) -> np.ndarray:
    if acc.size and np.abs(acc).max() > INT32_MAX:
        raise IRError(f"{what}: int32 accumulator overflow (|acc| = {np.abs(acc).max()})")
    return acc.astype(np.int32)


def int_matmul(x: np.ndarray, w: np.ndarray, gs: np.ndarray | None = None, group: int = 0,
               what: str = "int_linear") -> np.ndarray:
    """int32 x @ w.T of i8/i16 x (..., K) and a stored integer weight w (N, Kp >= K),
    with optional u8 group scales gs (N, Kp/group): sum_g gs[n, g] * sum_(k in g) x_k w_nk."""
    w = int_weight(w)
    k = x.shape[-1]
    w = w[:, :k]
    if gs is None:
        return check_int32(exact_matmul(x, w), what)
    gs = gs.astype(np.int64)
    acc = np.zeros(x.shape[:-1] + (w.shape[0],), np.int64)
    for j in range(-(-k // group)):
        part = exact_matmul(x[..., j * group:(j + 1) * group], w[:, j * group:(j + 1) * group])
        acc += part * gs[:, j]
    return check_int32(acc, what)


def _int_linear(xs, attrs):  # noqa: ANN001, ANN202
    return int_matmul(xs[0], xs[1], xs[2] if len(xs) > 2 else None, attrs.get("group", 0))


def _int_linear_cost(node) -> Cost:  # noqa: ANN001
    k = node.inputs[0].type.shape[-1]
    return Cost(2 * node.type.numel * k, *io_bytes(node))


define("int_linear", infer=_int_linear_type, run=_int_linear, cost=_int_linear_cost,
       arity=(2, 3), kind="linalg", optional_attrs=("group",), weights=quantized_weight((2,)),
       gemms=linear_gemms,
       doc="int32 accumulator of x @ w.T: x i8/i16 (..., K); w i8 (N, K) or int4 packed "
           f"u8 (N, K/2)@{INT4_LAYOUT} (reduction dim may be zero-padded); optional u8 "
           "group scales gs (N, K/group): acc = sum_g gs[n, g] * sum_(k in g) x_k w_nk")


# ---- normalisation ------------------------------------------------------------------


def _int_rms_norm_type(types, attrs):  # noqa: ANN001, ANN202
    x, g = types
    if not x.dtype.is_int or g.dtype != dtypes.i32 or g.shape != x.shape[-1:]:
        raise IRError(f"int_rms_norm: x {x} must be integer and g {g} i32 [{x.shape[-1]}]")
    return (TensorType(x.shape, attrs["dtype"]),)


def norm_rows(d: np.ndarray, g: np.ndarray, eps: int, r_bits: int, shift: int) -> np.ndarray:
    """The integer normalisation both norms share, along the last dim of d:
    ms = sum(d^2) // C + eps; r = isqrt(ms << 2 rbits) (rms * 2^rbits, integer
    Newton); round(d * g * 2^rbits / (r * 2^shift))."""
    d, g = np.asarray(d, np.int64), np.asarray(g, np.int64)
    top = float(np.abs(d).max()) ** 2 + abs(eps) if d.size else 0.0
    if top * max(d.shape[-1], 2.0 ** (2 * r_bits)) >= 2.0**62:
        raise IRError("integer norm: sum of squares would overflow int64")
    ms = np.sum(d * d, axis=-1, keepdims=True) // d.shape[-1] + eps
    r = np.maximum(isqrt(ms << (2 * r_bits)), 1)
    return rdiv((d * g) << r_bits, r << shift)


def _int_rms_norm(xs, attrs):  # noqa: ANN001, ANN202
    y = norm_rows(xs[0], xs[1], attrs["eps"], attrs["rbits"], attrs["shift"])
    return np.clip(y, *qrange(attrs["dtype"]))


define("int_rms_norm", infer=_int_rms_norm_type, run=_int_rms_norm, cost=streaming_cost(6),
       arity=(2, 2), kind="norm", attrs=("eps", "rbits", "shift", "dtype"),
       doc="integer RMSNorm: ms = sum(x^2) // C + eps; r = isqrt(ms << 2 rbits) (integer "
           "Newton); y = round(x * g * 2^rbits / (r * 2^shift)) saturated to dtype; "
           "g = round(gain / out_scale * 2^shift) (i32 per channel); eps in x's scale^2")


def _int_layer_norm_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    if not x.dtype.is_int or any(t.dtype != dtypes.i32 or t.shape != x.shape[-1:]
                                 for t in types[1:]):
        raise IRError(f"int_layer_norm: x {x} must be integer, g and b i32 [{x.shape[-1]}]")
    return (TensorType(x.shape, attrs["dtype"]),)


def _int_layer_norm(xs, attrs):  # noqa: ANN001, ANN202
    x = np.asarray(xs[0], np.int64)
    d = x - rdiv(np.sum(x, axis=-1, keepdims=True), x.shape[-1])
    y = norm_rows(d, xs[1], attrs["eps"], attrs["rbits"], attrs["shift"])
    if len(xs) > 2:
        y = y + np.asarray(xs[2], np.int64)
    return np.clip(y, *qrange(attrs["dtype"]))


define("int_layer_norm", infer=_int_layer_norm_type, run=_int_layer_norm,
       cost=streaming_cost(8), arity=(2, 3), kind="norm",
       attrs=("eps", "rbits", "shift", "dtype"),
       doc="integer LayerNorm (I-BERT): d = x - round(sum(x) / C); int_rms_norm's "
           "normalisation of d (r = isqrt((sum(d^2) // C + eps) << 2 rbits), "
           "round(d * g * 2^rbits / (r * 2^shift))); + b (i32, out scale) if given; "
           "saturated to dtype; g = round(gain / out_scale * 2^shift); eps in x's scale^2")


# ---- activations ----------------------------------------------------------------------


def _int_silu_type(types, attrs):  # noqa: ANN001, ANN202
    if types[0].dtype not in (dtypes.i8, dtypes.i16):
        raise IRError(f"int_silu: input {types[0]} must be i8 or i16")
    return (TensorType(types[0].shape, attrs["dtype"]),)


SIGMOID_FRAC = 15  # sigmoid is held with 15 fraction bits


def int_sigmoid(xf: np.ndarray, frac: int) -> np.ndarray:
    """sigmoid of fixed-point xf (frac bits) as an integer with SIGMOID_FRAC bits:
    e = i_exp(-|x|); sigma = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0."""
    e = i_exp(-np.abs(xf), frac)
    one = exp_one(frac)
    num = np.where(xf >= 0, one, e)
    return rdiv(num << SIGMOID_FRAC, one + e)


def _int_silu(xs, attrs):  # noqa: ANN001, ANN202
    x = np.asarray(xs[0], np.int64)
    xf = rshift(x * attrs["in_mult"], attrs["in_shift"])     # x in fixed point, frac bits
    s = int_sigmoid(xf, attrs["frac"])
    y = rshift(x * s * attrs["out_mult"], attrs["out_shift"])
    return np.clip(y, *qrange(attrs["dtype"]))


define("int_silu", infer=_int_silu_type, run=_int_silu, cost=streaming_cost(12),
       arity=(1, 1), kind="elementwise",
       attrs=("in_mult", "in_shift", "frac", "out_mult", "out_shift", "dtype"),
       doc="integer SiLU x * sigmoid(x): xf = rshift(x * in_mult, in_shift) (fixed point, "
           "`frac` bits); sigmoid from I-BERT's i-exp of -|xf| with 15 fraction bits; "
           "y = rshift(x * sigmoid * out_mult, out_shift) saturated to dtype")


# I-BERT's i-erf: erf(t) ~ sgn(t) [a (min(|t|, -b) + b)^2 + 1] (docs/references.md).
ERF_A, ERF_B = -0.2888, -1.769
ERF_A_BITS = 16                      # |a| held as round(|a| * 2^16)
# GELU's tanh form: 0.5 (1 + tanh(z)) = sigmoid(2 z), z = sqrt(2/pi) (x + 0.044715 x^3)
TANH_K1 = 2 * math.sqrt(2 / math.pi)
TANH_K3 = TANH_K1 * 0.044715
TANH_BITS = 16                       # K1, K3 held with 16 fraction bits
TANH_CLIP = 8                        # |x| > 8: sigmoid(2 z) is 0 or 1 to 2^-15


def int_phi(xf: np.ndarray, frac: int, approximate: str) -> np.ndarray:
    """GELU's gate (1 + erf(x / sqrt 2)) / 2 of fixed-point xf (`frac` bits) as an
    integer with SIGMOID_FRAC bits. 'none': I-BERT's i-erf on t = x / sqrt 2;
    'tanh': sigmoid(2 z) by int_sigmoid (I-BERT's i-exp)."""
    xf = np.asarray(xf, np.int64)
    if approximate == "tanh":
        c = np.clip(xf, -TANH_CLIP << frac, TANH_CLIP << frac)
        cube = rshift(rshift(c * c, frac) * c, frac)
        z2 = rshift(c * round(TANH_K1 * 2**TANH_BITS) + cube * round(TANH_K3 * 2**TANH_BITS),
                    TANH_BITS)
        return int_sigmoid(z2, frac)
    t = rshift(xf * round(2**ERF_A_BITS / math.sqrt(2)), ERF_A_BITS)      # x / sqrt 2
    top = math.floor(-ERF_B * 2**frac)
    p = (np.minimum(np.abs(t), top) - top) ** 2                            # 2 frac bits
    mag = (1 << 2 * frac) - rshift(p * round(-ERF_A * 2**ERF_A_BITS), ERF_A_BITS)
    erf = np.where(t >= 0, mag, -mag)
    return rshift((1 << 2 * frac) + erf, 2 * frac + 1 - SIGMOID_FRAC)


def _int_gelu(xs, attrs):  # noqa: ANN001, ANN202
    x = np.asarray(xs[0], np.int64)
    xf = rshift(x * attrs["in_mult"], attrs["in_shift"])     # x in fixed point, frac bits
    phi = int_phi(xf, attrs["frac"], attrs.get("approximate", "none"))
    y = rshift(x * phi * attrs["out_mult"], attrs["out_shift"])
    return np.clip(y, *qrange(attrs["dtype"]))


def _int_gelu_type(types, attrs):  # noqa: ANN001, ANN202
    if types[0].dtype not in (dtypes.i8, dtypes.i16):
        raise IRError(f"int_gelu: input {types[0]} must be i8 or i16")
    if attrs.get("approximate", "none") not in ("none", "tanh"):
        raise IRError(f"int_gelu: approximate must be 'none' or 'tanh', got "
                      f"{attrs['approximate']!r}")
    return (TensorType(types[0].shape, attrs["dtype"]),)


define("int_gelu", infer=_int_gelu_type, run=_int_gelu, cost=streaming_cost(12),
       arity=(1, 1), kind="elementwise",
       attrs=("in_mult", "in_shift", "frac", "out_mult", "out_shift", "dtype"),
       optional_attrs=("approximate",),
       doc="integer GELU x * phi(x): xf = rshift(x * in_mult, in_shift) (fixed point, "
           "`frac` bits); phi = (1 + erf(x/sqrt2)) / 2 with 15 fraction bits, erf by "
           "I-BERT's i-erf sgn(t)[1 - 0.2888 (min(|t|, 1.769) - 1.769)^2] on t = xf/sqrt2 "
           "(a, 1/sqrt2 as 16-bit fractions), or approximate='tanh': phi = "
           "int_sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) with |x| clipped to 8; "
           "y = rshift(x * phi * out_mult, out_shift) saturated to dtype")


# ---- attention ------------------------------------------------------------------------


def _int_attention_type(types, attrs):  # noqa: ANN001, ANN202
    q, k, v = types[:3]
    for t in (q, k, v):
        if t.dtype != dtypes.i8 or t.rank != 4:
            raise IRError(f"int_attention: q, k, v must be i8 (B, H, T, D), got {t}")
    (B, H, Tq, D), (Bk, G, _, Dk) = q.shape, k.shape
    if Bk != B or Dk != D or v.shape[:3] != k.shape[:3] or H % G:
        raise IRError(f"int_attention: q {q}, k {k}, v {v} do not match")
    if len(types) > 3 and types[3].dtype != dtypes.boolean:
        raise IRError(f"int_attention: mask {types[3]} must be bool")
    if any(a in attrs for a in ("block_size", "block_topk")):
        raise IRError("int_attention: block-sparse attention is not implemented")
    check_sparse_attrs(attrs)
    return (TensorType((B, H, Tq, v.shape[3]), attrs["dtype"]),)


def int_softmax(xf: np.ndarray, visible: np.ndarray, frac: int, prob_bits: int) -> np.ndarray:
    """I-BERT integer softmax of fixed-point scores along the last dim: subtract
    the row max, i-exp, one reciprocal per row factor = floor(2^K / sum), then
    p = (e * factor) >> (K - bits). I-BERT's K = 32 suits its ~8-bit exp; our
    i-exp has 2 * frac + 2 bits, so K = SOFTMAX_K = 62 keeps the factor exact to
    ~2^-20 while e * factor stays below 2^63."""
    low = np.iinfo(np.int64).min // 4
    xf = np.where(visible, xf, low)
    xf = xf - xf.max(axis=-1, keepdims=True)
    e = np.where(visible, i_exp(xf, frac), 0)
    total = np.maximum(e.sum(axis=-1, keepdims=True), 1)
    factor = (np.int64(1) << SOFTMAX_K) // total
    p = (e * factor) >> (SOFTMAX_K - prob_bits)
    return np.minimum(p, 2**prob_bits - 1)


def _int_attention(xs, attrs):  # noqa: ANN001, ANN202
    q, k, v = (np.asarray(a, np.int64) for a in xs[:3])
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    acc = np.rint(q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64))
    xf = rshift(acc.astype(np.int64) * attrs["s_mult"], attrs["s_shift"])
    tq, tk = q.shape[2], k.shape[2]
    visible = np.broadcast_to(pattern_visibility(tq, tk, attrs, xs[3] if len(xs) > 3 else None),
                              xf.shape)
    p = int_softmax(xf, visible, attrs["frac"], attrs["prob_bits"])
    o = check_int32(np.rint(p.astype(np.float64) @ v.astype(np.float64)).astype(np.int64),
                    "int_attention")
    y = rshift(o.astype(np.int64) * attrs["o_mult"], attrs["o_shift"])
    return np.clip(y, *qrange(attrs["dtype"]))


def _int_attention_cost(node) -> Cost:  # noqa: ANN001
    B, H, Tq, D = node.inputs[0].type.shape
    Tk = node.inputs[1].type.shape[2]
    if "window" in node.attrs:
        pairs = int(kept_keys(Tq, Tk, node.attrs).sum())
    else:
        pairs = attention_pairs(Tq, Tk, node.attrs["causal"])
    return Cost(B * H * pairs * (4 * D + 8), *io_bytes(node))


define("int_attention", infer=_int_attention_type, run=_int_attention,
       cost=_int_attention_cost, arity=(3, 4), kind="attention",
       gemms=lambda n: attention_gemms(n, 8.0),  # i-softmax: ~8 integer ops per score
       attrs=("causal", "s_mult", "s_shift", "frac", "prob_bits", "o_mult", "o_shift",
              "dtype"), optional_attrs=("window", "sinks"),
       doc="integer attention, i8 q (B,H,Tq,D), k/v (B,G,Tk,D), optional bool mask: "
           "scores q k^T (int32) -> fixed point rshift(acc * s_mult, s_shift) with `frac` "
           "bits (softmax scale folded in); I-BERT i-softmax (factor = 2^62 // sum) to "
           "unsigned prob_bits-bit probabilities; p v (int32); "
           "out = rshift(acc * o_mult, o_shift) saturated; optional window/sinks keep "
           "`attention`'s streaming pattern (llmc/ir/ops/tiled.py)")


# ---- the way out ----------------------------------------------------------------------


def _dequantize_int_type(types, attrs):  # noqa: ANN001, ANN202
    x, s = types
    if not x.dtype.is_int or s.dtype != dtypes.f32 or s.rank != 1 or s.shape[0] not in (
            1, x.shape[-1]):
        raise IRError(f"dequantize_int: x {x} must be integer, scale {s} f32 [1] or "
                      f"[{x.shape[-1]}]")
    return (TensorType(x.shape, dtypes.f32),)


define("dequantize_int", infer=_dequantize_int_type,
       run=lambda xs, a: xs[0].astype(np.float32) * xs[1], cost=streaming_cost(1),
       arity=(2, 2), kind="elementwise", weights=format_data(1),
       doc="integer -> f32: x * scale (scale per last-dim channel); ends an integer graph")
