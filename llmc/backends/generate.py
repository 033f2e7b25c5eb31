"""Greedy generation over a prefill and a KV-cached decode, for any backend.

The zoo's graphs have fixed shapes: prefill takes `tokens` (B, T) and
returns the logits (B, T, V) and every layer's K and V (B, G, T, D); decode
takes one token (B, 1), its position (1,) and the caches (B, G, S, D), and
returns the logits (B, 1, V) and the caches with that position written.
A prompt of L <= T tokens is padded to T: attention is causal, so the
logits and K/V at positions < L do not depend on the padding, and decode
attends only to positions <= its own, each written before it is read.
Every row of the batch holds the same prompt; row 0 is the answer.

A backend supplies `prefill(tokens) -> outputs` and `decode(inputs) ->
outputs` (numpy in, numpy out); `generate` runs the loop and times it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmc.backends.base import RunResult
from llmc.errors import UsageError

Step = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class Shapes:
    """A language model artifact's fixed sizes (manifest.json "generate")."""

    batch: int            # B
    prompt_tokens: int    # T: the prefill graph's token count
    context_tokens: int   # S: the decode graph's cache length
    vocab_size: int       # V

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Shapes:
        return cls(int(d["batch"]), int(d["prompt_tokens"]), int(d["context_tokens"]),
                   int(d["vocab_size"]))


def check_request(shapes: Shapes, prompt: Sequence[int], max_new_tokens: int) -> None:
    """UsageError (one line) unless `prompt` and `max_new_tokens` fit the artifact."""
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) \
            or max_new_tokens <= 0:
        raise UsageError(f"the number of tokens to generate must be a positive integer, "
                         f"got {max_new_tokens!r}")
    if len(prompt) == 0:
        raise UsageError("the prompt is empty; give at least one token")
    bad = [t for t in prompt if not 0 <= t < shapes.vocab_size]
    if bad:
        raise UsageError(f"prompt token {bad[0]} is outside the model's vocabulary of "
                         f"{shapes.vocab_size}")
    if len(prompt) > shapes.prompt_tokens:
        raise UsageError(f"the prompt is {len(prompt)} tokens; this artifact's prefill takes "
                         f"at most {shapes.prompt_tokens} (compile with a larger --seq-len)")
    need = len(prompt) + max_new_tokens - 1
    if need > shapes.context_tokens:
        raise UsageError(f"{len(prompt)} prompt tokens + {max_new_tokens} new ones need a KV "
                         f"cache of {need} positions; this artifact's holds "
                         f"{shapes.context_tokens} (compile with --seq-len {need} or more)")


def _fit(kv: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A prefill K/V (B, G, T, D) as a decode cache shaped like `like` (B, G, S, D)."""
    if kv.shape == like.shape:
        return kv.astype(like.dtype, copy=False)
    cache = np.zeros_like(like)
    cache[:, :, :kv.shape[2]] = kv[:, :, :cache.shape[2]]
    return cache


def generate(prefill: Step, decode: Step, caches: Sequence[np.ndarray], shapes: Shapes,
             prompt: Sequence[int], max_new_tokens: int,
             on_token: Callable[[int], None] | None = None) -> RunResult:
    """Greedy decoding: `caches` are zero decode caches (their shapes and
    dtypes); returns the `max_new_tokens` ids chosen and the wall time of the
    prefill and of the decode steps."""
    check_request(shapes, prompt, max_new_tokens)
    B, L = shapes.batch, len(prompt)
    tokens = np.zeros((B, shapes.prompt_tokens), dtype=np.int64)
    tokens[:, :L] = np.asarray(prompt, dtype=np.int64)
    t0 = time.perf_counter()
    out = prefill([tokens])
    nxt = int(np.argmax(out[0][0, L - 1]))
    kv = [_fit(k, c) for k, c in zip(out[1:], caches, strict=True)]
    t1 = time.perf_counter()
    chosen = [nxt]
    if on_token is not None:
        on_token(nxt)
    for i in range(1, max_new_tokens):
        step = [np.full((B, 1), nxt, dtype=np.int64), np.array([L + i - 1], dtype=np.int64)]
        out = decode(step + kv)
        kv = list(out[1:])
        nxt = int(np.argmax(out[0][0, -1]))
        chosen.append(nxt)
        if on_token is not None:
            on_token(nxt)
    t2 = time.perf_counter()
    return RunResult(chosen, {"prefill_s": t1 - t0, "decode_s": t2 - t1})
