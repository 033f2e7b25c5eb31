"""Sizes the CLI refuses before any work: a size flag that would exhaust
memory or time is one line on stderr and exit 2, never a traceback from
the allocator.

- A traced step (compile, show, plan, partition, eval) builds real tensors
  of `batch x seq-len` tokens: the token ids, and for a model whose weights
  are at hand a float32 KV cache per token (llmc-tiny's decode step at
  16,384 x 64 = 2**20 tokens took 3.5 GB; 10**8 x 8 tokens asked numpy for
  6.4 GB of token ids alone). The zoo's and a config's context bound
  `--seq-len`; `--batch` is bounded here.
- The cost model (report, sweep) does arithmetic on tensor sizes in
  64-bit integers: `batch x length x width` must stay below 2**63 (10**12
  x 2048 tokens of llama-2-7b overflowed it), so the tokens of a step are
  bounded with room for a 2**18-wide tensor.
- The simulator's own bound (the arrays a GEMM's folds need) lives in
  `llmc.sim.limits`; `llmc rtl gemm`'s (simulated PE-cycles) in
  `llmc.cli.rtl`.

Standard library only: the parser imports this module on every call.
"""

from __future__ import annotations

from llmc.errors import UsageError

MAX_TRACE_TOKENS = 2**20    # batch x seq-len of one traced step
DEFAULT_TRACE_SEQ_LEN = 128  # llmc.api.default_seq_len: min(128, the model's context)
MAX_BATCH = 2**20           # sequences per step in the cost model
MAX_LENGTH = 2**30          # tokens per sequence (seq-len, context, gen-tokens)
MAX_COST_TOKENS = 2**40     # batch x the longest length, in the cost model


def positive(flag: str, value: int | None, limit: int | None = None) -> None:
    """`value` (None: the default) must be a positive integer, at most `limit`."""
    if value is None:
        return
    if value <= 0:
        raise UsageError(f"{flag} must be a positive integer, got {value}")
    if limit is not None and value > limit:
        raise UsageError(f"{flag} {value:,} is over the limit of {limit:,}")


def check_trace(batch: int, seq_len: int | None, seq_flag: str = "--seq-len") -> None:
    """A traced step of `batch` sequences of `seq_len` tokens (None: the default)."""
    positive("--batch", batch)
    positive(seq_flag, seq_len)
    tokens = batch * (seq_len or DEFAULT_TRACE_SEQ_LEN)
    if tokens > MAX_TRACE_TOKENS:
        shown = f"{seq_flag} {seq_len:,}" if seq_len else \
            f"the default {seq_flag} (up to {DEFAULT_TRACE_SEQ_LEN})"
        raise UsageError(
            f"--batch {batch:,} x {shown} = {tokens:,} tokens in one traced step, over the "
            f"limit of {MAX_TRACE_TOKENS:,} (tracing builds tensors of that many tokens, and a "
            f"KV cache for them where the weights are real); lower --batch or {seq_flag}")


def check_cost(batches: list[int], **lengths: int | None) -> None:
    """Cost-model sizes: each batch, each length (flag name -> value), and
    batch x the longest length."""
    for b in batches:
        positive("--batch", b, MAX_BATCH)
    for name, v in lengths.items():
        positive("--" + name.replace("_", "-"), v, MAX_LENGTH)
    longest = max((v for v in lengths.values() if v), default=1)
    tokens = max(batches) * longest
    if tokens > MAX_COST_TOKENS:
        raise UsageError(
            f"--batch {max(batches):,} x {longest:,} tokens = {tokens:,} tokens in one step, over "
            f"the cost model's limit of {MAX_COST_TOKENS:,} (its sizes are 64-bit integers); "
            "lower --batch or the length")
