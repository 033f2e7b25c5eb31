"""The `memory-order` pass: OLLA-style reordering of IR graphs."""

from __future__ import annotations

import numpy as np

from llmc import api
from llmc.ir.arena import interpret_in_arena
from llmc.ir.dtypes import f32
from llmc.ir.graph import Builder, Graph
from llmc.ir.interp import interpret
from llmc.ir.types import TensorType
from llmc.ir.verify import verify
from llmc.passes.manager import run_pipeline
from llmc.passes.memplan import lower_bound, plan
from llmc.passes.memplan.liveness import liveness
from llmc.passes.memplan.reorder import memory_order


def branches(n: int = 3) -> tuple[Graph, list[np.ndarray]]:
    """n wide projections computed first, each then reduced by a narrow one:
    the traced order keeps every wide output live at once."""
    rng = np.random.default_rng(0)
    g = Graph("branches")
    b = Builder(g)
    x = b.input("x", TensorType((4, 64), f32))
    y = b.input("y", TensorType((4, 8), f32))
    wide = []
    for i in range(n):
        w = b.param(f"w{i}", TensorType((1024, 64), f32), rng.standard_normal((1024, 64),
                                                                           np.float32))
        wide.append(b.add("linear", [x, w], name=f"wide{i}").out())
    acc = y
    for i, a in enumerate(wide):
        d = b.param(f"d{i}", TensorType((8, 1024), f32), rng.standard_normal((8, 1024),
                                                                          np.float32))
        acc = b.add("add", [acc, b.add("linear", [a, d], name=f"narrow{i}").out()]).out()
    g.outputs = [acc]
    inputs = [rng.standard_normal((4, 64), np.float32), rng.standard_normal((4, 8), np.float32)]
    return g, inputs


def test_reordering_lowers_the_peak_and_keeps_every_result() -> None:
    g, inputs = branches()
    r = run_pipeline(g, ["memory-order"])
    verify(r)
    wide = 4 * 1024 * 4
    assert lower_bound(liveness(g).problem) >= 3 * wide
    assert lower_bound(liveness(r).problem) < 2 * wide
    assert [n.name for n in r.inputs] == ["x", "y"]               # the signature is kept
    assert sorted(n.name for n in r.nodes) == sorted(n.name for n in g.nodes)
    want = interpret(g, inputs)
    np.testing.assert_array_equal(interpret(r, inputs)[0], want[0])
    p = plan(liveness(r).problem)
    got = interpret_in_arena(r, inputs, p.offsets, p.arena_bytes)
    np.testing.assert_array_equal(got[0], want[0])


def test_a_transformer_keeps_its_order_when_nothing_is_gained() -> None:
    """The traced order of a decoder is already the scheduler's best: the
    pass returns the graph unchanged rather than a different, equal order."""
    traced = api.trace("llmc-tiny", "decode", batch=1, seq_len=32, weights="random")
    assert memory_order(traced.graph) is traced.graph
