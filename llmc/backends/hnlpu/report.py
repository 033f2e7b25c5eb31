"""hnlpu/system.json and hnlpu/system.md: the system model's report of a compile."""

from __future__ import annotations

import json
from typing import Any

from llmc.backends.base import Files
from llmc.backends.hnlpu.system import (
    calibrate,
    constants,
    count_workload,
    paper_point,
    system_report,
)
from llmc.ir import Graph

KEYS = ("decode.tokens_per_s", "decode.energy_j_per_token", "area_mm2", "nre_usd")
SYSTEM_JSON, SYSTEM_MD = "hnlpu/system.json", "hnlpu/system.md"


def report_for(graph: Graph) -> dict[str, Any]:
    """The system report of a decode graph, with the paper's figures beside it
    when the model is the calibration model at its context."""
    rep = system_report(count_workload(graph), calibrate())
    cal = constants()["calibration"]
    if rep["model"] == cal["model"] and rep["context"] == cal["context"]:
        paper = paper_point()
        rep["paper"] = paper
        rep["vs_paper"] = {k: rep[k] / paper[k] for k in KEYS}
    return rep


def _fmt(key: str, v: float) -> str:
    if key == "decode.energy_j_per_token":
        return f"{v * 1e3:.2f} mJ ({1 / v:.1f} tokens/J)"
    if key == "nre_usd":
        return f"${v / 1e6:.1f}M"
    if key == "area_mm2":
        return f"{v:,.0f} mm2"
    return f"{v:,.0f}"


def markdown(rep: dict[str, Any], has_rtl: bool) -> str:
    w = rep["workload"]
    lines = [f"# HNLPU system model: {rep['model']} at {rep['context']} tokens of context", "",
             f"{rep['chips']} chips; {w['hardwired_weights']:,} hardwired weights, "
             f"{w['active_weights']:,} active per token; bound: {rep['bound']}.", "",
             "| figure | llmc | paper |", "|---|---|---|"]
    paper = rep.get("paper", {})
    for k in KEYS:
        ref = _fmt(k, paper[k]) if k in paper else "-"
        if k == "nre_usd" and paper:
            ref += f" to ${paper['nre_usd_high'] / 1e6:.1f}M"
        lines.append(f"| {k} | {_fmt(k, rep[k])} | {ref} |")
    lines += ["", f"Power {rep['power_w']:,.0f} W: " + ", ".join(
        f"{k} {v:,.0f} W" for k, v in rep["power_breakdown_w"].items()) + ".",
        f"KV cache of {rep['concurrent_sequences']} sequences in flight: "
        f"{rep['kv_bytes'] / 1e9:.2f} GB, {rep['kv_on_chip_fraction']:.0%} in the "
        f"attention buffers, the rest spilled to HBM.", "",
        "Constants: llmc/hw/data/hnlpu_system.toml (sources there and in "
        "docs/references.md); calibrated once on the paper's gpt-oss-120b system.",
        "RTL: rtl/ (the decode step's hardwired layers; `llmc run DIR --simulator icarus`)."
        if has_rtl else "RTL: none emitted (hardwired RTL needs 4-bit integer weights: "
        "compile with --quant w4a8 and weights)."]
    return "\n".join(lines) + "\n"


def system_files(graph: Graph, has_rtl: bool) -> Files:
    rep = report_for(graph)
    return {SYSTEM_JSON: json.dumps(rep, indent=2, sort_keys=True) + "\n",
            SYSTEM_MD: markdown(rep, has_rtl)}
