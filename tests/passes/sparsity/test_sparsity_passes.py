"""apply_sparsity on traced models: IR structure, exact semantics, plans
shared between phases, shape-only graphs, work saved, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from llmc import api
from llmc.errors import UsageError
from llmc.hw.targets import TARGETS
from llmc.ir import dtypes, interpret, verify
from llmc.ir.graph import Builder, Graph
from llmc.ir.ops.sparse import dense_weight
from llmc.ir.text import parse_graph, print_graph
from llmc.ir.types import TensorType
from llmc.passes.manager import run_pipeline
from llmc.passes.sparsity import (
    act_targets,
    apply_sparsity,
    parse_sparsity_spec,
    sparsify,
    weight_targets,
    work_saved,
)
from llmc.passes.tiling import apply_attention

N_LAYERS = 2  # llama-tiny


@pytest.fixture(scope="module")
def prefill() -> api.Traced:
    return api.trace("llama-tiny", "prefill", batch=1, seq_len=12, weights="random")


@pytest.fixture(scope="module")
def decode() -> api.Traced:
    return api.trace("llama-tiny", "decode", batch=1, seq_len=12, weights="random")


@pytest.fixture(scope="module")
def meta() -> api.Traced:
    return api.trace("llama-tiny", "decode", batch=1, seq_len=64, weights="meta")


@pytest.fixture(scope="module")
def calib() -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return [[rng.integers(0, 128, (1, 12))] for _ in range(4)]


def _dense_equivalent(sparse: Graph, dense: Graph) -> Graph:
    """`dense` with each pruned weight replaced by the sparse graph's dense form."""
    params = dict(dense.params)
    for n in sparse.nodes:
        if n.op == "sparse_linear":
            name = n.inputs[1].node.attrs["name"].removesuffix(".values")
            params[name] = dense_weight([None] + [sparse.params[v.node.attrs["name"]]
                                                  for v in n.inputs[1:]], n.attrs)
    return Graph(dense.name, dense.nodes, dense.outputs, params)


@pytest.mark.parametrize("spec", ["2:4", "0.5", "2:4:wanda", "0.6:wanda", "2:4:sparsegpt",
                                  "0.5:sparsegpt"])
def test_weight_sparsity_is_explicit_and_exact(prefill: api.Traced, calib, spec: str) -> None:  # noqa: ANN001
    g = apply_sparsity(prefill.graph, spec, calib)
    verify(g)
    parsed = parse_sparsity_spec(spec)
    sparse = [n for n in g.nodes if n.op == "sparse_linear"]
    assert len(sparse) == 7 * N_LAYERS                           # q k v o gate up down
    assert {n.attrs["pattern"] for n in sparse} == {parsed.pattern}
    assert {n.attrs["method"] for n in sparse} == {parsed.method}
    for n in sparse:
        w = dense_weight([None] + [g.params[v.node.attrs["name"]] for v in n.inputs[1:]],
                         n.attrs)
        # per-matrix (magnitude, SparseGPT) or per-row (Wanda) rounding of the kept count
        assert np.count_nonzero(w) == pytest.approx(w.size * (1 - parsed.ratio), abs=w.shape[0])
    ops = [n.op for n in g.nodes]
    assert ops.count("linear") == 1                              # the LM head stays dense
    # the sparse graph computes exactly what the dense graph does with pruned weights
    want = interpret(_dense_equivalent(g, prefill.graph), prefill.inputs)
    for got, w in zip(interpret(g, prefill.inputs), want, strict=True):
        assert np.array_equal(got, w)
    text = print_graph(g)
    assert print_graph(parse_graph(text, g.params)) == text


def test_prefill_plan_applies_to_decode(prefill: api.Traced, decode: api.Traced, calib) -> None:  # noqa: ANN001
    g, plan = sparsify(prefill.graph, "2:4:sparsegpt", calib)
    d = apply_sparsity(decode.graph, "2:4:sparsegpt", plan)
    verify(d)
    for name, value in g.params.items():
        if name.endswith((".values", ".meta")):
            assert np.array_equal(d.params[name], value)
    with pytest.raises(UsageError, match="decode graph"):
        apply_sparsity(decode.graph, "2:4:sparsegpt")           # no tokens-only input to calibrate
    with pytest.raises(UsageError, match="plan for 2:4:sparsegpt"):
        apply_sparsity(decode.graph, "2:4", plan)


