"""Quantization and integer ops: semantics, type rules, costs at the
quantized bits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmc.errors import IRError
from llmc.ir import Builder, Graph, TensorType, all_ops, dtypes, interpret
from llmc.ir.cost import node_cost
from llmc.ir.dtypes import bfp, mx
from llmc.ir.formats import quantize_block
from llmc.ir.ops.intops import exp_one, i_exp, int_softmax, isqrt
from llmc.ir.pack import pack_int4

NEW_OPS = ["quantize", "dequantize", "qlinear", "wq_linear", "requant", "int_linear",
           "int_rms_norm", "int_silu", "int_attention", "int_moe_ffn", "dequantize_int"]


def run(op: str, arrays: list[np.ndarray], types: list[TensorType], **attrs):  # noqa: ANN201
    g = Graph("t")
    b = Builder(g)
    ins = [b.input(f"x{i}", t) for i, t in enumerate(types)]
    node = b.add(op, ins, attrs)
    g.outputs = [node.out()]
    return interpret(g, arrays)[0], node


def t(a: np.ndarray, dtype=None, layout=None) -> TensorType:  # noqa: ANN001
    return TensorType(a.shape, dtype or dtypes.from_torch(str(a.dtype)), layout)


def test_new_ops_are_registered_and_documented() -> None:
    ops = all_ops()
    for name in NEW_OPS:
        assert name in ops and ops[name].doc and ops[name].cost


def test_quantize_dequantize_and_cost(rng) -> None:
    x = rng.standard_normal((3, 64)).astype(np.float32)
    q, node = run("quantize", [x], [t(x)], dtype=bfp(8, 16))
    assert node.type.dtype == bfp(8, 16)
    assert np.array_equal(q, quantize_block(x, bfp(8, 16)))
    assert node_cost(node).bytes_written == 3 * 64 * 8.5 / 8       # 8-bit mantissa + 8/16
    d, dn = run("dequantize", [q], [TensorType(q.shape, bfp(8, 16))])
    assert dn.type.dtype == dtypes.f32 and np.array_equal(d, q)
    with pytest.raises(IRError, match="not a multiple of block 32"):
        run("quantize", [x[:, :48]], [t(x[:, :48])], dtype=mx("mxfp4"))


def test_qlinear_reads_weights_at_block_bits(rng) -> None:
    x = rng.standard_normal((2, 5, 32)).astype(np.float32)
    w = quantize_block(rng.standard_normal((8, 32)).astype(np.float32), mx("mxfp4"))
    y, node = run("qlinear", [x, w], [t(x), TensorType(w.shape, mx("mxfp4"))])
    assert np.allclose(y, x @ w.T, rtol=1e-6)
    assert node_cost(node).bytes_read == x.nbytes + 8 * 32 * 4.25 / 8


def test_wq_linear_packed_int4_with_padding(rng) -> None:
    q = rng.integers(-8, 8, (6, 64)).astype(np.int8)
    q[:, 40:] = 0                                          # K = 40, padded to 64
    s = rng.uniform(0.01, 0.1, (6, 2)).astype(np.float32)  # group 32
    x = rng.standard_normal((3, 40)).astype(np.float32)
    packed = pack_int4(q)
    y, node = run("wq_linear", [x, packed, s],
                  [t(x), TensorType(packed.shape, dtypes.u8, "int4x2_lane32"), t(s)], group=32)
    w = (q.reshape(6, 2, 32) * s[..., None]).reshape(6, 64)[:, :40]
    assert np.allclose(y, x @ w.T, rtol=1e-5)
    assert node_cost(node).bytes_read == x.nbytes + packed.nbytes + s.nbytes


def test_requant_rounds_half_up_and_saturates() -> None:
    x = np.array([5, -5, 6, -6, 7, 10**6, -(10**6)], np.int32)
    y, node = run("requant", [x], [t(x)], mult=1, shift=1, dtype=dtypes.i8)
    assert y.tolist() == [3, -2, 3, -3, 4, 127, -127] and node.type.dtype == dtypes.i8
    m = np.array([3, 5], np.int32)
    x2 = np.array([[4, 4], [-4, -4]], np.int32)
    y2, _ = run("requant", [x2, m], [t(x2), t(m)], shift=2, dtype=dtypes.i16)
    assert y2.tolist() == [[3, 5], [-3, -5]]


def test_int_linear_exact_and_refuses_overflow(rng) -> None:
    x = rng.integers(-127, 128, (4, 96)).astype(np.int8)
    w = rng.integers(-127, 128, (5, 96)).astype(np.int8)
    y, node = run("int_linear", [x, w], [t(x), t(w)])
    assert node.type.dtype == dtypes.i32
    assert np.array_equal(y, x.astype(np.int64) @ w.astype(np.int64).T)
    # packed int4 with u8 group scales
    q = rng.integers(-8, 8, (5, 96)).astype(np.int8)
    gs = rng.integers(1, 256, (5, 3)).astype(np.uint8)
    y4, _ = run("int_linear", [x, pack_int4(q), gs],
                [t(x), TensorType((5, 48), dtypes.u8, "int4x2_lane32"), t(gs)], group=32)
    ref = sum((x[:, j * 32:(j + 1) * 32].astype(np.int64) @ q[:, j * 32:(j + 1) * 32].T)
              * gs[:, j].astype(np.int64) for j in range(3))
    assert np.array_equal(y4, ref)
    big, w8 = np.full((1, 1024), 32767, np.int16), np.full((2, 1024), 127, np.int8)
    with pytest.raises(IRError, match="int32 accumulator overflow"):
        run("int_linear", [big, w8], [t(big), t(w8)])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**62))
def test_isqrt_is_exact(n: int) -> None:
    assert int(isqrt(np.array([n]))[0]) == math.isqrt(n)


def test_i_exp_accuracy() -> None:
    frac = 14
    x = np.arange(-40 * 2**frac, 1, 37)
    e = i_exp(x, frac) / exp_one(frac)
    assert np.max(np.abs(e - np.exp(x / 2.0**frac))) < 2.5e-3   # I-BERT's fit: ~1e-3


def test_int_softmax_sums_to_one(rng) -> None:
    frac, bits = 14, 16
    s = rng.standard_normal((4, 50)) * 3
    xf = np.rint(s * 2**frac).astype(np.int64)
    p = int_softmax(xf, np.ones_like(xf, bool), frac, bits)
    ref = np.exp(s - s.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    assert np.max(np.abs(p / 2**bits - ref)) < 3e-3
    assert np.all(np.abs(p.sum(-1) - 2**bits) <= 50)


def test_int_silu_and_rms_norm_track_float(rng) -> None:
    x = rng.integers(-32767, 32768, (8, 64)).astype(np.int16)
    sx, sy, frac = 8.0 / 32767, 8.0 / 32767, 14
    from llmc.passes.quant.intlower import dyadic
    im, ish = dyadic(sx * 2**frac)
    om, osh = dyadic(sx / (2**15 * sy))
    y, _ = run("int_silu", [x], [t(x)], in_mult=int(im), in_shift=ish, frac=frac,
               out_mult=int(om), out_shift=osh, dtype=dtypes.i16)
    xf = x * sx
    assert np.max(np.abs(y * sy - xf / (1 + np.exp(-xf)))) < 3e-3
    r = rng.standard_normal((4, 64)) * 100
    xi = np.rint(r).astype(np.int32)
    g = rng.uniform(0.5, 2, 64)
    s_out, shift = 4.0 / 127, 16
    gq = np.rint(g / s_out * 2**shift).astype(np.int32)
    y2, _ = run("int_rms_norm", [xi, gq], [t(xi), t(gq)], eps=0, rbits=8, shift=shift,
                dtype=dtypes.i8)
    ref = xi / np.sqrt((xi.astype(np.float64) ** 2).mean(-1, keepdims=True)) * g
    assert np.max(np.abs(y2 * s_out - np.clip(ref, -4, 4))) < 0.6 * s_out
