"""Parameter counts are of logical weights, whatever format a pass stored."""

from __future__ import annotations

import pytest

import llmc
from llmc import api
from llmc.ir.cost import param_count
from llmc.passes.sparsity import apply_sparsity


@pytest.fixture(scope="module")
def float_count():  # noqa: ANN201
    return param_count(api.trace("llama-tiny", "prefill", batch=1, seq_len=16).graph)


@pytest.mark.parametrize("scheme", ["w4a16", "w8a16", "w8a8-int", "w4a8", "bfp16"])
def test_quantized_graph_keeps_the_float_count(float_count, scheme: str) -> None:  # noqa: ANN001
    """Packed int4 counts two per byte, K padding and group scales, requant
    multipliers and RoPE tables count none; the bytes shrink."""
    q = param_count(llmc.quantize("llama-tiny", scheme, seq_len=16))
    assert q.total == q.active == float_count.total
    assert q.nbytes < float_count.nbytes / 3


@pytest.mark.parametrize("spec", ["2:4", "0.5"])
def test_pruned_graph_counts_the_dense_matrices(float_count, spec: str) -> None:  # noqa: ANN001
    g = api.trace("llama-tiny", "prefill", batch=1, seq_len=16).graph
    s = apply_sparsity(g, spec)
    assert any(n.op == "sparse_linear" for n in s.nodes)
    assert param_count(s).total == float_count.total
