"""Integer-only lowering: bit-exact against an independent integer
implementation, no float op between embedding and logits (verifier check),
decode consistent with prefill, and close to the float model."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from llmc import api
from llmc.api import quantize
from llmc.errors import IRError
from llmc.ir import Builder, interpret, verify
from llmc.ir.graph import Graph, Node, Value
from llmc.passes.quant import apply_scheme
from llmc.passes.quant.check import no_float_between_embedding_and_logits
from tests.conftest import traced
from tests.passes.quant import int_reference

CALIB = np.random.default_rng(7).integers(0, 128, (4, 8))


def tiny():  # noqa: ANN201
    return traced("llama-tiny", "prefill", batch=1, seq_len=8)


@functools.cache
def lowered(scheme: str) -> tuple[Graph, np.ndarray]:
    t = tiny()
    return apply_scheme(t.graph, scheme, CALIB), t.inputs[0]


@pytest.mark.parametrize("scheme", ["w8a8-int", "w4a8"])
def test_bit_exact_against_independent_reference(scheme: str) -> None:
    g, tokens = lowered(scheme)
    got = interpret(g, [tokens])
    ref = int_reference.run(g, {"tokens": tokens})
    assert len(got) == len(ref) == 5
    for a, b in zip(got, ref, strict=True):
        assert np.array_equal(a, b.astype(a.dtype)), "integer path differs"
    assert got[0].dtype == np.float32 and got[1].dtype == np.int8


def test_structure_is_integer_only() -> None:
    g, _ = lowered("w4a8")
    verify(g, extra=[no_float_between_embedding_and_logits])
    ops = {n.op for n in g.nodes}
    assert {"int_linear", "int_attention", "int_rms_norm", "int_silu", "requant"} <= ops
    assert not ops & {"linear", "attention", "rms_norm", "silu", "softmax", "exp"}
    packed = [n for n in g.param_nodes if n.type.layout == "int4x2_lane32"]
    assert packed and all(n.type.dtype.name == "u8" for n in packed)


def test_verifier_check_catches_float_ops() -> None:
    float_graph = tiny().graph
    problems = no_float_between_embedding_and_logits(float_graph)
    assert any("rms_norm" in p for p in problems)
    with pytest.raises(IRError, match="float op between embedding and logits"):
        verify(float_graph, extra=[no_float_between_embedding_and_logits])
    # one float op slipped into an integer graph is caught and named
    g, _ = lowered("w8a8-int")
    bad = _with_float_silu(g)
    problems = no_float_between_embedding_and_logits(bad)
    assert len(problems) >= 1 and all("sneaky" in p or "input %sneaky" in p for p in problems)


def _with_float_silu(g: Graph) -> Graph:
    """g with one int_silu replaced by cast -> silu(f32) -> cast back."""
    out = Graph(g.name, params=dict(g.params))
    b = Builder(out)
    remap: dict[Value, Value] = {}
    done = False
    for n in g.nodes:
        ins = tuple(remap.get(v, v) for v in n.inputs)
        if n.op == "int_silu" and not done:
            from llmc.ir import dtypes
            f = b.add("cast", [ins[0]], {"dtype": dtypes.f32}, "sneaky_in").out()
            s = b.add("silu", [f], {}, "sneaky").out()
            remap[n.out()] = b.add("cast", [s], {"dtype": n.type.dtype}, "sneaky_out").out()
            done = True
            continue
        new = Node(n.op, ins, n.attrs, n.types, n.name, n.loc)
        out.nodes.append(new)
        b._names.add(n.name)
        remap[n.out()] = new.out()
    out.outputs = [remap.get(v, v) for v in g.outputs]
    return out


def test_close_to_float() -> None:
    t = tiny()
    ref = interpret(t.graph, t.inputs)[0].astype(np.float64)
    for scheme, bound in (("w8a8-int", 0.05), ("w4a8", 0.3)):
        got = interpret(lowered(scheme)[0], t.inputs)[0].astype(np.float64)
        assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < bound, scheme


def test_decode_is_bit_exact_with_prefill() -> None:
    """The integer decode graph, fed the prefill's int8 KV cache, reproduces the
    prefill's last-position logits bit for bit (same static ranges)."""
    loaded = api.load_model("llama-tiny", "random")
    pre, tokens = lowered("w8a8-int")
    dec = quantize(loaded, "w8a8-int", CALIB, phase="decode", batch=1, seq_len=8)
    verify(dec, extra=[no_float_between_embedding_and_logits])
    outs = interpret(pre, [tokens])
    caches = [c.copy() for c in outs[1:]]
    for c in caches:
        c[:, :, 7] = 0                     # slot 7 is written by the decode step
    got = interpret(dec, [tokens[:, 7:8], np.array([7]), *caches])
    assert np.array_equal(got[0][:, 0], outs[0][:, 7])
    for a, b in zip(got[1:], outs[1:], strict=True):
        assert np.array_equal(a, b)       # the cache row written equals prefill's
