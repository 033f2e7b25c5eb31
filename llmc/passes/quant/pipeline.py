"""A scheme as one function of named stages: reorder (k-sort), smooth,
calibrate, then either storage formats (block / weight-only) or the
integer-only lowering. `quant_stage` is the pass manager's `quant:<scheme>`."""

from __future__ import annotations

from typing import Any

from llmc.errors import UsageError
from llmc.ir import Graph, verify
from llmc.passes.quant.blockq import apply_storage
from llmc.passes.quant.calibrate import Calibration, calibrate, default_tokens
from llmc.passes.quant.check import no_float_between_embedding_and_logits
from llmc.passes.quant.intlower import lower_integer
from llmc.passes.quant.intmoe import fold_moe_gates
from llmc.passes.quant.ksort import ksort, plan_orders
from llmc.passes.quant.schemes import BFP12, IntWeights, Scheme, get_scheme
from llmc.passes.quant.smooth import smooth


def _wants_hessians(scheme: Scheme) -> bool:
    return isinstance(scheme.weights, IntWeights) and scheme.weights.method == "gptq"


def _is_prefill(graph: Graph) -> bool:
    return [n.name for n in graph.inputs] == ["tokens"]


def prepare(graph: Graph, scheme: Scheme, tokens: Any) -> tuple[Graph, Calibration | None]:
    """The float graph after the scheme's exact rewrites (k-sort, SmoothQuant)
    and, when the scheme needs one and the graph has weights, its calibration
    (run on this graph, which must be a prefill graph; a k-sort-only scheme on
    any other graph without calibration sorts by weight norms instead). Integer
    schemes calibrate the graph they lower: Qwen3-MoE gating folded into moe_ffn."""
    if scheme.integer:
        graph = fold_moe_gates(graph)
    if graph.shape_only or (not _is_prefill(graph) and tokens is None
                            and scheme.needs_calibration and not _calibrated_values(scheme)):
        return (ksort(graph) if scheme.ksort else graph), None
    if not scheme.needs_calibration:
        return graph, None
    if not _is_prefill(graph):
        raise UsageError(f"scheme {scheme.name} calibrates on a prefill graph; for graph "
                         f"@{graph.name} pass calib=a Calibration of its model's prefill "
                         f"graph (llmc.passes.quant.quantize_graphs does this)")
    toks = default_tokens(graph) if tokens is None else tokens
    orders = None
    if scheme.ksort:  # plan the channel orders on measured K/V
        orders = plan_orders(graph, calibrate(graph, toks), scheme.kv or BFP12)
        graph = ksort(graph, orders)
    if not _calibrated_values(scheme):
        return graph, Calibration(ksort_orders=orders)
    if scheme.smooth:
        graph = smooth(graph, calibrate(graph, toks), scheme.smooth)
    cal = calibrate(graph, toks, hessians=_wants_hessians(scheme))
    cal.ksort_orders = orders
    return graph, cal


def _calibrated_values(scheme: Scheme) -> bool:
    """Whether the scheme needs activation ranges or Hessians (not just k-sort)."""
    return scheme.integer or _wants_hessians(scheme)


def finish(graph: Graph, scheme: Scheme, cal: Calibration | None) -> Graph:
    """The prepared float graph in the scheme's formats, verified."""
    if scheme.integer:
        out = lower_integer(graph, scheme, cal)
        verify(out, extra=[no_float_between_embedding_and_logits])
    else:
        out = apply_storage(graph, scheme, cal)
        verify(out)
    return out


def apply(graph: Graph, scheme: Scheme, calib: Any = None) -> Graph:
    """apply_scheme: calib is tokens, a Calibration (of the prepared prefill graph
    of the same model), or None."""
    if isinstance(calib, Calibration):
        g = ksort(graph, calib.ksort_orders if not graph.shape_only else None) \
            if scheme.ksort else graph
        if scheme.smooth and not g.shape_only:
            raise UsageError("a SmoothQuant scheme needs calibration tokens, not a Calibration")
        return finish(g, scheme, calib)
    g, cal = prepare(graph, scheme, calib)
    return finish(g, scheme, cal)


def quantize_graphs(graphs: dict[str, Graph], scheme: Scheme, calib: Any = None
                    ) -> dict[str, Graph]:
    """Quantize one model's phase graphs consistently (what `compile --quant`
    needs): calibrate once on the "prefill" graph (tokens `calib`, default
    windows when None) and apply the same ranges, k-sort order and weights to
    every phase, so a decode graph reads the KV cache its prefill writes."""
    if "prefill" not in graphs:
        raise UsageError("quantize_graphs needs the model's prefill graph to calibrate on")
    g, cal = prepare(graphs["prefill"], scheme, calib)
    out = {"prefill": finish(g, scheme, cal)}
    for phase, graph in graphs.items():
        if phase != "prefill":
            out[phase] = apply(graph, scheme, cal) if cal is not None else \
                apply(graph, scheme, None)
    return out


def quant_stage(name: str) -> Any:
    """The pipeline stage `quant:<name>`: `stage(graph, ctx)`. The first
    phase it meets (the prefill) calibrates; later phases reuse that
    calibration from `ctx.shared`, as `quantize_graphs` does."""
    scheme = get_scheme(name)
    key = f"quant:{scheme.name}"

    def stage(graph: Graph, ctx: Any) -> Graph:
        if key in ctx.shared:
            return apply(graph, scheme, ctx.shared[key])
        g, cal = prepare(graph, scheme, None)
        ctx.shared[key] = cal
        return finish(g, scheme, cal)
    return stage
