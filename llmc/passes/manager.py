"""The pass manager: a pipeline is a list of named stages run top to bottom.

Every pass is listed here, in one table (name -> "module:function"), and its
module is imported only when a pipeline runs it, so a pass module knows
nothing of the manager. Two kinds of stage:

- a pass, `fuse`: `function(graph) -> graph`;
- a parameterised stage, `quant:w8a8-int`, `sparsity:2:4`, `attention:flash`:
  `function(arg) -> stage`, where `stage(graph, ctx) -> graph`. Building the
  stage checks the argument (an unknown scheme fails before any work), and
  `ctx` (a `PassContext`) is shared by every phase of one compile, so
  quantization calibrates once, on the prefill graph, and decode's sparsity
  reuses the prefill's pruning plan.

`LLMC_DUMP=after:NAME[,after:NAME...]` prints the IR after a stage to stderr;
NAME is a stage's full name (`quant:w8a8-int`), its family (`quant`), or `all`.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmc.errors import UsageError
from llmc.ir import Graph, print_graph, verify

PassFn = Callable[[Graph], Graph]
StageFn = Callable[[Graph, "PassContext"], Graph]

# pass name -> "module:function(graph) -> graph"
PASSES: dict[str, str] = {
    "verify": "llmc.passes.manager:verify_pass",
    "fuse-attention": "llmc.passes.fuse_attention:fuse_attention",
    "fuse": "llmc.passes.fusion:fuse",
    "memory-order": "llmc.passes.memplan.reorder:memory_order",
    "raise-moe": "llmc.passes.moe_routing:raise_moe",
    "simplify": "llmc.passes.simplify:simplify",
    "fold-constants": "llmc.passes.fold_constants:fold_constants",
    "raise-norm": "llmc.passes.raise_norm:raise_norm",
    "raise-act": "llmc.passes.raise_act:raise_act",
    "raise-linear": "llmc.passes.raise_linear:raise_linear",
    "raise-attention": "llmc.passes.raise_attention:raise_attention",
}

# stage family -> "module:function(arg) -> stage(graph, ctx) -> graph"; run as FAMILY:ARG
FAMILIES: dict[str, str] = {
    "quant": "llmc.passes.quant.pipeline:quant_stage",             # quant:SCHEME
    "sparsity": "llmc.passes.sparsity:sparsity_stage",             # sparsity:SPEC
    "attention": "llmc.passes.tiling:attention_stage",             # attention:SPEC
    "tile-attention": "llmc.passes.tiling:tile_attention_stage",   # tile-attention:DEVICE
    "tile-rows": "llmc.passes.tile_rows:tile_rows_stage",          # tile-rows:N
}


@dataclass
class PassContext:
    """What the stages of one compile share across its phases.

    device: the target's device key (tile sizes come from its on-chip memory);
    phase: the phase now running ("prefill" runs first);
    shared: stage name -> what a stage left for later phases (a quantization
    calibration, a pruning plan);
    timings: "phase.stage" -> seconds."""

    device: str | None = None
    phase: str = "prefill"
    shared: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _load(ref: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def family(name: str) -> str:
    """The family of a stage name: `quant` for `quant:w8a8-int`, else the name."""
    head, sep, _ = name.partition(":")
    return head if sep and head in FAMILIES else name


def get_stage(name: str) -> StageFn:
    """The stage `name` as `stage(graph, ctx)`; UsageError for an unknown
    name or a bad argument (before any graph is touched)."""
    if name in PASSES:
        fn = _load(PASSES[name])
        return lambda graph, ctx: fn(graph)
    head, sep, arg = name.partition(":")
    if sep and head in FAMILIES:
        if not arg:
            raise UsageError(f"stage {name!r} needs an argument after '{head}:'")
        return _load(FAMILIES[head])(arg)
    known = sorted(PASSES) + [f"{f}:ARG" for f in sorted(FAMILIES)]
    raise UsageError(f"unknown pass {name!r} (known: {', '.join(known)})")


def get_pass(name: str) -> PassFn:
    """The stage `name` as a plain `graph -> graph` (a parameterised stage
    with a context of its own)."""
    stage = get_stage(name)
    return lambda graph: stage(graph, PassContext())


def run_pipeline(graph: Graph, stages: Sequence[str], check: bool = True,
                 ctx: PassContext | None = None,
                 on_stage: Callable[[str, Graph, Graph], None] | None = None) -> Graph:
    """Run each stage on `graph` with the shared `ctx`; verify after each when
    `check`; dump on request (LLMC_DUMP); `on_stage(name, before, after)`
    after each. Every stage is resolved before the first one runs."""
    ctx = ctx if ctx is not None else PassContext()
    resolved = [(name, get_stage(name)) for name in stages]
    dump = {s.removeprefix("after:") for s in os.environ.get("LLMC_DUMP", "").split(",") if s}
    for name, stage in resolved:
        t = time.perf_counter()
        before, graph = graph, stage(graph, ctx)
        ctx.timings[f"{ctx.phase}.{name}_s"] = time.perf_counter() - t
        if check:
            verify(graph)
        if "all" in dump or name in dump or family(name) in dump:
            sys.stderr.write(f"// after {name} ({ctx.phase})\n{print_graph(graph)}")
        if on_stage is not None:
            on_stage(name, before, graph)
    return graph


def verify_pass(graph: Graph) -> Graph:
    """The `verify` stage: check every invariant, change nothing."""
    verify(graph)
    return graph
