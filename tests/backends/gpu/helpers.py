"""What the gpu backend's tests share: small graphs built from a function,
a graph run through the gpu backend (Triton's interpreter here) against the
IR interpreter, and llmc-tiny compiled for a100 with the reference
backend's greedy tokens. Importing this module needs no Triton; the tests
that run kernels skip without it."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from llmc import api
from llmc.backends.generate import Shapes, generate
from llmc.ir import Builder, Graph, interpret
from llmc.numerics import assert_close

PROMPT = "The "
CONTEXT = 40          # prompt tokens (4) + 32 new ones fit


def graph(build) -> tuple[Graph, list[np.ndarray]]:  # noqa: ANN001
    """A graph made by build(b, rng) -> (outputs, inputs' values)."""
    g = Graph("k")
    b = Builder(g)
    outs, values = build(b, np.random.default_rng(0))
    g.outputs = list(outs)
    return g, values


def check(g: Graph, xs: list[np.ndarray], tmp_path, act: str,  # noqa: ANN001
          exact: bool = False) -> None:
    """g's outputs on the gpu backend match the IR interpreter's: within
    `act`'s tolerance, or bit-exact (`exact`, integer outputs)."""
    from llmc.backends.gpu.check import run_graph

    ref = interpret(g, xs)
    got = run_graph(g, xs, tmp_path, act=act)
    for r, o in zip(ref, got, strict=True):
        assert_close(o, r, "i8" if exact else act)


def rand(rng, *shape, scale: float = 1.0) -> np.ndarray:  # noqa: ANN001
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@functools.cache
def compiled(root: str, quant: str | None) -> tuple[Path, list[int]]:
    """llmc-tiny for a100 (batch 2) and the reference backend's 32 tokens."""
    out = Path(root) / (quant or "bf16")
    c = api.compile("llmc-tiny", "a100", out, batch=2, seq_len=CONTEXT, quant=quant)
    pre, dec = c.graphs["prefill"], c.graphs["decode"]
    caches = [np.zeros(x.type.shape, x.type.dtype.np) for x in dec.inputs[2:]]
    ref = generate(lambda xs: interpret(pre, xs), lambda xs: interpret(dec, xs), caches,
                   Shapes.from_json(c.manifest["generate"]), list(PROMPT.encode()), 32)
    return out, ref.tokens
