"""Quantization passes: block formats (BFP, OCP MX) with k-sort reordering,
SIMD-packed int4 weights (RTN or GPTQ), and integer-only lowering.

    from llmc.passes.quant import SCHEMES, apply_scheme, quantize_graphs
    g = apply_scheme(graph, "bfp12-ksort")               # graph -> graph
    gs = quantize_graphs({"prefill": p, "decode": d}, "w8a8-int")  # one calibration

A model (zoo name, LoadedModel) is quantized by `llmc.quantize` (llmc.api),
which traces it and calls these.

Each scheme is also a pass named `quant:<scheme>` for run_pipeline.
Modules: schemes (the registry), weights (RTN, GPTQ), calibrate, ksort,
smooth, blockq (storage formats), intlower (integer-only), check (the
no-float verifier check), evaluate (perplexity and bytes). The numerics of the formats and the int4
layout are the IR's (llmc.ir.formats, llmc.ir.pack).
"""

from __future__ import annotations

from typing import Any

from llmc.passes.quant.schemes import SCHEMES, IntWeights, Scheme, get_scheme

__all__ = ["SCHEMES", "IntWeights", "Scheme", "apply_scheme", "get_scheme", "quantize_graphs"]


def apply_scheme(graph: Any, scheme: str | Scheme, calib: Any = None) -> Any:
    """Quantize `graph` (llmc.ir.Graph) under `scheme`. calib: calibration token
    ids (N, T) matching the graph's tokens input, a `Calibration` from a prefill
    graph of the same model (use this for decode graphs), or None (default
    windows: llmc-tiny's training split for byte-level models). Shape-only
    graphs quantize without calibration (the structure and bytes are exact;
    integer constants are placeholders)."""
    from llmc.passes.quant.pipeline import apply

    return apply(graph, get_scheme(scheme), calib)


def quantize_graphs(graphs: dict[str, Any], scheme: str | Scheme, calib: Any = None
                    ) -> dict[str, Any]:
    """Quantize one model's graphs by phase ({"prefill": g, "decode": g}) with one
    calibration on the prefill graph, so decode reads the KV cache (format,
    k-sort order, integer scales) that prefill writes. What `compile --quant` calls."""
    from llmc.passes.quant.pipeline import quantize_graphs as _qg

    return _qg(graphs, get_scheme(scheme), calib)
