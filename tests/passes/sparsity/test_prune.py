"""The pruning rules on single matrices: patterns, ratios, and that error
compensation lowers the layer's output error."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.passes.sparsity import prune


def _layer(seed: int = 0, out: int = 48, n_in: int = 64, tokens: int = 512):  # noqa: ANN202
    """A weight and inputs with correlated, unequal-scale channels (like LLM activations)."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((n_in, n_in)) / np.sqrt(n_in)
    scale = np.exp(rng.standard_normal(n_in))
    x = (rng.standard_normal((tokens, n_in)) @ mix) * scale + 0.3 * rng.standard_normal(n_in)
    w = rng.standard_normal((out, n_in))
    return w.astype(np.float32), x


def _is_2_4(w: np.ndarray) -> bool:
    return bool(np.all(np.count_nonzero(w.reshape(w.shape[0], -1, 4), axis=-1) <= 2))


def _out_error(w: np.ndarray, pruned: np.ndarray, x: np.ndarray) -> float:
    return float(np.linalg.norm(x @ (w - pruned).T) / np.linalg.norm(x @ w.T))


def test_magnitude_patterns() -> None:
    w, _ = _layer()
    p = prune.magnitude(w, "2:4", 0.5)
    assert _is_2_4(p) and np.count_nonzero(p) == w.size // 2
    kept = np.abs(w.reshape(-1, 4))
    # the kept two are the two largest of each group
    assert np.all(np.sort(kept, -1)[:, 2:].sum(-1) == np.abs(p.reshape(-1, 4)).sum(-1))
    p = prune.magnitude(w, "unstructured", 0.7)
    assert np.count_nonzero(p) == round(0.3 * w.size)
    assert np.abs(p[p != 0]).min() >= np.abs(w[p == 0]).max()


def test_wanda_prunes_each_row_by_activation_weighted_magnitude() -> None:
    w, x = _layer()
    norms = np.linalg.norm(x, axis=0)
    p = prune.wanda(w, norms, "unstructured", 0.5)
    assert np.all(np.count_nonzero(p, axis=1) == w.shape[1] // 2)
    assert _is_2_4(prune.wanda(w, norms, "2:4", 0.5))


@pytest.mark.parametrize("pattern,ratio", [("2:4", 0.5), ("unstructured", 0.5),
                                           ("unstructured", 0.8)])
def test_sparsegpt_keeps_the_pattern_and_lowers_output_error(pattern: str, ratio: float) -> None:
    w, x = _layer()
    hessian = 2.0 / len(x) * (x.T @ x)
    p = prune.sparsegpt(w, hessian, pattern, ratio, blocksize=16)
    assert p.dtype == w.dtype
    if pattern == "2:4":
        assert _is_2_4(p)
    assert np.count_nonzero(p) == pytest.approx((1 - ratio) * w.size, abs=w.shape[0])
    errors = {"magnitude": _out_error(w, prune.magnitude(w, pattern, ratio), x),
              "wanda": _out_error(w, prune.wanda(w, np.linalg.norm(x, axis=0), pattern, ratio), x),
              "sparsegpt": _out_error(w, p, x)}
    assert errors["sparsegpt"] < errors["wanda"] < errors["magnitude"], errors


def test_sparsegpt_handles_dead_inputs() -> None:
    w, x = _layer(n_in=16, out=8)
    x[:, 3] = 0.0                                  # a channel that is never active
    p = prune.sparsegpt(w, 2.0 / len(x) * (x.T @ x), "2:4", 0.5)
    assert np.all(np.isfinite(p)) and _is_2_4(p) and np.all(p[:, 3] == 0)
