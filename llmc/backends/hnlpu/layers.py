"""The hardwired layers of a graph: its int_linear nodes as `HnLayer`s.

Only 4-bit integer weights are hardwired (compile with --quant w4a8); an
int_linear with other weights is refused with one line. A layer above the
RTL simulation limit keeps only its analytic cost (system.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llmc.errors import UsageError
from llmc.ir import Graph, Node
from llmc.ir.ops.intops import int_weight
from llmc.rtl.hn import WEIGHT_BITS, HnLayer

RTL_MAX_WEIGHTS = 65536         # per layer: N x K weights one RTL simulation holds
RTL_MAX_STEP_WEIGHTS = 262144   # all layers of one simulated decode step
# a step above this many weights is written with compact neurons (llmc_hn_neuron,
# llmc.rtl.hn): wire by wire, llmc-tiny's 262,144 are ~30 MB of Verilog
RTL_WIRED_MAX_STEP_WEIGHTS = 131072


def linear_nodes(graph: Graph) -> list[Node]:
    """The graph's int_linear nodes, checked to have 4-bit weights."""
    nodes = [n for n in graph.nodes if n.op == "int_linear"]
    for n in nodes:
        w = n.inputs[1].type
        if not (w.layout and str(w.layout).startswith(f"int{WEIGHT_BITS}")):
            raise UsageError(f"%{n.name} ({_where(n)}) has {w.dtype.name} weights "
                             f"({w}); the HNLPU backend hardwires {WEIGHT_BITS}-bit weights: "
                             f"compile with --quant w4a8")
    return nodes


def _where(node: Node) -> str:
    return node.loc or node.name


def layer_of(graph: Graph, node: Node) -> HnLayer:
    """The HnLayer of an int_linear node (its codes, group scales, source)."""
    k = node.inputs[0].type.shape[-1]
    codes = int_weight(np.asarray(graph.params[node.inputs[1].node.attrs["name"]]))[:, :k]
    n = codes.shape[0]
    if len(node.inputs) > 2:
        group = int(node.attrs["group"])
        scales = np.asarray(graph.params[node.inputs[2].node.attrs["name"]]).astype(np.int64)
        scales = scales[:, : -(-k // group)]
    else:
        group, scales = k, np.ones((n, 1), np.int64)
    return HnLayer(_where(node), codes, scales, group, source=f"int_linear %{node.name} "
                   f"({_where(node)})")


def too_large(layers: Sequence[tuple[Node, HnLayer]]) -> str | None:
    """Why these layers cannot be simulated together (None: they can)."""
    for _node, layer in layers:
        if layer.n * layer.k > RTL_MAX_WEIGHTS:
            return (f"layer {layer.name} has {layer.n} x {layer.k} = {layer.n * layer.k} "
                    f"weights, above the RTL simulation limit of {RTL_MAX_WEIGHTS} per layer")
    total = sum(layer.n * layer.k for _, layer in layers)
    if total > RTL_MAX_STEP_WEIGHTS:
        return (f"the decode step hardwires {total} weights, above the RTL simulation limit "
                f"of {RTL_MAX_STEP_WEIGHTS} per step")
    return None


def capture(graph: Graph, nodes: Sequence[Node]) -> Callable[[Node, tuple], None]:
    """An interpreter `on_value` hook recording each node's input and output
    (in `captured`: node name -> (x, y)), on the first run only."""
    wanted = {n.name for n in nodes}
    inputs = {n.inputs[0].node.name for n in nodes}
    seen: dict[str, tuple] = {}
    captured: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def hook(node: Node, outs: tuple) -> None:
        if node.name in inputs:
            seen[node.name] = outs
        if node.name in wanted and node.name not in captured:
            v = node.inputs[0]
            captured[node.name] = (np.asarray(seen[v.node.name][v.index]), np.asarray(outs[0]))

    hook.captured = captured  # type: ignore[attr-defined]
    return hook
