"""A w4a8 decode graph as a `DecodeSpec` (llmc.rtl.hn_layer): the units and
glue of every layer, found by walking the graph from the embedding, and the
interpreter's values of one decode step to check its RTL with.

`decode_spec(graph)` is None when the graph is not the llama pattern the
controller sequences (llmc.rtl.hn_layer's docstring); `layers=1` takes the
first layer alone (its output is the residual, no LM head). `decode_files`
is what compile writes: the whole model's step within CTRL_MAX_WEIGHTS
hardwired weights, else its first layer's (llmc-tiny: 606,208 weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmc.backends.generate import Shapes, generate
from llmc.backends.hnlpu.attn import attention_nodes, norm_nodes
from llmc.backends.hnlpu.ffn import ffn_blocks
from llmc.backends.hnlpu.layers import layer_of
from llmc.errors import UsageError
from llmc.ir import Graph, Node, interpret
from llmc.rtl.blocks import block_path
from llmc.rtl.hn_ctrl import generate_decode
from llmc.rtl.hn_layer import DecodeSpec, LayerSpec, Requant, Rope
from llmc.rtl.hn_sim import decode_cycles, decode_schedule

CTRL_MAX_WEIGHTS = 1_048_576   # hardwired weights of one simulated controller design


class _NoMatch(Exception):
    pass


def _users(graph: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for n in graph.nodes:
        for v in n.inputs:
            out.setdefault(v.node.name, []).append(n)
    return out


def _need(cond: bool) -> None:
    if not cond:
        raise _NoMatch


def _one(users: dict[str, list[Node]], node: Node, op: str) -> Node:
    found = [u for u in users.get(node.name, []) if u.op == op]
    _need(len(found) == 1)
    return found[0]


def _requant(graph: Graph, node: Node, bits: int) -> Requant:
    _need(node.op == "requant" and int(node.attrs["dtype"].bits) == bits)
    if len(node.inputs) > 1:
        m = np.asarray(graph.params[node.inputs[1].node.attrs["name"]]).reshape(-1)
    else:
        m = np.array([node.attrs["mult"]])
    return Requant(tuple(int(v) for v in m), int(node.attrs["shift"]), bits)


def _through(node: Node, *ops: str) -> Node:
    """Follow first inputs through `ops` (e.g. permute, reshape) and return the node below."""
    for op in ops:
        _need(node.op == op)
        node = node.inputs[0].node
    return node


def _rope(graph: Graph, rq: Node, slots: int) -> tuple[Requant, Node, np.ndarray, np.ndarray]:
    """A RoPE requant: (its requant, the projection's requant node, cos, sin)."""
    add = rq.inputs[0].node
    _need(add.op == "add")
    plain = rot = None
    tables: dict[str, np.ndarray] = {}
    for v in add.inputs:
        mul = v.node
        _need(mul.op == "mul" and all(i.node.op == "cast" for i in mul.inputs))
        a, b = (i.node.inputs[0].node for i in mul.inputs)
        emb, x = (a, b) if a.op == "embedding" else (b, a)
        _need(emb.op == "embedding")
        table = np.asarray(graph.params[emb.inputs[0].node.attrs["name"]])[:slots]
        if x.op == "concat":
            neg, lo = (i.node for i in x.inputs)
            _need(neg.op == "neg" and lo.op == "slice" and neg.inputs[0].node.op == "slice")
            hi = neg.inputs[0].node
            half = int(lo.attrs["end"])
            _need(int(lo.attrs["start"]) == 0 and int(hi.attrs["start"]) == half)
            rot, tables["sin"] = hi.inputs[0].node, table
        else:
            plain, tables["cos"] = x, table
    _need(plain is not None and rot is plain)
    proj = _through(plain, "permute", "reshape")
    return _requant(graph, rq, 8), proj, tables["cos"], tables["sin"]


def _residual(graph: Graph, users: dict[str, list[Node]], prev: Node, lin: Node
              ) -> tuple[Node, Requant, Requant]:
    """add(requant(prev), requant(lin)): (the add, the skip's requant, the branch's)."""
    rq = _one(users, lin, "requant")
    add = _one(users, rq, "add")
    other = next(v.node for v in add.inputs if v.node is not rq)
    skip = _requant(graph, other, 32) if other is not prev else Requant((1,), 0, 32)
    _need(other is prev or other.inputs[0].node is prev)
    return add, skip, _requant(graph, rq, 32)


def _layer(graph: Graph, users: dict[str, list[Node]], x: Node, att, norms: dict, blocks: dict
           ) -> tuple[LayerSpec, Node]:
    spec = att.spec
    q_rope, q_rqn, cos, sin = _rope(graph, att.q, spec.slots)
    k_rope, k_rqn, cos_k, sin_k = _rope(graph, att.k_new, spec.slots)
    _need(np.array_equal(cos, cos_k) and np.array_equal(sin, sin_k))
    v_rqn = _through(att.v_new, "permute", "reshape")
    lins = [_through(n, "requant") for n in (q_rqn, k_rqn, v_rqn)]
    _need(all(n.op == "int_linear" for n in lins))
    norm1 = lins[0].inputs[0].node
    _need(all(n.inputs[0].node is norm1 for n in lins) and norm1.name in norms
          and norm1.inputs[0].node is x)
    o_lin = _one(users, _one(users, _one(users, att.node, "permute"), "reshape"), "int_linear")
    r1, skip1, o_rq = _residual(graph, users, x, o_lin)
    norm2 = _one(users, r1, "int_rms_norm")
    _need(norm2.name in norms and norm2.name in blocks)
    block = blocks[norm2.name]
    r2, skip2, d_rq = _residual(graph, users, r1, block.y)
    name = (norm1.loc or norm1.name).rsplit(".", 1)[0]
    rope = Rope(cos, sin, q_rope, k_rope)
    return LayerSpec(name, norms[norm1.name], *(layer_of(graph, n) for n in lins),
                     *(_requant(graph, n, 8) for n in (q_rqn, k_rqn, v_rqn)), rope, spec,
                     layer_of(graph, o_lin), o_rq, skip1, norms[norm2.name], block.spec,
                     d_rq, skip2), r2


@dataclass(frozen=True)
class DecodeMatch:
    """A matched decode step: its spec and the nodes whose values check it."""

    spec: DecodeSpec
    x: Node              # the first layer's input (the embedding row)
    y: Node              # the LM head's int_linear, or the last layer's residual add
    h: tuple[Node, ...]  # each layer's SwiGLU output
    caches: tuple[Node, ...]  # per layer its K and V cache inputs


def decode_spec(graph: Graph, layers: int | None = None) -> DecodeMatch | None:
    """The decode step of `graph` (its first `layers` layers; None: all, with
    the final norm and LM head), or None if it is not the supported pattern."""
    if graph.shape_only:
        return None
    try:
        return _match(graph, layers)
    except (_NoMatch, UsageError, KeyError, IndexError, ValueError):
        return None  # not the pattern, or shapes the units do not take: no decode design


def _match(graph: Graph, layers: int | None) -> DecodeMatch:
    users = _users(graph)
    norms = {n.name: s for s, n in norm_nodes(graph)}
    blocks = {b.x.name: b for b in ffn_blocks(graph)}
    atts = attention_nodes(graph)
    embs = [n for n in graph.nodes if n.op == "embedding" and n.inputs[1].node.op == "input"]
    _need(len(embs) == 1 and atts)
    x = cur = embs[0]
    specs, hs, caches = [], [], []
    for att in atts[:layers]:
        spec, cur = _layer(graph, users, cur, att, norms, blocks)
        specs.append(spec)
        hs.append(_block_h(blocks, spec))
        caches += [att.k_cache, att.v_cache]
    head = None
    y = cur
    if layers is None or layers >= len(atts):
        norm = _one(users, cur, "int_rms_norm")
        lm = _one(users, norm, "int_linear")
        _need(norm.name in norms)
        head, y = (norms[norm.name], layer_of(graph, lm)), lm
    in_bits = int(x.type.dtype.bits)
    name = f"{graph.name.removesuffix('_decode')}" + ("" if head else f"_{specs[-1].name}")
    return DecodeMatch(DecodeSpec(name, tuple(specs), in_bits, head), x, y, tuple(hs),
                       tuple(caches))


def _block_h(blocks: dict, spec: LayerSpec) -> Node:
    return next(b.h for b in blocks.values() if b.spec is spec.ffn)


@dataclass(frozen=True)
class DecodeCase:
    """One decode step's inputs and the interpreter's outputs for it."""

    x: np.ndarray               # (C,) the input row
    kcs: list[np.ndarray]       # per layer (G, S, D): the cache before this token
    vcs: list[np.ndarray]
    pos: int
    y: np.ndarray               # logits (int32 before dequantization) or the residual
    hs: list[np.ndarray]        # per layer, the SwiGLU output h


def decode_case(prefill: Graph, decode: Graph, match: DecodeMatch, prompt: list[int]
                ) -> DecodeCase:
    """Prefill `prompt` on the interpreter, then decode one token: that step's values."""
    wanted = {match.x.name, match.y.name, *(h.name for h in match.h)}
    vals: dict[str, np.ndarray] = {}
    first: list[list[np.ndarray]] = []

    def step(xs: list[np.ndarray]) -> list[np.ndarray]:
        if not first:
            first.append(xs)
            return interpret(decode, xs, lambda nd, o: vals.setdefault(nd.name, o[0])
                             if nd.name in wanted else None)
        return interpret(decode, xs)

    caches = [np.zeros(v.type.shape, v.type.dtype.np) for v in decode.inputs[2:]]
    batch, prompt_tokens = prefill.inputs[0].type.shape
    shapes = Shapes(batch, prompt_tokens, caches[0].shape[2], prefill.outputs[0].type.shape[-1])
    generate(lambda xs: interpret(prefill, xs), step, caches, shapes, prompt, 2)
    ins = dict(zip((v.name for v in decode.inputs), first[0], strict=True))
    kv = [np.asarray(ins[c.name])[0].astype(np.int64) for c in match.caches]
    return DecodeCase(np.asarray(vals[match.x.name]).reshape(-1).astype(np.int64),
                      kv[0::2], kv[1::2], int(first[0][1][0]),
                      np.asarray(vals[match.y.name]).reshape(-1).astype(np.int64),
                      [np.asarray(vals[h.name]).reshape(-1).astype(np.int64) for h in match.h])


def choose(graph: Graph) -> DecodeMatch | None:
    """The decode design to emit: the whole model if within CTRL_MAX_WEIGHTS,
    else its first layer if that is, else None."""
    whole = decode_spec(graph)
    if whole is None or whole.spec.weights <= CTRL_MAX_WEIGHTS:
        return whole
    first = decode_spec(graph, 1)
    return first if first is not None and first.spec.weights <= CTRL_MAX_WEIGHTS else None


def decode_files(graph: Graph, rtl_dir: str) -> tuple[dict[str, str], dict[str, object]]:
    """The decode design's files under `rtl_dir` and its entry in layers.json."""
    match = choose(graph)
    if match is None:
        return {}, {}
    spec = match.spec
    design = generate_decode(spec)
    files = {f"{rtl_dir}/{name}": text for name, text in design.generated}
    for block in design.blocks:
        files[f"{rtl_dir}/{block}.v"] = block_path(block).read_text()
    from llmc.rtl import tb_ctrl

    files[f"{rtl_dir}/tb_ctrl.py"] = Path(tb_ctrl.__file__).read_text()
    whole = spec if spec.head is not None else decode_spec(graph).spec
    return files, {"decode": {
        # the whole model's step by the same cycle model (the design may hold its first layer)
        "model_cycles": decode_cycles(whole),
        "top": design.top, "layers": [la.name for la in spec.layers],
        "whole_model": spec.head is not None, "weights": spec.weights,
        "sources": [*(f"{b}.v" for b in design.blocks), *(n for n, _ in design.generated)],
        "cycles": decode_cycles(spec),
        "schedule": [{"step": name, "cycles": c} for name, c in decode_schedule(spec)]}}
