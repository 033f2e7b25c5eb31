"""Calibration: run the float graph on token windows and record what the
quantizers need -- static activation ranges, per-channel maxima of linear-layer
inputs (for SmoothQuant), and each linear weight's input Hessian X^T X (GPTQ).

Statistics are keyed by a node's *semantic key* "loc|op|k" (k-th `op` node
from module `loc`), which is the same in a model's prefill and decode graphs,
so ranges calibrated on prefill apply to decode.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from llmc.errors import UsageError
from llmc.ir.graph import Graph, Node
from llmc.ir.interp import interpret

KV_SAMPLE_ROWS = 2048  # token rows of K and V kept per layer for k-sort planning


@dataclass
class KVSample:
    """One attention's K and V rows (N, G, D) (the first KV_SAMPLE_ROWS tokens)
    and the mean square of each query channel, (H, D)."""

    k: np.ndarray
    v: np.ndarray
    q_ms: np.ndarray


@dataclass
class MoEStats:
    """One moe_ffn's ranges over the calibration tokens, per expert over the
    rows the float router sends it (E,): tokens routed; max |.| of the gate and
    up projections, the SiLU output, their product (the down projection's
    input) and the expert's output before gating; and max |router logit|."""

    tokens: np.ndarray
    gate: np.ndarray
    up: np.ndarray
    silu: np.ndarray
    prod: np.ndarray
    out: np.ndarray
    logits: float = 0.0

    @classmethod
    def empty(cls, experts: int) -> MoEStats:
        z = lambda: np.zeros(experts)  # noqa: E731
        return cls(np.zeros(experts, np.int64), z(), z(), z(), z(), z())

    def expert_amax(self, which: str) -> np.ndarray:
        """Per-expert max |.| of `which`; an expert no calibration token reached
        takes the largest range its layer's other experts saw (wider steps
        rather than a guess that saturates)."""
        v = getattr(self, which)
        seen = self.tokens > 0
        fallback = float(v[seen].max()) if seen.any() else 0.0
        return np.where(seen, v, fallback)


@dataclass
class Calibration:
    """amax: max |value| per semantic key; chan: per-channel (last dim) max |value|
    of every linear layer's input; hessian: weight param name -> sum of x x^T
    over its input rows (float64, (K, K)); kv: attention's semantic key ->
    KVSample (what k-sort plans with); moe: moe_ffn's semantic key -> its
    per-expert MoEStats (GPTQ Hessians of expert e's gate/up and down weights
    are `hessian["<w_gate>[e]"]`, `["<w_down>[e]"]`); ksort_orders: the channel orders k-sort
    applied (kept so a decode graph sorts the same way); tokens: calibration
    tokens seen."""

    amax: dict[str, float] = field(default_factory=dict)
    chan: dict[str, np.ndarray] = field(default_factory=dict)
    hessian: dict[str, np.ndarray] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    kv: dict[str, KVSample] = field(default_factory=dict)
    moe: dict[str, MoEStats] = field(default_factory=dict)
    ksort_orders: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    tokens: int = 0


def semantic_keys(graph: Graph) -> dict[Node, str]:
    """node -> "loc|op|k" (k-th float `op` node of module `loc`; "loc|op|ik" for
    the k-th integer one), stable across a model's prefill and decode graphs:
    index arithmetic only decode has (positions) does not shift a float key."""
    seen: dict[tuple[str, str, bool], int] = defaultdict(int)
    keys = {}
    for n in graph.nodes:
        is_float = any(t.dtype.is_float for t in n.types)
        k = seen[(n.loc, n.op, is_float)]
        seen[(n.loc, n.op, is_float)] += 1
        keys[n] = f"{n.loc}|{n.op}|{k}" if is_float else f"{n.loc}|{n.op}|i{k}"
    return keys


def token_input(graph: Graph) -> Node:
    for n in graph.inputs:
        if n.name == "tokens":
            return n
    raise UsageError(f"graph @{graph.name} has no `tokens` input to calibrate on")


def vocab_size(graph: Graph) -> int:
    tok = token_input(graph)
    for n in graph.nodes:
        if n.op == "embedding" and n.inputs[1].node is tok:
            return n.inputs[0].type.shape[0]
    raise UsageError(f"graph @{graph.name}: no embedding reads the tokens")


