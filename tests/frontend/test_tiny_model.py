"""llmc-tiny: the corpus split and the shipped weights (fast: a few seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from llmc.frontend.zoo import data
from llmc.frontend.zoo.config import get_config
from llmc.frontend.zoo.train_tiny import CARD, EVAL_SEQ_LEN, FIRST_N, WEIGHTS, evaluate, load_tiny

WEIGHTS_DIR = Path(data.__file__).parent / "weights"


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((WEIGHTS_DIR / CARD).read_text())


def test_split_is_deterministic_and_disjoint() -> None:
    train, heldout = data.corpus_splits()
    assert (train, heldout) == data.corpus_splits()
    train_names, heldout_names = data.split_topics()
    assert not set(train_names) & set(heldout_names)
    assert 0.05 < len(heldout) / (len(train) + len(heldout)) < 0.15
    # Topics quote one another; after deduplication no held-out text is in train.
    chunks = [heldout[i:i + 64] for i in range(0, len(heldout) - 64, 64)]
    assert not [c for c in chunks if c in train]


def test_encode_decode_and_windows() -> None:
    text = "def f(x): return x ’"
    assert data.decode(data.encode(text)) == text
    _, heldout = data.corpus_splits()
    w = data.eval_windows(heldout, 64)
    assert w.shape[1] == 65 and w.dtype == np.int64
    assert np.array_equal(w[1:, 0], w[:-1, -1])  # targets tile the text once
    b1, b2 = data.batches(heldout, 32, 4, seed=3), data.batches(heldout, 32, 4, seed=3)
    assert b1.shape == (4, 33) and np.array_equal(b1, b2)


def test_weights_load_strictly_and_are_small(card: dict) -> None:
    path = WEIGHTS_DIR / WEIGHTS
    assert path.stat().st_size < 8 * 2**20
    model = load_tiny(path)  # load_state_dict(strict=True)
    assert sum(p.numel() for p in model.parameters()) == card["parameters"]
    assert card["config"] == "llmc-tiny" and model.cfg == get_config("llmc-tiny")


def test_heldout_perplexity_matches_card(card: dict) -> None:
    if card["corpus"]["sha256"] != data.corpus_sha256():
        pytest.skip(f"pydoc_data.topics differs from Python {card['corpus']['python']}'s")
    torch.set_num_threads(2)
    _, heldout = data.corpus_splits()
    windows = data.eval_windows(heldout, EVAL_SEQ_LEN)[:FIRST_N]
    ppl = math.exp(evaluate(load_tiny(WEIGHTS_DIR / WEIGHTS), windows))
    assert ppl == pytest.approx(card["heldout_ppl_first16"], rel=1e-3)
    assert ppl < 20 < 256  # far below a uniform byte model
    assert card["heldout_eval"]["ppl_per_byte"] < 20
