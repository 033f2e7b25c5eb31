"""Evaluation: held-out perplexity of a model under a scheme, run in the IR
interpreter, next to its float perplexity, plus the weight and KV bytes.

Perplexity is per token (per byte for llmc-tiny): exp of the mean negative
log-likelihood of every target of the evaluated windows (data.eval_windows:
non-overlapping, each window's T targets scored once). `windows` limits the
evaluation to the first N windows when the full held-out split is too slow.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from llmc.errors import UsageError
from llmc.frontend.loader import LoadedModel
from llmc.ir.cost import param_count
from llmc.ir.graph import Graph
from llmc.ir.interp import interpret
from llmc.passes.quant.schemes import Scheme, get_scheme


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
    seq_len: int
    seconds: float

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


def heldout_windows(seq_len: int, n: int | None) -> np.ndarray:
    """The first n non-overlapping held-out windows of llmc-tiny's corpus."""
    from llmc.frontend.zoo import data

    _, heldout = data.corpus_splits()
    w = data.eval_windows(heldout, seq_len)
    return w if n is None else w[:n]


def evaluate(model: str | LoadedModel = "llmc-tiny", scheme: str | Scheme | None = None, *,
             seq_len: int = 256, windows: int | np.ndarray | None = None, batch: int = 8,
             calib_windows: int = 16, weights: str = "auto",
             float_ppl: float | None = None) -> EvalResult:
    """Perplexity of `model` quantized under `scheme` (None: float only) on
    held-out windows (or the given (n, T + 1) token array), the float
    perplexity, and bytes. Calibration uses `calib_windows` windows of the
    *training* split. `float_ppl` skips re-measuring the float model."""
    from llmc import api
    from llmc.passes.quant.calibrate import default_tokens
    from llmc.passes.quant.pipeline import apply

    t0 = time.perf_counter()
    loaded = model if isinstance(model, LoadedModel) else api.load_model(model, weights)
    if loaded.is_meta:
        raise UsageError(f"{model} has no weights here (shape-only); evaluation needs weights "
                         f"(try --weights random for a smoke test)")
    vocab = loaded.config.vocab_size if loaded.config else 0
    if isinstance(windows, np.ndarray):
        win = windows
        seq_len = win.shape[1] - 1
    elif vocab != 256:
        raise UsageError(f"{model}: held-out evaluation scores bytes and needs a byte-level "
                         f"model (vocabulary 256), not vocabulary {vocab}")
    else:
        win = heldout_windows(seq_len, windows)
    if len(win) == 0:
        raise UsageError("no evaluation windows")
    batch = min(batch, len(win))
    graph = api.trace(loaded, "prefill", batch=batch, seq_len=seq_len).graph
    fppl = perplexity(graph, win) if float_ppl is None else float_ppl
    qgraph, name = graph, "float"
    if scheme is not None:
        sch = get_scheme(scheme)
        name = sch.name
        calib = default_tokens(graph, calib_windows) if sch.needs_calibration else None
        qgraph = apply(graph, sch, calib)
    ppl = perplexity(qgraph, win) if qgraph is not graph else fppl
    return EvalResult(loaded.name, name, ppl, fppl, weight_bytes(qgraph), weight_bytes(graph),
                      kv_bytes_per_token(qgraph), kv_bytes_per_token(graph), len(win), seq_len,
                      time.perf_counter() - t0)
