"""HNLPU RTL: Verilog size, lint and synthesis time, simulation speed, and the
area of Metal-Embedding Hardwired Neurons against CSD constant multipliers.

Layers are slices (the first N neurons) of llama-tiny's int4 projections
(compiled with --quant w4a8, random weights, seed 0), so both forms hardwire
the same real quantized weights. For each layer and form:

* Verilog lines of the generated module;
* `verilator --lint-only -Wall` time (and that it is clean);
* yosys (`synth -noabc -flatten`, generic gates) time and cells by type;
* Icarus and Verilator: build time, then VECTORS input vectors checked
  bit-exactly against the interpreter's int_linear and cycle-exactly against
  the cycle model; simulated cycles per wall second of the vectors.

Then the area model's fit over the ME layers: cells = a * weights + c * inputs
(see `fit`); the system model charges HN area per weight.

    .venv/bin/python bench/hnlpu_bench.py    # writes bench/results/hnlpu.{json,md}

Beside them, the systolic GEMM cores (output- vs weight-stationary, one shape;
`bench.rtl_bench.bench_cores`): `--gemm-cores` reruns only that part; and whole
decode steps in RTL (bench.hnlpu_decode_bench): `--decode-steps` reruns only that.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmc import api  # noqa: E402
from llmc.backends.hnlpu.layers import layer_of, linear_nodes  # noqa: E402
from llmc.ir.ops import get_op  # noqa: E402
from llmc.rtl.hn import STYLES, HnLayer, generate  # noqa: E402
from llmc.rtl.hn_sim import build_hn, random_inputs, run_hn  # noqa: E402
from llmc.rtl.lint import lint  # noqa: E402
from llmc.rtl.synth import synth_design  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SIMULATORS = ("icarus", "verilator")
VECTORS = 32
# (projection, neurons): ME for every point, CSD for the ones marked True
POINTS = [("layers.0.attn.k_proj", 4, True), ("layers.0.attn.k_proj", 8, True),
          ("layers.0.attn.k_proj", 16, True), ("layers.0.attn.k_proj", 32, False),
          ("layers.0.ffn.down", 8, False)]


def _layers(tmp: Path) -> tuple[list[tuple[HnLayer, bool, np.ndarray, np.ndarray]], dict]:
    out = tmp / "tiny"
    compiled = api.compile("llama-tiny", "hnlpu", out, weights="random", quant="w4a8",
                           seq_len=16)
    graph = compiled.graphs["decode"]
    nodes = {n.loc: n for n in linear_nodes(graph)}
    picked = []
    for loc, rows, csd in POINTS:
        node = nodes[loc]
        full = layer_of(graph, node)
        layer = HnLayer(f"{loc}[:{rows}]", full.codes[:rows], full.scales[:rows], full.group)
        xs = random_inputs(layer.k, VECTORS, seed=rows)
        args = [xs.astype(np.int8)] + [np.asarray(graph.params[v.node.attrs["name"]])
                                       for v in node.inputs[1:]]
        want = np.asarray(get_op("int_linear").run(args, node.attrs), np.int64)[:, :rows]
        picked.append((layer, csd, xs, want))
    return picked, {"model": "llama-tiny", "quant": "w4a8", "weights": "random"}


def bench_layer(layer: HnLayer, style: str, xs: np.ndarray, want: np.ndarray,
                tmp: Path) -> dict:
    design = generate(layer, style)
    text = design.generated[0][1]
    paths = design.write(tmp / "lint")
    t0 = time.perf_counter()
    messages = lint(paths, design.top)
    lint_s = time.perf_counter() - t0
    rep, synth_s = synth_design(design)
    row = {"layer": layer.name, "style": style, "neurons": layer.n, "inputs": layer.k,
           "weights": int(np.count_nonzero(layer.codes)), "verilog_lines": text.count("\n"),
           "lint_clean": not messages, "lint_s": lint_s, "synth_s": synth_s,
           "cells": rep.cells, "flops": rep.flops, "cells_by_type": dict(rep.by_type),
           "cycles_per_vector": layer.cycles(style), "sim": {}}
    for sim in SIMULATORS:
        t0 = time.perf_counter()
        build = build_hn([layer], style, sim, tmp / f"{style}_{sim}")
        build_s = time.perf_counter() - t0
        run = run_hn(build, [layer], style, [xs], [want], tmp / f"{style}_{sim}" / "run")
        cycles = sum(run.cycles)
        row["sim"][sim] = {"passed": run.passed, "build_s": build_s, "cycles": cycles,
                           "tb_wall_s": run.tb_wall_s,
                           "cycles_per_s": cycles / run.tb_wall_s if run.tb_wall_s else 0.0}
    return row


def fit(rows: list[dict]) -> dict:
    """ME cells = a * weights + c * inputs (the per-layer input shift register),
    least squares. A per-neuron term cannot be separated at these sizes (at a
    fixed fan-in, neurons are proportional to weights): fitted alongside, it
    comes out negative, so the system model charges area per weight only."""
    me = [r for r in rows if r["style"] == "me"]
    a_mat = np.array([[r["weights"], r["inputs"]] for r in me], float)
    cells = np.array([r["cells"] for r in me], float)
    (a, c), *_ = np.linalg.lstsq(a_mat, cells, rcond=None)
    pred = a_mat @ np.array([a, c])
    with_neurons = np.array([[r["weights"], r["neurons"], r["inputs"]] for r in me], float)
    (_, b, _), *_ = np.linalg.lstsq(with_neurons, cells, rcond=None)
    return {"cells_per_weight": a, "cells_per_input": c, "cells_per_neuron_if_fitted": b,
            "max_rel_error": float(np.max(np.abs(pred - cells) / cells))}


def write_md(data: dict, path: Path) -> None:
    lines = ["# HNLPU RTL: Metal-Embedding HN vs CSD constant multipliers", "",
             f"Layers: slices of {data['source']['model']}'s int4 projections "
             f"({data['source']['quant']}, {data['source']['weights']} weights). "
             f"{data['vectors']} vectors per run, each checked bit-exactly against the "
             "interpreter's int_linear and cycle-exactly against the cycle model. "
             f"Machine: {data['machine']}; {data['yosys']}.", "",
             "| layer | form | N x K | Verilog lines | lint | lint s | yosys s | cells "
             "| flip-flops | cycles/vector | Icarus cycles/s | Verilator cycles/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        sims = [f"{r['sim'][s]['cycles_per_s']:,.0f}" + ("" if r["sim"][s]["passed"] else " FAIL")
                for s in SIMULATORS]
        lines.append(f"| {r['layer']} | {r['style']} | {r['neurons']} x {r['inputs']} | "
                     f"{r['verilog_lines']} | {'clean' if r['lint_clean'] else 'WARN'} | "
                     f"{r['lint_s']:.1f} | {r['synth_s']:.1f} | {r['cells']:,} | {r['flops']} | "
                     f"{r['cycles_per_vector']} | {sims[0]} | {sims[1]} |")
    lines += ["", "ME vs CSD, same layer (yosys generic cells):", ""]
    for me in data["rows"]:
        csd = next((r for r in data["rows"] if r["style"] == "csd"
                    and r["layer"] == me["layer"]), None)
        if me["style"] == "me" and csd:
            lines.append(f"- {me['layer']}: ME {me['cells']:,} cells, CSD {csd['cells']:,} "
                         f"cells ({csd['cells'] / me['cells']:.1f}x); ME takes "
                         f"{me['cycles_per_vector']} cycles per vector, CSD "
                         f"{csd['cycles_per_vector']}, so cells x cycles "
                         f"{me['cells'] * me['cycles_per_vector']:,} vs "
                         f"{csd['cells'] * csd['cycles_per_vector']:,}")
    f = fit(data["rows"])
    lines += ["", f"Area fit (ME): cells = {f['cells_per_weight']:.2f} x weights (nonzero "
              f"codes) + {f['cells_per_input']:.1f} x inputs (the input shift register), max "
              f"error {f['max_rel_error']:.0%}. A per-neuron term fitted alongside comes out "
              f"{f['cells_per_neuron_if_fitted']:.0f} cells (neurons are proportional to "
              "weights at a fixed fan-in, so it is not identified): the system model "
              "(system.toml `area.neuron_per_weight` = 0) charges HN area per weight.",
              "", "Cycles per second are those of the cocotb testbench run (it drives and "
              "reads the K x 8-bit and N x 32-bit buses every vector), measured on a shared "
              "2-core machine under heavy load (load average 12-20).", ""]
    if "gemm_cores" in data:
        lines += _gemm_core_lines(data["gemm_cores"])
    if "decode_steps" in data:
        from bench.hnlpu_decode_bench import decode_lines

        lines += decode_lines(data["decode_steps"])
    path.write_text("\n".join(lines))


def _gemm_core_lines(g: dict) -> list[str]:
    """The OS vs WS GEMM core table (bench.rtl_bench.bench_cores)."""
    lines = ["## Systolic GEMM cores: output- vs weight-stationary", "",
             "Standalone cores of llmc.rtl (`llmc rtl gemm|synth --dataflow os|ws`), buffers "
             "included (register files on ports, sized for the GEMM); A and B loaded and C read "
             f"back through the ports; {g['repeats']} GEMMs (seeds) per simulator run, every "
             "output checked bit-exactly against numpy and the cycles against "
             "llmc.hw.array.compute_cycles and the cycle contract. Cycles/s = start-to-done "
             "cycles per wall second of the simulator. Machine: "
             f"{g['machine']}, 1-minute load average {g['load_avg_1m_start']} at start, "
             f"{g['load_avg_1m_end']} at end (shared machine).", "",
             "| dataflow | array | GEMM (M,N,K) | Verilog lines | lint | lint s | yosys s "
             "| core cells (flip-flops) | array cells (flip-flops) | compute cycles "
             "| load / start-to-done / read-back cycles | Icarus cycles/s | Verilator cycles/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in g["rows"]:
        sims = [f"{r['sim'][s]['cycles_per_s']:,}" + ("" if r["sim"][s]["passed"] else " FAIL")
                for s in SIMULATORS]
        lines.append(
            f"| {r['dataflow']} | {r['array']} | ({r['m']},{r['n']},{r['k']}) | "
            f"{r['verilog_lines']} | {'clean' if r['lint_clean'] else 'WARN'} | {r['lint_s']:.1f} | "
            f"{r['synth_s']:.1f} | {r['core_cells']:,} ({r['core_flops']:,}) | "
            f"{r['array_cells']:,} ({r['array_flops']:,}) | {r['compute_cycles']} | "
            f"{r['load_cycles']} / {r['start_to_done']} / {r['read_cycles']} | {sims[0]} | {sims[1]} |")
    return lines + ["", "Cells by type of each core are in hnlpu.json (`gemm_cores`). Array cells "
                    "are the array module alone (`llmc rtl synth`), core cells the whole design "
                    "with its register-file buffers (`llmc rtl synth --core 16x16x16`). Verilator "
                    "runs these GEMMs in about 10 ms, so its cycles/s vary by up to 2x between "
                    "runs; bench/results/rtl.md times longer runs.", ""]


def gemm_cores() -> dict:
    """Run bench.rtl_bench.bench_cores, with the machine and its load."""
    import os

    from bench.rtl_bench import REPEATS, bench_cores

    load = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="llmc-gemm-cores-") as tmp:
        rows = bench_cores(Path(tmp))
    return {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}", "repeats": REPEATS,
            "load_avg_1m_start": load, "load_avg_1m_end": round(os.getloadavg()[0], 2),
            "rows": rows}


def main() -> int:
    if "--md-only" in sys.argv:
        write_md(json.loads((RESULTS / "hnlpu.json").read_text()), RESULTS / "hnlpu.md")
        return 0
    parts = {"--gemm-cores": ("gemm_cores", gemm_cores), "--decode-steps": ("decode_steps", None)}
    for flag, (key, run) in parts.items():  # only that part, into the existing results
        if flag in sys.argv:
            if run is None:
                from bench.hnlpu_decode_bench import decode_steps as run
            data = json.loads((RESULTS / "hnlpu.json").read_text())
            data[key] = run()
            (RESULTS / "hnlpu.json").write_text(json.dumps(data, indent=1) + "\n")
            write_md(data, RESULTS / "hnlpu.md")
            return 0
    from llmc.rtl.tools import find_yosys

    with tempfile.TemporaryDirectory(prefix="llmc-hnlpu-bench-") as tmp:
        picked, source = _layers(Path(tmp))
        rows = []
        for i, (layer, csd, xs, want) in enumerate(picked):
            for style in STYLES:
                if style == "csd" and not csd:
                    continue
                rows.append(bench_layer(layer, style, xs, want, Path(tmp) / f"p{i}"))
                print(json.dumps({k: rows[-1][k] for k in ("layer", "style", "cells",
                                                          "synth_s")}), flush=True)
    data = {"machine": f"{platform.machine()}, {platform.python_version()}",
            "yosys": find_yosys().version.split(" (")[0], "vectors": VECTORS,
            "source": source, "rows": rows, "gemm_cores": gemm_cores()}
    from bench.hnlpu_decode_bench import decode_steps

    data["decode_steps"] = decode_steps()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hnlpu.json").write_text(json.dumps(data, indent=1) + "\n")
    write_md(data, RESULTS / "hnlpu.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
