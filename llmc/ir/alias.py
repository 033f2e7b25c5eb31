"""Where a value lives and which layer made it: views (reshape, permute,
slice, expand) alias their input, so consumers read through them; an op's
``loc`` names its module, "layers.N..." inside transformer layer N."""

from __future__ import annotations

import re

from llmc.ir.graph import Node, Value
from llmc.ir.ops import get_op


def alias_root(v: Value) -> Value:
    """The value whose memory `v` views (itself unless produced by a view op)."""
    while get_op(v.node.op).kind == "view":
        v = v.node.inputs[0]
    return v


_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)(?:\.|$)")


def layer_of(node: Node) -> int | None:
    """The transformer layer a node belongs to, from its ``loc`` (None: outside)."""
    m = _LAYER.search(node.loc)
    return int(m.group(1)) if m else None
