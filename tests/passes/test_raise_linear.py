"""raise-linear: GPT-2's Conv1D (matmul by an (in, out) weight, then + bias)
becomes one linear with the weight transposed once at compile time."""

from __future__ import annotations

import numpy as np

from llmc.ir import interpret, parse_graph, print_graph, verify
from llmc.numerics import assert_close
from llmc.passes.manager import get_pass

BEFORE = """graph @conv1d {
  %x = input() : f32[2,3,8]
  %w = param() {name="c_attn.weight"} : f32[8,12]
  %b = param() {name="c_attn.bias"} : f32[12]
  %view = reshape(%x) {shape=[6, 8]} : f32[6,8] loc("c_attn")
  %addmm = matmul(%view, %w) : f32[6,12] loc("c_attn")
  %addmm_1 = add(%addmm, %b) : f32[6,12] loc("c_attn")
  %view_1 = reshape(%addmm_1) {shape=[2, 3, 12]} : f32[2,3,12] loc("c_attn")
  return %view_1
}
"""
AFTER = """graph @conv1d {
  %x = input() : f32[2,3,8]
  %b = param() {name="c_attn.bias"} : f32[12]
  %view = reshape(%x) {shape=[6, 8]} : f32[6,8] loc("c_attn")
  %c_attn.weight.T = param() {name="c_attn.weight.T"} : f32[12,8]
  %addmm_2_1 = linear(%view, %c_attn.weight.T, %b) : f32[6,12] loc("c_attn")
  %view_1 = reshape(%addmm_2_1) {shape=[2, 3, 12]} : f32[2,3,12] loc("c_attn")
  return %view_1
}
"""


def test_conv1d_becomes_one_linear() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 12)).astype(np.float32)
    before = parse_graph(BEFORE, {"c_attn.weight": w,
                                  "c_attn.bias": rng.standard_normal(12).astype(np.float32)})
    after = get_pass("raise-linear")(before)
    assert print_graph(after) == AFTER
    assert np.array_equal(after.params["c_attn.weight.T"], w.T)
    verify(after)
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    assert_close(interpret(after, [x])[0], interpret(before, [x])[0], rel_tol=1e-6)


def test_a_product_of_two_activations_stays_a_matmul() -> None:
    g = parse_graph("""graph @mm {
  %a = input() : f32[6,8]
  %b = input() : f32[8,12]
  %mm = matmul(%a, %b) : f32[6,12]
  return %mm
}
""")
    assert print_graph(get_pass("raise-linear")(g)) == print_graph(g)
