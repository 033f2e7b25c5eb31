"""The pass manager: a pipeline is a list of named stages run top to bottom.

`LLMC_DUMP=after:NAME` (or `after:all`) prints the IR after a stage to stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from llmc.errors import UsageError
from llmc.ir import Graph, print_graph, verify

PassFn = Callable[[Graph], Graph]
PASSES: dict[str, PassFn] = {}


def register_pass(name: str) -> Callable[[PassFn], PassFn]:
    def add(fn: PassFn) -> PassFn:
        PASSES[name] = fn
        return fn
    return add


def get_pass(name: str) -> PassFn:
    _load_builtin()
    if name not in PASSES:
        raise UsageError(f"unknown pass {name!r} (known: {', '.join(sorted(PASSES))})")
    return PASSES[name]


def run_pipeline(graph: Graph, stages: Sequence[str], check: bool = True) -> Graph:
    """Run each stage; verify after each when `check`; dump on request."""
    dump = {s.removeprefix("after:") for s in os.environ.get("LLMC_DUMP", "").split(",") if s}
    for name in stages:
        graph = get_pass(name)(graph)
        if check:
            verify(graph)
        if name in dump or "all" in dump:
            sys.stderr.write(f"// after {name}\n{print_graph(graph)}")
    return graph


@register_pass("verify")
def _verify(graph: Graph) -> Graph:
    verify(graph)
    return graph


def _load_builtin() -> None:
    from llmc.passes import (  # noqa: F401  (register themselves)
        fuse_attention,  # noqa: F401  (registers itself)
        fusion,
        sparsity,
        tiling,
    )
    from llmc.passes.memplan import reorder  # noqa: F401  (registers memory-order)
    from llmc.passes.quant import pipeline  # noqa: F401  (registers quant:<scheme>)
