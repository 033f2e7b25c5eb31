"""raise-attention: transformers' repeat_kv is dropped (attention takes G KV
heads) and a mask computed from shapes alone becomes `causal` (and
`window`); a mask that reads an input, or says something no attribute says,
stays. Interpreted before and after: the same function."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.ir import interpret, parse_graph, print_graph, verify
from llmc.numerics import assert_close
from llmc.passes.manager import get_pass

HEAD = """graph @attn {
  %q = input() : f32[1,4,3,8]
  %k = input() : f32[1,2,3,8]
  %v = input() : f32[1,2,3,8]
"""
REPEAT_KV = """  %k1 = reshape(%k) {shape=[1, 2, 1, 3, 8]} : f32[1,2,1,3,8] loc("attn")
  %k2 = expand(%k1) {shape=[1, 2, 2, 3, 8]} : f32[1,2,2,3,8] loc("attn")
  %k3 = reshape(%k2) {shape=[1, 4, 3, 8]} : f32[1,4,3,8] loc("attn")
  %v1 = reshape(%v) {shape=[1, 2, 1, 3, 8]} : f32[1,2,1,3,8] loc("attn")
  %v2 = expand(%v1) {shape=[1, 2, 2, 3, 8]} : f32[1,2,2,3,8] loc("attn")
  %v3 = reshape(%v2) {shape=[1, 4, 3, 8]} : f32[1,4,3,8] loc("attn")
"""
POSITIONS = """  %i = arange() {dtype=i64, end=3, start=0, step=1} : i64[3] loc("mask")
  %row = reshape(%i) {shape=[3, 1]} : i64[3,1] loc("mask")
  %col = reshape(%i) {shape=[1, 3]} : i64[1,3] loc("mask")
"""
CAUSAL = '  %mask = le(%col, %row) : bool[3,3] loc("mask")\n'
# causal, and key j > i - 2: a sliding window of 2 keys (Mistral's)
WINDOW = CAUSAL.replace("%mask", "%le") + """  %two = const() {dtype=i64, shape=[], value=2} : i64[] loc("mask")
  %lo = sub(%row, %two) : i64[3,1] loc("mask")
  %gt = gt(%col, %lo) : bool[3,3] loc("mask")
  %mask = bitwise_and(%le, %gt) : bool[3,3] loc("mask")
"""
NOT_DIAGONAL = '  %mask = ne(%col, %row) : bool[3,3] loc("mask")\n'
TAIL = """  %o = attention(%q, %k3, %v3, %mask) {causal=false, scale=0.35} : f32[1,4,3,8] loc("attn")
  return %o
}
"""


def after_text(attrs: str, mask: str = "") -> str:
    return HEAD + f"""  %o_1 = attention(%q, %k, %v{mask}) {{{attrs}}} : f32[1,4,3,8] loc("attn")
  return %o_1
}}
"""


def check_same(before, after, extra: tuple = ()) -> None:  # noqa: ANN001
    verify(after)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(n.type.shape).astype(np.float32) for n in before.inputs[:3]]
    assert_close(interpret(after, [*xs, *extra])[0], interpret(before, [*xs, *extra])[0],
                 rel_tol=1e-6)


@pytest.mark.parametrize("mask, attrs", [
    (CAUSAL, "causal=true, scale=0.35"),
    (WINDOW, "causal=true, scale=0.35, window=2"),
])
def test_repeat_kv_and_a_shape_mask_become_attributes(mask: str, attrs: str) -> None:
    before = parse_graph(HEAD + REPEAT_KV + POSITIONS + mask + TAIL)
    after = get_pass("raise-attention")(before)
    assert print_graph(after) == after_text(attrs)
    check_same(before, after)


def test_a_mask_no_attribute_says_stays_an_input() -> None:
    before = parse_graph(HEAD + REPEAT_KV + POSITIONS + NOT_DIAGONAL + TAIL)
    after = get_pass("raise-attention")(before)
    assert [n.op for n in after.nodes if n.op in ("expand", "ne")] == ["ne"]
    assert after.outputs[0].node.attrs["causal"] is False
    check_same(before, after)


def test_a_mask_from_an_input_is_not_touched() -> None:
    """A decode step's mask reads its position: never evaluated here."""
    text = HEAD + '  %pos = input() : i64[]\n' + REPEAT_KV + POSITIONS + \
        '  %at = add(%row, %pos) : i64[3,1] loc("mask")\n' + \
        CAUSAL.replace("%row", "%at") + TAIL
    before = parse_graph(text)
    after = get_pass("raise-attention")(before)
    assert after.outputs[0].node.inputs[3].node.op == "le"
    check_same(before, after, (np.array(0),))
