"""The event ops (llmc/ir/ops/events.py): numpy semantics equal the PyTorch
modules step for step, costs follow event rate and density, delta_linear."""

import numpy as np
import pytest
import torch

from llmc.frontend.zoo.event_lm import EventConfig, build_event_model
from llmc.ir import interpret
from llmc.ir.cost import graph_cost
from llmc.ir.ops import get_op


def _cfg(kind: str) -> EventConfig:
    return EventConfig(f"t-{kind}", kind, 40, 12, (20, 16), threshold=0.1 if kind == "egru"
                       else 1.0, beta=0.9 if kind == "lif" else 0.0)


@pytest.mark.parametrize("kind", ["egru", "lif"])
def test_interpreter_equals_torch_module(kind: str) -> None:
    model = build_event_model(_cfg(kind), seed=3)
    graph = model.to_graph("prefill", 2, 9)
    toks = np.random.default_rng(0).integers(0, 40, (2, 9))
    inputs = [toks, *model.example_inputs("prefill", 2, 9)[1:]]
    got = interpret(graph, inputs)
    with torch.no_grad():
        ref, states, events = model(torch.from_numpy(toks))
    assert np.allclose(got[0], ref.numpy(), atol=1e-5)
    assert np.array_equal(got[1], states[0][0].numpy()) or np.allclose(
        got[1], states[0][0].numpy(), atol=1e-6)
    assert 0 < float(events[0].mean()) < 1  # some units fire, not all


def test_decode_continues_prefill_state() -> None:
    model = build_event_model(_cfg("egru"), seed=1)
    full = model.to_graph("prefill", 1, 6)
    step = model.to_graph("decode", 1, 6)
    toks = np.arange(6)[None] % 40
    z = list(model.example_inputs("prefill", 1, 6)[1:])
    whole = interpret(full, [toks, *z])
    first = interpret(model.to_graph("prefill", 1, 5), [toks[:, :5], *z])
    last = interpret(step, [toks[:, 5:], *first[1:]])
    assert np.allclose(last[0][0, 0], whole[0][0, 5], atol=1e-6)


def test_cost_scales_with_event_rate_and_density() -> None:
    g = build_event_model(_cfg("egru"), "meta").to_graph("prefill", 1, 8)
    node = next(n for n in g.nodes if n.op == "egru_layer")
    dense = get_op("egru_layer").cost(node).flops
    half = get_op("egru_layer").cost(
        type(node)(node.op, node.inputs, node.attrs.replace(event_rate=0.5, density=0.1),
                   node.types, node.name)).flops
    macs = 3 * 20 * (12 + 20) * 8
    assert dense == 2 * macs + 20 * 8 * 20
    assert half == pytest.approx(2 * macs * 0.05 + 20 * 8 * 20)
    assert graph_cost(g).flops > 0


def test_delta_linear_sends_only_changes() -> None:
    from llmc.ir.ops.events import delta_events

    x = np.array([[[1.0, 0.0], [1.05, 0.5], [1.3, 0.5]]])          # (1, 3, 2)
    hat, ev = delta_events(x, 0.1)
    assert ev.tolist() == [[[True, False], [False, True], [True, False]]]
    assert np.allclose(hat[0, 1], [1.0, 0.5]) and np.allclose(hat[0, 2], [1.3, 0.5])
    w = np.array([[2.0, 1.0]])
    y = get_op("delta_linear").run([x, w], {"threshold": 0.0})
    assert np.allclose(y, x @ w.T)                                  # threshold 0: exact
