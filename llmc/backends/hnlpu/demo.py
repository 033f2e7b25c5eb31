"""The HNLPU section of `llmc demo`: a layer of llmc-tiny hardwired in Verilog
and simulated bit-exactly against the interpreter, then the system model of
the paper's 16-chip gpt-oss-120b HNLPU."""

from __future__ import annotations

import pathlib
import shutil
from dataclasses import replace

import numpy as np

from llmc.backends.hnlpu.report import KEYS, _fmt
from llmc.backends.hnlpu.system import calibrate, calibration_workload, paper_point, system_report
from llmc.ir import Builder, Graph, TensorType, dtypes, interpret
from llmc.ir.pack import pack_int4
from llmc.rtl.hn import HnLayer
from llmc.rtl.hn_sim import build_hn, random_inputs, run_hn

NEURONS = 16  # neurons of llmc-tiny's layers.0.attn.k_proj hardwired here


def _k_proj_codes() -> np.ndarray:
    """int4 codes (round to nearest, one scale per row) of llmc-tiny's first k_proj rows."""
    from safetensors.numpy import load_file

    from llmc.frontend.loader import WEIGHTS_DIR

    w = load_file(str(WEIGHTS_DIR / "llmc-tiny.safetensors"))["layers.0.attn.k_proj.weight"]
    w = w[:NEURONS].astype(np.float64)
    scale = np.abs(w).max(axis=1, keepdims=True) / 7
    return np.clip(np.rint(w / scale), -8, 7).astype(np.int64)


def _interpreter(codes: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """int_linear of the codes on xs, run by the IR interpreter (the golden model)."""
    g = Graph("hn_demo")
    b = Builder(g)
    x = b.input("x", TensorType(xs.shape, dtypes.i8))
    packed = pack_int4(codes)
    w = b.param("w", TensorType(packed.shape, dtypes.u8, "int4x2_lane32"), packed)
    g.outputs = [b.op("int_linear", x, w)]
    return interpret(g, [xs.astype(np.int8)])[0].astype(np.int64)


def demo(root: pathlib.Path) -> None:
    codes = _k_proj_codes()
    layer = HnLayer("llmc-tiny.layers.0.attn.k_proj", codes, np.ones((NEURONS, 1), np.int64),
                    codes.shape[1])
    xs = random_inputs(layer.k, 4, seed=0)
    want = _interpreter(codes, xs)
    sim = "icarus" if shutil.which("iverilog") else "verilator"
    build = build_hn([layer], "me", sim, root / "hnlpu-layer")
    run = run_hn(build, [layer], "me", [xs], [want], root / "hnlpu-layer" / "run")
    print(f"  {layer.name}[:{NEURONS}] as Metal-Embedding Hardwired Neurons "
          f"({NEURONS} x {layer.k} int4, 16 popcounts per neuron) -> {root / 'hnlpu-layer'}/")
    print(f"  {sim}: {len(xs)} vectors {'bit-exact' if run.passed else 'MISMATCH'} vs the "
          f"interpreter's int_linear, {run.cycles[0]} cycles each (cycle model "
          f"{run.expected_cycles}: 8 bit planes + 1)")
    print("  a whole decode step in RTL (every unit + the controller sequencing them): llmc "
          "compile llama-tiny --target hnlpu --weights random --quant w4a8 --seq-len 16 -o D; "
          "llmc run D --prompt hi --gen-tokens 4 --simulator icarus (one llmc-tiny layer, "
          "606,208 hardwired weights: compile llmc-tiny likewise)")
    rep, paper = system_report(calibration_workload(), calibrate()), paper_point()
    print(f"  system model, gpt-oss-120b on {rep['chips']} chips (calibrated on the paper):")
    for k in KEYS:
        print(f"    {k:<26} {_fmt(k, rep[k]):>26}   paper {_fmt(k, paper[k])}")
    work = calibration_workload()
    long = system_report(replace(work, context=4 * work.context,
                                 attention_macs=4 * work.attention_macs), calibrate())
    print(f"  prediction, not calibrated: at {long['context']} tokens of context "
          f"{long['decode.tokens_per_s']:,.0f} tokens/s, {long['decode.tokens_per_j']:.1f} "
          f"tokens/J ({long['bound']}-bound)")
