"""Evaluation: held-out perplexity of a graph, run in the IR interpreter, and
its weight and KV bytes. `llmc.api.evaluate` puts them together for a model
under a scheme, next to its float perplexity (`EvalResult`).

Perplexity is per token (per byte for llmc-tiny): exp of the mean negative
log-likelihood of every target of the evaluated windows (data.eval_windows:
non-overlapping, each window's T targets scored once). `windows` limits the
evaluation to the first N windows when the full held-out split is too slow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from llmc.errors import UsageError
from llmc.ir.cost import param_count
from llmc.ir.graph import Graph
from llmc.ir.interp import interpret


@dataclass(frozen=True)
class EvalResult:
    model: str
    scheme: str
    perplexity: float
    float_perplexity: float
    weight_bytes: int
    float_weight_bytes: int
    kv_bytes_per_token: float
    float_kv_bytes_per_token: float
    windows: int
    seq_len: int     # the context length each window is scored at
    seconds: float
    batch: int = 1   # windows per interpreter run (a factory's: its example's batch)

    def to_json(self) -> dict:
        return asdict(self)


def nll(graph: Graph, windows: np.ndarray) -> tuple[float, int]:
    """(sum of -log p(target), number of targets) over windows (n, T + 1), run in
    batches of the graph's batch size (the last batch wraps; extras are ignored)."""
    batch, seq = next(n for n in graph.inputs if n.name == "tokens").type.shape
    if windows.shape[1] != seq + 1:
        raise UsageError(f"windows of {windows.shape[1]} tokens do not fit graph @{graph.name} "
                         f"(seq_len {seq} + 1)")
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        rows = windows[np.arange(i, i + batch) % len(windows)]
        logits = interpret(graph, {"tokens": rows[:, :-1]})[0].astype(np.float64)
        keep = min(batch, len(windows) - i)
        z = logits[:keep] - logits[:keep].max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        tgt = rows[:keep, 1:]
        total -= float(np.take_along_axis(logp, tgt[..., None], axis=-1).sum())
        count += tgt.size
    return total, count


def perplexity(graph: Graph, windows: np.ndarray) -> float:
    total, count = nll(graph, windows)
    return float(np.exp(total / count))


def weight_bytes(graph: Graph) -> int:
    """Storage of all weights at their IR dtypes (packed int4 counts its bytes;
    scales and integer multipliers count; RoPE tables and other buffers do not)."""
    return param_count(graph).nbytes


def kv_bytes_per_token(graph: Graph) -> float:
    """KV-cache bytes one token adds: a prefill graph returns (logits, k_0, v_0, ...),
    each cache (B, G, T, D) at its dtype (block formats include their shared scale)."""
    caches = graph.outputs[1:]
    if not caches:
        return 0.0
    b, t = caches[0].type.shape[0], caches[0].type.shape[2]
    return sum(v.type.nbytes for v in caches) / (b * t)


BYTE_VOCAB = 256  # llmc-tiny's convention: token id = UTF-8 byte


def check_byte_level(model: str, vocab: int) -> None:
    """UsageError unless a model's vocabulary is byte-level, the one tokenizer
    the held-out text needs no file for (llmc-tiny's: ids 0..255 are bytes)."""
    if vocab != BYTE_VOCAB:
        raise UsageError(f"{model}: vocabulary of {vocab} tokens: held-out text is evaluated "
                         f"byte by byte (token ids = UTF-8 bytes, vocabulary {BYTE_VOCAB}, as "
                         f"llmc-tiny); evaluate with your own tokenizer: pass its token windows "
                         f"(n, T + 1) to llmc.api.evaluate(model, windows=...)")


def heldout_windows(seq_len: int, n: int | None) -> np.ndarray:
    """The first n non-overlapping held-out windows of llmc-tiny's corpus."""
    from llmc.frontend.zoo import data

    _, heldout = data.corpus_splits()
    w = data.eval_windows(heldout, seq_len)
    return w if n is None else w[:n]
