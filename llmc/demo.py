"""`llmc demo`: the README's main job, one tour through every capability.

Each capability adds a section here when it lands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
    print(f"  greedy continuation of {text.decode()!r}: "
          f"{_greedy(traced.model, text, 48)!r}")

    _section("3. compile for a target (shape-only llama-2-7b on a100)")
    result = api.compile("llama-2-7b", "a100", root / "llama-2-7b-a100", seq_len=2048)
    r = result.report
    print(f"  {r['params_total'] / 1e9:.2f} B parameters, prefill 2K: "
          f"{r['prefill']['flops'] / 1e12:.1f} TFLOP, decode: "
          f"{r['decode']['flops'] / 1e9:.1f} GFLOP/token -> {result.out_dir}/")
    print(f"\nartifacts under {root}/")
    return 0


def _greedy(model, prompt: bytes, n: int) -> str:  # noqa: ANN001
    import torch

    ids = torch.tensor([list(prompt)])
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model.module(ids[:, -model.config.max_seq_len:])
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
    return bytes(np.asarray(ids[0, len(prompt):]).astype(np.uint8)).decode("utf-8", "replace")