def check_tokens(graph: Graph, tokens: object) -> np.ndarray:
    """Calibration tokens must be integer (N, T) with T the graph's sequence length
    and ids inside the vocabulary; anything else is refused, saying what was expected."""
    tok = token_input(graph)
    seq = tok.type.shape[-1]
    arr = np.asarray(tokens)
    if arr.dtype.kind not in "iu":
        raise UsageError(f"calibration data must be integer token ids, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != seq or arr.shape[0] == 0:
        raise UsageError(f"calibration data must have shape (N, {seq}) to match graph "
                         f"@{graph.name}'s tokens {tok.type}, got {tuple(np.shape(tokens))}")
    vocab = vocab_size(graph)
    if arr.min() < 0 or arr.max() >= vocab:
        raise UsageError(f"calibration token ids must lie in 0..{vocab - 1}, got "
                         f"{arr.min()}..{arr.max()}")
    return arr.astype(np.int64)


def default_tokens(graph: Graph, n: int = 16, seed: int = 1234) -> np.ndarray:
    """Calibration windows when none are given: byte-level models (vocab 256) read
    random windows of llmc-tiny's *training* split; others get seeded random ids."""
    seq = token_input(graph).type.shape[-1]
    vocab = vocab_size(graph)
    if vocab == 256:
        from llmc.frontend.zoo import data

        train, _ = data.corpus_splits()
        return data.batches(train, seq, n, seed)[:, :seq]
    return np.random.default_rng(seed).integers(0, vocab, (n, seq))


def _linear_consumers(graph: Graph) -> dict[Node, list[Node]]:
    """producer node -> the linear nodes (weights are params) whose input it is."""
    out: dict[Node, list[Node]] = defaultdict(list)
    for n in graph.nodes:
        if n.op == "linear" and n.inputs[1].node.op == "param":
            out[n.inputs[0].node].append(n)
    return out


def _attention_inputs(graph: Graph, keys: dict[Node, str]) -> dict[Node, list[tuple[str, int]]]:
    """node -> [(semantic key of an attention reading it, as q (0), k (1) or v (2))]."""
    out: dict[Node, list[tuple[str, int]]] = defaultdict(list)
    for n in graph.nodes:
        if n.op == "attention":
            for i in range(3):
                out[n.inputs[i].node].append((keys[n], i))
    return out


def _moe_record(cal: Calibration, key: str, node: Node, x: np.ndarray,
                params: dict[str, np.ndarray], hessians: bool) -> None:
    """Add one batch's rows of a moe_ffn (x (N, d) float) to cal.moe[key], routed
    as moe_ffn routes them (llmc/ir/ops/nn.py), and the experts' Hessians."""
    names = [v.node.attrs["name"] for v in node.inputs[1:]]
    router, wg, wu, wd = (params[n] for n in names)
    st = cal.moe.setdefault(key, MoEStats.empty(router.shape[0]))
    logits = x @ router.T                                        # (N, E)
    st.logits = max(st.logits, float(np.abs(logits).max()) if logits.size else 0.0)
    idx = np.argsort(-logits, axis=-1, kind="stable")[:, :node.attrs["top_k"]]
    for e in range(router.shape[0]):
        rows = np.nonzero((idx == e).any(axis=-1))[0]
        if rows.size == 0:
            continue
        xe = x[rows]
        g, u = xe @ wg[e].T, xe @ wu[e].T
        s = g / (1.0 + np.exp(-g))
        p = s * u
        for which, v in (("gate", g), ("up", u), ("silu", s), ("prod", p),
                         ("out", p @ wd[e].T)):
            amax = getattr(st, which)
            amax[e] = max(amax[e], float(np.abs(v).max()))
        st.tokens[e] += rows.size
        if hessians:
            for name, a in ((f"{names[1]}[{e}]", xe), (f"{names[3]}[{e}]", p)):
                a = a.astype(np.float64)
                cal.hessian[name] = cal.hessian.get(name, 0.0) + a.T @ a
                cal.rows[name] = cal.rows.get(name, 0) + a.shape[0]


def calibrate(graph: Graph, tokens: object, hessians: bool = False) -> Calibration:
    """Run `graph` (float, with weights) on `tokens` (N, T) in batches of the
    graph's batch size and collect a Calibration."""
    if graph.shape_only:
        raise UsageError(f"graph @{graph.name} is shape-only; calibration needs weights")
    toks = check_tokens(graph, tokens)
    tok = token_input(graph)
    batch = tok.type.shape[0]
    keys = semantic_keys(graph)
    consumers = _linear_consumers(graph)
    att = _attention_inputs(graph, keys)
    kv_acc: dict[str, dict] = defaultdict(lambda: {"q": 0.0, "n": 0, "k": [], "v": []})
    cal = Calibration()
    others = [n for n in graph.inputs if n is not tok]
    if others:
        raise UsageError(f"calibrate on a prefill graph (tokens only); @{graph.name} also "
                         f"takes {', '.join(n.name for n in others)}")

    moe_in = {n.inputs[0].node: n.inputs[0].index for n in graph.nodes if n.op == "moe_ffn"}
    moe_x: dict[Node, np.ndarray] = {}

    def record(node: Node, outs: tuple[np.ndarray, ...]) -> None:
        if node in moe_in:
            moe_x[node] = outs[moe_in[node]]
        x = outs[0]
        if x.dtype.kind != "f":
            return
        key = keys[node]
        cal.amax[key] = max(cal.amax.get(key, 0.0), float(np.max(np.abs(x))) if x.size else 0.0)
        if node.op == "moe_ffn" and all(v.node.op == "param" for v in node.inputs[1:]):
            _moe_record(cal, key, node, moe_x[node.inputs[0].node], graph.params, hessians)
        for akey, which in att.get(node, ()):             # (B, heads, T, D)
            acc = kv_acc[akey]
            if which == 0:
                acc["q"] = acc["q"] + (x.astype(np.float64) ** 2).sum(axis=(0, 2))
                acc["n"] += x.shape[0] * x.shape[2]
            else:
                rows = np.moveaxis(x, 2, 1).reshape(-1, x.shape[1], x.shape[3])  # (B*T, G, D)
                acc["kv"[which - 1]].append(rows)
        for lin in consumers.get(node, ()):
            rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
            ck = keys[lin]
            cmax = np.abs(rows).max(axis=0)
            cal.chan[ck] = np.maximum(cal.chan.get(ck, cmax), cmax)
            if hessians:
                name = lin.inputs[1].node.attrs["name"]
                cal.hessian[name] = cal.hessian.get(name, 0.0) + rows.T @ rows
                cal.rows[name] = cal.rows.get(name, 0) + rows.shape[0]

    for i in range(0, len(toks), batch):
        chunk = toks[np.arange(i, i + batch) % len(toks)]  # the last batch wraps around
        interpret(graph, {"tokens": chunk}, on_value=record)
        cal.tokens += chunk.size
    cal.kv = {k: KVSample(np.concatenate(a["k"])[:KV_SAMPLE_ROWS],
                          np.concatenate(a["v"])[:KV_SAMPLE_ROWS], a["q"] / a["n"])
              for k, a in kv_acc.items()}
    return cal
