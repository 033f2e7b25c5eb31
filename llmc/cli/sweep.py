"""`llmc sweep`: models x targets x precisions x batch x TP through the cost
model, in parallel, with the Pareto front (llmc.costmodel.sweep)."""

from __future__ import annotations

import argparse

from llmc.cli.common import (
    add_gen_tokens,
    add_json,
    add_out,
    add_seq_len,
    add_target,
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
    p.add_argument("--models", required=True, metavar="M1,M2", help="zoo names")
    add_target(p, required=True, many=True)
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
    add_out(p, "sweep.json/.csv/.md/.png")
    add_json(p, "sweep.json")
    p.set_defaults(func=_sweep)


def _sweep(a: argparse.Namespace) -> int:
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
