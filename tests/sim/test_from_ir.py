"""The simulator's schedule takes matrix products from the op registry
(`OpDef.gemms`), so every op that multiplies matrices lands on the array:
float, block-format, integer and pruned linears, attention in every form,
routed experts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmc import api
from llmc.ir import dtypes
from llmc.ir.dtypes import bfp, f32, i8, i32, u4, u8
from llmc.ir.graph import Builder, Graph, Value
from llmc.ir.ops import all_ops
from llmc.ir.types import TensorType
from llmc.passes.quant import apply_scheme
from llmc.passes.sparsity import apply_sparsity
from llmc.passes.tiling import apply_attention
from llmc.sim.from_ir import schedule_from_graph
from llmc.sim.steps import DmaStep, GemmStep, VectorStep

# Op kinds whose ops multiply matrices (llmc/ir/ops/registry.py, OpDef.kind).
MATRIX_KINDS = ("linalg", "attention", "moe")


def T(*shape: int, dtype: dtypes.DType = f32, layout: str | None = None) -> TensorType:  # noqa: N802
    return TensorType(shape, dtype, layout)


def _graph(build: Callable[[Builder, Callable[..., Value]], Value]) -> Graph:
    """A one-op graph: `build(b, p)` adds the op; p(name, type) adds a param."""
    g = Graph("one")
    b = Builder(g)
    outs = build(b, lambda name, t: b.param(name, t, None))
    g.outputs = [outs]
    return g


def _attn(op: str, **attrs: object) -> Callable[[Builder, Callable[..., Value]], Value]:
    dt = i8 if op == "int_attention" else f32

    def build(b: Builder, p: Callable[..., Value]) -> Value:
        q = b.input("q", T(1, 4, 8, 16, dtype=dt))
        k = b.input("k", T(1, 2, 12, 16, dtype=dt))
        v = b.input("v", T(1, 2, 12, 16, dtype=dt))
        return b.op(op, q, k, v, **attrs)

    return build


_INT_ATTN = dict(causal=False, s_mult=1, s_shift=0, frac=8, prob_bits=8, o_mult=1, o_shift=0,
                 dtype=i8)


_INT_MOE = dict(top_k=2, norm_topk=True, frac=14, prob_bits=16, router_shift=0, gate_shift=0,
                up_shift=0, silu_in_shift=0, silu_out_shift=0, prod_shift=0, down_shift=0)


def _flash(causal: bool, key_start: int) -> Callable[[Builder, Callable[..., Value]], Value]:
    """A flash_step over 8 queries, key tile [key_start, key_start + 4) of 8 keys."""
    def build(b: Builder, p: Callable[..., Value]) -> Value:
        q = b.input("q", T(1, 2, 8, 16))
        kt = b.input("k", T(1, 2, 4, 16))
        vt = b.input("v", T(1, 2, 4, 16))
        o, l, m = _outs(b.add("flash_init", [q, vt]))
        return b.op("flash_step", q, kt, vt, o, l, m, causal=causal, scale=0.25, block_q=4,
                    key_start=key_start, key_len=8)

    return build


def _outs(node) -> tuple[Value, ...]:  # noqa: ANN001
    return tuple(Value(node, i) for i in range(len(node.types)))


# op -> (a one-op graph, the (m, n, k, count, label) of its GEMM steps)
CASES: dict[str, tuple[Callable, list[tuple[int, int, int, int, str]]]] = {
    # event ops (llmc/ir/ops/events.py): one (B, out, in) product per step, T = 4 steps
    "egru_layer": (lambda b, p: _outs(b.add("egru_layer", [
        b.input("x", T(1, 4, 8)), b.input("c", T(1, 6)), b.input("y", T(1, 6)),
        p("w", T(18, 8)), p("r", T(18, 6)), p("b", T(24))], {"threshold": 0.1}))[0],
        [(1, 18, 8, 4, ".in"), (1, 18, 6, 4, ".rec")]),
    "lif_layer": (lambda b, p: _outs(b.add("lif_layer", [
        b.input("x", T(1, 4, 8)), b.input("v", T(1, 6)), b.input("s", T(1, 6)),
        p("w", T(6, 8)), p("r", T(6, 6)), p("b", T(6))], {"threshold": 1.0, "beta": 0.9}))[0],
        [(1, 6, 8, 4, ".in"), (1, 6, 6, 4, ".rec")]),
    "delta_linear": (lambda b, p: b.op("delta_linear", b.input("x", T(2, 3, 32)),
                                       p("w", T(16, 32)), threshold=0.1),
                     [(2, 16, 32, 3, "")]),
    "linear": (lambda b, p: b.op("linear", b.input("x", T(2, 3, 32)), p("w", T(16, 32))),
               [(6, 16, 32, 1, "")]),
    "matmul": (lambda b, p: b.op("matmul", b.input("a", T(2, 4, 8, 32)),
                                 b.input("b", T(2, 4, 32, 16))),
               [(8, 16, 32, 8, "")]),
    "attention": (_attn("attention", causal=True, scale=0.25),
                  [(8, 12, 16, 4, ".qk"), (8, 16, 12, 4, ".pv")]),
    "int_attention": (_attn("int_attention", **_INT_ATTN),
                      [(8, 12, 16, 4, ".qk"), (8, 16, 12, 4, ".pv")]),
    # 8 tokens top-2 of 4 experts: all 4 hit (expected 3.98), 4 rows each
    "moe_ffn": (lambda b, p: b.op("moe_ffn", b.input("x", T(8, 16)), p("r", T(4, 16)),
                                  p("g", T(4, 32, 16)), p("u", T(4, 32, 16)),
                                  p("d", T(4, 16, 32)), top_k=2),
                [(8, 4, 16, 1, ".router"), (4, 64, 16, 4, ".gate_up"), (4, 16, 32, 4, ".down")]),
    # its integer twin: the same products
    "int_moe_ffn": (lambda b, p: b.op("int_moe_ffn", b.input("x", T(8, 16, dtype=i8)),
                                      p("r", T(4, 16, dtype=i8)), p("g", T(4, 32, 16, dtype=i8)),
                                      p("u", T(4, 32, 16, dtype=i8)),
                                      p("d", T(4, 16, 32, dtype=i8)), p("rq", T(4, 4, dtype=i32)),
                                      p("rg", T(4, 32, dtype=i32)), p("ru", T(4, 32, dtype=i32)),
                                      p("rd", T(4, 16, dtype=i32)), **_INT_MOE),
                    [(8, 4, 16, 1, ".router"), (4, 64, 16, 4, ".gate_up"),
                     (4, 16, 32, 4, ".down")]),
    # 12 rows in 4 ragged groups: taken as balanced, 3 rows per group
    "grouped_mm": (lambda b, p: b.op("grouped_mm", b.input("x", T(12, 16)), p("w", T(4, 16, 8)),
                                     b.input("offs", T(4, dtype=dtypes.i32))),
                   [(3, 8, 16, 4, "")]),
    "qlinear": (lambda b, p: b.op("qlinear", b.input("x", T(4, 32)),
                                  p("w", T(16, 32, dtype=bfp(8, 16)))),
                [(4, 16, 32, 1, "")]),
    "wq_linear": (lambda b, p: b.op("wq_linear", b.input("x", T(4, 64)),
                                    p("w", T(16, 32, dtype=u8, layout="int4x2_lane32")),
                                    p("s", T(16, 2)), group=32),
                  [(4, 16, 64, 1, "")]),
    "int_linear": (lambda b, p: b.op("int_linear", b.input("x", T(4, 64, dtype=i8)),
                                     p("w", T(16, 64, dtype=i8))),
                   [(4, 16, 64, 1, "")]),
    # 2:4: the dense (tokens, out, in) product, not half of it
    "sparse_linear": (lambda b, p: b.op("sparse_linear", b.input("x", T(4, 32)),
                                        p("v", T(16, 16)), p("m", T(16, 8, dtype=u4)),
                                        pattern="2:4", in_features=32, density=0.5),
                      [(4, 16, 32, 1, "")]),
    "act_sparse_linear": (lambda b, p: b.op("act_sparse_linear", b.input("x", T(4, 32)),
                                            p("w", T(16, 32)), p("tau", T(32)), sparsity=0.5),
                          [(4, 16, 32, 1, "")]),
    "flash_init": (lambda b, p: _outs(b.add("flash_init", [b.input("q", T(1, 2, 8, 16)),
                                                           b.input("v", T(1, 2, 8, 16))]))[0],
                   []),
    # non-causal: all 8 query rows see the tile
    "flash_step": (_flash(False, 0), [(8, 4, 16, 2, ".qk"), (8, 16, 4, 2, ".pv")]),
    # 8 query blocks of 2 keys over 8 keys, 4-blocks: pooled q . k (2, 2, 16) per head
    "attention_block_select": (
        lambda b, p: b.op("attention_block_select", b.input("q", T(1, 2, 8, 16)),
                          b.input("k", T(1, 2, 8, 16)), causal=True, scale=0.25,
                          block_size=4, block_topk=1),
        [(2, 2, 16, 2, ".score")]),
}


def _gemm_steps(g: Graph) -> list[tuple[int, int, int, int, str]]:
    return [(s.m, s.n, s.k, s.count, s.name.rpartition(g.nodes[-1].op)[2])
            for s in schedule_from_graph(g) if isinstance(s, GemmStep)]


def test_every_op_that_multiplies_matrices_says_which_products() -> None:
    missing = sorted(n for n, op in all_ops().items()
                     if op.kind in MATRIX_KINDS and op.gemms is None)
    assert not missing, f"ops of kind {MATRIX_KINDS} without `gemms=`: {missing}"
    with_gemms = {n for n, op in all_ops().items() if op.gemms is not None}
    assert with_gemms == set(CASES), "every op with `gemms` needs a case in CASES"


@pytest.mark.parametrize("op", sorted(CASES))
def test_one_op_schedules_its_products_on_the_array(op: str) -> None:
    build, want = CASES[op]
    g = _graph(build)
    assert g.nodes[-1].op == op
    assert _gemm_steps(g) == want


def test_flash_step_skips_query_tiles_that_see_no_key_of_its_tile() -> None:
    """Causal, keys [4, 8) of 8: query tile rows 0-3 see none, rows 4-7 do."""
    g = _graph(_flash(True, 4))
    assert _gemm_steps(g) == [(4, 4, 16, 2, ".qk"), (4, 16, 4, 2, ".pv")]
    softmax = [s for s in schedule_from_graph(g) if s.name.endswith(".softmax")]
    assert len(softmax) == 1 and softmax[0].read_bytes == softmax[0].write_bytes == \
        2 * 4 * (16 * 4 + 8)                          # O rows (f32) + l + m, both heads
    assert _gemm_steps(_graph(_flash(True, 0)))[0][0] == 8  # tile 0: every row sees key 0


def test_flash_init_is_a_state_write_not_a_product() -> None:
    steps = schedule_from_graph(_graph(CASES["flash_init"][0]))
    assert [type(s) for s in steps] == [DmaStep]


# ---- llmc-tiny: every linear and every attention on the array, whatever the rewrite --


@pytest.fixture(scope="module")
def tiny() -> Graph:
    return api.trace("llmc-tiny", "prefill", batch=1, seq_len=128, weights="meta").graph


def _shapes(g: Graph) -> list[tuple[int, int, int, int]]:
    return sorted((s.m, s.n, s.k, s.count) for s in schedule_from_graph(g)
                  if isinstance(s, GemmStep))


def test_tiny_float_graph_has_a_gemm_per_linear_and_two_per_attention(tiny: Graph) -> None:
    ops = [n.op for n in tiny.nodes]
    assert len(_shapes(tiny)) == ops.count("linear") + 2 * ops.count("attention") > 0


def test_tiny_w8a8_int_runs_the_same_products(tiny: Graph) -> None:
    q = apply_scheme(tiny, "w8a8-int")
    ops = [n.op for n in q.nodes]
    assert "linear" not in ops and "attention" not in ops and ops.count("int_linear") > 0
    assert _shapes(q) == _shapes(tiny)
    vector = [s for s in schedule_from_graph(q) if isinstance(s, VectorStep)]
    assert not any(s.name.endswith((":int_linear", ":int_attention")) for s in vector)


def test_tiny_2_4_runs_the_dense_products(tiny: Graph) -> None:
    s = apply_sparsity(tiny, "2:4")
    assert [n.op for n in s.nodes].count("sparse_linear") > 0
    assert _shapes(s) == _shapes(tiny)


def test_tiny_flash_attention_runs_each_key_tile_on_the_array(tiny: Graph) -> None:
    """flash:64x64 on 128 causal queries: key tile 0 is seen by all 128 rows,
    tile 1 by the second query tile only (64 rows)."""
    f = apply_attention(tiny, "flash:64x64")
    ops = [n.op for n in f.nodes]
    assert "attention" not in ops and ops.count("flash_step") == 2 * ops.count("flash_init")
    q = next(n for n in tiny.nodes if n.op == "attention").inputs[0].type
    b, h, _, d = q.shape
    heads, layers = b * h, ops.count("flash_init")
    flash = [x for x in _shapes(f) if x[3] == heads]        # per-head products
    assert sorted(flash) == sorted([(128, 64, d, heads), (64, 64, d, heads),
                                    (128, d, 64, heads), (64, d, 64, heads)] * layers)
    assert [x for x in _shapes(f) if x[3] == 1] == [x for x in _shapes(tiny) if x[3] == 1]


def test_from_ir_names_no_op() -> None:
    """The schedule asks the registry; it keeps no list of op names."""
    import ast
    import inspect

    import llmc.sim.from_ir as from_ir

    strings = {n.value for n in ast.walk(ast.parse(inspect.getsource(from_ir)))
               if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not strings & set(all_ops())
