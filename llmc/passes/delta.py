"""Delta conversion: linear layers into delta form (delta_linear), so a
model's projections run event-driven (Neil et al. 2017, "Delta Networks";
Gao et al., "Training for temporal sparsity in deep neural networks";
docs/references.md).

Each `linear` over a sequence (x (B, T, I)) becomes `delta_linear` with the
same weights: an input channel sends an event only when it changed by more
than `threshold` since the value it last sent, and the product is updated
by those events alone (llmc/ir/ops/events.py). Threshold 0 is exact;
larger thresholds trade accuracy for fewer events. `measure_event_rates`
runs the converted graph on token windows and records each layer's
measured fraction of input channels sending (its cost's `event_rate`).

    g = to_delta(graph, 0.05)
    g, rates = measure_event_rates(g, windows)       # windows (n, T) token ids
"""

from __future__ import annotations

import numpy as np

from llmc.ir import Graph, interpret
from llmc.ir.graph import Node
from llmc.ir.ops.events import delta_events
from llmc.passes.rewrite import RewriteCtx, annotate, rewrite


def _delta_rule(threshold: float):  # noqa: ANN202
    def rule(node: Node, ctx: RewriteCtx):  # noqa: ANN202
        if node.op != "linear" or node.inputs[0].type.rank != 3:
            return None
        return ctx.b.op("delta_linear", *node.inputs, name=node.name,
                        threshold=float(threshold))

    return rule


def to_delta(graph: Graph, threshold: float) -> Graph:
    """`graph` with every sequence linear in delta form at `threshold`."""
    return rewrite(graph, [_delta_rule(threshold)])


def measure_event_rates(graph: Graph, windows: np.ndarray
                        ) -> tuple[Graph, dict[str, float]]:
    """Run `graph` on token windows (n, T) in batches of its batch size and
    set each delta_linear's `event_rate` to its measured fraction of
    input-channel steps that sent an event; returns the graph and the rates."""
    deltas = {n: [0, 0] for n in graph.nodes if n.op == "delta_linear"}

    batch = next(n for n in graph.inputs if n.name == "tokens").type.shape[0]
    inputs_of = {n: n.inputs[0] for n in deltas}
    values: dict[Node, np.ndarray] = {}

    def keep(node: Node, outs: tuple[np.ndarray, ...]) -> None:
        for d, v in inputs_of.items():
            if v.node is node:
                values[d] = outs[v.index]

    for i in range(0, len(windows), batch):
        rows = windows[np.arange(i, i + batch) % len(windows)]
        values.clear()
        interpret(graph, {"tokens": rows}, on_value=keep)
        for d, x in values.items():
            _, ev = delta_events(x, d.attrs["threshold"])
            deltas[d][0] += int(ev.sum())
            deltas[d][1] += ev.size
    rates = {d.name: s / max(1, n) for d, (s, n) in deltas.items()}
    out = annotate(graph, {d: {"event_rate": round(rates[d.name], 6)} for d in deltas})
    return out, rates
