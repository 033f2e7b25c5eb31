"""The indexing and routing ops (llmc/ir/ops/index.py, routing.py): numpy
semantics against PyTorch, type rules, costs, and the moe_ffn gate modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmc.errors import IRError
from llmc.ir import Builder, Graph, TensorType, dtypes, interpret, parse_graph, print_graph
from llmc.ir.cost import node_cost
from llmc.ir.ops import get_op
from llmc.numerics import assert_close


def run(op: str, *arrays: np.ndarray, **attrs):  # noqa: ANN201
    g = Graph("t")
    b = Builder(g)
    ins = [b.input(f"x{i}", TensorType(a.shape, dtypes.from_torch(torch.from_numpy(a).dtype)))
           for i, a in enumerate(arrays)]
    node = b.add(op, ins, attrs)
    g.outputs = [node.out(i) for i in range(len(node.types))]
    assert parse_graph(print_graph(g)).nodes[-1].attrs == node.attrs  # text round trip
    out = interpret(g, list(arrays))
    return (out if len(out) > 1 else out[0]), node


def T(a: np.ndarray) -> torch.Tensor:  # noqa: N802
    return torch.from_numpy(a)


@pytest.mark.parametrize("key, dims", [
    ((slice(None), "i"), (1,)),                 # x[:, i]
    (("i", slice(None), "j"), (0, 2)),          # not adjacent: the index shape leads
    ((slice(None), "i", "j"), (1, 2)),          # adjacent: replaces dims 1, 2 in place
    (("i",), (0,)),
])
def test_index_is_torch_advanced_indexing(rng, key, dims) -> None:  # noqa: ANN001
    x = rng.standard_normal((5, 6, 7), dtype=np.float32)
    i = np.array([[0, -1, 2]], np.int64)          # (1, 3), a negative index too
    j = np.array([[1], [4]], np.int64)            # (2, 1): broadcasts with i to (2, 3)
    pick = {"i": i, "j": j}
    arrays = [pick[k] for k in key if isinstance(k, str)]
    got, node = run("index", x, *arrays, dims=dims)
    ref = T(x)[tuple(T(pick[k]) if isinstance(k, str) else k for k in key)]
    assert got.shape == tuple(ref.shape) == node.type.shape
    assert np.array_equal(got, ref.numpy())
    assert node_cost(node).bytes_written == node.type.nbytes      # moves only what it picks


def test_index_refuses_out_of_range_and_bad_dims(rng) -> None:  # noqa: ANN001
    x = rng.standard_normal((4, 3), dtype=np.float32)
    with pytest.raises(IRError, match="out of range"):
        run("index", x, np.array([4]), dims=(0,))
    with pytest.raises(IRError, match="increasing"):
        run("index", x, np.array([0]), np.array([0]), dims=(1, 0))


def test_gather_and_scatter_match_torch(rng) -> None:  # noqa: ANN001
    x = rng.standard_normal((3, 5), dtype=np.float32)
    idx = np.array([[0, 4], [2, 2], [1, 3]], np.int64)
    got, _ = run("gather", x, idx, dim=1)
    assert np.array_equal(got, torch.gather(T(x), 1, T(idx)).numpy())
    src = rng.standard_normal((3, 4), dtype=np.float32)                   # larger than idx
    base = np.zeros((3, 5), np.float32)
    got, _ = run("scatter", base, idx[:, :1], src, dim=1, reduce="none")
    assert np.array_equal(got, torch.zeros(3, 5).scatter(1, T(idx[:, :1]), T(src)).numpy())
    got, node = run("scatter", base, idx, src, dim=1, reduce="add")       # repeats add up
    assert_close(got, torch.zeros(3, 5).scatter_add(1, T(idx), T(src)).numpy())
    assert node_cost(node).flops == idx.size


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_matches_torch(rng, accumulate: bool) -> None:  # noqa: ANN001
    x = rng.standard_normal((4, 3, 5), dtype=np.float32)
    i, j = np.array([0, 3, 3], np.int64), np.array([1, 4, 4], np.int64)   # (3, 4) twice
    v = rng.standard_normal((3, 3), dtype=np.float32)   # x[i, :, j] is (3, 3): i/j lead
    got, node = run("index_put", x, v, i, j, dims=(0, 2), accumulate=accumulate)
    assert node.type == node.inputs[0].type
    if accumulate:   # repeats add up
        ref = x.copy()
        for n in range(len(i)):
            ref[i[n], :, j[n]] += v[n]
        assert_close(got, ref)
    else:            # torch leaves the winner of a repeat unspecified; check the rest
        ref = T(x.copy())
        ref[T(i), :, T(j)] = T(v)
        keep = np.ones(x.shape, bool)
        keep[3, :, 4] = False
        assert np.array_equal(got[keep], ref.numpy()[keep])


def test_cumsum_sort_histc_match_torch(rng) -> None:  # noqa: ANN001
    mask = rng.random((2, 7)) > 0.5
    got, node = run("cumsum", mask, dim=1, dtype=dtypes.i64)
    assert node.type.dtype == dtypes.i64
    assert np.array_equal(got, torch.cumsum(T(mask), 1).numpy())
    ids = np.array([3, 1, 3, 0, 1, 3, 2], np.int64)
    (vals, order), node = run("sort", ids, dim=0, descending=False)
    ref = torch.sort(T(ids), stable=True)
    assert np.array_equal(vals, ref.values.numpy()) and np.array_equal(order, ref.indices.numpy())
    (vals, order), _ = run("sort", ids, dim=0, descending=True)
    ref = torch.sort(T(ids), descending=True, stable=True)
    assert np.array_equal(vals, ref.values.numpy()) and np.array_equal(order, ref.indices.numpy())
    assert node_cost(node).flops == 7 * 3                                 # n ceil(log2 n)
    x = np.array([0, 3, 3, 1.5, 2.999, -1, 4, 2], np.float32)             # -1, 4 are outside
    got, _ = run("histc", x, bins=4, min=0.0, max=3.0)
    assert np.array_equal(got, torch.histc(T(x), bins=4, min=0, max=3).numpy())


def test_grouped_mm_runs_each_group_on_its_rows(rng) -> None:  # noqa: ANN001
    x = rng.standard_normal((7, 4), dtype=np.float32)
    w = rng.standard_normal((3, 4, 5), dtype=np.float32)
    offs = np.array([2, 2, 6], np.int32)                 # group 1 empty; row 6 is past the end
    got, node = run("grouped_mm", x, w, offs)
    ref = np.zeros((7, 5), np.float32)
    ref[:2], ref[2:6] = x[:2] @ w[0], x[2:6] @ w[2]
    assert_close(got, ref)
    assert [(g.m, g.n, g.k, g.count) for g in get_op("grouped_mm").gemms(node)] == [(3, 5, 4, 3)]
    with pytest.raises(IRError, match="not increasing"):
        run("grouped_mm", x, w, np.array([3, 2, 7], np.int32))


@pytest.mark.parametrize("norm", [True, False])
def test_moe_ffn_gates_match_transformers_routers(rng, norm: bool) -> None:  # noqa: ANN001
    """softmax over all E, top k, renormalised (Mixtral) or not (Qwen3-MoE)."""
    N, d, E, f, k = 6, 8, 4, 5, 2
    x = rng.standard_normal((N, d), dtype=np.float32)
    router = rng.standard_normal((E, d), dtype=np.float32)
    wg, wu = (rng.standard_normal((E, f, d), dtype=np.float32) for _ in range(2))
    wd = rng.standard_normal((E, d, f), dtype=np.float32)
    got, _ = run("moe_ffn", x, router, wg, wu, wd, top_k=k, norm_topk=norm)
    probs = torch.softmax(T(x) @ T(router).T, -1)
    top, idx = torch.topk(probs, k)
    if norm:
        top = top / top.sum(-1, keepdim=True)
    ref = torch.zeros(N, d)
    for n in range(N):
        for j in range(k):
            e = int(idx[n, j])
            h = torch.nn.functional.silu(T(wg[e]) @ T(x[n])) * (T(wu[e]) @ T(x[n]))
            ref[n] += top[n, j] * (T(wd[e]) @ h)
    assert_close(got, ref.numpy())
