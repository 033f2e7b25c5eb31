"""The verifier catches each broken invariant."""

from __future__ import annotations

import pytest

from llmc.errors import IRError
from llmc.ir import Attrs, Builder, Graph, Node, TensorType, dtypes, verify

F = TensorType((2, 3), dtypes.f32)


def base() -> tuple[Graph, Builder]:
    g = Graph("g")
    return g, Builder(g)


def test_valid_graph_passes() -> None:
    g, b = base()
    x = b.input("x", F)
    g.outputs = [b.op("neg", x)]
    verify(g)


def test_wrong_output_type() -> None:
    g, b = base()
    x = b.input("x", F)
    g.nodes.append(Node("neg", (x,), Attrs(), (TensorType((3, 2), dtypes.f32),), "bad"))
    with pytest.raises(IRError, match="the op's rule gives f32\\[2,3\\]"):
        verify(g)


def test_unknown_op_and_missing_attr() -> None:
    g, b = base()
    x = b.input("x", F)
    g.nodes.append(Node("frobnicate", (x,), Attrs(), (F,), "a"))
    g.nodes.append(Node("softmax", (x,), Attrs(), (F,), "s"))
    with pytest.raises(IRError) as err:
        verify(g)
    assert "unknown op 'frobnicate'" in str(err.value)
    assert "missing attributes ['dim']" in str(err.value)


def test_use_before_def_and_duplicate_name() -> None:
    g, b = base()
    x = b.input("x", F)
    later = Node("neg", (x,), Attrs(), (F,), "later")
    g.nodes.append(Node("neg", (later.out(),), Attrs(), (F,), "early"))
    g.nodes.append(later)
    g.nodes.append(Node("neg", (x,), Attrs(), (F,), "later"))
    with pytest.raises(IRError) as err:
        verify(g)
    assert "not defined before use" in str(err.value) and "defined twice" in str(err.value)


def test_param_without_value_entry() -> None:
    g, b = base()
    p = Node("param", (), Attrs(name="w"), (F,), "w")
    g.nodes.append(p)
    g.outputs = [p.out()]
    with pytest.raises(IRError, match="no entry in params"):
        verify(g)


def test_extra_checks_run() -> None:
    g, b = base()
    g.outputs = [b.input("x", F)]
    with pytest.raises(IRError, match="custom"):
        verify(g, extra=[lambda graph: ["custom problem"]])
