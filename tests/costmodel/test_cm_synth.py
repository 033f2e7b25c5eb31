"""The synthesized zoo IR equals what torch.export traces, node for node; one
layer counted n_layers times equals the full trace's registry cost; and the
long-context closed forms (formulas.py) match the traced graphs' costs."""

from __future__ import annotations

import functools
from collections import Counter

import pytest

from llmc.costmodel import formulas as F
from llmc.costmodel.precision import parse_quant
from llmc.costmodel.synth import synth_graph, synth_workload
from llmc.costmodel.workload import from_graph, live_weights
from llmc.frontend.zoo.config import ModelConfig, get_config
from llmc.ir.cost import graph_cost, node_cost
from llmc.ir.graph import Graph
from tests.conftest import traced

B, T = 2, 8                      # tests/conftest.py's traced() shapes
BF16 = parse_quant("bf16")


def signature(g: Graph) -> Counter:
    """Multiset of (op, module path, FLOPs, bytes, types) of the ops that matter
    (params nobody reads, like a tied model's second name, are left out)."""
    live = set(live_weights(g))
    return Counter((n.op, n.loc, node_cost(n).flops, node_cost(n).bytes_read,
                    node_cost(n).bytes_written, tuple(map(str, n.types)))
                   for n in g.nodes if n.op != "param" or n in live or n.attrs.get("buffer"))


@functools.cache
def shape_only(cfg: ModelConfig, phase: str, seq_len: int):
    from llmc import api
    from llmc.frontend.loader import LoadedModel
    from llmc.frontend.zoo.decoder import build_model

    return api.trace(LoadedModel(cfg.name, build_model(cfg, "meta"), cfg, "test"), phase,
                     batch=1, seq_len=seq_len).graph


@pytest.mark.parametrize("name", ["llama-tiny", "gpt2-tiny", "moe-tiny"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_synth_equals_trace(name: str, phase: str) -> None:
    cfg = get_config(name)
    g = traced(name, phase).graph
    s = synth_graph(cfg, phase, B, T if phase == "prefill" else 1, T)
    assert signature(s) == signature(g)
    assert graph_cost(s) == graph_cost(g)


@pytest.mark.parametrize("name", ["llama-tiny", "gpt2-tiny", "moe-tiny"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_one_layer_scaled_by_depth_equals_full_trace(name: str, phase: str) -> None:
    cfg = get_config(name)
    tokens = T if phase == "prefill" else 1
    full = from_graph(traced(name, phase).graph, phase, BF16, batch=B, tokens=tokens, context=T)
    scaled = synth_workload(cfg, phase, BF16, batch=B, tokens=tokens, context=T)
    assert scaled.flops == full.flops
    assert scaled.bytes == full.bytes
    for field in ("weight_bytes", "weight_bytes_sharded", "params_total", "params_active"):
        assert getattr(scaled, field) == getattr(full, field), field
    by_op = lambda w: Counter({(r.op, r.loc): r.count for r in w.records})  # noqa: E731
    assert by_op(scaled) == by_op(full)


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_real_dimensions_shape_only(phase: str) -> None:
    """qwen2-7b's shapes (GQA 28:4, q/k/v biases) cut to 2 layers, traced on meta."""
    cfg = get_config("qwen2-7b").replace(n_layers=2, max_seq_len=64)
    g = shape_only(cfg, phase, 16)
    s = synth_graph(cfg, phase, 1, 16 if phase == "prefill" else 1, 16)
    assert signature(s) == signature(g)
    tokens = 16 if phase == "prefill" else 1
    full = from_graph(g, phase, BF16, batch=1, tokens=tokens, context=16, fuse=False)
    scaled = synth_workload(cfg, phase, BF16, batch=1, tokens=tokens, context=16, fuse=False)
    assert (scaled.flops, scaled.bytes, scaled.weight_bytes) == (full.flops, full.bytes,
                                                                 full.weight_bytes)
    closed = F.prefill_flops(cfg, 16) if phase == "prefill" else F.decode_flops(cfg, 16)
    assert sum(r.flops * r.count for r in full.records
               if r.op in ("linear", "attention")) == pytest.approx(closed, rel=1e-12)


def heavy_flops(w) -> float:  # noqa: ANN001
    """FLOPs of the ops the closed forms count: linear, attention, MoE."""
    return sum(r.flops * r.count for r in w.records
               if r.op in ("linear", "attention", "moe_ffn"))


@pytest.mark.parametrize("name", ["llama-tiny", "gpt2-tiny", "moe-tiny"])
def test_closed_forms_match_the_traced_graph(name: str) -> None:
    cfg = get_config(name)
    pre = from_graph(traced(name, "prefill").graph, "prefill", BF16, batch=2, tokens=8, context=8,
                     fuse=False)
    dec = from_graph(traced(name, "decode").graph, "decode", BF16, batch=2, tokens=1, context=8,
                     fuse=False)
    assert heavy_flops(pre) == pytest.approx(F.prefill_flops(cfg, 8, batch=2), rel=1e-12)
    assert heavy_flops(dec) == pytest.approx(F.decode_flops(cfg, 8, batch=2), rel=1e-12)
    assert pre.weight_bytes == F.weight_bytes(cfg, 16, 16)
    kv_read = sum(r.kv_bytes * r.count for r in dec.records if r.op == "attention")
    assert kv_read == 2 * 8 * F.kv_bytes_per_token(cfg, 16)
    weights_read = sum(r.weight_bytes * r.count for r in dec.records)   # matrices only
    vectors = (cfg.n_layers * F.layer_vectors(cfg)
               + cfg.hidden * (2 if cfg.family == "gpt2" else 1)) * 2
    assert weights_read == pytest.approx(F.decode_weight_bytes(cfg, 2, 16, 16) - vectors,
                                         abs=cfg.n_layers)    # MoE: the registry rounds bytes
