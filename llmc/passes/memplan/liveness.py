"""Liveness of a graph's intermediate tensors, as a planning `Problem`.

Steps are node positions in execution order. Every output of a computing op
is a buffer live from its defining step to the last step that reads it,
directly or through a view (reshape, permute, slice, expand alias their
input, so they extend its lifetime instead of owning memory). Graph inputs,
weights, KV-cache updates and the KV cache a prefill returns live for the
whole run and are planned separately (`external`, `kv_outputs`). A buffer belongs to a block (the transformer layer
of `loc` "layers.N...") when it is made and used inside that layer only.
A buffer's `access` lists the steps (kernel spans, in a fused graph) that
write or read it; between them it could be spilled.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmc.ir.alias import alias_root, layer_of
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op
from llmc.passes.memplan.problem import Buffer, Problem


def buffer_name(v: Value) -> str:
    return v.node.name if len(v.node.types) == 1 else f"{v.node.name}#{v.index}"


def is_external(node: Node) -> bool:
    """Not planned in the activation arena: graph inputs, weights, and
    in-place updates of a graph input (KV-cache writes)."""
    if node.op in ("input", "param"):
        return True
    return node.op == "index_copy" and alias_root(node.inputs[0]).node.op == "input"


def kv_outputs(graph: Graph) -> set[Value]:
    """The KV cache a prefill graph returns: graph outputs that an
    attention-kind op reads as its keys or values (through any views). They
    are written into the KV cache, which is planned with the weights, not in
    the activation arena (a decode graph's cache is an input, updated in place)."""
    outs = {alias_root(v) for v in graph.outputs}
    kv = set()
    for n in graph.nodes:
        if get_op(n.op).kind == "attention" and len(n.inputs) >= 3:
            kv.update(r for r in map(alias_root, n.inputs[1:3]) if r in outs)
    return kv


@dataclass(frozen=True)
class Liveness:
    problem: Problem
    values: dict[str, Value]      # buffer name -> the value it holds


def liveness(graph: Graph, alignment: int = 64) -> Liveness:
    """Buffers of `graph`'s activations. A fused graph (llmc.passes.fusion)
    is costed as its kernels run: a value that never leaves its kernel is no
    buffer, and a kernel may read its inputs and write its outputs anywhere
    in its span of steps."""
    from llmc.ir.kernels import kernel_spans, kernels

    spans = kernel_spans(graph)
    internal: set[Value] = set()
    if spans is not None:
        internal = set().union(*(k.internal for k in kernels(graph)))
    first = {n: i for i, n in enumerate(graph.nodes)}
    step = dict(first)
    if spans is not None:
        first.update({n: a for n, (a, _) in spans.items()})
        step.update({n: b for n, (_, b) in spans.items()})
    end: dict[Value, int] = {}
    layers: dict[Value, set[int | None]] = {}
    access: dict[Value, set[tuple[int, int]]] = {}  # where a value's bytes are touched
    for node in graph.nodes:
        for v in node.inputs:
            root = alias_root(v)
            end[root] = max(end.get(root, 0), step[node])
            layers.setdefault(root, set()).add(layer_of(node))
            if get_op(node.op).kind != "view":  # a view reads no bytes
                access.setdefault(root, set()).add((first[node], step[node]))
    last = len(graph.nodes)
    kv = kv_outputs(graph)
    for v in graph.outputs:
        end[alias_root(v)] = last
        layers.setdefault(alias_root(v), set()).add(None)
        access.setdefault(alias_root(v), set()).add((last, last))
    buffers, values = [], {}
    for node in graph.nodes:
        if get_op(node.op).kind == "view" or is_external(node):
            continue
        for i, t in enumerate(node.types):
            v = Value(node, i)
            if v in kv or v in internal:
                continue
            users = layers.get(v, set()) | {layer_of(node)}
            block = next(iter(users)) if len(users) == 1 else None
            name = buffer_name(v)
            touched = access.get(v, set()) | {(first[node], step[node])}
            buffers.append(Buffer(name, t.nbytes, first[node], end.get(v, step[node]), block,
                                  access=tuple(sorted(touched))))
            values[name] = v
    return Liveness(Problem(buffers, alignment), values)
