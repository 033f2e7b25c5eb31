"""The event simulator against a dense PyTorch reference of the same
network, its counts against an independent count, and the mapping's limits."""

import numpy as np
import pytest
import torch

from llmc.backends.neuromorphic.costs import cost_of
from llmc.backends.neuromorphic.mapping import DoesNotFitError, _xy_links, map_network
from llmc.backends.neuromorphic.network import extract
from llmc.backends.neuromorphic.sim import Simulator
from llmc.backends.neuromorphic.spec import load_spec
from llmc.frontend.zoo.event_lm import EventConfig, build_event_model

SPEC = load_spec()


def _model(kind: str, density: float = 1.0):  # noqa: ANN202
    cfg = EventConfig(f"t-{kind}", kind, 50, 16, (40, 24), threshold=0.1 if kind == "egru"
                      else 1.0, beta=0.9 if kind == "lif" else 0.0, density=density)
    return build_event_model(cfg, seed=5)


@pytest.mark.parametrize("kind,density", [("egru", 1.0), ("egru", 0.3), ("lif", 1.0)])
def test_simulator_equals_dense_torch_reference(kind: str, density: float) -> None:
    model = _model(kind, density)
    net = extract(model.to_graph("prefill", 1, 8))
    sim = Simulator(map_network(net, SPEC))
    toks = np.random.default_rng(1).integers(0, 50, 30)
    res = sim.run(toks)
    with torch.no_grad():
        ref, _, events = model.double()(torch.from_numpy(toks)[None])
    for got, want in zip(res.events, events, strict=True):
        assert np.array_equal(got, want[0].numpy() != 0)            # the same events
    assert np.allclose(res.logits, ref[0].numpy(), rtol=0, atol=1e-9)
    # continuing from the carried state equals running the whole sequence
    sim.reset()
    a = sim.run(toks[:20]).logits
    b = sim.run(toks[20:]).logits
    assert np.allclose(np.concatenate([a, b]), res.logits, atol=1e-12)


def test_counts_match_an_independent_count() -> None:
    model = _model("egru", 0.5)
    net = extract(model.to_graph("prefill", 1, 4))
    m = map_network(net, SPEC)
    toks = np.arange(12) % 50
    res = Simulator(m).run(toks)
    row_len = [np.diff(layer.src_ptr) for layer in net.layers]
    want = 0
    for t, tok in enumerate(toks):
        x = net.embed[tok]
        srcs = [np.nonzero(x)[0]]
        for li, layer in enumerate(net.layers):
            rec = np.nonzero(res.events[li][t - 1])[0] if t else np.array([], int)
            want += row_len[li][srcs[-1]].sum() + row_len[li][layer.n_in + rec].sum()
            srcs.append(np.nonzero(res.events[li][t])[0])
        want += np.diff(net.readout.src_ptr)[srcs[-1]].sum()       # the readout on chip
    assert m.readout is not None and res.counts.total_synops == want
    cost = cost_of(res.counts, m)
    assert cost.time_s > 0 and cost.energy_j > cost.static_j > 0


def test_every_pe_fits_its_sram_and_layers_spread_over_the_chip() -> None:
    net = extract(_model("egru").to_graph("prefill", 1, 4))
    m = map_network(net, SPEC)
    s = m.summary()
    units = sum(layer.h for layer in net.layers) + net.readout.h   # 114 < 148
    assert s["pes_used"] == min(units, SPEC.usable_pes)             # spare PEs are used
    assert s["sram_bytes_max_pe"] <= SPEC.pe_data_bytes
    for p in m.placements:
        assert p.cuts[0] == 0 and p.cuts[-1] == p.layer.h and np.all(np.diff(p.cuts) > 0)


def test_xy_route_links() -> None:
    links = _xy_links((3, 2))                                        # quad-PEs 0..5
    assert links[0, 0].sum() == 0 and links[0, 2].sum() == 2 and links[0, 5].sum() == 3
    assert (links[0, 2] | links[0, 5]).sum() == 3                    # shared x links: a tree


def test_too_big_for_one_chip_says_by_how_much() -> None:
    # 2.1 M synapses, and each PE of layer 0 keeps 8,251 row pointers: > 148 PEs
    cfg = EventConfig("big", "lif", 50, 8000, (250, 250), threshold=1.0, beta=0.9,
                      density=0.99)
    net = extract(build_event_model(cfg, "meta").to_graph("prefill", 1, 2))
    with pytest.raises(DoesNotFitError, match=r"short by \d+ PEs.*spinnaker2-board.*keep about"):
        map_network(net, SPEC)
    m = map_network(net, SPEC, chips=SPEC.chips_for("spinnaker2-board"),
                    target="spinnaker2-board")
    assert m.chips > 1 and m.summary()["sram_bytes_max_pe"] <= SPEC.pe_data_bytes
    res = Simulator(m).run([1, 2, 3])
    assert res.counts.chip_packets > 0
