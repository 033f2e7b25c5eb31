"""The scheme registry and what quantization refuses (with the layer named)."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.errors import UsageError
from llmc.ir import dtypes, interpret, verify
from llmc.ir.dtypes import bfp
from llmc.passes.manager import get_pass
from llmc.passes.quant import SCHEMES, IntWeights, Scheme, apply_scheme, get_scheme
from tests.conftest import traced

REQUIRED = ["bfp16", "bfp12", "bfp12-ksort", "mxfp4", "w4a16", "w4a8", "w8a8-int"]


def tiny(seq_len: int = 8):  # noqa: ANN201
    return traced("llama-tiny", "prefill", batch=1, seq_len=seq_len)


def test_registry_has_the_issue_names_and_passes() -> None:
    for name in REQUIRED:
        assert name in SCHEMES and SCHEMES[name].doc
        assert get_pass(f"quant:{name}")
    assert get_scheme("w4a16g128").weights.group == 128


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as exc:
        get_scheme("int3")
    for name in REQUIRED:
        assert name in str(exc.value)
    with pytest.raises(UsageError, match="multiple of 32"):
        get_scheme("w4a16g48")


def test_block_width_mismatch_names_the_layer() -> None:
    g = tiny().graph  # hidden 64, head dim 16
    with pytest.raises(UsageError, match=r"layers\.0\.attn: head dim 16 is not a multiple of "
                                         r"mxfp8e4m3's block of 32"):
        apply_scheme(g, "mxfp8")
    big_block = Scheme("bfp-b128", "test", weights=bfp(8, 128))
    with pytest.raises(UsageError, match=r"embed: embedding width 64 is not a multiple of "
                                         r"bfp8b128's block of 128"):
        apply_scheme(g, big_block)


def test_int4_groups_pad_the_reduction_dim() -> None:
    t = tiny()
    g = apply_scheme(t.graph, "w4a16-rtng128")  # ffn.down has in_features 160 -> 256
    verify(g)
    down = next(n for n in g.nodes if n.op == "wq_linear" and n.loc == "layers.0.ffn.down")
    w, s = down.inputs[1].type, down.inputs[2].type
    assert (w.shape, w.dtype, w.layout) == ((64, 128), dtypes.u8, "int4x2_lane32")
    assert s.shape == (64, 2)
    packed = g.params[down.inputs[1].node.attrs["name"]]
    from llmc.ir.pack import unpack_int4
    assert not unpack_int4(packed)[:, 160:].any()          # the padding is zeros
    ref = interpret(t.graph, t.inputs)[0]
    got = interpret(g, t.inputs)[0]
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 0.3


def test_bad_calibration_data_is_refused() -> None:
    g = tiny().graph
    with pytest.raises(UsageError, match="integer token ids, got dtype float32"):
        apply_scheme(g, "w8a8-int", np.zeros((2, 8), np.float32))
    with pytest.raises(UsageError, match=r"shape \(N, 8\).*got \(2, 9\)"):
        apply_scheme(g, "w8a8-int", np.zeros((2, 9), np.int64))
    with pytest.raises(UsageError, match=r"ids must lie in 0\.\.127"):
        apply_scheme(g, "w4a16", np.full((2, 8), 128))


def test_non_finite_weights_are_refused() -> None:
    g = tiny().graph
    params = dict(g.params)
    w = params["layers.1.ffn.up.weight"].copy()
    w[3, 4] = np.nan
    params["layers.1.ffn.up.weight"] = w
    from llmc.ir.graph import Graph
    bad = Graph(g.name, g.nodes, g.outputs, params)
    with pytest.raises(UsageError, match=r"layers\.1\.ffn\.up\.weight: 1 NaN/Inf"):
        apply_scheme(bad, "bfp16")


@pytest.mark.parametrize("scheme", ["bfp16", "bfp12", "w4a16", "w4a16-rtn", "w8a16"])
def test_storage_schemes_verify_and_stay_close(scheme: str) -> None:
    t = tiny()
    g = apply_scheme(t.graph, scheme, np.random.default_rng(1).integers(0, 128, (2, 8)))
    verify(g)
    ref = interpret(t.graph, t.inputs)
    got = interpret(g, t.inputs)
    rel = np.linalg.norm(got[0] - ref[0]) / np.linalg.norm(ref[0])
    assert rel < (0.3 if "w4" in scheme else 0.1), rel
    assert len(got) == len(ref)


@pytest.mark.parametrize("name", ["bfp16", "bfp12", "w4a16", "w4a16g32", "w8a16", "w8a8-int",
                                  "w4a8"])
def test_storage_is_what_the_passes_store(name: str) -> None:
    """Scheme.storage (what the cost model summarises a scheme by) matches the
    bytes the passes give a weight matrix and the KV cache's dtype."""
    from llmc.costmodel.synth import synth_graph
    from llmc.frontend.zoo.config import get_config

    s = get_scheme(name)
    g = apply_scheme(synth_graph(get_config("llama-tiny"), "decode", 1, 1, 8), s)
    loc = "layers.0.ffn.up"                                  # (160, 64): groups divide 64
    lin = next(n for n in g.nodes if n.loc == loc and n.op not in ("quantize", "requant",
                                                                  "add", "cast"))
    params = [v.node for v in lin.inputs if v.node.op == "param"]
    stored = sum(p.type.nbytes for p in params if p.type.rank == 2)
    if isinstance(s.weights, IntWeights) and not s.weights.group:  # per-channel scales:
        stored -= sum(p.type.nbytes for p in params if p.type.shape == (160, 1))  # not amortised
    assert stored == 160 * 64 * s.storage.weight.bits / 8
    cache = next(n for n in g.inputs if n.name == "k_cache_0").type.dtype
    assert cache == (s.storage.kv or dtypes.f32)


def test_ops_a_pass_adds_stay_in_their_layer() -> None:
    """Nodes a rewrite rule adds (a linear input's quantize, k-sort's RoPE)
    carry the rewritten node's module path, so fusion keeps them in their
    layer and the cost model counts them per layer."""
    g = apply_scheme(tiny().graph, "bfp12-ksort")
    added = [n for n in g.nodes if n.op in ("quantize", "concat", "neg")]
    assert added and all(n.loc for n in added)
    assert {n.loc for n in added if n.op == "quantize"} >= {"layers.0.attn.q_proj",
                                                           "layers.1.ffn.down", "lm_head"}
