"""Each op's numpy semantics against PyTorch, and registry costs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmc.ir import Builder, Graph, TensorType, all_ops, dtypes, get_op, interpret
from llmc.ir.cost import node_cost
from llmc.ir.ops.nn import attention_pairs, expected_active_experts
from llmc.numerics import assert_close


def run(op: str, *arrays: np.ndarray, **attrs):  # noqa: ANN201
    g = Graph("t")
    b = Builder(g)
    ins = [b.input(f"x{i}", TensorType(a.shape, dtypes.from_torch(torch.from_numpy(a).dtype)))
           for i, a in enumerate(arrays)]
    node = b.add(op, ins, attrs)
    g.outputs = [node.out(i) for i in range(len(node.types))]
    out = interpret(g, list(arrays))
    return (out if len(out) > 1 else out[0]), node


def test_every_op_is_documented() -> None:
    for name, op in all_ops().items():
        assert op.doc, name
        assert op.kind in {"source", "elementwise", "view", "movement", "reduce", "norm",
                           "linalg", "attention", "moe"} or op.kind, name


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("tq, tk", [(5, 5), (1, 9), (3, 7)])
def test_attention_matches_sdpa(rng, causal: bool, tq: int, tk: int) -> None:
    if causal and tq > tk:
        pytest.skip("causal needs tq <= tk")
    q = rng.standard_normal((2, 4, tq, 8), dtype=np.float32)
    k = rng.standard_normal((2, 2, tk, 8), dtype=np.float32)
    v = rng.standard_normal((2, 2, tk, 8), dtype=np.float32)
    got, node = run("attention", q, k, v, causal=causal, scale=0.3)
    tq_, tk_ = torch.from_numpy(q), torch.from_numpy(k)
    mask = None
    if causal:  # bottom-right aligned
        mask = torch.ones(tq, tk, dtype=torch.bool).tril(tk - tq)
    ref = F.scaled_dot_product_attention(tq_, tk_, torch.from_numpy(v), attn_mask=mask,
                                         scale=0.3, enable_gqa=True)
    assert_close(got, ref.numpy())
    pairs = attention_pairs(tq, tk, causal)
    assert pairs == (int(mask.sum()) if causal else tq * tk)
    assert node_cost(node).flops == 2 * 4 * pairs * (4 * 8 + 5)


def test_linear_and_norms(rng) -> None:
    x = rng.standard_normal((3, 5, 16), dtype=np.float32)
    w = rng.standard_normal((7, 16), dtype=np.float32)
    b = rng.standard_normal(7, dtype=np.float32)
    got, node = run("linear", x, w, b)
    assert_close(got, F.linear(*map(torch.from_numpy, (x, w, b))).numpy())
    assert node_cost(node).flops == 2 * 15 * 7 * 16 + 15 * 7
    g = rng.standard_normal(16, dtype=np.float32)
    got, _ = run("rms_norm", x, g, eps=1e-6)
    assert_close(got, F.rms_norm(torch.from_numpy(x), (16,), torch.from_numpy(g), 1e-6).numpy())
    got, _ = run("layer_norm", x, g, g, eps=1e-5)
    ref = F.layer_norm(torch.from_numpy(x), (16,), torch.from_numpy(g), torch.from_numpy(g))
    assert_close(got, ref.numpy())


@pytest.mark.parametrize("op, fn", [
    ("silu", F.silu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("exp", torch.exp),
    ("rsqrt", lambda t: torch.rsqrt(t.abs() + 1)), ("gelu", F.gelu),
])
def test_unary(rng, op: str, fn) -> None:  # noqa: ANN001
    x = rng.standard_normal((4, 9), dtype=np.float32)
    if op == "rsqrt":
        x = np.abs(x) + 1
        fn = torch.rsqrt
    got, _ = run(op, x)
    assert_close(got, fn(torch.from_numpy(x)).numpy())


def test_gelu_tanh_and_softmax(rng) -> None:
    x = rng.standard_normal((4, 9), dtype=np.float32)
    got, _ = run("gelu", x, approximate="tanh")
    assert_close(got, F.gelu(torch.from_numpy(x), approximate="tanh").numpy())
    got, _ = run("softmax", x, dim=1)
    assert_close(got, torch.softmax(torch.from_numpy(x), 1).numpy())


def test_shape_ops(rng) -> None:
    x = rng.standard_normal((2, 3, 4), dtype=np.float32)
    assert run("permute", x, perm=(2, 0, 1))[0].shape == (4, 2, 3)
    assert np.array_equal(run("slice", x, dim=2, start=1, end=4, step=2)[0], x[:, :, 1:4:2])
    assert np.array_equal(run("concat", x, x, dim=1)[0], np.concatenate([x, x], 1))
    cache = np.zeros((1, 2, 6, 4), np.float32)
    src = rng.standard_normal((1, 2, 2, 4), dtype=np.float32)
    idx = np.array([3, 4])
    out, node = run("index_copy", cache, idx, src, dim=2)
    ref = torch.from_numpy(cache).index_copy(2, torch.from_numpy(idx), torch.from_numpy(src))
    assert np.array_equal(out, ref.numpy())
    assert node_cost(node).bytes_written == src.nbytes  # in place: only the new rows
    (vals, ids), _ = run("topk", x, k=2, dim=2)
    tv, ti = torch.topk(torch.from_numpy(x), 2, dim=2)
    assert np.array_equal(vals, tv.numpy()) and np.array_equal(ids, ti.numpy())


def test_moe_matches_torch_and_counts_active_experts(rng) -> None:
    from llmc.frontend.zoo.moe_op import moe_ffn

    N, d, f, E, k = 6, 8, 12, 4, 2
    arrays = [rng.standard_normal(s, dtype=np.float32) * 0.5 for s in
              [(N, d), (E, d), (E, f, d), (E, f, d), (E, d, f)]]
    got, node = run("moe_ffn", *arrays, top_k=k)
    ref = moe_ffn(*map(torch.from_numpy, arrays), k)
    assert_close(got, ref.numpy())
    cost = node_cost(node)
    assert cost.flops == 2 * N * d * E + N * k * (6 * d * f + 4 * f + d)
    assert math.isclose(expected_active_experts(1, 128, 4), 4.0)
    assert expected_active_experts(10_000, 8, 2) == pytest.approx(8.0)


def test_cast_bf16_rounds_to_nearest_even() -> None:
    x = np.array([1.0, 1.00390625, 1.01171875, -3.3, 65504.0], np.float32)
    got, _ = run("cast", x, dtype=dtypes.bf16)
    ref = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    assert np.array_equal(got, ref)


def test_dtype_bits() -> None:
    assert dtypes.bfp(8, 16).bits == 8.5 and dtypes.bfp(4, 32).bits == 4.25
    assert dtypes.mx("mxfp4").bits == 4.25 and dtypes.mx("mxfp4").block == 32
    assert dtypes.i4.nbytes(3) == 2 and dtypes.parse_dtype("bfp12b64").name == "bfp12b64"
    assert get_op("linear").kind == "linalg"
