"""Text form: exact round trip, and clear errors on bad text."""

from __future__ import annotations

import pytest

from llmc.errors import IRError
from llmc.ir import Builder, Graph, TensorType, dtypes, parse_graph, print_graph, verify


def small_graph() -> Graph:
    g = Graph("small")
    b = Builder(g)
    x = b.input("x", TensorType((2, 3), dtypes.f32))
    w = b.param("w", TensorType((4, 3), dtypes.bf16), None)
    y = b.op("linear", x, w)
    top = b.add("topk", [y], {"k": 2, "dim": 1}, loc="layers.0.ffn")
    c = b.add("const", [], {"value": 1e-5, "shape": (), "dtype": dtypes.f32})
    z = b.op("add", top.out(0), c.out())
    q = b.op("cast", z, dtype=dtypes.bfp(8, 16))
    n = b.add("const", [], {"value": float("-inf"), "shape": (1,), "dtype": dtypes.f32})
    g.outputs = [q, top.out(1), n.out()]
    return g


def test_round_trip_is_exact() -> None:
    text = print_graph(small_graph())
    g2 = parse_graph(text)
    verify(g2)
    assert print_graph(g2) == text
    assert 'loc("layers.0.ffn")' in text
    assert "%topk:2 = topk" in text and "return %cast, %topk#1" in text


def test_layout_and_strings_round_trip() -> None:
    g = Graph("layout")
    b = Builder(g)
    x = b.input("x", TensorType((4, 8), dtypes.u8, layout="int4x2"))
    g.outputs = [b.op("gelu", b.op("cast", x, dtype=dtypes.f32), approximate='t"anh')]
    text = print_graph(g)
    assert print_graph(parse_graph(text)) == text


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("graph x {", "expected 'graph @name"),
    ("graph @g {\n  %a = neg(%b) : f32[1]\n}", "used before it is defined"),
    ("graph @g {\n  %a = input() : f32[1]\n  %a = neg(%a) : f32[1]\n}", "defined twice"),
    ("graph @g {\n  %a = input() : q7[1]\n}", "unknown dtype"),
    ("graph @g {\n  %a = input() : f32[1]\n", "without '}'"),
    ("graph @g {\n  %a = input() : f32[1] junk\n}", "unexpected"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(IRError, match=message):
        parse_graph(text)
