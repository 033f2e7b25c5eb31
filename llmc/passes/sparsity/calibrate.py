"""Calibration: run a graph on sample inputs, node by node, all samples at
once, letting hooks see (and change) the inputs of chosen nodes first.

This makes one-shot pruning sequential, as SparseGPT's is: when a linear is
reached, its calibration inputs already flow through every pruned layer
before it, and the hook's pruned weight is what runs from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llmc.errors import UsageError
from llmc.ir.graph import Graph, Node
from llmc.ir.interp import _conform, _last_uses, bind_inputs
from llmc.ir.ops import get_op

# hook(node, per-sample input lists) -> replacement per-sample input lists
Hook = Callable[[Node, list[list[np.ndarray]]], list[list[np.ndarray]]]
Samples = Sequence[Sequence[np.ndarray]]


def run_with_hooks(graph: Graph, samples: Samples, hooks: dict[str, Hook]) -> None:
    """Run `graph` on every sample; before a node named in `hooks` runs, its
    hook receives the node's inputs for all samples and returns the inputs
    to run it with."""
    if graph.shape_only:
        raise UsageError(f"graph @{graph.name} is shape-only; calibration needs real weights")
    envs: list[dict[Node, tuple[np.ndarray, ...]]] = [{} for _ in samples]
    bound = [bind_inputs(graph, list(s)) for s in samples]
    last_use = _last_uses(graph)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        for i, node in enumerate(graph.nodes):
            if node.op == "param":
                value = _conform(graph.params[node.attrs["name"]], node.type, node.name)
                for env in envs:
                    env[node] = (value,)
            elif node.op == "input":
                for env, b in zip(envs, bound, strict=True):
                    env[node] = (b[node],)
            else:
                args = [[env[v.node][v.index] for v in node.inputs] for env in envs]
                if node.name in hooks:
                    args = hooks[node.name](node, args)
                run = get_op(node.op).run
                for env, a in zip(envs, args, strict=True):
                    out = run(a, node.attrs)
                    outs = out if isinstance(out, tuple) else (out,)
                    env[node] = tuple(_conform(o, t, node.name)
                                      for o, t in zip(outs, node.types, strict=True))
            for dead in last_use.get(i, ()):
                for env in envs:
                    env.pop(dead, None)


def default_calibration(graph: Graph, n: int = 16, seed: int = 0) -> list[list[np.ndarray]]:
    """n samples for a prefill graph taking token ids (B, T): windows of the
    llmc corpus's training split (UTF-8 bytes; ids taken modulo the vocab)."""
    from llmc.frontend.zoo import data

    inputs = graph.inputs
    if len(inputs) != 1 or inputs[0].type.rank != 2 or not inputs[0].type.dtype.is_int:
        raise UsageError(f"graph @{graph.name} does not take token ids alone (a decode graph?); "
                         "calibrate on the prefill graph and reuse its plan "
                         "(apply_sparsity(decode_graph, spec, calib=plan))")
    B, T = inputs[0].type.shape
    vocab = _vocab_size(graph)
    train, _ = data.corpus_splits()
    rows = data.batches(train, T, n * B, seed)[:, :-1] % vocab
    return [[rows[i * B:(i + 1) * B]] for i in range(n)]


def _vocab_size(graph: Graph) -> int:
    for node in graph.nodes:
        if node.op == "embedding":
            return node.inputs[0].type.shape[0]
    return 256
