"""The gpu backend in the tour: llmc-tiny compiled for a100, a look at a
generated kernel, and a few tokens run under Triton's interpreter (or on the
GPU when there is one), checked against the reference backend's tokens."""

from __future__ import annotations

import json
import pathlib


def demo(root: pathlib.Path) -> None:
    import numpy as np

    from llmc import api
    from llmc.backends.generate import Shapes, generate
    from llmc.ir import interpret

    out = root / "llmc-tiny-gpu"
    c = api.compile("llmc-tiny", "a100", out, seq_len=8)
    program = json.loads((out / "program.json").read_text())
    kernels = sorted(p.name for p in (out / "kernels").iterdir())
    launches = sum(s["op"] not in ("view", "host") for s in program["phases"]["decode"]["steps"])
    print(f"  {out}/kernels/: {', '.join(kernels)}")
    print(f"  decode: {launches} kernel launches per token (one per fusion group), "
          f"{program['act_dtype']} activations and weights, float32 accumulation")
    src = (out / "kernels" / "attention.py").read_text().splitlines()
    at = next(i for i, line in enumerate(src) if "for k0 in range(lo, hi, BLOCK_K)" in line)
    print(f"  kernels/attention.py, line {at + 1} on (the online softmax over key tiles):")
    for line in src[at:at + 4]:
        print(f"    {line.strip()}")
    n = 4
    got = api.run(out, "The ", max_new_tokens=n)
    pre, dec = c.graphs["prefill"], c.graphs["decode"]
    caches = [np.zeros(x.type.shape, x.type.dtype.np) for x in dec.inputs[2:]]
    want = generate(lambda xs: interpret(pre, xs), lambda xs: interpret(dec, xs), caches,
                    Shapes.from_json(c.manifest["generate"]), list(b"The "), n).tokens
    t = got.result.timings
    same = "identical to" if got.tokens == want else "DIFFERENT from"
    print(f"  llmc run --prompt 'The ' ({n} tokens, prefill {t['prefill_s']:.1f} s, decode "
          f"{t['decode_s']:.1f} s): {got.text!r}, {same} the reference backend")
