"""Text form round-trips exactly for every graph the zoo produces (each
config at two layers: deeper models repeat the same layer)."""

from __future__ import annotations

import pytest

from llmc import api
from llmc.frontend.loader import LoadedModel
from llmc.frontend.zoo.config import CONFIGS
from llmc.frontend.zoo.decoder import build_model
from llmc.ir import parse_graph, print_graph, verify


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_zoo_graph_round_trips(name: str) -> None:
    cfg = CONFIGS[name].replace(n_layers=2)
    loaded = LoadedModel(cfg.name, build_model(cfg, "meta"), cfg, "test")
    for phase in ("prefill", "decode"):
        graph = api.trace(loaded, phase, batch=1, seq_len=16).graph
        text = print_graph(graph)
        again = parse_graph(text, graph.params)
        verify(again)
        assert print_graph(again) == text
