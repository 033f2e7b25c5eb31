"""The integer-only invariant as a verifier check (pass it to `verify(extra=)`).

No node strictly between a token-embedding lookup and the logits (graph
output 0) may produce or read a float tensor. The embedding lookup itself and
the node that produces the logits (`dequantize_int`) are the two ends.
"""

from __future__ import annotations

from llmc.ir.graph import Graph, Node


def _token_embeddings(graph: Graph) -> list[Node]:
    tokens = [n for n in graph.inputs if n.name == "tokens"]
    return [n for n in graph.nodes if n.op == "embedding" and tokens
            and n.inputs[1].node is tokens[0]]


def no_float_between_embedding_and_logits(graph: Graph) -> list[str]:
    """Problems (one per offending node) for the verifier."""
    starts = _token_embeddings(graph)
    if not starts or not graph.outputs:
        return ["integer-only check: no token embedding or no logits output found"]
    below: set[int] = {id(n) for n in starts}
    for n in graph.nodes:
        if any(id(v.node) in below for v in n.inputs):
            below.add(id(n))
    logits = graph.outputs[0].node
    above: set[int] = set()
    stack = [v.node for v in logits.inputs]
    while stack:
        n = stack.pop()
        if id(n) not in above:
            above.add(id(n))
            stack.extend(v.node for v in n.inputs)
    problems = []
    for n in graph.nodes:
        if id(n) not in below or id(n) not in above or n in starts:
            continue
        floats = [str(t) for t in n.types if t.dtype.is_float] + \
                 [f"input {v.ref}: {v.type}" for v in n.inputs if v.type.dtype.is_float]
        if floats:
            problems.append(f"float op between embedding and logits: %{n.name} = {n.op} "
                            f"({', '.join(floats)})")
    return problems
