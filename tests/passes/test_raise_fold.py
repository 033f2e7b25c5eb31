"""fold-constants and simplify: what a traced graph computes from weights and
shapes alone is computed at compile time; RoPE's run-time cos/sin become a
table read at positions, as llmc's zoo writes it; a decode step's RoPE,
whose positions are an input, is left alone."""

from __future__ import annotations

import numpy as np

from llmc.ir import interpret, parse_graph, print_graph, verify
from llmc.numerics import assert_close
from llmc.passes.manager import get_pass, run_pipeline

# transformers' rotary embedding (LlamaRotaryEmbedding) and its use, x * cos
ROPE = """graph @rope {
  %x = input() : f32[1,2,3,4]
  %inv_freq = param() {buffer=true, name="rotary_emb.inv_freq"} : f32[2]
  POSITIONS
  %pos = reshape(%arange) {shape=[1, 3, 1]} : i64[1,3,1] loc("rotary_emb")
  %posf = cast(%pos) {dtype=f32} : f32[1,3,1] loc("rotary_emb")
  %freqs = mul(%posf, %inv_freq) : f32[1,3,2] loc("rotary_emb")
  %emb = concat(%freqs, %freqs) {dim=2} : f32[1,3,4] loc("rotary_emb")
  %cos = cos(%emb) : f32[1,3,4] loc("rotary_emb")
  %one = const() {dtype=f32, shape=[], value=1.0} : f32[] loc("rotary_emb")
  %cos_s = mul(%cos, %one) : f32[1,3,4] loc("rotary_emb")
  %c4 = reshape(%cos_s) {shape=[1, 1, 3, 4]} : f32[1,1,3,4] loc("attn")
  %y = mul(%x, %c4) : f32[1,2,3,4] loc("attn")
  return %y
}
"""
PREFILL = '%arange = arange() {dtype=i64, end=3, start=0, step=1} : i64[3] loc("model")'
DECODE = """%at = input() : i64[]
  %steps = arange() {dtype=i64, end=3, start=0, step=1} : i64[3] loc("model")
  %arange = add(%steps, %at) : i64[3] loc("model")"""
AFTER = """graph @rope {
  %x = input() : f32[1,2,3,4]
  %rotary_emb.cos = param() {buffer=true, name="rotary_emb.cos"} : f32[3,4]
  %positions = arange() {dtype=i64, end=3, start=0, step=1} : i64[3] loc("rotary_emb")
  %cos_1 = embedding(%rotary_emb.cos, %positions) : f32[3,4] loc("rotary_emb")
  %y_1_1 = mul(%x, %cos_1) : f32[1,2,3,4] loc("attn")
  return %y_1_1
}
"""
STAGES = ["simplify", "fold-constants", "simplify"]


def rope(positions: str, weights: bool = True):  # noqa: ANN201
    inv_freq = 1.0 / 10000 ** (np.arange(2, dtype=np.float32) / 2)
    return parse_graph(ROPE.replace("POSITIONS", positions),
                       {"rotary_emb.inv_freq": inv_freq} if weights else None)


def test_prefill_rope_becomes_a_table_read_at_positions() -> None:
    before = rope(PREFILL)
    after = run_pipeline(before, STAGES)
    assert print_graph(after) == AFTER
    angles = np.arange(3)[:, None] * before.params["rotary_emb.inv_freq"]
    assert_close(after.params["rotary_emb.cos"], np.cos(np.concatenate([angles] * 2, 1)))
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    assert_close(interpret(after, [x])[0], interpret(before, [x])[0], rel_tol=1e-6)
    assert print_graph(run_pipeline(after, STAGES)) == AFTER          # folded once


def test_decode_rope_reads_its_position_input_and_is_not_folded() -> None:
    before = rope(DECODE)
    after = get_pass("fold-constants")(before)
    assert print_graph(after) == print_graph(before)


def test_a_shape_only_graph_folds_to_tables_without_values() -> None:
    after = run_pipeline(rope(PREFILL, weights=False), STAGES)
    verify(after)
    assert print_graph(after) == AFTER and after.params["rotary_emb.cos"] is None


def test_a_scalar_becomes_a_const_and_views_of_a_weight_keep_its_name() -> None:
    before = parse_graph("""graph @g {
  %x = input() : f32[2,4]
  %w = param() {name="w"} : f32[4,4]
  %d = const() {dtype=f32, shape=[], value=64.0} : f32[] loc("attn")
  %s = sqrt(%d) : f32[] loc("attn")
  %y = div(%x, %s) : f32[2,4] loc("attn")
  %wt = permute(%w) {perm=[1, 0]} : f32[4,4] loc("proj")
  %z = matmul(%y, %wt) : f32[2,4] loc("proj")
  return %z
}
""", {"w": np.eye(4, dtype=np.float32)})
    after = get_pass("fold-constants")(before)
    ops = {n.name: (n.op, dict(n.attrs)) for n in after.nodes}
    assert ops["s_1"] == ("const", {"dtype": ops["s_1"][1]["dtype"], "shape": (),
                                    "value": 8.0})
    assert ops["wt"][0] == "permute"                  # the weight is not copied
    x = np.ones((2, 4), np.float32)
    assert_close(interpret(after, [x])[0], interpret(before, [x])[0], rel_tol=0)


def test_simplify_drops_steps_that_compute_nothing() -> None:
    before = parse_graph("""graph @g {
  %x = input() : f32[2,3,4]
  %e = input() : f32[2,3,0]
  %one = const() {dtype=f32, shape=[], value=1.0} : f32[]
  %a = mul(%one, %x) : f32[2,3,4]
  %r = reshape(%a) {shape=[6, 4]} : f32[6,4]
  %r2 = reshape(%r) {shape=[2, 3, 4]} : f32[2,3,4]
  %c = concat(%r2, %e) {dim=2} : f32[2,3,4]
  return %c
}
""")
    assert print_graph(get_pass("simplify")(before)) == """graph @g {
  %x = input() : f32[2,3,4]
  %e = input() : f32[2,3,0]
  return %x
}
"""
