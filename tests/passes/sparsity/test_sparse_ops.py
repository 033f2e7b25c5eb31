"""The sparse ops: compressed formats, exact reference semantics, costs."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.errors import IRError
from llmc.ir import dtypes, interpret, verify
from llmc.ir.cost import node_cost
from llmc.ir.graph import Builder, Graph
from llmc.ir.ops.sparse import (
    compress_2_4,
    compress_csr,
    decompress_2_4,
    decompress_csr,
    threshold_channels,
)
from llmc.ir.text import parse_graph, print_graph
from llmc.ir.types import TensorType
from llmc.passes.sparsity.prune import magnitude

F32 = dtypes.f32


def _pruned(shape: tuple[int, int], pattern: str, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return magnitude(w, pattern, 0.5)


def test_2_4_format_round_trips_and_uses_nvidia_metadata() -> None:
    w = _pruned((6, 16), "2:4")
    values, meta = compress_2_4(w)
    assert values.shape == (6, 8) and meta.shape == (6, 4) and meta.max() < 16
    i0, i1 = meta & 3, meta >> 2
    assert np.all(i0 < i1)                     # two 2-bit positions per group, ascending
    assert np.array_equal(decompress_2_4(values, meta), w)
    # a group with fewer than 2 nonzeros stores a zero
    w[0, :4] = [0, 0, 0, 5]
    assert np.array_equal(decompress_2_4(*compress_2_4(w)), w)


def test_2_4_format_rejects_dense_groups() -> None:
    with pytest.raises(IRError, match="more than 2 nonzeros"):
        compress_2_4(np.ones((2, 8), np.float32))
    with pytest.raises(IRError, match="divisible by 4"):
        compress_2_4(np.zeros((2, 6), np.float32))


def test_csr_round_trips() -> None:
    w = _pruned((7, 33), "unstructured")
    values, indices, row_ptr = compress_csr(w)
    assert indices.dtype == np.int16 and row_ptr.dtype == np.int32
    assert values.shape == (np.count_nonzero(w),) and row_ptr[-1] == values.shape[0]
    assert np.array_equal(decompress_csr(values, indices, row_ptr, 33), w)


def _sparse_graph(w: np.ndarray, pattern: str, bias: bool, tokens: int = 5) -> Graph:
    g = Graph("sp")
    b = Builder(g)
    x = b.input("x", TensorType((tokens, w.shape[1]), F32))
    if pattern == "2:4":
        vals, meta = compress_2_4(w)
        tensors = [b.param("w.values", TensorType(vals.shape, F32), vals),
                   b.param("w.meta", TensorType(meta.shape, dtypes.u4), meta)]
        density = 0.5
    else:
        vals, idx, ptr = compress_csr(w)
        tensors = [b.param("w.values", TensorType(vals.shape, F32), vals),
                   b.param("w.indices", TensorType(idx.shape, dtypes.i16), idx),
                   b.param("w.row_ptr", TensorType(ptr.shape, dtypes.i32), ptr)]
        density = vals.shape[0] / w.size
    if bias:
        tensors.append(b.param("bias", TensorType((w.shape[0],), F32),
                               np.arange(w.shape[0], dtype=np.float32)))
    y = b.add("sparse_linear", [x, *tensors],
              {"pattern": pattern, "in_features": w.shape[1], "density": density})
    g.outputs = [y.out()]
    return g


@pytest.mark.parametrize("pattern", ["2:4", "unstructured"])
@pytest.mark.parametrize("bias", [False, True])
def test_sparse_linear_is_exactly_linear_of_the_pruned_weight(pattern: str, bias: bool) -> None:
    w = _pruned((12, 32), pattern)
    g = _sparse_graph(w, pattern, bias)
    verify(g)
    x = np.random.default_rng(1).standard_normal((5, 32)).astype(np.float32)
    want = x @ w.T + (np.arange(12, dtype=np.float32) if bias else 0)
    assert np.array_equal(interpret(g, [x])[0], want)
    text = print_graph(g)
    assert print_graph(parse_graph(text, g.params)) == text


def test_sparse_linear_cost_counts_kept_macs_and_compressed_bytes() -> None:
    w = _pruned((64, 128), "2:4")
    c = node_cost(_sparse_graph(w, "2:4", False, tokens=10).outputs[0].node)
    assert c.flops == 2 * 10 * 64 * 64                     # half of 2 * 10 * 64 * 128
    # x (10 x 128 f32) + values (64 x 64 f32) + meta (64 x 32 nibbles) ; out (10 x 64 f32)
    assert c.bytes_read == 4 * 10 * 128 + 4 * 64 * 64 + 64 * 32 // 2
    assert c.bytes_written == 4 * 10 * 64
    csr = _sparse_graph(_pruned((64, 128), "unstructured"), "unstructured", False, tokens=10)
    nnz = 64 * 64
    c = node_cost(csr.outputs[0].node)
    assert c.flops == 2 * 10 * nnz
    assert c.bytes_read == 4 * 10 * 128 + (4 + 2) * nnz + 4 * 65


def test_sparse_linear_type_rule_catches_bad_layouts() -> None:
    text = """
graph @bad {
  %x = input() : f32[2,8]
  %v = param() {name="v"} : f32[4,4]
  %m = param() {name="m"} : u8[4,2]
  %y = sparse_linear(%x, %v, %m) {density=0.5, in_features=8, pattern="2:4"} : f32[2,4]
  return %y
}"""
    with pytest.raises(IRError, match="u4"):
        verify(parse_graph(text))
    with pytest.raises(IRError, match="pattern"):
        verify(parse_graph(text.replace('"2:4"', '"3:8"')))


def _act_graph(tokens: int, sparsity: float) -> Graph:
    g = Graph("act")
    b = Builder(g)
    rng = np.random.default_rng(0)
    x = b.input("x", TensorType((tokens, 16), F32))
    w = b.param("w", TensorType((8, 16), F32), rng.standard_normal((8, 16)).astype(np.float32))
    tau = b.param("tau", TensorType((16,), F32), np.linspace(0, 1.5, 16).astype(np.float32))
    g.outputs = [b.add("act_sparse_linear", [x, w, tau], {"sparsity": sparsity}).out()]
    return g


def test_act_sparse_linear_zeroes_channels_below_their_threshold() -> None:
    g = _act_graph(6, 0.5)
    verify(g)
    x = np.random.default_rng(2).standard_normal((6, 16)).astype(np.float32)
    tau = g.params["tau"]
    kept = np.where(np.abs(x) >= tau, x, 0)
    assert np.array_equal(threshold_channels(x, tau), kept)
    assert np.array_equal(interpret(g, [x])[0], kept @ g.params["w"].T)


def test_act_sparse_linear_cost_skips_macs_and_weight_columns() -> None:
    decode = node_cost(_act_graph(1, 0.75).outputs[0].node)
    dense_macs = 2 * 1 * 8 * 16
    assert decode.flops == dense_macs * 0.25 + 16
    w_bytes = 8 * 16 * 4
    # one token: only the active quarter of the weight columns is read
    assert decode.bytes_read == 16 * 4 + 16 * 4 + w_bytes // 4
    prefill = node_cost(_act_graph(64, 0.75).outputs[0].node)
    # 64 tokens: a column is skipped only if all 64 rows leave it inactive (0.75^64 ~ 0)
    assert prefill.bytes_read == pytest.approx(64 * 16 * 4 + 16 * 4 + w_bytes, abs=1)
