"""A llama-tiny artifact compiled for hnlpu with int4 weights, shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc import api


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> api.Compiled:
    out = tmp_path_factory.mktemp("hnlpu") / "tiny"
    return api.compile("llama-tiny", "hnlpu", Path(out), weights="random", quant="w4a8",
                       seq_len=16)
