"""raise-moe: transformers' grouped expert dispatch becomes one moe_ffn,
the same function (interpreted before and after), or is refused."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.errors import UnsupportedOpError
from llmc.ir import interpret, parse_graph, print_graph, verify
from llmc.numerics import assert_close
from llmc.passes.manager import get_pass

# One Mixtral block as converted: 3 tokens, 4 experts, top-2, d=8, f=4.
ROUTER = """
  %x = input() : f32[3,8]
  %gate.weight = param() {name="gate.weight"} : f32[4,8]
  %gate_up = param() {name="experts.gate_up_proj"} : f32[4,8,8]
  %down = param() {name="experts.down_proj"} : f32[4,8,4]
  %linear = linear(%x, %gate.weight) : f32[3,4] loc("mlp.gate")
  %_softmax = softmax(%linear) {dim=1} : f32[3,4] loc("mlp.gate")
  %topk:2 = topk(%_softmax) {dim=1, k=2} : f32[3,2], i64[3,2] loc("mlp.gate")
"""
RENORMALISE = """
  %sum_1 = sum(%topk) {dims=[1], keepdim=true} : f32[3,1] loc("mlp.gate")
  %w = div(%topk, %sum_1) : f32[3,2] loc("mlp.gate")
"""
DISPATCH = """
  %view_3 = reshape(%topk#1) {shape=[6]} : i64[6] loc("mlp.experts")
  %sort:2 = sort(%view_3) {descending=false, dim=0} : i64[6], i64[6] loc("mlp.experts")
  %c = const() {dtype=i64, shape=[], value=2} : i64[] loc("mlp.experts")
  %div_1 = div(%sort#1, %c) : i64[6] loc("mlp.experts")
  %index = index(%x, %div_1) {dims=[0]} : f32[6,8] loc("mlp.experts")
  %view_4 = reshape(%w) {shape=[6]} : f32[6] loc("mlp.experts")
  %index_1 = index(%view_4, %sort#1) {dims=[0]} : f32[6] loc("mlp.experts")
  %_to_copy = cast(%sort) {dtype=f32} : f32[6] loc("mlp.experts")
  %histc = histc(%_to_copy) {bins=4, max=3.0, min=0.0} : f32[4] loc("mlp.experts")
  %cumsum = cumsum(%histc) {dim=0, dtype=i32} : i32[4] loc("mlp.experts")
  %permute = permute(%gate_up) {perm=[0, 2, 1]} : f32[4,8,8] loc("mlp.experts")
  %gu = grouped_mm(%index, %permute, %cumsum) : f32[6,8] loc("mlp.experts")
  %g = slice(%gu) {dim=1, end=4, start=0, step=1} : f32[6,4] loc("mlp.experts")
  %u = slice(%gu) {dim=1, end=8, start=4, step=1} : f32[6,4] loc("mlp.experts")
  %silu = silu(%g) : f32[6,4] loc("mlp.experts.act_fn")
  %mul = mul(%silu, %u) : f32[6,4] loc("mlp.experts")
  %permute_1 = permute(%down) {perm=[0, 2, 1]} : f32[4,4,8] loc("mlp.experts")
  %o = grouped_mm(%mul, %permute_1, %cumsum) : f32[6,8] loc("mlp.experts")
  %unsqueeze = reshape(%index_1) {shape=[6, 1]} : f32[6,1] loc("mlp.experts")
  %mul_1 = mul(%o, %unsqueeze) : f32[6,8] loc("mlp.experts")
  %empty = const() {dtype=i64, shape=[6], value=0} : i64[6] loc("mlp.experts")
  %arange = arange() {dtype=i64, end=6, start=0, step=1} : i64[6] loc("mlp.experts")
  %inv = index_copy(%empty, %sort#1, %arange) {dim=0} : i64[6] loc("mlp.experts")
  %index_2 = index(%mul_1, %inv) {dims=[0]} : f32[6,8] loc("mlp.experts")
  %view_5 = reshape(%index_2) {shape=[3, 2, 8]} : f32[3,2,8] loc("mlp.experts")
  %y = sum(%view_5) {dims=[1], keepdim=false} : f32[3,8] loc("mlp.experts")
  return %y
}
"""
# The same block with experts_implementation="batched_mm": each pair's weights.
BATCHED = """
  %unsqueeze = reshape(%x) {shape=[3, 1, 8]} : f32[3,1,8] loc("mlp.experts")
  %expand = expand(%unsqueeze) {shape=[3, 2, 8]} : f32[3,2,8] loc("mlp.experts")
  %view_2 = reshape(%expand) {shape=[6, 8]} : f32[6,8] loc("mlp.experts")
  %ids = reshape(%topk#1) {shape=[6]} : i64[6] loc("mlp.experts")
  %index = index(%gate_up, %ids) {dims=[0]} : f32[6,8,8] loc("mlp.experts")
  %unsqueeze_1 = reshape(%view_2) {shape=[6, 8, 1]} : f32[6,8,1] loc("mlp.experts")
  %bmm = matmul(%index, %unsqueeze_1) : f32[6,8,1] loc("mlp.experts")
  %gu = reshape(%bmm) {shape=[6, 8]} : f32[6,8] loc("mlp.experts")
  %g = slice(%gu) {dim=1, end=4, start=0, step=1} : f32[6,4] loc("mlp.experts")
  %u = slice(%gu) {dim=1, end=8, start=4, step=1} : f32[6,4] loc("mlp.experts")
  %silu = silu(%g) : f32[6,4] loc("mlp.experts.act_fn")
  %mul = mul(%silu, %u) : f32[6,4] loc("mlp.experts")
  %index_1 = index(%down, %ids) {dims=[0]} : f32[6,8,4] loc("mlp.experts")
  %unsqueeze_2 = reshape(%mul) {shape=[6, 4, 1]} : f32[6,4,1] loc("mlp.experts")
  %bmm_1 = matmul(%index_1, %unsqueeze_2) : f32[6,8,1] loc("mlp.experts")
  %o = reshape(%bmm_1) {shape=[6, 8]} : f32[6,8] loc("mlp.experts")
  %view_6 = reshape(%w) {shape=[6]} : f32[6] loc("mlp.experts")
  %unsqueeze_4 = reshape(%view_6) {shape=[6, 1]} : f32[6,1] loc("mlp.experts")
  %mul_1 = mul(%o, %unsqueeze_4) : f32[6,8] loc("mlp.experts")
  %view_7 = reshape(%mul_1) {shape=[3, 2, 8]} : f32[3,2,8] loc("mlp.experts")
  %y = sum(%view_7) {dims=[1], keepdim=false} : f32[3,8] loc("mlp.experts")
  return %y
}
"""
AFTER = """graph @moe {
  %x = input() : f32[3,8]
  %gate.weight = param() {name="gate.weight"} : f32[4,8]
  %down = param() {name="experts.down_proj"} : f32[4,8,4]
  %experts.gate_up_proj.gate = param() {name="experts.gate_up_proj.gate"} : f32[4,4,8]
  %experts.gate_up_proj.up = param() {name="experts.gate_up_proj.up"} : f32[4,4,8]
  %y_1 = moe_ffn(%x, %gate.weight, %experts.gate_up_proj.gate, %experts.gate_up_proj.up, \
%down) {norm_topk=NORM, top_k=2} : f32[3,8] loc("mlp.experts")
  return %y_1
}
""".replace("\\\n", "")


def block(renormalise: bool, dispatch: str = DISPATCH, act: str = "silu"):  # noqa: ANN201
    rng = np.random.default_rng(0)
    shapes = {"gate.weight": (4, 8), "experts.gate_up_proj": (4, 8, 8),
              "experts.down_proj": (4, 8, 4)}
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    weights = RENORMALISE if renormalise else "  %w = cast(%topk) {dtype=f32} : f32[3,2]\n"
    text = "graph @moe {" + ROUTER + weights + dispatch.replace("silu(", f"{act}(")
    return parse_graph(text, params)


@pytest.mark.parametrize("dispatch", [DISPATCH, BATCHED], ids=["grouped_mm", "batched_mm"])
@pytest.mark.parametrize("renormalise", [True, False])
def test_dispatch_becomes_one_moe_ffn(renormalise: bool, dispatch: str) -> None:
    before = block(renormalise, dispatch)
    after = get_pass("raise-moe")(before)
    verify(after)
    assert print_graph(after) == AFTER.replace("NORM", str(renormalise).lower())
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    assert_close(interpret(after, [x])[0], interpret(before, [x])[0])


@pytest.mark.parametrize("dispatch, op", [(DISPATCH, "grouped_mm %gu, 2 such"),
                                          (BATCHED, "index %index, 2 such")])
def test_a_dispatch_not_recognised_is_refused(dispatch: str, op: str) -> None:
    with pytest.raises(UnsupportedOpError) as err:
        get_pass("raise-moe")(block(True, dispatch, act="gelu"))
    assert str(err.value).startswith(f"expert routing at mlp.experts ({op}")


def test_graphs_without_grouped_products_pass_unchanged() -> None:
    g = parse_graph("graph @g {\n  %x = input() : f32[2]\n  %y = neg(%x) : f32[2]\n"
                    "  return %y\n}\n")
    assert get_pass("raise-moe")(g) is g
