"""Core sub-commands: compile, run, models, targets, show, demo."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from llmc.cli.common import (
    add_gen_tokens,
    add_json,
    add_out,
    add_target,
    add_trace_shape,
    print_json,
    progress,
)
from llmc.cli.limits import MAX_LENGTH, check_trace, positive
from llmc.errors import UsageError

WEIGHTS = ("auto", "meta", "random")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile a model for a target into an artifact directory")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    add_target(p, required=True)
    add_out(p, "the artifact", required=True)
    p.add_argument("--quant", metavar="SCHEME", default=None,
                   help="quantization scheme (bfp16, bfp12-ksort, mxfp4, w4a16, w8a8-int, ...)")
    p.add_argument("--sparsity", metavar="SPEC", default=None,
                   help="weight or activation sparsity: 0.5[:wanda|:sparsegpt], "
                        "2:4[:wanda|:sparsegpt], act:0.6")
    p.add_argument("--attention", metavar="SPEC", default=None,
                   help="attention form: stream:S+W, window:W, block:B/K, flash, flash:BRxBC")
    p.add_argument("--backend", metavar="NAME", default=None,
                   help="emit with the target's own backend (default) or 'reference' "
                        "(the IR interpreter: runs anywhere, fast on small models)")
    add_trace_shape(p, WEIGHTS)
    add_json(p, "the figures the text prints (the whole report is DIR/report.json)")
    p.set_defaults(func=_compile)

    p = sub.add_parser("run", help="generate text with a compiled artifact (greedy)")
    p.add_argument("dir", help="artifact directory written by llmc compile")
    p.add_argument("--prompt", required=True, help="prompt text (byte-level: its UTF-8 bytes)")
    add_gen_tokens(p, 32, "--max-new-tokens")
    add_target(p, why="refuse an artifact built for another target")
    add_json(p, "the prompt, the generated text and tokens, and the timings")
    p.add_argument("--simulator", choices=("icarus", "verilator", "auto"), default=None,
                   help="hnlpu artifacts: first simulate the hardwired decode step in RTL "
                        "(cocotb), bit-exact vs the interpreter and cycle-exact")
    p.add_argument("--waves", action="store_true",
                   help="with --simulator: record waveforms (kept in a work directory)")
    p.add_argument("--rtl-layers", metavar="PREFIX", default=None,
                   help="with --simulator: only the hardwired layers whose module path "
                        "starts with PREFIX (e.g. layers.0.attn.); exactly layers.N.ffn "
                        "runs that SwiGLU block, layers.N.attn that attention unit, "
                        "layers.N.attn_norm / layers.N.ffn_norm that RMSNorm unit")
    p.set_defaults(func=_run)

    p = sub.add_parser("models", help="list the model zoo")
    add_json(p, "the zoo's configs")
    p.set_defaults(func=_models)

    p = sub.add_parser("targets", help="list compilation targets")
    add_json(p, "the targets")
    p.set_defaults(func=_targets)

    p = sub.add_parser("show", help="trace a model and summarise its IR")
    p.add_argument("model")
    add_trace_shape(p, WEIGHTS)
    p.add_argument("--ir", action="store_true", help="print the whole IR text")
    add_json(p, "the summary (with --ir, the IR text under \"ir\")")
    p.set_defaults(func=_show)

    p = sub.add_parser("demo", help="a tour of llmc on the shipped llmc-tiny model")
    add_out(p, "the artifacts", default="llmc-demo")
    p.set_defaults(func=_demo)


def _compile(a: argparse.Namespace) -> int:
    from llmc import api

    check_trace(a.batch, a.seq_len)
    with progress(8) as step:
        result = api.compile(a.model, a.target, a.out, phase=a.phase, batch=a.batch,
                             seq_len=a.seq_len, weights=a.weights, progress=step,
                             quant=a.quant, sparsity=a.sparsity, attention=a.attention,
                             backend=a.backend)
    r = result.report
    m = r["memory"]
    if not m["fits"]:
        sys.stderr.write(f"llmc: warning: the weights do not fit on {r['target']}: "
                         f"{m['missing_bytes'] / 1e9:,.1f} GB missing of "
                         f"{m['capacity_bytes'] / 1e9:,.1f} GB; the times below assume they "
                         f"did (see `llmc report {r['model']} --target {r['target']} --tp N` "
                         f"or `llmc partition`)\n")
    if a.json:
        print_json(_compile_json(result))
        return 0
    print(f"compiled {r['model']} for {r['target']} -> {result.out_dir}/")
    fallback = "" if result.backend == result.manifest["target_backend"] else \
        " (chosen with --backend)" if a.backend else \
        f" (its {result.manifest['target_backend']} backend is not built yet)"
    print(f"  backend {result.backend}{fallback}" + (
        "" if not result.manifest.get("generate") or result.manifest["model"]["shape_only"]
        else f"; run it: llmc run {result.out_dir} --prompt TEXT"))
    print(f"  parameters {r['params_total']:,} (active {r['params_active']:,}), "
          f"weights {r['weight_bytes'] / 1e9:.3f} GB")
    if "prefill" in r:
        p = r["prefill"]
        print(f"  prefill  {p['flops'] / 1e9:,.2f} GFLOP executed, {p['bytes'] / 1e9:,.3f} GB "
              f"moved, {p['time_s'] * 1e3:,.2f} ms ({p['bound']}-bound)")
        _print_saved(p)
    if r.get("decode"):
        d = r["decode"]
        print(f"  decode   {d['flops'] / 1e9:,.2f} GFLOP/token executed, "
              f"{d['time_per_token_s'] * 1e3:,.2f} ms/token, {d['tokens_per_s']:,.0f} tokens/s "
              f"({d['bound']}-bound)")
        _print_saved(d)
    system = result.out_dir / "hnlpu" / "system.md"
    if system.is_file():  # the hnlpu backend's system model, beside the paper's figures
        print(f"  system   {system} (the HNLPU system model):")
        rows = [ln for ln in system.read_text().splitlines() if ln.startswith("| ")][1:]
        for ln in rows:
            print("    " + "  ".join(c.strip() for c in ln.strip("|").split("|")))
    for line in phase_times(result.timings):
        print(line)
    return 0


def _print_saved(phase: dict[str, Any]) -> None:
    """The work --sparsity/--attention removed from a phase (report.json's
    `work_saved`: registry FLOPs and bytes of the graph before their passes
    against after). The GFLOP printed above are the roofline's: what the
    hardware executes, where a sparse linear runs as its dense product."""
    w = phase.get("work_saved")
    if not w:
        return
    print(f"           sparsity/attention saved {w['flops_saved']:.1%} of the graph's FLOPs "
          f"({w['flops_before'] / 1e9:,.4g} -> {w['flops_after'] / 1e9:,.4g} GFLOP of kept work) "
          f"and {w['bytes_saved']:.1%} of its bytes; executed FLOPs count sparse linears dense")


def phase_times(timings: dict[str, float]) -> list[str]:
    """Lines of `Compiled.timings`: torch.export and llmc's own stages per
    phase (keys `<phase>.export_s`; convert, verify and passes are llmc's),
    then the whole-artifact stages (memory plan, backend)."""
    phases = dict.fromkeys(k.split(".")[0] for k in timings if "." in k)
    lines = []
    for ph in phases:
        export = timings.get(f"{ph}.export_s", 0.0)
        own = sum(v for k, v in timings.items()
                  if k.startswith(ph + ".") and k != f"{ph}.export_s")
        lines.append(f"  time     {ph}: torch.export {export:.2f} s, llmc {own:.2f} s")
    rest = {k.removesuffix("_s"): v for k, v in timings.items() if "." not in k}
    if rest:
        lines.append("  time     " + ", ".join(f"{k.replace('memplan', 'memory plan')} "
                                             f"{v:.2f} s" for k, v in rest.items()))
    return lines


def _compile_json(result: Any) -> dict[str, Any]:
    r = result.report
    keep = ("flops", "bytes", "time_s", "bound", "time_per_token_s", "tokens_per_s",
            "energy_j", "energy_j_per_token", "kernels", "nodes", "work_saved")
    return {
        "out_dir": str(result.out_dir), "model": r["model"], "target": r["target"],
        "backend": result.backend, "target_backend": result.manifest["target_backend"],
        "params_total": r["params_total"], "params_active": r["params_active"],
        "weight_bytes": r["weight_bytes"], "memory": r["memory"],
        **{ph: {k: r[ph][k] for k in keep if k in r[ph]} for ph in ("prefill", "decode")
           if r.get(ph)},
        "timings_s": dict(result.timings),
    }


LONG_GENERATION = 64  # tokens; longer runs show a progress bar


def _run(a: argparse.Namespace) -> int:
    from llmc import api

    positive("--gen-tokens", a.gen_tokens, MAX_LENGTH)
    if a.simulator or a.waves or a.rtl_layers:
        _run_rtl(a)
    start = time.perf_counter()
    if a.gen_tokens >= LONG_GENERATION and not a.json:
        with progress(a.gen_tokens) as step:
            made = api.run(a.dir, a.prompt, a.gen_tokens, target=a.target,
                           on_token=lambda t: step(f"token {t}"))
    else:
        made = api.run(a.dir, a.prompt, a.gen_tokens, target=a.target)
    total = time.perf_counter() - start
    res = made.result
    t = res.timings
    if a.json:
        print_json({"artifact": str(made.artifact), "backend": made.backend,
                    "target": made.target, "prompt": a.prompt, "text": made.text,
                    "prompt_tokens": made.prompt_tokens, "tokens": made.tokens,
                    "timings_s": dict(t) | {"total_s": total}, "cycles": res.cycles,
                    "energy_j": res.energy_j})
        return 0
    sys.stdout.write(a.prompt + made.text + "\n")
    sys.stdout.flush()
    n = len(made.tokens)
    rate = (n - 1) / t["decode_s"] if n > 1 and t["decode_s"] > 0 else 0.0
    extra = "".join([f", {res.cycles:,} cycles" if res.cycles else "",
                     f", {res.energy_j:.3g} J" if res.energy_j else ""])
    sys.stderr.write(f"llmc: {n} tokens from a {len(made.prompt_tokens)}-token prompt on the "
                     f"{made.backend} backend ({made.target}): prefill {t['prefill_s']:.3f} s, "
                     f"decode {t['decode_s']:.3f} s ({rate:,.1f} tokens/s){extra}; "
                     f"{total:.2f} s in all\n")
    if "npu_decode_s" in t and res.cycles:  # a simulated device: its own clock's figures
        device_s = t["npu_prefill_s"] + t["npu_decode_s"]
        sys.stderr.write(f"llmc: NPU at {res.cycles / device_s / 1e9:.2f} GHz (simulated): "
                         f"{res.cycles:,} cycles, prefill {t['npu_prefill_s'] * 1e3:.3f} ms, "
                         f"decode {t.get('npu_tokens_per_s', 0.0):,.1f} tokens/s, "
                         f"{t.get('npu_j_per_token', 0.0):.3g} J/token\n")
    return 0


def _run_rtl(a: argparse.Namespace) -> None:
    """`llmc run --simulator`: the hnlpu backend's decode step in RTL (one line)."""
    from llmc import __version__, api
    from llmc.backends.artifact import open_artifact

    art = open_artifact(a.dir, __version__)
    if art.backend != "hnlpu":
        raise UsageError(f"{a.dir} was built by the {art.backend} backend; --simulator runs "
                         "the hardwired RTL of an hnlpu artifact (--target hnlpu)")
    from llmc.backends.generate import Shapes, check_request
    from llmc.backends.hnlpu.rtlrun import run_rtl

    if art.manifest.get("generate"):      # a generation that cannot follow fails before the RTL
        check_request(Shapes.from_json(art.manifest["generate"]), api._tokenize(a.prompt),
                      a.gen_tokens)
    step = run_rtl(art, api._tokenize(a.prompt), a.simulator or "auto", waves=a.waves,
                   only=a.rtl_layers)
    sys.stderr.write(f"llmc: {step.line()}\n")
    if step.waves:
        sys.stderr.write(f"llmc: waveforms: {step.waves}\n")
    if not step.passed:
        raise UsageError(f"the RTL decode step failed: {step.run.problem or 'mismatch'}; "
                         f"see {step.run.sim.log}")


def _models(a: argparse.Namespace) -> int:
    from llmc.frontend.loader import WEIGHTS_DIR
    from llmc.frontend.zoo.config import CONFIGS

    rows = [{"name": c.name, "family": c.family, "layers": c.n_layers, "hidden": c.hidden,
             "heads": c.n_heads, "kv_heads": c.n_kv_heads, "experts": c.n_experts,
             "top_k": c.top_k if c.n_experts else None, "context": c.max_seq_len,
             "weights": "shipped" if (WEIGHTS_DIR / f"{c.name}.safetensors").exists()
             else "shape-only"} for c in CONFIGS.values()]
    from llmc.frontend.zoo.event_lm import EVENT_CONFIGS  # recurrent event LMs

    rows += [{"name": c.name, "family": c.kind, "layers": c.n_layers, "hidden": max(c.hidden),
              "heads": 0, "kv_heads": 0, "experts": 0, "top_k": None,
              "context": c.max_seq_len,
              "weights": "shipped" if (WEIGHTS_DIR / f"{c.name}.safetensors").exists()
              else "shape-only"} for c in EVENT_CONFIGS.values()]
    if a.json:
        print_json(rows)
        return 0
    from rich.table import Table

    from llmc.cli.common import console

    table = Table("name", "family", "layers", "hidden", "heads (kv)", "experts", "weights")
    for r in rows:
        table.add_row(r["name"], r["family"], str(r["layers"]), str(r["hidden"]),
                      f"{r['heads']} ({r['kv_heads']})",
                      f"{r['top_k']}/{r['experts']}" if r["experts"] else "-", r["weights"])
    console().print(table)
    return 0


def _targets(a: argparse.Namespace) -> int:
    from llmc.backends import REFERENCE, is_built
    from llmc.hw.targets import TARGETS

    rows = [{"name": t.name, "description": t.description, "device": t.device,
             "backend": t.backend, "backend_built": is_built(t.backend),
             "runs_on": t.backend if is_built(t.backend) else REFERENCE}
            for t in TARGETS.values()]
    if a.json:
        print_json(rows)
        return 0
    for t in rows:
        runs = f"backend {t['backend']}" if t["backend_built"] else \
            f"backend {t['backend']}: not built yet, runs on the {t['runs_on']} backend"
        print(f"{t['name']:<12} {t['description']}  [device {t['device']}, {runs}]")
    return 0


def _show(a: argparse.Namespace) -> int:
    from llmc import api

    check_trace(a.batch, a.seq_len)
    traced = api.trace(a.model, a.phase, a.batch, a.seq_len, weights=a.weights)
    if a.json:
        s = api.summarize(traced.graph)
        print_json({"graph": traced.graph.name, **s}
                   | ({"ir": str(traced.graph)} if a.ir else {}))
        return 0
    if a.ir:
        sys.stdout.write(str(traced.graph))
        return 0
    s = api.summarize(traced.graph)
    print(f"@{traced.graph.name}: {s['nodes']} nodes, {s['params_total']:,} parameters "
          f"({s['params_active']:,} active), {s['flops'] / 1e9:,.3f} GFLOP, "
          f"{s['bytes'] / 1e6:,.1f} MB moved")
    print("  " + ", ".join(f"{op} {n}" for op, n in s["ops"].items()))
    return 0


def _demo(a: argparse.Namespace) -> int:
    from llmc.demo import run_demo

    if a.out is not None and not a.out.strip():
        raise UsageError("-o must name a directory")
    return run_demo(a.out)
