"""NIR export -> nir.read -> import preserves the network; snnTorch runs
an exported spiking graph to the same outputs; a bad file is one line."""

import numpy as np
import pytest
import torch

from llmc.backends.neuromorphic.network import extract
from llmc.backends.neuromorphic.nir_io import nir_bytes
from llmc.errors import ModelError
from llmc.frontend.zoo.event_lm import EventConfig, build_event_model
from llmc.frontend.zoo.event_nir import load_nir_model

nir = pytest.importorskip("nir")


def _net(kind: str):  # noqa: ANN202
    cfg = EventConfig(f"t-{kind}", kind, 32, 8, (16, 12), threshold=0.1 if kind == "egru"
                      else 1.0, beta=0.9 if kind == "lif" else 0.0)
    model = build_event_model(cfg, seed=2)
    return model, extract(model.to_graph("prefill", 1, 4))


@pytest.mark.parametrize("kind", ["egru", "lif"])
def test_round_trip_preserves_the_graph(kind: str, tmp_path) -> None:  # noqa: ANN001
    model, net = _net(kind)
    path = tmp_path / "model.nir"
    path.write_bytes(nir_bytes(net))
    graph = nir.read(str(path), type_check=kind == "lif")   # EGRU gates: 3H into H
    assert {"input", "embed", "l0.w", "l0.r", "l1.w", "readout", "output"} <= set(graph.nodes)
    back = extract(load_nir_model(path).to_graph("prefill", 1, 4))
    assert np.array_equal(back.embed, net.embed)
    for a, b in zip(net.layers + [net.readout], back.layers + [back.readout], strict=True):
        assert (a.kind, a.h, a.n_in, a.threshold) == (b.kind, b.h, b.n_in, b.threshold)
        assert a.beta == pytest.approx(b.beta, abs=1e-9)
        assert np.array_equal(a.dense(), b.dense()) and np.array_equal(a.bias, b.bias)


def test_snntorch_runs_the_exported_spiking_graph(tmp_path) -> None:  # noqa: ANN001
    """snnTorch's own NIR importer converts every node (its RNN-subgraph
    rewrite makes each LIF + recurrent Linear one RLeaky); the chain is run
    here by the graph's edges, one token a step (nirtorch 2.6's executor
    fails on the nested recurrent subgraphs it builds)."""
    sin = pytest.importorskip("snntorch.import_nir")
    model, net = _net("lif")
    path = tmp_path / "model.nir"
    path.write_bytes(nir_bytes(net))
    graph = sin._replace_rnn_subgraph_with_nirgraph(nir.read(str(path)))
    nxt = dict(graph.edges)
    chain, node = [], "input"
    while nxt[node] != "output":
        node = nxt[node]
        chain.append(sin._nir_to_snntorch_module(graph.nodes[node], init_hidden=True))
    toks = np.random.default_rng(0).integers(0, 32, 24)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(toks), 32).float()
    outs = []
    with torch.no_grad():
        for t in range(len(toks)):
            h = onehot[t:t + 1]
            for mod in chain:
                h = mod(h)
                h = h[0] if isinstance(h, tuple) else h
            outs.append(h[0])
        ref, _, events = model(torch.from_numpy(toks)[None])
    assert float(events[0].mean()) > 0.05                     # spikes do flow
    assert torch.allclose(torch.stack(outs), ref[0], atol=1e-4)


def test_invalid_nir_file_is_one_line(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "broken.nir"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ModelError, match="not a readable NIR file") as err:
        load_nir_model(bad)
    assert "\n" not in str(err.value)
    other = tmp_path / "other.nir"                            # valid NIR, not an event LM
    nir.write(str(other), nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "lin": nir.Linear(weight=np.eye(2, dtype=np.float32)),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "lin"), ("lin", "output")]))
    with pytest.raises(ModelError, match="not an event network in llmc's NIR form"):
        load_nir_model(other)
