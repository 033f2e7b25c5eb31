"""`llmc demo`'s NPU section: llmc-tiny's integer-only prefill lowered to the
NPU's instruction set, run on the instruction-set simulator bit-exactly
against the IR interpreter, with its cycles and energy."""

from __future__ import annotations

import pathlib
import time

import numpy as np


def _plan(graph: object) -> dict:
    """The memory plan's json (llmc.passes.memplan), as compile makes it."""
    from llmc.passes.memplan import check_plan, plan, plan_to_json
    from llmc.passes.memplan.liveness import liveness

    problem = liveness(graph).problem
    p = plan(problem)
    check_plan(problem, p, None)
    return plan_to_json(problem, p, timing=False)


def _integer_prefill(tokens: np.ndarray) -> object:
    """llmc-tiny's prefill at len(tokens[0]) tokens, quantized w8a8-int on `tokens`."""
    from llmc.frontend.export import export_program, to_ir
    from llmc.frontend.loader import load_model
    from llmc.frontend.zoo.decoder import PrefillGraph, example_inputs
    from llmc.hw.targets import get_target
    from llmc.passes.manager import run_pipeline
    from llmc.passes.quant import apply_scheme

    loaded = load_model("llmc-tiny", "auto")
    args = example_inputs(loaded.config, "prefill", 1, tokens.shape[1], "cpu", None)
    graph = to_ir(export_program(PrefillGraph(loaded.module), args),
                  "llmc-tiny_prefill", ["tokens"], prefix="model.")
    npu = get_target("npu")
    graph = run_pipeline(graph, npu.pipeline)                 # fuse-attention, verify
    return run_pipeline(apply_scheme(graph, "w8a8-int", tokens), npu.schedule)  # fuse


def demo(root: pathlib.Path) -> None:
    from llmc.backends.npu.asm import disassemble
    from llmc.backends.npu.backend import build, dram_image, machine, read_outputs, run_phase
    from llmc.backends.npu.binary import encode
    from llmc.hw.database import get_device
    from llmc.ir import interpret

    t0 = time.perf_counter()
    text = b"The quick brown fox jumps over the lazy dog and then some more."
    calib = np.frombuffer(text[:48], np.uint8).astype(np.int64).reshape(3, 16)
    graph = _integer_prefill(calib)
    dev = get_device("edge-npu")
    graphs = {"prefill": graph}
    image, io, dram = build(graphs, {"prefill": _plan(graph)}, dev)
    out = root / "npu"
    out.mkdir(parents=True, exist_ok=True)
    (out / "program.npu").write_bytes(encode(image))
    (out / "program.s").write_text(disassemble(image))
    sim = machine(image, dev, np.frombuffer(dram_image(graphs, io["params"], dram.size),
                                            np.uint8).copy())
    tokens = calib[:1]
    st = run_phase(sim, io["prefill"], "prefill", [tokens])
    same = all(np.array_equal(a, b) for a, b in
               zip(read_outputs(sim, io["prefill"]), interpret(graph, [tokens]), strict=True))
    prog = image.programs[0]
    print("NPU backend: llmc-tiny (w8a8-int, 16 tokens) on the edge NPU's ISA "
          "(docs/npu-isa.md)")
    print(f"  program   {len(prog.instrs)} instructions, {len(prog.descs)} descriptors, "
          f"{len(encode(image)):,} bytes -> {out / 'program.s'}")
    print(f"  simulator {'bit-identical' if same else 'DIFFERENT'} to the IR interpreter "
          f"(logits and K/V)")
    print(f"  cycles    {st.cycles:,} ({st.seconds * 1e6:.1f} us at 1.37 GHz): array "
          f"{st.array_cycles:,}, vector {st.vector_cycles:,}, DMA stall "
          f"{st.stall_dma_cycles:,.0f}")
    print(f"  energy    {st.energy_j * 1e6:.1f} uJ ("
          + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in st.energy_pj.items() if v)
          + " uJ); array utilisation " f"{st.utilisation:.1%}")
    print(f"  ({time.perf_counter() - t0:.1f} s)")
