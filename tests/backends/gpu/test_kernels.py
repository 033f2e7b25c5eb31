"""Every kernel kind of the gpu backend, run through Triton's interpreter on
small odd shapes (odd lengths, GQA, batch > 1) and compared with the IR
interpreter: float32 within 1e-5 relative, bf16 within 1e-2, integers
(the KV cache's mantissas and exponents) bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.ir import TensorType, dtypes, interpret
from llmc.ir.formats import bfp_decompose
from llmc.ir.pack import pack_int4
from llmc.numerics import assert_close

pytest.importorskip("triton")

from llmc.backends.gpu.check import run_graph  # noqa: E402
from tests.backends.gpu.helpers import check, graph, rand  # noqa: E402

f32, i64 = dtypes.f32, dtypes.i64


def _gemm(b, rng, epilogue: str):  # noqa: ANN001, ANN202
    M0, M1, K, N = 2, 5, 40, 37          # odd rows and columns, K not a tile multiple
    x = b.input("x", TensorType((M0, M1, K), f32))
    w = b.param("w", TensorType((N, K), f32), rand(rng, N, K, scale=0.2))
    vals = [rand(rng, M0, M1, K)]
    if epilogue == "bias":
        bias = b.param("bias", TensorType((N,), f32), rand(rng, N))
        return [b.op("linear", x, w, bias, fusion=0)], vals
    y = b.op("linear", x, w, fusion=0)
    if epilogue == "silu_mul":
        up = b.input("up", TensorType((M0, M1, N), f32))
        vals.append(rand(rng, M0, M1, N))
        y = b.op("mul", b.op("silu", y, fusion=0), up, fusion=0)
    elif epilogue == "residual":
        res = b.input("res", TensorType((M0, M1, N), f32))
        vals.append(rand(rng, M0, M1, N))
        y = b.op("add", res, y, fusion=0)
    return [y], vals


@pytest.mark.parametrize("act", ["f32", "bf16"])
@pytest.mark.parametrize("epilogue", ["none", "bias", "silu_mul", "residual"])
def test_gemm_with_epilogue(tmp_path, act, epilogue):  # noqa: ANN001
    g, xs = graph(lambda b, rng: _gemm(b, rng, epilogue))
    check(g, xs, tmp_path, act)


def test_gemm_fuses_its_epilogue_into_one_kernel(tmp_path):  # noqa: ANN001
    import json

    g, xs = graph(lambda b, rng: _gemm(b, rng, "silu_mul"))
    run_graph(g, xs, tmp_path)
    steps = json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]
    assert [s.get("kernel") for s in steps] == ["gemm_dense_silu_mul"]
    assert "acc = acc * tl.sigmoid(acc)" in (tmp_path / "kernels/gemm.py").read_text()


@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_w4a16_gemm(tmp_path, act):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        M, K, KP, N, G = 3, 50, 64, 21, 32   # K zero-padded to 64 in the packed weight
        q = rng.integers(-8, 8, (N, KP))
        q[:, K:] = 0
        w = b.param("w", TensorType((N, KP // 2), dtypes.u8, "int4x2_lane32"), pack_int4(q))
        s = b.param("s", TensorType((N, KP // G), dtypes.bf16),
                    dtypes.round_bf16(rng.uniform(0.01, 0.1, (N, KP // G)).astype(np.float32)))
        x = b.input("x", TensorType((M, K), f32))
        res = b.input("res", TensorType((M, N), f32))
        y = b.op("add", b.op("wq_linear", x, w, s, group=G, fusion=0), res, fusion=0)
        return [y], [rand(rng, M, K), rand(rng, M, N)]
    g, xs = graph(build)
    check(g, xs, tmp_path, act)


@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_rms_norm(tmp_path, act):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((3, 7, 48), f32))
        w = b.param("w", TensorType((48,), f32), rand(rng, 48))
        return [b.op("rms_norm", x, w, eps=1e-5, fusion=0)], [rand(rng, 3, 7, 48)]
    check(*graph(build), tmp_path, act)


@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_embedding_and_cast(tmp_path, act):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        t = b.param("t", TensorType((50, 24), dtypes.bf16),
                    dtypes.round_bf16(rand(rng, 50, 24)))
        idx = b.input("idx", TensorType((2, 7), i64))
        e = b.op("embedding", t, idx, fusion=0)
        return [b.op("cast", e, dtype=f32, fusion=0)], [rng.integers(0, 50, (2, 7))]
    check(*graph(build), tmp_path, act)


def _rope(b, rng):  # noqa: ANN001, ANN202
    B, T, H, D = 2, 5, 3, 16
    lin = b.input("lin", TensorType((B, T, H * D), f32))
    x = b.op("permute", b.op("reshape", lin, shape=[B, T, H, D]), perm=[0, 2, 1, 3])
    cos = b.input("cos", TensorType((T, D), f32))
    sin = b.input("sin", TensorType((T, D), f32))
    hi = b.op("slice", x, dim=3, start=D // 2, end=D, step=1)
    lo = b.op("slice", x, dim=3, start=0, end=D // 2, step=1)
    rot = b.op("concat", b.op("neg", hi, fusion=0), lo, dim=3, fusion=0)
    y = b.op("add", b.op("mul", x, cos, fusion=0), b.op("mul", rot, sin, fusion=0), fusion=0)
    ang = np.arange(T)[:, None] * rng.uniform(0.1, 1.0, D)[None, :]
    return [y], [rand(rng, B, T, H * D), np.cos(ang).astype(np.float32),
                 np.sin(ang).astype(np.float32)]


def _projection_rope(b, rng):  # noqa: ANN001, ANN202
    """q = RoPE(x @ w.T) viewed as (B, H, T, D): one fusion group."""
    B, T, H, D, K = 2, 7, 3, 16, 24
    x = b.input("x", TensorType((B, T, K), f32))
    w = b.param("w", TensorType((H * D, K), f32), rand(rng, H * D, K, scale=0.3))
    lin = b.op("linear", x, w, fusion=0)
    q = b.op("permute", b.op("reshape", lin, shape=[B, T, H, D]), perm=[0, 2, 1, 3])
    cos = b.input("cos", TensorType((T, D), f32))
    sin = b.input("sin", TensorType((T, D), f32))
    hi = b.op("slice", q, dim=3, start=D // 2, end=D, step=1)
    lo = b.op("slice", q, dim=3, start=0, end=D // 2, step=1)
    rot = b.op("concat", b.op("neg", hi, fusion=0), lo, dim=3, fusion=0)
    y = b.op("add", b.op("mul", q, cos, fusion=0), b.op("mul", rot, sin, fusion=0), fusion=0)
    ang = np.arange(T)[:, None] * rng.uniform(0.1, 1.0, D)[None, :]
    return [y], [rand(rng, B, T, K), np.cos(ang).astype(np.float32),
                 np.sin(ang).astype(np.float32)]


@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_projection_with_rope_is_one_gemm_kernel(tmp_path, act):  # noqa: ANN001
    import json

    g, xs = graph(_projection_rope)
    check(g, xs, tmp_path, act)
    steps = json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]
    assert [s["op"] for s in steps] == ["gemm"] and steps[0]["kernel"] == "gemm_dense_rope"


@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_rope(tmp_path, act):  # noqa: ANN001
    import json

    g, xs = graph(_rope)
    check(g, xs, tmp_path, act)
    steps = json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]
    assert [s["op"] for s in steps if s["op"] != "view"] == ["rope"]


def _attention(b, rng, B=2, H=6, G=2, T=13, TK=13, D=32, causal=True, mask=False):  # noqa: ANN001, ANN202
    q = b.input("q", TensorType((B, H, T, D), f32))
    k = b.input("k", TensorType((B, G, TK, D), f32))
    v = b.input("v", TensorType((B, G, TK, D), f32))
    vals = [rand(rng, B, H, T, D), rand(rng, B, G, TK, D), rand(rng, B, G, TK, D)]
    ins = [q, k, v]
    if mask:
        pos = b.input("pos", TensorType((1,), i64))
        keys = b.op("reshape", b.op("arange", start=0, end=TK, step=1, dtype=i64), shape=[1, TK])
        ins.append(b.op("le", keys, b.op("reshape", pos, shape=[1, 1]), fusion=1))
        vals.append(np.array([TK - 4]))
    return [b.op("attention", *ins, causal=causal, scale=D ** -0.5, fusion=0)], vals


@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_prefill_attention_causal_gqa(tmp_path, act):  # noqa: ANN001
    check(*graph(_attention), tmp_path, act)


def test_prefill_attention_in_tiles_from_the_tiling_pass(tmp_path):  # noqa: ANN001
    import json

    from llmc.passes.tiling.flash import tile_attention

    g, xs = graph(lambda b, rng: _attention(b, rng, T=37, TK=37))
    tiled = tile_attention(g, "a100", (16, 16))
    check(tiled, xs, tmp_path, "f32")
    steps = json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]
    (att,) = [s for s in steps if s["op"] == "attention"]
    assert (att["block_q"], att["block_k"]) == (16, 16)


@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_decode_attention_over_a_masked_cache(tmp_path, act):  # noqa: ANN001
    check(*graph(lambda b, rng: _attention(b, rng, H=4, T=1, TK=11, D=16, causal=False,
                                           mask=True)), tmp_path, act)


@pytest.mark.parametrize("fmt", ["bfp8b16", "bfp4b16", "mxint8"])
def test_kv_block_quantize_is_bit_exact(tmp_path, fmt):  # noqa: ANN001
    dt = dtypes.parse_dtype(fmt)

    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((2, 3, 5, 64), f32))
        vals = rand(rng, 2, 3, 5, 64, scale=3.0)
        vals[0, 0, 0, :32] = 0.0            # an all-zero block
        vals[1, 2, 4, 5] = 1e-30            # a tiny magnitude
        return [b.op("quantize", x, dtype=dt, fusion=0)], [vals]
    g, xs = graph(build)
    (ref,) = interpret(g, xs)
    (got,) = run_graph(g, xs, tmp_path)
    assert_close(got, ref, "i8")                      # the values, bit for bit
    p = 8 if fmt == "mxint8" else int(fmt[3])
    m_ref, e_ref = bfp_decompose(ref, p, dt.block)
    m_got, e_got = bfp_decompose(got, p, dt.block)
    assert np.array_equal(m_ref, m_got) and np.array_equal(e_ref, e_got)


@pytest.mark.parametrize("fmt", ["bfp8b16", "mxint8"])
def test_decode_step_with_a_block_quantized_cache(tmp_path, fmt):  # noqa: ANN001
    """quantize the new K/V row, write it into the cache, attend (GQA, masked)."""
    dt = dtypes.parse_dtype(fmt)

    def build(b, rng):  # noqa: ANN001, ANN202
        B, H, G, S, D = 3, 4, 2, 9, 32
        q = b.input("q", TensorType((B, H, 1, D), f32))
        pos = b.input("pos", TensorType((1,), i64))
        kc = b.input("kc", TensorType((B, G, S, D), dt))
        vc = b.input("vc", TensorType((B, G, S, D), dt))
        kn = b.input("kn", TensorType((B, G, 1, D), f32))
        vn = b.input("vn", TensorType((B, G, 1, D), f32))
        k = b.op("index_copy", kc, pos, b.op("quantize", kn, dtype=dt, fusion=0), dim=2,
                 fusion=1)
        v = b.op("index_copy", vc, pos, b.op("quantize", vn, dtype=dt, fusion=2), dim=2,
                 fusion=3)
        keys = b.op("reshape", b.op("arange", start=0, end=S, step=1, dtype=i64), shape=[1, S])
        mask = b.op("le", keys, b.op("reshape", pos, shape=[1, 1]), fusion=4)
        out = b.op("attention", q, k, v, mask, causal=False, scale=D ** -0.5, fusion=5)
        from llmc.ir.formats import quantize_block
        caches = [quantize_block(rand(rng, B, G, S, D), dt) for _ in range(2)]
        return [out, k], [rand(rng, B, H, 1, D), np.array([5]), *caches,
                          rand(rng, B, G, 1, D), rand(rng, B, G, 1, D)]
    g, xs = graph(build)
    ref = interpret(g, xs)
    got = run_graph(g, xs, tmp_path)
    assert_close(got[0], ref[0], "f32")
    assert_close(got[1], ref[1], "i8")                # the cache, bit for bit


def test_an_op_without_a_kernel_is_listed_not_dropped() -> None:
    from llmc.backends.gpu.emit import attention_tiles
    from llmc.backends.gpu.lower import lower
    from llmc.hw.database import get_device

    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((2, 8), f32))
        return [b.op("tanh", b.op("softmax", x, dim=-1, fusion=0), fusion=1)], []
    g, _ = graph(build)
    steps, _, missing = lower(g, attention_tiles(get_device("a100-sxm4-80gb")))
    assert steps == []
    assert missing == ["op softmax (e.g. %softmax in @k)", "op tanh (e.g. %tanh in @k)"]


def test_an_artifact_with_an_op_without_a_kernel_refuses_to_run(tmp_path) -> None:  # noqa: ANN001
    import json

    from llmc.backends.artifact import Artifact
    from llmc.backends.gpu import BACKEND
    from llmc.errors import UsageError

    program = {"target": "a100", "device": "a100-sxm4-80gb",
               "unsupported": ["op gelu (e.g. %gelu in @k)"]}
    (tmp_path / "program.json").write_text(json.dumps(program))
    art = Artifact(tmp_path, {"files": {"program.json": ""}, "target": "a100", "backend": "gpu",
                              "device": "a100-sxm4-80gb"})
    with pytest.raises(UsageError, match="no kernel for op gelu"):
        BACKEND.run(art, [1], 1)