def test_activation_sparsity_calibrates_thresholds(prefill: api.Traced, decode: api.Traced,
                                                   calib) -> None:  # noqa: ANN001
    assert [n.loc for n in act_targets(prefill.graph)] == [f"layers.{i}.ffn.down"
                                                          for i in range(N_LAYERS)]
    g, plan = sparsify(prefill.graph, "act:0.6", calib)
    verify(g)
    nodes = [n for n in g.nodes if n.op == "act_sparse_linear"]
    assert len(nodes) == N_LAYERS
    for n in nodes:
        assert n.attrs["sparsity"] == pytest.approx(0.6, abs=0.01)
    d = apply_sparsity(decode.graph, "act:0.6", plan)            # the same thresholds in decode
    verify(d)
    assert [n.op for n in d.nodes].count("act_sparse_linear") == N_LAYERS
    # achieved on the calibration data, measured in the IR interpreter
    seen = []
    record = {n: n.inputs[0] for n in nodes}
    for (x,) in calib:
        interpret(g, [x], on_value=lambda node, outs: seen.extend(
            [(outs, node)] if node in {v.node for v in record.values()} else []))
    for outs, node in seen:
        tau = plan.thresholds[next(k for k, v in record.items() if v.node is node)
                              .inputs[1].node.attrs["name"]]
        assert np.mean(np.abs(outs[0]) < tau) == pytest.approx(0.6, abs=0.05)


def test_shape_only_graphs_record_pattern_and_density(meta: api.Traced) -> None:
    g0 = meta.graph
    assert g0.shape_only
    for spec in ("2:4", "0.5:sparsegpt", "act:0.6"):
        g = apply_sparsity(g0, spec)
        verify(g)
        assert g.shape_only
        saved = work_saved(g0, g)
        assert saved["flops_saved"] > 0 and saved["bytes_saved"] > 0
    g = apply_sparsity(g0, "0.7")
    dens = {n.attrs["density"] for n in g.nodes if n.op == "sparse_linear"}
    assert all(abs(d - 0.3) < 1e-3 for d in dens)


def test_work_saved_matches_registry_costs(meta: api.Traced) -> None:
    g = apply_sparsity(meta.graph, "2:4")
    s = work_saved(meta.graph, g)
    assert s["sparse_linears"] == 7 * N_LAYERS and s["patterns"] == ["2:4"]
    # decode reads every weight once: 2:4 halves the pruned weights and adds 4 bits / 4 weights
    pruned = sum(n.inputs[1].type.numel for n in weight_targets(meta.graph))
    assert s["weight_bytes_before"] - s["weight_bytes_after"] == pruned * 4 // 2 - pruned // 8
    stream = apply_attention(meta.graph, "stream:4+16")
    assert work_saved(meta.graph, stream)["bytes_saved"] > 0


def test_passes_registered_for_pipelines(prefill: api.Traced) -> None:
    g = run_pipeline(prefill.graph, ["sparsity:2:4", "verify"])
    assert [n.op for n in g.nodes].count("sparse_linear") == 7 * N_LAYERS
    with pytest.raises(UsageError, match="no linear layer to sparsify"):
        run_pipeline(g, ["sparsity:0.5"])


@pytest.mark.parametrize("spec,message", [
    ("0", "strictly between 0 and 1"), ("1", "strictly between"), ("1.5", "strictly between"),
    ("-0.2", "strictly between"), ("act:1", "strictly between"), ("act:0", "strictly between"),
    ("3:4", "only the 2:4 pattern"), ("2:8:sparsegpt", "only the 2:4"),
    ("0.5:obs", "unknown method"), ("half", "cannot read"), ("act:x", "cannot read"), ("0.5e", "not a number"),
])
def test_bad_specs_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sparsity_spec(spec)


