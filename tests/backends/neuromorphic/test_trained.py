"""The shipped event LMs: the simulator gives the dense PyTorch model's
events and logits on held-out text, and their cards hold measured numbers."""

import json

import numpy as np
import pytest
import torch

from llmc.backends.neuromorphic.mapping import map_network
from llmc.backends.neuromorphic.network import extract
from llmc.backends.neuromorphic.sim import Simulator
from llmc.backends.neuromorphic.spec import load_spec
from llmc.frontend.loader import WEIGHTS_DIR, load_model
from llmc.frontend.zoo import data


@pytest.mark.parametrize("model", ["egru-tiny", "spikegpt-tiny"])
def test_simulator_equals_dense_reference_on_heldout_text(model: str) -> None:
    loaded = load_model(model)
    assert "safetensors" in loaded.source                      # the shipped weights
    net = extract(loaded.module.to_graph("prefill", 1, 8))
    _, heldout = data.corpus_splits()
    toks = np.frombuffer(heldout[:48], np.uint8).astype(np.int64)
    res = Simulator(map_network(net, load_spec())).run(toks)
    with torch.no_grad():
        ref, _, events = loaded.module.double()(torch.from_numpy(toks)[None])
    for got, want in zip(res.events, events, strict=True):
        assert np.array_equal(got, want[0].numpy() != 0)
    assert np.allclose(res.logits, ref[0].numpy(), rtol=0, atol=1e-9)
    rates = res.counts.event_rates()
    assert all(0 < r < 1 for r in rates)
    card = json.loads((WEIGHTS_DIR / f"{model}.json").read_text())
    ev = card["heldout_eval"]
    assert 1 < ev["ppl_per_byte"] < 40 and len(ev["event_rate_per_layer"]) == len(rates)
    assert card["recipe"]["reproduce"].startswith("python -m llmc.frontend.zoo.train_event")
