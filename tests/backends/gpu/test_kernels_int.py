"""The integer-only kernels of the gpu backend (`--quant w8a8-int`), through
Triton's interpreter on small odd shapes, bit-exact against the IR
interpreter: int8 GEMM with the requantisation epilogue, integer RMSNorm,
I-BERT integer attention (causal GQA prefill, masked decode), and the
generated elementwise groups (integer RoPE, int_silu * up -> requant,
dequantize_int)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmc.ir import Graph, TensorType, dtypes, interpret
from llmc.numerics import assert_close

pytest.importorskip("triton")

from llmc.backends.gpu.check import run_graph  # noqa: E402
from tests.backends.gpu.helpers import graph  # noqa: E402

i8, i16, i32, i64, f32 = dtypes.i8, dtypes.i16, dtypes.i32, dtypes.i64, dtypes.f32


def check_exact(g: Graph, xs: list[np.ndarray], tmp_path) -> list[dict]:  # noqa: ANN001
    """Every output bit for bit; returns the program's steps."""
    ref = interpret(g, xs)
    got = run_graph(g, xs, tmp_path, act="f32")
    for r, o in zip(ref, got, strict=True):
        assert o.dtype == r.dtype
        assert_close(o, r, "i8")
        assert np.abs(r).max() > 0                    # the test saw real values
    return json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]


def ints(rng, lo: int, hi: int, *shape: int) -> np.ndarray:  # noqa: ANN001
    return rng.integers(lo, hi + 1, shape)


@pytest.mark.parametrize("out", ["i8", "i16", "i32", "none", "scalar"])
def test_int_gemm_with_requant_epilogue(tmp_path, out):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        M0, M1, K, N = 2, 5, 72, 37                # odd rows and columns, K not a tile multiple
        x = b.input("x", TensorType((M0, M1, K), i8))
        w = b.param("w", TensorType((N, K), i8), ints(rng, -127, 127, N, K).astype(np.int8))
        acc = b.op("int_linear", x, w, fusion=0)
        vals = [ints(rng, -127, 127, M0, M1, K).astype(np.int8)]
        if out == "none":
            return [acc], vals
        if out == "scalar":
            return [b.op("requant", acc, mult=1518500250, shift=40, dtype=i8, fusion=0)], vals
        m = b.param("m", TensorType((N,), i32), ints(rng, 2**29, 2**31 - 1, N).astype(np.int32))
        shift = {"i8": 39, "i16": 33, "i32": 28}[out]
        return [b.op("requant", acc, m, shift=shift, dtype=dtypes.parse_dtype(out), fusion=0)], vals
    steps = check_exact(*graph(build), tmp_path)
    assert [s["op"] for s in steps] == ["int_gemm"]          # the requant is the epilogue
    assert steps[0]["requant"] == (out != "none")


@pytest.mark.parametrize("xdt", ["i32", "i16"])
def test_int_rms_norm(tmp_path, xdt):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        R0, R1, D = 3, 7, 48
        x = b.input("x", TensorType((R0, R1, D), dtypes.parse_dtype(xdt)))
        top = 30000 if xdt == "i16" else 2**20
        vals = ints(rng, -top, top, R0, R1, D)
        vals[0, 0] = 0                                     # a zero row: r = max(isqrt(eps), 1)
        vals[1, 2] = 3                                     # a tiny one
        gain = b.param("g", TensorType((D,), i32), ints(rng, 20000, 60000, D).astype(np.int32))
        return [b.op("int_rms_norm", x, gain, eps=171799, rbits=15 if xdt == "i16" else 7,
                     shift=15, dtype=i8, fusion=0)], [vals.astype(dtypes.parse_dtype(xdt).np)]
    steps = check_exact(*graph(build), tmp_path)
    assert [s["op"] for s in steps] == ["int_rms_norm"]


ATTN = {"dtype": i8, "frac": 14, "o_mult": 2147483296, "o_shift": 47, "prob_bits": 16,
        "s_mult": 1624143619, "s_shift": 27}


