"""Kernels read back from ``fusion`` annotations (llmc.ir.kernels), without
the fusion pass: a plan groups ops, an unannotated graph is one op per kernel."""

from __future__ import annotations

from llmc.ir.dtypes import f32
from llmc.ir.graph import Attrs, Builder, Graph
from llmc.ir.kernels import annotations, kernel_spans, kernels
from llmc.ir.types import TensorType


def _epilogue(ids: tuple[int, int, int] | None) -> Graph:
    """y = silu(x @ w.T) * u, its three ops carrying kernel ids `ids`."""
    g = Graph("epilogue")
    b = Builder(g)
    x = b.input("x", TensorType((8, 32), f32))
    u = b.input("u", TensorType((8, 16), f32))
    w = b.param("w", TensorType((16, 32), f32), None)
    tag = (lambda i: Attrs({"fusion": ids[i]})) if ids else (lambda i: Attrs())
    h = b.add("linear", [x, w], tag(0)).out()
    s = b.add("silu", [h], tag(1)).out()
    g.outputs = [b.add("mul", [s, u], tag(2)).out()]
    return g


def test_annotated_graph_reads_back_as_its_kernels() -> None:
    g = _epilogue((0, 0, 0))
    (k,) = kernels(g)
    out = 8 * 16 * 4
    assert [n.op for n in k.nodes] == ["linear", "silu", "mul"] and k.anchor.op == "linear"
    assert k.saved_bytes == 4 * out                  # two reads, two writes stay on chip
    assert {v.node.op for v in k.internal} == {"linear", "silu"}
    assert set(kernel_spans(g).values()) == {(3, 5)}


def test_unannotated_graph_is_one_op_per_kernel() -> None:
    g = _epilogue(None)
    assert annotations(g) is None and kernel_spans(g) is None
    ks = kernels(g)
    assert [[n.op for n in k.nodes] for k in ks] == [["linear"], ["silu"], ["mul"]]
    assert all(k.saved_bytes == 0 and not k.internal for k in ks)


def test_an_explicit_plan_groups_without_touching_the_graph() -> None:
    g = _epilogue(None)
    linear, silu, mul = (n for n in g.nodes if n.op in ("linear", "silu", "mul"))
    plan = {linear: 0, silu: 0}
    ks = kernels(g, plan)
    assert [[n.op for n in k.nodes] for k in ks] == [["linear", "silu"], ["mul"]]
    assert plan == {linear: 0, silu: 0}               # the caller's plan is not extended
    assert all("fusion" not in n.attrs for n in g.nodes)
