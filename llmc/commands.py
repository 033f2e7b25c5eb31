"""Core sub-commands: compile, run, models, targets, show, demo."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from llmc.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile a model for a target into an artifact directory")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    p.add_argument("--target", "-t", required=True, help="a100, h100, npu, ... (llmc targets)")
    p.add_argument("-o", "--out", required=True, help="artifact directory to write")
    p.add_argument("--quant", metavar="SCHEME", default=None,
                   help="quantization scheme (bfp16, bfp12-ksort, mxfp4, w4a16, w8a8-int, ...)")
    p.add_argument("--sparsity", metavar="SPEC", default=None,
                   help="weight or activation sparsity: 0.5[:wanda|:sparsegpt], "
                        "2:4[:wanda|:sparsegpt], act:0.6")
    p.add_argument("--attention", metavar="SPEC", default=None,
                   help="attention form: stream:S+W, window:W, block:B/K, flash, flash:BRxBC")
    _shape_args(p)
    p.set_defaults(func=_compile)

    p = sub.add_parser("run", help="generate text with a compiled artifact (greedy)")
    p.add_argument("dir", help="artifact directory written by llmc compile")
    p.add_argument("--prompt", required=True, help="prompt text (byte-level: its UTF-8 bytes)")
    p.add_argument("--gen-tokens", "--max-new-tokens", dest="gen_tokens", type=int, default=32,
                   metavar="N", help="tokens to generate (default 32)")
    p.add_argument("--target", "-t", default=None,
                   help="refuse an artifact built for another target")
    p.set_defaults(func=_run)

    p = sub.add_parser("models", help="list the model zoo")
    p.set_defaults(func=_models)

    p = sub.add_parser("targets", help="list compilation targets")
    p.set_defaults(func=_targets)

    p = sub.add_parser("show", help="trace a model and summarise its IR")
    p.add_argument("model")
    _shape_args(p)
    p.add_argument("--ir", action="store_true", help="print the whole IR text")
    p.set_defaults(func=_show)

    p = sub.add_parser("demo", help="a tour of llmc on the shipped llmc-tiny model")
    p.add_argument("-o", "--out", default="llmc-demo", help="where to put the artifacts")
    p.set_defaults(func=_demo)


def _shape_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--phase", choices=("prefill", "decode"), default="prefill")
    p.add_argument("--seq-len", type=int, default=None,
                   help="prompt length (prefill) / KV-cache length (decode); "
                        "default min(128, the model's context)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--weights", choices=("auto", "meta", "random"), default="auto",
                   help="auto: real weights when available, else shape-only")


@contextmanager
def progress(total: int) -> Iterator:
    """A progress bar on stderr; yields step(label)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(stderr=True)
    if not console.is_terminal:  # a log or a pipe gets no bar (and no stray newline)
        yield lambda label: None
        return
    with Progress(TextColumn("{task.description:<20}"), BarColumn(), TimeElapsedColumn(),
                  transient=True, console=console) as bar:
        task = bar.add_task("", total=total)
        started = [False]

        def step(label: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=label)

        yield step
        bar.update(task, completed=total)


