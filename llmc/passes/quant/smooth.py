"""SmoothQuant (Xiao et al. 2023): migrate activation outliers into weights
before per-tensor int8 activation quantization. An exact float rewrite:

  rms_norm gain g -> linears reading it:   g' = g / s,  W' = W * s (columns)
  up projection -> down (through silu(gate) * up):  W_up' = W_up / s (rows),
                                                     W_down' = W_down * s (columns)

with s_j = max|x_j|^alpha / max|W[:, j]|^(1 - alpha) from calibration.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from llmc.ir.graph import Graph, Node, Value
from llmc.passes.quant.calibrate import Calibration, semantic_keys
from llmc.passes.rewrite import RewriteCtx, rewrite


def _factors(act: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    wmax = np.max([np.abs(w).max(axis=0) for w in weights], axis=0)
    s = np.maximum(act, 1e-5) ** alpha / np.maximum(wmax, 1e-5) ** (1 - alpha)
    return np.clip(s, 1e-5, 1e5)


def _consumers(graph: Graph) -> dict[Value, list[Node]]:
    out: dict[Value, list[Node]] = defaultdict(list)
    for n in graph.nodes:
        if n.op == "linear" and n.inputs[1].node.op == "param":
            out[n.inputs[0]].append(n)
    return out


def smooth(graph: Graph, cal: Calibration, alpha: float = 0.5) -> Graph:
    """The graph with SmoothQuant factors folded into gains and weights."""
    keys = semantic_keys(graph)
    params = graph.params
    col: dict[str, np.ndarray] = {}     # weight param -> column factors (multiply)
    row: dict[str, np.ndarray] = {}     # weight param -> row factors (divide)
    gain: dict[str, np.ndarray] = {}    # rms_norm gain param -> factors (divide)
    wname = lambda lin: lin.inputs[1].node.attrs["name"]  # noqa: E731
    for x, lins in _consumers(graph).items():
        if keys[lins[0]] not in cal.chan:
            continue
        act = cal.chan[keys[lins[0]]]
        ws = [params[wname(lin)] for lin in lins]
        prod = x.node
        if prod.op == "rms_norm" and len(prod.inputs) > 1 and prod.inputs[1].node.op == "param":
            s = _factors(act, ws, alpha)
            gain[prod.inputs[1].node.attrs["name"]] = s
        elif prod.op == "mul" and len(lins) == 1:
            up = [v.node for v in prod.inputs if v.node.op == "linear"
                  and v.node.inputs[1].node.op == "param"]
            if len(up) != 1:
                continue
            s = _factors(act, ws, alpha)
            row[wname(up[0])] = s
        else:
            continue
        for lin in lins:
            col[wname(lin)] = s

    def fold(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op == "rms_norm" and len(node.inputs) > 1:
            name = node.inputs[1].node.attrs.get("name")
            if name in gain:
                p = ctx.b.param(f"{name}.smooth", node.inputs[1].type,
                                (params[name] / gain[name]).astype(np.float32))
                return ctx.b.add("rms_norm", [node.inputs[0], p], dict(node.attrs),
                                 node.name + "_sm", loc=node.loc).out()
        if node.op == "linear" and node.inputs[1].node.op == "param":
            name = wname(node)
            if name in col or name in row:
                w = params[name].astype(np.float64)
                if name in col:
                    w = w * col[name][None, :]
                if name in row:
                    w = w / row[name][:, None]
                p = ctx.b.param(f"{name}.smooth", node.inputs[1].type, w.astype(np.float32))
                return ctx.b.add("linear", [node.inputs[0], p, *node.inputs[2:]],
                                 dict(node.attrs), node.name + "_sm", loc=node.loc).out()
        return None

    return rewrite(graph, [fold])