def test_int_attention_causal_gqa(tmp_path):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        B, H, G, T, D = 2, 4, 2, 19, 32            # odd length, 2 query heads per K/V head
        q = b.input("q", TensorType((B, H, T, D), i8))
        k = b.input("k", TensorType((B, G, T, D), i8))
        v = b.input("v", TensorType((B, G, T, D), i8))
        vals = [ints(rng, -127, 127, *s).astype(np.int8) for s in
                ((B, H, T, D), (B, G, T, D), (B, G, T, D))]
        return [b.op("int_attention", q, k, v, causal=True, fusion=0, **ATTN)], vals
    steps = check_exact(*graph(build), tmp_path)
    assert [s["op"] for s in steps] == ["int_attention"]


def test_int_attention_decode_over_a_masked_cache(tmp_path):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        B, H, G, TK, D = 2, 4, 2, 21, 32
        q = b.input("q", TensorType((B, H, 1, D), i8))
        k = b.input("k", TensorType((B, G, TK, D), i8))
        v = b.input("v", TensorType((B, G, TK, D), i8))
        pos = b.input("pos", TensorType((1,), i64))
        keys = b.op("reshape", b.op("arange", start=0, end=TK, step=1, dtype=i64), shape=[1, TK])
        mask = b.op("le", keys, b.op("reshape", pos, shape=[1, 1]), fusion=1)
        vals = [ints(rng, -127, 127, *s).astype(np.int8) for s in
                ((B, H, 1, D), (B, G, TK, D), (B, G, TK, D))] + [np.array([TK - 5])]
        return [b.op("int_attention", q, k, v, mask, causal=False, fusion=0, **ATTN)], vals
    check_exact(*graph(build), tmp_path)


