"""Sub-commands of the passes area: `eval` (quantization) and, later, `plan`.

Each command registers itself in its own `_register_<name>(sub)`.
"""

from __future__ import annotations

import argparse
import json

from llmc.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    _register_eval(sub)


# ---- eval -------------------------------------------------------------------------


def _register_eval(sub: argparse._SubParsersAction) -> None:
    from llmc.passes.quant.schemes import SCHEMES

    p = sub.add_parser("eval", help="held-out perplexity of a model, float vs a quantization "
                                    "scheme, with weight/KV bytes")
    p.add_argument("model", help="zoo name (llmc-tiny ships weights)")
    p.add_argument("--quant", metavar="SCHEME", default=None,
                   help=f"quantization scheme: {', '.join(SCHEMES)}")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--windows", type=int, default=16,
                   help="held-out windows to evaluate (0: all); default 16")
    p.add_argument("--seq-len", type=int, default=256, help="window length (default 256)")
    p.add_argument("--batch", type=int, default=8, help="windows per interpreter run")
    p.add_argument("--weights", choices=("auto", "random"), default="auto",
                   help="auto: shipped weights; random: seeded random (smoke test)")
    p.set_defaults(func=_eval)


def _eval(a: argparse.Namespace) -> int:
    from llmc.passes.quant.evaluate import evaluate
    from llmc.passes.quant.schemes import get_scheme

    for name in ("windows", "seq_len", "batch"):
        v = getattr(a, name)
        if v < 0 or (v == 0 and name != "windows"):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {v}")
    if a.quant is not None:
        get_scheme(a.quant)  # unknown names fail before any tracing
    r = evaluate(a.model, a.quant, seq_len=a.seq_len, windows=a.windows or None,
                 batch=a.batch, weights=a.weights)
    if a.json:
        print(json.dumps(r.to_json(), sort_keys=True))
        return 0
    delta = 100.0 * (r.perplexity / r.float_perplexity - 1.0)
    print(f"{r.model} on {r.windows} held-out windows of {r.seq_len} tokens")
    print(f"  perplexity  {r.scheme}: {r.perplexity:.4f}   float: {r.float_perplexity:.4f}   "
          f"({delta:+.2f}%)")
    print(f"  weights     {r.weight_bytes:,} B   float: {r.float_weight_bytes:,} B   "
          f"(saved {r.float_weight_bytes - r.weight_bytes:,} B, "
          f"{r.float_weight_bytes / max(r.weight_bytes, 1):.2f}x smaller)")
    print(f"  KV cache    {r.kv_bytes_per_token:,.1f} B/token   float: "
          f"{r.float_kv_bytes_per_token:,.1f} B/token   "
          f"({r.float_kv_bytes_per_token / max(r.kv_bytes_per_token, 1e-9):.2f}x smaller)")
    return 0
