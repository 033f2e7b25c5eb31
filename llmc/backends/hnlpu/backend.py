"""The HNLPU backend's two halves.

emit: the reference files (each phase's IR and weights: `llmc run` generates
text on the interpreter), the system model's report (hnlpu/system.json and
.md: tokens/s, energy per token, area, NRE, beside the paper's figures for
its calibration model), and, for a model quantized to 4-bit integer weights
(--quant w4a8), the decode step's hardwired layers as Verilog: rtl/ holds
one Metal-Embedding module per int_linear layer (within the RTL limit; above
RTL_WIRED_MAX_STEP_WEIGHTS in all, with compact neurons, llmc.rtl.hn), the
step module putting them side by side, each SwiGLU block's module (its
three arrays + the vector unit, llmc.rtl.hn_ffn), each decode attention's
module (the attention buffer + softmax unit, llmc.rtl.hn_attn), each
RMSNorm's module (llmc.rtl.hn_norm), the popcount block, the
cocotb testbench and rtl/layers.json (which node each module is, the cycle
counts). Where the decode graph is the llama pattern and within the
controller's limit (llmc.backends.hnlpu.decode), rtl/ also holds the whole
decode step as one design: every unit and the controller sequencing them
(llmc.rtl.hn_ctrl) with its testbench tb_ctrl.py, for the whole model or,
when that is too large, its first layer (layers.json's "decode").

run: greedy generation on the interpreter (the golden model), with the
decode step's cycle count from the cycle model (the controller's schedule
where rtl/ holds the whole step); `run_rtl`
(llmc.backends.hnlpu.rtlrun) simulates the step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from llmc.backends.artifact import Artifact
from llmc.backends.base import Backend, CompileOptions, Files, MemoryPlanLike, RunResult
from llmc.backends.hnlpu.attn import attention_nodes, norm_nodes
from llmc.backends.hnlpu.decode import decode_files
from llmc.backends.hnlpu.ffn import ffn_blocks
from llmc.backends.hnlpu.layers import (
    RTL_MAX_STEP_WEIGHTS,
    RTL_MAX_WEIGHTS,
    RTL_WIRED_MAX_STEP_WEIGHTS,
    layer_of,
    linear_nodes,
)
from llmc.backends.hnlpu.report import system_files
from llmc.backends.reference.backend import ReferenceBackend
from llmc.ir import Graph
from llmc.rtl.blocks import block_path
from llmc.rtl.hn import generate_step
from llmc.rtl.hn_attn import generate_attn
from llmc.rtl.hn_ffn import generate_ffn
from llmc.rtl.hn_norm import generate_norm
from llmc.rtl.hn_sim import step_cycles

RTL_DIR = "rtl"
LAYERS_JSON = f"{RTL_DIR}/layers.json"
STYLE = "me"


def rtl_files(graph: Graph) -> Files:
    """The decode step's hardwired layers as Verilog (empty: nothing to hardwire)."""
    if graph.shape_only:
        return {}
    fits, skipped, total = [], [], 0
    for node in linear_nodes(graph):
        layer = layer_of(graph, node)
        size = layer.n * layer.k
        fit = size <= RTL_MAX_WEIGHTS and total + size <= RTL_MAX_STEP_WEIGHTS
        total += size if fit else 0
        (fits if fit else skipped).append((node, layer))
    if not fits:
        return {}
    layers = [layer for _, layer in fits]
    compact = total > RTL_WIRED_MAX_STEP_WEIGHTS
    design = generate_step(layers, STYLE, f"decode step of @{graph.name}", compact=compact)
    fitted = {node.name for node, _ in fits}
    blocks = [b for b in ffn_blocks(graph)
              if {b.y.name, *(n.name for n in linear_nodes(graph)
                               if n.inputs[0].node is b.x)} <= fitted]
    files: Files = {f"{RTL_DIR}/{name}": text for name, text in design.generated}
    for block in design.blocks:
        files[f"{RTL_DIR}/{block}.v"] = block_path(block).read_text()
    from llmc.rtl import tb_hn

    files[f"{RTL_DIR}/tb_hn.py"] = open(tb_hn.__file__).read()  # noqa: SIM115, PTH123
    for block in blocks:  # SwiGLU blocks: their arrays (above) + the vector unit
        ffn = generate_ffn(block.spec, compact)
        name, text = ffn.generated[-1]
        files[f"{RTL_DIR}/{name}"] = text
    atts = attention_nodes(graph)
    for att in atts:  # the attention buffer + softmax unit of each decode attention
        name, text = generate_attn(att.spec).generated[0]
        files[f"{RTL_DIR}/{name}"] = text
    norms = norm_nodes(graph)
    for spec, _ in norms:  # the vector unit's RMSNorm, one module per norm
        name, text = generate_norm(spec).generated[0]
        files[f"{RTL_DIR}/{name}"] = text
    decode = decode_files(graph, RTL_DIR)
    files.update(decode[0])
    files[LAYERS_JSON] = json.dumps({
        "top": design.top, "style": STYLE, "compact": compact,
        "sources": [*(f"{b}.v" for b in design.blocks), *(n for n, _ in design.generated)],
        "cycles": step_cycles(layers, STYLE),
        "ffn_blocks": [b.spec.name for b in blocks],
        "attention": [a.spec.name for a in atts],
        "attention_cycles": {a.spec.name: a.spec.cycles() for a in atts},
        "norms": [spec.name for spec, _ in norms],
        "norm_cycles": {spec.name: spec.cycles() for spec, _ in norms},
        "ffn_cycles": {b.spec.name: b.spec.cycles() for b in blocks},
        "layers": [{"node": node.name, "name": layer.name, "n": layer.n, "k": layer.k,
                    "group": layer.group, "module": layer.top(STYLE, compact),
                    "cycles": layer.cycles(STYLE)} for node, layer in fits],
        "analytic_only": [{"node": node.name, "name": layer.name, "n": layer.n,
                           "k": layer.k} for node, layer in skipped],
    } | decode[1], indent=1) + "\n"
    return files


class HnlpuBackend(Backend):
    name: ClassVar[str] = "hnlpu"
    runs_on: ClassVar[str] = ("the IR interpreter (tokens) and Icarus / Verilator (the "
                              "hardwired decode step: llmc run DIR --simulator)")

    def emit(self, graphs: Mapping[str, Graph], plans: Mapping[str, MemoryPlanLike],
             device: Any, options: CompileOptions) -> Files:
        files = ReferenceBackend().emit(graphs, plans, device, options)
        decode = graphs.get("decode", graphs.get("prefill"))
        rtl = rtl_files(decode)
        files.update(rtl)
        files.update(system_files(decode, has_rtl=bool(rtl)))
        return files

    def run(self, artifact: Artifact, prompt: Sequence[int], max_new_tokens: int,
            on_token: Callable[[int], None] | None = None) -> RunResult:
        result = ReferenceBackend().run(artifact, prompt, max_new_tokens, on_token)
        if LAYERS_JSON in artifact.manifest["files"]:
            meta = json.loads(artifact.read_text(LAYERS_JSON))
            # the decode steps' cycles: the controller's whole step (its cycle
            # model, which the design checks for every layer it holds), else
            # the hardwired projections' alone
            step = meta.get("decode", {}).get("model_cycles", meta["cycles"])
            result.cycles = step * max(0, len(result.tokens) - 1)
        return result