def test_integer_rope_is_one_generated_kernel(tmp_path):  # noqa: ANN001
    """llmc-tiny's integer RoPE: cast, mul by the cos/sin tables, rotate-half
    (neg of the high half concatenated with the low half), add, requant."""
    def build(b, rng):  # noqa: ANN001, ANN202
        B, H, T, D = 2, 3, 5, 16
        x = b.input("x", TensorType((B, H, T, D), i8))
        cos = b.input("cos", TensorType((T, D), i32))
        sin = b.input("sin", TensorType((T, D), i32))
        hi = b.op("slice", x, dim=3, start=D // 2, end=D, step=1)
        lo = b.op("slice", x, dim=3, start=0, end=D // 2, step=1)
        cat = b.op("concat", b.op("neg", hi, fusion=0), lo, dim=3, fusion=0)
        y = b.op("add", b.op("mul", b.op("cast", x, dtype=i32, fusion=0), cos, fusion=0),
                 b.op("mul", b.op("cast", cat, dtype=i32, fusion=0), sin, fusion=0), fusion=0)
        out = b.op("requant", y, mult=2020468731, shift=45, dtype=i8, fusion=0)
        return [out], [ints(rng, -127, 127, B, H, T, D).astype(np.int8),
                       ints(rng, -16384, 16384, T, D).astype(np.int32),
                       ints(rng, -16384, 16384, T, D).astype(np.int32)]
    steps = check_exact(*graph(build), tmp_path)
    kernels = [s for s in steps if s["op"] == "int_elementwise"]
    assert len(kernels) == 1 and kernels[0]["consts"] == [2020468731, 45]
    src = (tmp_path / "kernels/int_ops.py").read_text()
    assert f"def {kernels[0]['kernel']}(" in src and "# concat on dim 3" in src


def test_int_silu_times_up_then_requant_and_dequantize_int(tmp_path):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        R, C = 7, 45
        gate = b.input("gate", TensorType((R, C), i16))
        up = b.input("up", TensorType((R, C), i16))
        silu = b.op("int_silu", gate, dtype=i16, frac=14, in_mult=1973296188, in_shift=29,
                    out_mult=1178590790, out_shift=45, fusion=0)
        prod = b.op("mul", b.op("cast", silu, dtype=i32, fusion=0),
                    b.op("cast", up, dtype=i32, fusion=0), fusion=0)
        h = b.op("requant", prod, mult=1083057170, shift=45, dtype=i8, fusion=0)
        scale = b.param("scale", TensorType((C,), f32),
                        rng.uniform(1e-3, 1e-2, C).astype(np.float32))
        logits = b.op("dequantize_int", b.op("cast", h, dtype=i32, fusion=1), scale, fusion=1)
        return [h, logits], [ints(rng, -32767, 32767, R, C).astype(np.int16),
                             ints(rng, -32767, 32767, R, C).astype(np.int16)]
    steps = check_exact(*graph(build), tmp_path)
    assert [s["op"] for s in steps] == ["int_elementwise"] * 2


@pytest.mark.parametrize("group", [32, 64])
def test_int_gemm_packed_int4_with_group_scales(tmp_path, group):  # noqa: ANN001
    """w4a8: int4 weights two per byte (int4x2_lane32), K zero-padded, u8 group scales."""
    from llmc.ir.pack import pack_int4

    def build(b, rng):  # noqa: ANN001, ANN202
        M, K, KP, N = 3, 100, 128, 21
        q = ints(rng, -8, 7, N, KP)
        q[:, K:] = 0
        w = b.param("w", TensorType((N, KP // 2), dtypes.u8, "int4x2_lane32"), pack_int4(q))
        gs = b.param("gs", TensorType((N, KP // group), dtypes.u8),
                     ints(rng, 1, 255, N, KP // group).astype(np.uint8))
        x = b.input("x", TensorType((M, K), i8))
        acc = b.op("int_linear", x, w, gs, group=group, fusion=0)
        m = b.param("m", TensorType((N,), i32), ints(rng, 2**29, 2**31 - 1, N).astype(np.int32))
        return [b.op("requant", acc, m, shift=40, dtype=i8, fusion=0)], \
            [ints(rng, -127, 127, M, K).astype(np.int8)]
    steps = check_exact(*graph(build), tmp_path)
    assert [(s["op"], s["int4"], s["wgroup"]) for s in steps] == [("int_gemm", True, group)]


def test_an_integer_op_without_a_kernel_is_listed_once(tmp_path):  # noqa: ANN001
    from llmc.backends.gpu.emit import attention_tiles
    from llmc.backends.gpu.lower import lower
    from llmc.hw.database import get_device
    from llmc.hw.targets import get_target

    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((3, 32), i16))
        w = b.param("w", TensorType((8, 32), i8), ints(rng, -127, 127, 8, 32).astype(np.int8))
        return [b.op("int_linear", x, w, fusion=0)], []
    g, _ = graph(build)
    tiles = attention_tiles(get_device(get_target("a100").device))
    _, _, bad = lower(g, tiles)
    assert bad == ["int_linear of i16 x i8[8,32] (e.g. %int_linear in @k)"]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_int_gelu(tmp_path, approximate):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((5, 37), i16))
        y = b.op("int_gelu", x, dtype=i16, frac=14, in_mult=1973296188, in_shift=29,
                 out_mult=1178590790, out_shift=45, approximate=approximate, fusion=0)
        return [y], [ints(rng, -32767, 32767, 5, 37).astype(np.int16)]
    steps = check_exact(*graph(build), tmp_path)
    assert [s["op"] for s in steps] == ["int_elementwise"]


def test_int_layer_norm_with_bias(tmp_path):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        R, D = 9, 40
        x = b.input("x", TensorType((R, D), i32))
        vals = ints(rng, -2**20, 2**20, R, D)
        vals[0] = 5                                        # a constant row: d = 0
        gain = b.param("g", TensorType((D,), i32), ints(rng, 20000, 60000, D).astype(np.int32))
        bias = b.param("b", TensorType((D,), i32), ints(rng, -40, 40, D).astype(np.int32))
        return [b.op("int_layer_norm", x, gain, bias, eps=171799, rbits=7, shift=15, dtype=i8,
                     fusion=0)], [vals.astype(np.int32)]
    steps = check_exact(*graph(build), tmp_path)
    assert [(s["op"], s["centred"]) for s in steps] == [("int_rms_norm", True)]
