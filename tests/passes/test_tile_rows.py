"""tile-rows: a prefill's position-wise work in row tiles (before -> after
text), the same function of the same inputs, bit for bit here."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.errors import UsageError
from llmc.ir import interpret, parse_graph, print_graph, verify
from llmc.numerics import assert_close
from llmc.passes.manager import get_stage, run_pipeline
from llmc.passes.tile_rows import tile_rows, token_axes, token_count

HEAD = """  %tokens = input() : i64[1,4]
  %emb.weight = param() {name="emb.weight"} : f32[16,8]
"""
ROWS = "graph @rows {\n" + HEAD + """  %w = param() {name="w"} : f32[8]
  %fc.weight = param() {name="fc.weight"} : f32[8,8]
  %embedding = embedding(%emb.weight, %tokens) : f32[1,4,8] loc("embed")
  %norm = rms_norm(%embedding, %w) {eps=1e-05} : f32[1,4,8] loc("layers.0.norm")
  %fc = linear(%norm, %fc.weight) : f32[1,4,8] loc("layers.0.fc")
  %act = silu(%fc) : f32[1,4,8] loc("layers.0")
  %add = add(%embedding, %act) : f32[1,4,8] loc("layers.0")
  return %add
}
"""
# each tile runs on through the layer before the next starts; one concat joins the output
ROWS_AFTER = "graph @rows {\n" + HEAD + """  %w = param() {name="w"} : f32[8]
  %fc.weight = param() {name="fc.weight"} : f32[8,8]
  %tokens.r0 = slice(%tokens) {dim=1, end=2, start=0, step=1} : i64[1,2]
  %embedding.r0 = embedding(%emb.weight, %tokens.r0) : f32[1,2,8] loc("embed")
  %norm.r0 = rms_norm(%embedding.r0, %w) {eps=1e-05} : f32[1,2,8] loc("layers.0.norm")
  %fc.r0 = linear(%norm.r0, %fc.weight) : f32[1,2,8] loc("layers.0.fc")
  %act.r0 = silu(%fc.r0) : f32[1,2,8] loc("layers.0")
  %add.r0 = add(%embedding.r0, %act.r0) : f32[1,2,8] loc("layers.0")
  %tokens.r1 = slice(%tokens) {dim=1, end=4, start=2, step=1} : i64[1,2]
  %embedding.r1 = embedding(%emb.weight, %tokens.r1) : f32[1,2,8] loc("embed")
  %norm.r1 = rms_norm(%embedding.r1, %w) {eps=1e-05} : f32[1,2,8] loc("layers.0.norm")
  %fc.r1 = linear(%norm.r1, %fc.weight) : f32[1,2,8] loc("layers.0.fc")
  %act.r1 = silu(%fc.r1) : f32[1,2,8] loc("layers.0")
  %add.r1 = add(%embedding.r1, %act.r1) : f32[1,2,8] loc("layers.0")
  %add.joined = concat(%add.r0, %add.r1) {dim=1} : f32[1,4,8] loc("layers.0")
  return %add.joined
}
"""
ATTN = "graph @attn {\n" + HEAD + """  %embedding = embedding(%emb.weight, %tokens) : f32[1,4,8]
  %view = reshape(%embedding) {shape=[1, 4, 2, 4]} : f32[1,4,2,4]
  %q = permute(%view) {perm=[0, 2, 1, 3]} : f32[1,2,4,4]
  %sdpa = attention(%q, %q, %q) {causal=true, scale=0.5} : f32[1,2,4,4]
  %back = permute(%sdpa) {perm=[0, 2, 1, 3]} : f32[1,4,2,4]
  %out = reshape(%back) {shape=[1, 4, 8]} : f32[1,4,8]
  %res = add(%embedding, %out) : f32[1,4,8]
  return %res
}
"""
# the views follow the token axis (dim 1, then 2 after the permute); keys and
# values are joined whole, and each query tile masks the keys after its rows
ATTN_AFTER = "graph @attn {\n" + HEAD + """  %tokens.r0 = slice(%tokens) {dim=1, end=2, start=0, step=1} : i64[1,2]
  %embedding.r0 = embedding(%emb.weight, %tokens.r0) : f32[1,2,8]
  %view.r0 = reshape(%embedding.r0) {shape=[1, 2, 2, 4]} : f32[1,2,2,4]
  %q.r0 = permute(%view.r0) {perm=[0, 2, 1, 3]} : f32[1,2,2,4]
  %tile_pos = arange() {dtype=i64, end=4, start=0, step=1} : i64[4]
  %tile_keys = reshape(%tile_pos) {shape=[1, 4]} : i64[1,4]
  %tile_pos.r0 = slice(%tile_pos) {dim=0, end=2, start=0, step=1} : i64[2]
  %tile_rows.r0 = reshape(%tile_pos.r0) {shape=[2, 1]} : i64[2,1]
  %tile_mask.r0 = le(%tile_keys, %tile_rows.r0) : bool[2,4]
  %tokens.r1 = slice(%tokens) {dim=1, end=4, start=2, step=1} : i64[1,2]
  %embedding.r1 = embedding(%emb.weight, %tokens.r1) : f32[1,2,8]
  %view.r1 = reshape(%embedding.r1) {shape=[1, 2, 2, 4]} : f32[1,2,2,4]
  %q.r1 = permute(%view.r1) {perm=[0, 2, 1, 3]} : f32[1,2,2,4]
  %q.joined = concat(%q.r0, %q.r1) {dim=2} : f32[1,2,4,4]
  %sdpa.r0 = attention(%q.r0, %q.joined, %q.joined, %tile_mask.r0) {causal=false, scale=0.5} : f32[1,2,2,4]
  %back.r0 = permute(%sdpa.r0) {perm=[0, 2, 1, 3]} : f32[1,2,2,4]
  %out.r0 = reshape(%back.r0) {shape=[1, 2, 8]} : f32[1,2,8]
  %res.r0 = add(%embedding.r0, %out.r0) : f32[1,2,8]
  %tile_pos.r1 = slice(%tile_pos) {dim=0, end=4, start=2, step=1} : i64[2]
  %tile_rows.r1 = reshape(%tile_pos.r1) {shape=[2, 1]} : i64[2,1]
  %tile_mask.r1 = le(%tile_keys, %tile_rows.r1) : bool[2,4]
  %sdpa.r1 = attention(%q.r1, %q.joined, %q.joined, %tile_mask.r1) {causal=false, scale=0.5} : f32[1,2,2,4]
  %back.r1 = permute(%sdpa.r1) {perm=[0, 2, 1, 3]} : f32[1,2,2,4]
  %out.r1 = reshape(%back.r1) {shape=[1, 2, 8]} : f32[1,2,8]
  %res.r1 = add(%embedding.r1, %out.r1) : f32[1,2,8]
  %res.joined = concat(%res.r0, %res.r1) {dim=1} : f32[1,4,8]
  return %res.joined
}
"""
# a softmax across tokens is no row's own work: its input is joined, and what
# follows it runs whole
MIX = "graph @mix {\n" + HEAD + """  %embedding = embedding(%emb.weight, %tokens) : f32[1,4,8]
  %sm = softmax(%embedding) {dim=1} : f32[1,4,8]
  %e = exp(%sm) : f32[1,4,8]
  return %e, %embedding
}
"""
MIX_AFTER = "graph @mix {\n" + HEAD + """  %tokens.r0 = slice(%tokens) {dim=1, end=2, start=0, step=1} : i64[1,2]
  %embedding.r0 = embedding(%emb.weight, %tokens.r0) : f32[1,2,8]
  %tokens.r1 = slice(%tokens) {dim=1, end=4, start=2, step=1} : i64[1,2]
  %embedding.r1 = embedding(%emb.weight, %tokens.r1) : f32[1,2,8]
  %embedding.joined = concat(%embedding.r0, %embedding.r1) {dim=1} : f32[1,4,8]
  %sm = softmax(%embedding.joined) {dim=1} : f32[1,4,8]
  %e = exp(%sm) : f32[1,4,8]
  return %e, %embedding.joined
}
"""


def _graph(text: str):  # noqa: ANN202
    rng = np.random.default_rng(0)
    g = parse_graph(text)
    params = {k: rng.standard_normal(next(n.type.shape for n in g.param_nodes
                                           if n.attrs["name"] == k)).astype(np.float32)
              for k in g.params}
    return parse_graph(text, params)


TOKENS = np.array([[3, 1, 4, 1]], dtype=np.int64)


@pytest.mark.parametrize("before,after", [(ROWS, ROWS_AFTER), (ATTN, ATTN_AFTER),
                                          (MIX, MIX_AFTER)], ids=["rows", "attention", "mix"])
def test_golden(before: str, after: str) -> None:
    g = _graph(before)
    tiled = tile_rows(g, 2)
    verify(tiled)
    assert print_graph(tiled) == print_graph(parse_graph(after))
    for a, b in zip(interpret(tiled, [TOKENS]), interpret(g, [TOKENS]), strict=True):
        assert np.array_equal(a, b)


def test_uneven_tiles_and_more_tiles_than_tokens() -> None:
    g = _graph(ATTN)
    three = tile_rows(g, 3)      # rows [0,1) [1,2) [2,4)
    slices = [(n.attrs["start"], n.attrs["end"]) for n in three.nodes
              if n.name.startswith("tokens.r")]
    assert slices == [(0, 1), (1, 2), (2, 4)]
    many = tile_rows(g, 99)      # one tile per token
    assert sum(n.op == "attention" for n in many.nodes) == 4
    for tiled in (three, many):  # one-row products take another BLAS path: not bit for bit
        verify(tiled)
        assert_close(interpret(tiled, [TOKENS])[0], interpret(g, [TOKENS])[0], rel_tol=1e-6)


def test_what_carries_the_token_axis() -> None:
    g = _graph(ATTN)
    axes = {v.node.name: a for v, a in token_axes(g).items()}
    assert axes == {"tokens": 1, "embedding": 1, "view": 1, "q": 2, "sdpa": 2, "back": 1,
                    "out": 1, "res": 1}
    # a reshape that folds tokens into another dim ends the row-wise region
    mixed = _graph(ROWS.replace(
        '  %add = add(%embedding, %act) : f32[1,4,8] loc("layers.0")\n  return %add',
        '  %add = add(%embedding, %act) : f32[1,4,8] loc("layers.0")\n'
        '  %flat = reshape(%add) {shape=[32]} : f32[32]\n  return %flat'))
    tiled = tile_rows(mixed, 2)
    assert [n.op for n in tiled.nodes[-3:]] == ["add", "concat", "reshape"]
    assert np.array_equal(interpret(tiled, [TOKENS])[0], interpret(mixed, [TOKENS])[0])


def test_a_graph_without_tokens_to_split_is_unchanged() -> None:
    one = _graph(ROWS.replace("i64[1,4]", "i64[1,1]").replace("[1,4,8]", "[1,1,8]"))
    assert token_count(one) == 1 and tile_rows(one, 4) is one
    rows = _graph(ROWS)
    assert tile_rows(rows, 1) is rows
    with pytest.raises(UsageError, match="at least 1"):
        tile_rows(_graph(ROWS), 0)


def test_the_stage_in_the_pass_manager() -> None:
    g = _graph(ROWS)
    out = run_pipeline(g, ["tile-rows:2", "verify"])
    assert print_graph(out) == print_graph(parse_graph(ROWS_AFTER))
    for bad in ("two", "0", "-1"):
        with pytest.raises(UsageError, match="positive integer"):
            get_stage(f"tile-rows:{bad}")


INT_ATTN = """graph @intattn {
  %tokens = input() : i64[1,6]
  %emb.weight = param() {name="emb.weight"} : i8[16,8]
  %embedding = embedding(%emb.weight, %tokens) : i8[1,6,8]
  %view = reshape(%embedding) {shape=[1, 6, 2, 4]} : i8[1,6,2,4]
  %q = permute(%view) {perm=[0, 2, 1, 3]} : i8[1,2,6,4]
  %sdpa = int_attention(%q, %q, %q) {causal=true, dtype=i8, frac=14, o_mult=1073741824, o_shift=31, prob_bits=16, s_mult=1073741824, s_shift=26} : i8[1,2,6,4]
  return %sdpa
}
"""


def test_integer_attention_per_query_tile_is_bit_exact() -> None:
    """int_attention takes the same causal mask per query tile; integer
    arithmetic gives the same bits for any tile count."""
    rng = np.random.default_rng(0)
    g = parse_graph(INT_ATTN, {"emb.weight": rng.integers(-100, 100, (16, 8)).astype(np.int8)})
    tokens = np.array([[3, 1, 4, 1, 5, 9]], dtype=np.int64)
    want = interpret(g, [tokens])[0]
    for n in (2, 3, 6):
        tiled = tile_rows(g, n)
        verify(tiled)
        ops = [x.op for x in tiled.nodes]
        assert ops.count("int_attention") == n and ops.count("le") == n
        assert np.array_equal(interpret(tiled, [tokens])[0], want)
