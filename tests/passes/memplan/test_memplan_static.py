"""Weights, constants, the KV cache and inputs: laid out apart from the arena."""

from __future__ import annotations

import pytest

from llmc import api
from llmc.frontend.zoo.config import get_config
from llmc.ir.cost import param_count
from llmc.passes.memplan.liveness import liveness
from llmc.passes.memplan.static import static_layout


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_regions_hold_what_the_arena_does_not(phase: str) -> None:
    cfg = get_config("llama-tiny")
    g = api.trace("llama-tiny", phase, batch=2, seq_len=16, weights="meta").graph
    s = static_layout(g, alignment=64)
    cache = 2 * 16 * cfg.n_kv_heads * cfg.head_dim * 4                  # (B, G, S, D) f32
    kv = s.regions["kv_cache"]
    assert len(kv) == 2 * cfg.n_layers and all(p.size == cache for p in kv)
    assert s.bytes("kv_cache") == 2 * cfg.n_layers * cache
    assert sum(p.size for p in s.regions["weights"]) == param_count(g).nbytes
    assert {p.name for p in s.regions["constants"]} == {"rope_cos", "rope_sin"}
    assert "tokens" in {p.name for p in s.regions["inputs"]}
    for placed in s.regions.values():                 # aligned, packed, no overlap
        for a, b in zip(placed, placed[1:], strict=False):
            assert a.offset % 64 == 0 and a.offset + a.size <= b.offset
    arena = {b.name for b in liveness(g).problem.buffers}
    assert not arena & {p.name for p in kv}
    j = s.to_json()
    assert j["regions"]["kv_cache"]["bytes"] == s.bytes("kv_cache")


def test_compile_writes_the_regions(tmp_path) -> None:  # noqa: ANN001
    import json

    out = tmp_path / "c"
    api.compile("llama-tiny", "a100", out, seq_len=16, weights="random")
    plans = json.loads((out / "plan.json").read_text())
    report = json.loads((out / "report.json").read_text())
    for ph in ("prefill", "decode"):
        assert report["memory_plan"][ph]["static"]["kv_cache"] == \
            plans[ph]["static"]["regions"]["kv_cache"]["bytes"] > 0
    assert "| KV cache |" in (out / "report.md").read_text()