def test_2_4_on_a_width_not_divisible_by_4_is_a_usage_error() -> None:
    g = Graph("odd")
    b = Builder(g)
    x = b.input("x", TensorType((2, 6), dtypes.f32))
    w = b.param("proj.weight", TensorType((8, 6), dtypes.f32), np.ones((8, 6), np.float32))
    h = b.op("linear", x, w)
    g.outputs = [b.op("relu", h)]
    with pytest.raises(UsageError, match=r"divisible by 4; not: proj.weight \(in_features 6\)"):
        apply_sparsity(g, "2:4")
    assert [n.op for n in apply_sparsity(g, "0.5").nodes].count("sparse_linear") == 1


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_compile_flow_on_every_target(meta: api.Traced, target: str) -> None:
    """What `llmc compile --sparsity 2:4 --attention stream:4+16,flash` does per phase."""
    tgt = TARGETS[target]
    g = run_pipeline(meta.graph, tgt.pipeline)
    before = g
    g = apply_sparsity(g, "2:4")
    g = apply_attention(g, "stream:4+16,flash", tgt.device)
    verify(g)
    saved = work_saved(before, g)
    assert saved["flops_saved"] > 0.3 and saved["bytes_saved"] > 0.3
    assert saved["sparse_linears"] == 7 * N_LAYERS
    assert saved["sparse_attentions"] == saved["tiled_attentions"] == N_LAYERS
    assert saved["attention_bytes_after"] < saved["attention_bytes_standard"]


FFN = """
graph @ffn {
  %x = input() : f32[1,4,16]
  %up.weight = param() {name="up.weight"} : f32[8,16]
  %down.weight = param() {name="down.weight"} : f32[16,8]
  %h = linear(%x, %up.weight) : f32[1,4,8] loc("up")
  %a = silu(%h) : f32[1,4,8]
  %y = linear(%a, %down.weight) : f32[1,4,16] loc("down")
  %z = add(%x, %y) : f32[1,4,16]
  return %z
}
"""

FFN_2_4 = """
graph @ffn {
  %x = input() : f32[1,4,16]
  %up.weight.values = param() {name="up.weight.values"} : f32[8,8]
  %up.weight.meta = param() {name="up.weight.meta"} : u4[8,4]
  %h_1 = sparse_linear(%x, %up.weight.values, %up.weight.meta) {density=0.5, in_features=16, method="magnitude", pattern="2:4"} : f32[1,4,8] loc("up")
  %a = silu(%h_1) : f32[1,4,8]
  %down.weight.values = param() {name="down.weight.values"} : f32[16,4]
  %down.weight.meta = param() {name="down.weight.meta"} : u4[16,2]
  %y_1 = sparse_linear(%a, %down.weight.values, %down.weight.meta) {density=0.5, in_features=8, method="magnitude", pattern="2:4"} : f32[1,4,16] loc("down")
  %z = add(%x, %y_1) : f32[1,4,16]
  return %z
}
"""

FFN_ACT = """
graph @ffn {
  %x = input() : f32[1,4,16]
  %up.weight = param() {name="up.weight"} : f32[8,16]
  %down.weight = param() {name="down.weight"} : f32[16,8]
  %h = linear(%x, %up.weight) : f32[1,4,8] loc("up")
  %a = silu(%h) : f32[1,4,8]
  %down.weight.act_threshold = param() {name="down.weight.act_threshold"} : f32[8]
  %y_1 = act_sparse_linear(%a, %down.weight, %down.weight.act_threshold) {sparsity=0.5} : f32[1,4,16] loc("down")
  %z = add(%x, %y_1) : f32[1,4,16]
  return %z
}
"""


@pytest.mark.parametrize("spec,after", [("2:4", FFN_2_4), ("act:0.5", FFN_ACT)])
def test_golden_shape_only_ffn(spec: str, after: str) -> None:
    assert print_graph(apply_sparsity(parse_graph(FFN), spec)) == print_graph(parse_graph(after))
