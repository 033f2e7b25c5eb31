"""Small sweep specs the dse tests share (tiny models, a handful of points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc.dse.spec import Spec, parse_spec

TINY = {"sweep": {"evaluate": "cost", "prompt": 32, "output": 8},
        "axes": {"model": ["llama-tiny"], "target": ["npu"], "array": ["32x32", "64x64"],
                 "sram_mib": [1, 4], "quant": ["int8", "int4"], "batch": [1, 8]}}


@pytest.fixture
def tiny() -> Spec:
    """16 points of a tiny model on the npu with its array and SRAM swept."""
    return parse_spec(TINY)


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
