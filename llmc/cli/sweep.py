"""`llmc sweep`: models x targets x precisions x batch x TP through the cost
model, in parallel, with the Pareto front (llmc.costmodel.sweep).

`llmc sweep SPEC.toml -o DIR` runs a sweep spec (llmc.dse: hardware
overrides, quantization, sparsity, context, cost model and/or simulator) on
a local process pool or, with `--engine ray [--address auto|HOST:PORT]`, as
Ray tasks; points stream into DIR and a rerun resumes. `--search nsga2
--trials N` searches the spec's axes for the tokens/J x tokens/s x area
front instead of running the grid. The flags (`--models`, `--target`, ...)
stay a shorthand: with `--engine` or `--address` they become a spec.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from llmc.cli.common import (
    add_gen_tokens,
    add_json,
    add_out,
    add_seq_len,
    add_target,
    console,
    ints,
    names,
    print_json,
    progress,
)
from llmc.cli.limits import check_cost
from llmc.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="design-space sweep: models x targets x precisions x "
                                     "batch x TP, in parallel, with the Pareto front")
    p.add_argument("spec", nargs="?", metavar="SPEC.toml",
                   help="a sweep spec (axes and what to evaluate; see docs/sweep-cluster.md); "
                        "without one, the flags below give the axes")
    p.add_argument("--models", metavar="M1,M2", help="zoo names")
    add_target(p, many=True)
    p.add_argument("--quant", default="", metavar="Q1,Q2",
                   help="schemes or storage formats (bf16, int8, int4, w4a16, bfp12, "
                        "int4-w+int8-a, ...; empty: the device's)")
    p.add_argument("--batch", default="1", metavar="B1,B2", help="batch sizes (default 1)")
    p.add_argument("--tp", default="1", metavar="N1,N2", help="tensor-parallel degrees")
    add_seq_len(p, None, "prompt (prefill) length in tokens (default min(2048, the model's "
                         "context))")
    add_gen_tokens(p, 256)
    p.add_argument("--context", type=int, default=None, metavar="N",
                   help="KV length a decode step reads (default seq-len + gen-tokens)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="worker processes (default: one per core)")
    add_out(p, "sweep.json/.csv/.md/.png (with a spec: points.jsonl, sweep.jsonl/.csv, "
               "pareto.png, summary.json)")
    add_json(p, "sweep.json")
    d = p.add_argument_group("spec sweeps (llmc.dse)")
    d.add_argument("--engine", choices=("local", "ray"), default=None,
                   help="where points run: local worker processes (default) or Ray tasks")
    d.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="the Ray cluster to use (default: start a local one)")
    d.add_argument("--yes", action="store_true",
                   help="run a grid larger than the point limit")
    d.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="points per task (default: about 8 tasks per worker, at most 64)")
    d.add_argument("--search", choices=("nsga2",), default=None,
                   help="search the axes for the Pareto front (Optuna NSGA-II) instead of "
                        "running the grid")
    d.add_argument("--trials", type=int, default=None, metavar="N",
                   help="points the search evaluates (default a tenth of the grid)")
    d.add_argument("--seed", type=int, default=0, help="the search's seed")
    p.set_defaults(func=_sweep)


def _sweep(a: argparse.Namespace) -> int:
    if a.spec is not None or a.engine is not None or a.address is not None \
            or a.search is not None:
        return _spec_sweep(a)
    if not a.models or not a.target:
        raise UsageError("give a sweep spec (llmc sweep SPEC.toml -o DIR) or --models and "
                         "--target")
    from llmc.costmodel.sweep import Shape, files, markdown, points, sweep
    from llmc.outdir import check_dest

    if a.out:
        check_dest(a.out, "sweep.json")
    quants = [q.strip() or None for q in a.quant.split(",")] if a.quant else [None]
    batches = ints(a.batch, "--batch")
    check_cost(batches, seq_len=a.seq_len, gen_tokens=a.gen_tokens, context=a.context)
    pts = points(names(a.models, "--models"), names(a.target, "--target"), quants,
                 batches, ints(a.tp, "--tp"))
    if a.jobs is not None and a.jobs <= 0:
        raise UsageError(f"--jobs must be positive, got {a.jobs}")
    shape = Shape(a.seq_len, a.gen_tokens, a.context)
    with progress(len(pts)) as step:
        rows = sweep(pts, shape, a.jobs, step)
    if a.json:  # the object sweep.json holds
        print_json({"prompt": shape.prompt, "output": shape.output, "context": shape.context,
                    "rows": rows})
    else:
        print(markdown(rows, shape), end="")
    if a.out:
        from llmc.outdir import write_dir

        write_dir(a.out, files(rows, shape), marker="sweep.json")
        if not a.json:
            print(f"wrote sweep.json, sweep.csv, sweep.md, sweep.png to {a.out}/")
    return 0


def _flags_spec(a: argparse.Namespace) -> dict:
    """The spec tables the shorthand flags stand for."""
    if not a.models or not a.target:
        raise UsageError("give a sweep spec (llmc sweep SPEC.toml -o DIR) or --models and "
                         "--target")
    quants = [q.strip() or None for q in a.quant.split(",")] if a.quant else [None]
    axes = {"model": names(a.models, "--models"), "target": names(a.target, "--target"),
            "quant": quants, "batch": ints(a.batch, "--batch"), "tp": ints(a.tp, "--tp")}
    if a.context is not None:
        axes["context"] = a.context
    return {"sweep": {"prompt": a.seq_len, "output": a.gen_tokens}, "axes": axes}


def _spec_sweep(a: argparse.Namespace) -> int:
    from llmc.dse.engines import make_engine
    from llmc.dse.spec import check_size, load_spec, parse_spec
    from llmc.dse.store import MARKER
    from llmc.outdir import check_dest

    if a.spec is not None and (a.models or a.target):
        raise UsageError("give either a sweep spec or --models/--target, not both")
    if not a.out:
        raise UsageError("a spec sweep writes a directory: give -o DIR")
    if a.json:
        raise UsageError("--json applies to the flags' sweep; a spec sweep writes "
                         "sweep.jsonl and summary.json under -o")
    check_dest(a.out, MARKER)
    spec = load_spec(a.spec) if a.spec is not None else parse_spec(_flags_spec(a),
                                                                    where="flags")
    if a.chunk is not None and a.chunk <= 0:
        raise UsageError(f"--chunk must be positive, got {a.chunk}")
    if a.search is None:
        check_size(spec, a.yes)
    engine = make_engine(a.engine or "local", a.address, a.jobs)
    try:
        with _bar() as step:
            if a.search is not None:
                from llmc.dse.search import search

                out = search(spec, a.out, engine, trials=a.trials, seed=a.seed,
                             chunk=a.chunk, progress=step)
            else:
                from llmc.dse.run import run_sweep

                out = run_sweep(spec, a.out, engine, yes=a.yes, chunk=a.chunk, progress=step)
    finally:
        engine.close()
    what = "searched" if a.search else "swept"
    print(f"{what} {out.points:,} points on {engine.name} ({engine.workers} workers): "
          f"{out.computed:,} computed, {out.reused:,} reused, in {out.seconds:.1f} s "
          f"({out.points_per_s:,.1f} points/s); {out.front} on the Pareto front")
    print(f"wrote {', '.join(out.files)} to {a.out}/")
    return 0


def rate_text(done: int, total: int, elapsed_s: float) -> str:
    """"12/40 points, 3.0 points/s, ETA 0:00:09" (no rate before the first point)."""
    if done <= 0 or elapsed_s <= 0:
        return f"{done:,}/{total:,} points"
    rate = done / elapsed_s
    left = round((total - done) / rate)
    return (f"{done:,}/{total:,} points, {rate:,.1f} points/s, "
            f"ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}")


@contextmanager
def _bar() -> Iterator[Callable[[int, int], None]]:
    """A one-line progress display on stderr with points/s and ETA (none
    when stderr is not a terminal)."""
    out = console(stderr=True)
    if not out.is_terminal:
        yield lambda done, total: None
        return
    from rich.live import Live

    t0 = time.perf_counter()
    with Live("", console=out, transient=True, refresh_per_second=4) as live:
        def step(done: int, total: int) -> None:
            live.update(rate_text(done, total, time.perf_counter() - t0))

        yield step
