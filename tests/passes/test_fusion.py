"""Kernel fusion: epilogues join their producer's kernel; the graph, its
memory plan and the cost model follow the kernels."""

from __future__ import annotations

import numpy as np
import pytest

from llmc import api
from llmc.costmodel.precision import parse_quant
from llmc.costmodel.synth import synth_workload
from llmc.frontend.zoo.config import get_config
from llmc.ir import parse_graph, print_graph, verify
from llmc.ir.alias import layer_of
from llmc.ir.arena import interpret_in_arena
from llmc.ir.dtypes import f32
from llmc.ir.graph import Builder, Graph
from llmc.ir.kernels import annotations, kernels
from llmc.ir.types import TensorType
from llmc.passes.fusion import fuse, fusible, planned_kernels
from llmc.passes.memplan import lower_bound, plan
from llmc.passes.memplan.liveness import liveness


@pytest.fixture(scope="module")
def llama():  # noqa: ANN201
    return fuse(api.trace("llama-tiny", "prefill", batch=1, seq_len=16, weights="meta").graph)


def _kernel_of(ks, name: str):  # noqa: ANN001, ANN202
    return next(k for k in ks if any(n.name == name for n in k.nodes))


def test_epilogues_join_their_producers(llama: Graph) -> None:
    ks = kernels(llama)
    for k in ks:                       # one anchor per kernel, and it comes first
        assert not any(not fusible(n) for n in k.nodes[1:])
    anchors = [n for n in llama.nodes if n.op not in ("input", "param")
               and n.op not in ("reshape", "permute", "slice", "expand", "arange")
               and not fusible(n)]
    assert len([k for k in ks if not fusible(k.anchor)]) == len(anchors)
    by_loc = {k.anchor.loc: [n.op for n in k.nodes] for k in ks}
    assert by_loc["layers.0.ffn.gate"] == ["linear", "silu", "mul"]          # SwiGLU
    assert by_loc["layers.0.ffn.down"] == ["linear", "add"]                  # residual
    assert by_loc["layers.0.attn.o_proj"] == ["linear", "add"]
    assert by_loc["layers.0.attn.q_proj"] == ["linear", "neg", "concat", "mul", "mul", "add"]
    assert by_loc["layers.0.attn.v_proj"] == ["linear"]                      # no RoPE on V


@pytest.mark.parametrize("model", ["llama-tiny", "gpt2-tiny", "moe-tiny"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_kernels_are_contiguous_and_stay_in_one_layer(model: str, phase: str) -> None:
    g = fuse(api.trace(model, phase, batch=1, seq_len=16, weights="meta").graph)
    verify(g)
    assert print_graph(parse_graph(print_graph(g))) == print_graph(g)   # ids survive the text
    pos = {n: i for i, n in enumerate(g.nodes)}
    for k in kernels(g):
        assert len({layer_of(n) for n in k.nodes}) == 1
        steps = [pos[n] for n in k.nodes]
        inside = [n for n in g.nodes[steps[0]:steps[-1] + 1] if "fusion" in n.attrs]
        assert all(n.attrs["fusion"] == k.id for n in inside)


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_fused_llmc_tiny_runs_bit_identically_in_a_smaller_arena(phase: str) -> None:
    t = api.trace("llmc-tiny", phase, batch=1, seq_len=32)
    f = fuse(t.graph)
    want = api.interpret(t.graph, t.inputs)
    live = liveness(f)
    p = plan(live.problem)
    got = interpret_in_arena(f, t.inputs, p.offsets, p.arena_bytes)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert lower_bound(live.problem) < lower_bound(liveness(t.graph).problem)


def test_saved_bytes_by_hand() -> None:
    """y = silu(x @ w.T) * u: silu and mul join the linear; the linear's and
    silu's outputs never leave the kernel, the product does."""
    g = Graph("epilogue")
    b = Builder(g)
    x = b.input("x", TensorType((8, 32), f32))
    u = b.input("u", TensorType((8, 16), f32))
    w = b.param("w", TensorType((16, 32), f32), None)
    h = b.add("linear", [x, w]).out()
    s = b.add("silu", [h]).out()
    g.outputs = [b.add("mul", [s, u]).out()]
    (k,) = kernels(fuse(g))
    out = 8 * 16 * 4
    assert [n.op for n in k.nodes] == ["linear", "silu", "mul"]
    assert k.saved_bytes == 2 * out + 2 * out          # two reads and two writes stay on chip
    assert {v.node.op for v in k.internal} == {"linear", "silu"}


def test_a_pass_after_fuse_makes_the_kernels_be_planned_again(llama: Graph) -> None:
    from llmc.passes.sparsity import apply_sparsity

    g = api.trace("llama-tiny", "prefill", batch=1, seq_len=16, weights="random").graph
    s = apply_sparsity(fuse(g), "2:4")
    assert annotations(s) is None                      # new nodes have no ids
    assert any(k.anchor.op == "sparse_linear" and len(k.nodes) > 1 for k in planned_kernels(s))


def test_cost_model_charges_kernels() -> None:
    """Fusion keeps every FLOP and drops the on-chip traffic."""
    cfg = get_config("llama-2-7b")
    p = parse_quant("bf16")
    for phase, tokens in (("prefill", 2048), ("decode", 1)):
        fused = synth_workload(cfg, phase, p, batch=1, tokens=tokens, context=2048)
        ops = synth_workload(cfg, phase, p, batch=1, tokens=tokens, context=2048, fuse=False)
        assert fused.flops == pytest.approx(ops.flops, rel=1e-12)
        assert fused.bytes < ops.bytes
        assert sum(r.count for r in fused.records) < sum(r.count for r in ops.records)
        assert fused.weight_bytes == ops.weight_bytes
