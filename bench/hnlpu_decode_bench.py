"""HNLPU whole decode steps in RTL: size, lint, build and simulation time.

Two designs of llmc.rtl.hn_ctrl (every unit + the controller), as
`llmc compile MODEL --target hnlpu --quant w4a8` writes them:

* llama-tiny (random weights, seed 0): the whole model, 2 layers + LM head;
* llmc-tiny (its shipped weights): its first layer (606,208 hardwired weights).

For each: Verilog lines of the design (compact neurons, llmc_hn_neuron) and of
the same units written wire by wire (one llmc_popcount per code), lint time,
then per simulator the build time and one decode step checked bit-exactly
against the interpreter and cycle-exactly against the controller's schedule,
with simulated cycles per wall second. Beside them, yosys cells of one layer
slice in both forms (the compact form is for simulating at scale; areas come
from the wired form, bench/hnlpu_bench.py's table).

    .venv/bin/python bench/hnlpu_bench.py --decode-steps   # into bench/results/hnlpu.*
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from llmc import api
from llmc.backends.hnlpu.decode import decode_case, decode_spec
from llmc.backends.hnlpu.layers import layer_of, linear_nodes
from llmc.rtl.hn import HnLayer, generate_me
from llmc.rtl.hn_ctrl import generate_decode
from llmc.rtl.hn_sim import build_decode, run_decode
from llmc.rtl.lint import lint
from llmc.rtl.synth import synth_design

SIMULATORS = ("icarus", "verilator")
PROMPT = [104, 105, 33]
# (model, compile keywords, layers: None for the whole model)
DESIGNS = [("llama-tiny", {"weights": "random"}, None), ("llmc-tiny", {}, 1)]
SLICE = ("layers.0.attn.k_proj", 16)  # the layer slice synthesised in both forms


def _lines(generated: tuple[tuple[str, str], ...]) -> int:
    return sum(text.count("\n") for _, text in generated)


def _wired_lines(spec) -> int:  # noqa: ANN001 - a DecodeSpec
    """Lines of the design's hardwired projections written wire by wire, minus
    their compact versions: what the design would have without llmc_hn_neuron."""
    layers = [hn for la in spec.layers for hn in (la.q, la.k, la.v, la.o, la.ffn.gate,
                                                 la.ffn.up, la.ffn.down)]
    layers += [spec.head[1]] if spec.head else []
    return sum(_lines(generate_me(hn).generated) - _lines(generate_me(hn, True).generated)
               for hn in layers)


def bench_design(model: str, kwargs: dict, layers: int | None, tmp: Path) -> dict:
    compiled = api.compile(model, "hnlpu", tmp / model, quant="w4a8", seq_len=16, **kwargs)
    prefill, decode = compiled.graphs["prefill"], compiled.graphs["decode"]
    match = decode_spec(decode, layers)
    case = decode_case(prefill, decode, match, PROMPT)
    spec = match.spec
    t0 = time.perf_counter()
    design = generate_decode(spec)
    gen_s = time.perf_counter() - t0
    paths = design.write(tmp / f"{model}-lint")
    t0 = time.perf_counter()
    messages = lint(paths, design.top)
    lint_s = time.perf_counter() - t0
    lines = _lines(design.generated)
    row = {"model": model, "what": "whole model" if spec.head else f"layer {spec.layers[0].name}",
           "weights": spec.weights, "verilog_lines": lines,
           "verilog_bytes": sum(len(t) for _, t in design.generated),
           "wired_verilog_lines": lines + _wired_lines(spec), "generate_s": gen_s,
           "lint_clean": not messages, "lint_s": lint_s, "sim": {}}
    for sim in SIMULATORS:
        t0 = time.perf_counter()
        build = build_decode(spec, sim, tmp / f"{model}-{sim}")
        build_s = time.perf_counter() - t0
        run = run_decode(build, spec, case.x, case.kcs, case.vcs, case.pos, case.y, case.hs,
                         tmp / f"{model}-{sim}" / "run")
        cycles = run.cycles[0] if run.cycles else 0
        row["sim"][sim] = {"passed": run.passed, "build_s": build_s, "cycles": cycles,
                           "expected_cycles": run.expected_cycles, "tb_wall_s": run.tb_wall_s,
                           "cycles_per_s": cycles / run.tb_wall_s if run.tb_wall_s else 0.0}
        print(model, sim, row["sim"][sim], flush=True)
    return row


def slice_cells(tmp: Path) -> dict:
    compiled = api.compile("llama-tiny", "hnlpu", tmp / "slice", weights="random",
                           quant="w4a8", seq_len=16)
    graph = compiled.graphs["decode"]
    loc, rows = SLICE
    full = layer_of(graph, next(n for n in linear_nodes(graph) if n.loc == loc))
    layer = HnLayer(f"{loc}[:{rows}]", full.codes[:rows], full.scales[:rows], full.group)
    out = {"layer": layer.name}
    for form, compact in (("wired", False), ("compact", True)):
        rep, synth_s = synth_design(generate_me(layer, compact))
        out[form] = {"cells": rep.cells, "flops": rep.flops, "synth_s": synth_s}
    return out


def decode_steps() -> dict:
    load = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="llmc-hnlpu-decode-") as tmp:
        rows = [bench_design(m, kw, la, Path(tmp)) for m, kw, la in DESIGNS]
        cells = slice_cells(Path(tmp))
    return {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}",
            "load_avg_1m_start": load, "load_avg_1m_end": round(os.getloadavg()[0], 2),
            "rows": rows, "slice_cells": cells}


def decode_lines(d: dict) -> list[str]:
    """The markdown section of `decode_steps`' data."""
    lines = ["## Whole decode steps (units + controller)", "",
             "`llmc compile MODEL --target hnlpu --quant w4a8` writes the step as one design "
             "(llmc.rtl.hn_ctrl); `llmc run DIR --simulator icarus|verilator` runs it. One "
             f"decode step after the prompt {PROMPT}: the output (logits, or the layer's "
             "residual) and every layer's SwiGLU output checked bit-exactly against the "
             "interpreter, the cycles against the controller's schedule. Machine: "
             f"{d['machine']}, 1-minute load average {d['load_avg_1m_start']} at start, "
             f"{d['load_avg_1m_end']} at end.", "",
             "| model | design | hardwired weights | Verilog lines (wire by wire) | lint | lint s "
             "| cycles (model) | Icarus build s / sim s / cycles/s | Verilator build s / sim s "
             "/ cycles/s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        sims = []
        for s in SIMULATORS:
            x = r["sim"][s]
            ok = "" if x["passed"] else " FAIL"
            sims.append(f"{x['build_s']:.1f} / {x['tb_wall_s']:.1f} / "
                        f"{x['cycles_per_s']:,.0f}{ok}")
        cyc = r["sim"][SIMULATORS[0]]
        lines.append(f"| {r['model']} | {r['what']} | {r['weights']:,} | {r['verilog_lines']:,} "
                     f"({r['wired_verilog_lines']:,}) | {'clean' if r['lint_clean'] else 'WARN'} "
                     f"| {r['lint_s']:.1f} | {cyc['cycles']:,} ({cyc['expected_cycles']:,}) | "
                     f"{sims[0]} | {sims[1]} |")
    c = d["slice_cells"]
    ratio = c["compact"]["cells"] / c["wired"]["cells"]
    lines += ["", "The designs' hardwired neurons are compact (llmc_hn_neuron: a neuron's 4-bit "
              "codes and scales as parameters, its bit-plane sum computed and registered on the "
              "edges the wired form registers it): the same function cycle for cycle, in far "
              "fewer lines than one llmc_popcount per code (in parentheses), and a plane's sum "
              "is evaluated only when it is latched. Sim s is the decode step inside the "
              "simulator (filling the attention buffer included). Yosys on "
              f"{c['layer']}: wired {c['wired']['cells']:,} cells ({c['wired']['flops']:,} "
              f"flip-flops), compact {c['compact']['cells']:,} ({c['compact']['flops']:,}, "
              f"{ratio:.1f}x: its counters and products are 32-bit integers, which synthesis "
              "does not narrow): the area figures above come from the wired form.", ""]
    return lines
