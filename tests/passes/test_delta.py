"""The delta conversion pass: linear -> delta_linear, exact at threshold 0,
fewer events (and measured event rates) above it."""

import numpy as np

from llmc import api
from llmc.ir import interpret, verify
from llmc.passes.delta import measure_event_rates, to_delta


def test_delta_conversion_exact_at_zero_and_sparser_above() -> None:
    traced = api.trace("llama-tiny", "prefill", batch=2, seq_len=16, weights="random")
    g = traced.graph
    n_linear = sum(n.op == "linear" for n in g.nodes)
    d0 = to_delta(g, 0.0)
    verify(d0)
    assert sum(n.op == "delta_linear" for n in d0.nodes) == n_linear > 0
    assert not any(n.op == "linear" for n in d0.nodes)
    toks = np.random.default_rng(0).integers(0, 128, (2, 16))
    ref = interpret(g, {"tokens": toks})[0]
    assert np.allclose(interpret(d0, {"tokens": toks})[0], ref, atol=1e-5)
    d1, rates = measure_event_rates(to_delta(g, 0.5), toks)
    assert all(0 <= r < 1 for r in rates.values()) and min(rates.values()) < 0.9
    assert all("event_rate" in n.attrs for n in d1.nodes if n.op == "delta_linear")
    out = interpret(d1, {"tokens": toks})[0]
    assert not np.allclose(out, ref, atol=1e-5)                 # approximate now
    assert api.summarize(d1)["flops"] < api.summarize(d0)["flops"]