def _console(stderr: bool = False):  # noqa: ANN202
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _compile(a: argparse.Namespace) -> int:
    from llmc import api

    with progress(8) as step:
        result = api.compile(a.model, a.target, a.out, phase=a.phase, batch=a.batch,
                             seq_len=a.seq_len, weights=a.weights, progress=step,
                             quant=a.quant, sparsity=a.sparsity, attention=a.attention)
    r = result.report
    print(f"compiled {r['model']} for {r['target']} -> {result.out_dir}/")
    fallback = "" if result.backend == result.manifest["target_backend"] else \
        f" (its {result.manifest['target_backend']} backend is not built yet)"
    print(f"  backend {result.backend}{fallback}" + (
        "" if not result.manifest.get("generate") or result.manifest["model"]["shape_only"]
        else f"; run it: llmc run {result.out_dir} --prompt TEXT"))
    print(f"  parameters {r['params_total']:,} (active {r['params_active']:,}), "
          f"weights {r['weight_bytes'] / 1e9:.3f} GB")
    m = r["memory"]
    if not m["fits"]:
        sys.stderr.write(f"llmc: warning: the weights do not fit on {r['target']}: "
                         f"{m['missing_bytes'] / 1e9:,.1f} GB missing of "
                         f"{m['capacity_bytes'] / 1e9:,.1f} GB; the times below assume they "
                         f"did (see `llmc report {r['model']} --target {r['target']} --tp N` "
                         f"or `llmc partition`)\n")
    if "prefill" in r:
        p = r["prefill"]
        print(f"  prefill  {p['flops'] / 1e9:,.2f} GFLOP, {p['bytes'] / 1e9:,.3f} GB moved, "
              f"{p['time_s'] * 1e3:,.2f} ms ({p['bound']}-bound)")
    if "decode" in r and r["decode"]:
        d = r["decode"]
        print(f"  decode   {d['flops'] / 1e9:,.2f} GFLOP/token, {d['time_per_token_s'] * 1e3:,.2f} "
              f"ms/token, {d['tokens_per_s']:,.0f} tokens/s ({d['bound']}-bound)")
    t = result.timings
    export = sum(v for k, v in t.items() if k.endswith("export_s"))
    own = sum(v for k, v in t.items() if not k.endswith("export_s"))
    print(f"  time: torch.export {export:.2f} s, llmc {own:.2f} s")
    return 0


LONG_GENERATION = 64  # tokens; longer runs show a progress bar


def _run(a: argparse.Namespace) -> int:
    from llmc import api

    if a.gen_tokens <= 0:
        raise UsageError(f"--gen-tokens must be a positive integer, got {a.gen_tokens}")
    start = time.perf_counter()
    if a.gen_tokens >= LONG_GENERATION:
        with progress(a.gen_tokens) as step:
            made = api.run(a.dir, a.prompt, a.gen_tokens, target=a.target,
                           on_token=lambda t: step(f"token {t}"))
    else:
        made = api.run(a.dir, a.prompt, a.gen_tokens, target=a.target)
    total = time.perf_counter() - start
    sys.stdout.write(a.prompt + made.text + "\n")
    sys.stdout.flush()
    t = made.result.timings
    n = len(made.tokens)
    rate = (n - 1) / t["decode_s"] if n > 1 and t["decode_s"] > 0 else 0.0
    extra = "".join([f", {made.result.cycles:,} cycles" if made.result.cycles else "",
                     f", {made.result.energy_j:.3g} J" if made.result.energy_j else ""])
    sys.stderr.write(f"llmc: {n} tokens from a {len(made.prompt_tokens)}-token prompt on the "
                     f"{made.backend} backend ({made.target}): prefill {t['prefill_s']:.3f} s, "
                     f"decode {t['decode_s']:.3f} s ({rate:,.1f} tokens/s){extra}; "
                     f"{total:.2f} s in all\n")
    return 0


def _models(a: argparse.Namespace) -> int:
    from rich.table import Table

    from llmc.frontend.loader import WEIGHTS_DIR
    from llmc.frontend.zoo.config import CONFIGS

    table = Table("name", "family", "layers", "hidden", "heads (kv)", "experts", "weights")
    for c in CONFIGS.values():
        shipped = (WEIGHTS_DIR / f"{c.name}.safetensors").exists()
        table.add_row(c.name, c.family, str(c.n_layers), str(c.hidden),
                      f"{c.n_heads} ({c.n_kv_heads})",
                      f"{c.top_k}/{c.n_experts}" if c.n_experts else "-",
                      "shipped" if shipped else "shape-only")
    _console().print(table)
    return 0


def _targets(a: argparse.Namespace) -> int:
    from llmc.backends import REFERENCE, is_built
    from llmc.hw.targets import TARGETS

    for t in TARGETS.values():
        runs = f"backend {t.backend}" if is_built(t.backend) else \
            f"backend {t.backend}: not built yet, runs on the {REFERENCE} backend"
        print(f"{t.name:<12} {t.description}  [device {t.device}, {runs}]")
    return 0


def _show(a: argparse.Namespace) -> int:
    from llmc import api

    traced = api.trace(a.model, a.phase, a.batch, a.seq_len, weights=a.weights)
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

    if a.out and not a.out.strip():
        raise UsageError("-o must name a directory")
    return run_demo(a.out)
