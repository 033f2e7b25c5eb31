"""Attention in the tiling pass's query tiles (lower_attention.py): a causal
and a masked int_attention longer than one tile, bit-identical to the
interpreter, in as many tiles as the tiling pass chose for edge-npu."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.backends.npu.backend import attention_chip
from llmc.ir import dtypes, interpret
from llmc.ir.graph import Builder, Graph
from llmc.ir.types import TensorType
from llmc.passes.tiling import choose_tiles
from tests.backends.npu.test_lower import DEV, run

T, D = 300, 32


def attention_graph(causal: bool) -> Graph:
    g = Graph("att_prefill")
    b = Builder(g)
    q = b.input("q", TensorType((1, 2, T, D), dtypes.i8))
    k = b.input("k", TensorType((1, 1, T, D), dtypes.i8))
    v = b.input("v", TensorType((1, 1, T, D), dtypes.i8))
    ins = [q, k, v]
    if not causal:
        ins.append(b.input("mask", TensorType((T, T), dtypes.boolean)))
    attrs = {"causal": causal, "s_mult": 1 << 20, "s_shift": 24, "frac": 10, "prob_bits": 15,
             "o_mult": 1, "o_shift": 15, "dtype": dtypes.i8}
    g.outputs = [b.add("int_attention", ins, attrs, "att").out()]
    return g


@pytest.mark.parametrize("causal", [True, False])
def test_attention_runs_in_the_tiling_pass_query_tiles_bit_exactly(causal: bool) -> None:
    rng = np.random.default_rng(3)
    xs = [rng.integers(-127, 128, s).astype(np.int8) for s in
          ((1, 2, T, D), (1, 1, T, D), (1, 1, T, D))]
    if not causal:
        xs.append(rng.random((T, T)) < 0.7)
    g = attention_graph(causal)
    got, _, image = run(g, *xs)
    assert np.array_equal(got[0], interpret(g, xs)[0])
    br = choose_tiles(attention_chip(DEV), D, D, 1.0, T, T).block_q
    assert br < T
    softmaxes = [i for i in image.programs[0].instrs if i.op == "vsoftmax"]
    assert len(softmaxes) == 2 * -(-T // br)        # heads x query tiles
