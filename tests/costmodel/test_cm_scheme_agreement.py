"""One quantization vocabulary: for every scheme, the report of the compiled
artifact (`llmc.api.compile(..., quant=S)` -> report.json) equals the cost
model's (`llmc report --quant S`, `build_report` on the config) on the figures
a user reads, on a model with weights (calibration, GPTQ and k-sort planning
run on values) and on a shape-only one (tinyllama-1.1b, 22 layers)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmc import api
from llmc.costmodel.report import Report, build_report
from llmc.costmodel.workload import retype
from llmc.frontend.loader import LoadedModel
from llmc.frontend.zoo.config import ModelConfig, get_config
from llmc.frontend.zoo.decoder import build_model
from llmc.passes.quant import SCHEMES, pipeline

SEQ = 16
NAMES = [*SCHEMES, "w4a16g32"]
# llama-tiny's layout with head dim 32 (MX blocks are 32 wide) and 4 layers (the
# cost model synthesizes 2 and 3 layers and scales the difference)
WEIGHTED = ModelConfig(name="llama-tiny-hd32", family="llama", vocab_size=128, hidden=64,
                       n_layers=4, n_heads=2, n_kv_heads=1, ffn_hidden=160, max_seq_len=64,
                       source="test config")


def figures(j: dict) -> dict:
    """What a user reads in a report."""
    pre, dec = j["prefill"], j["decode"]
    return {"weight_bytes": j["weight_bytes"], "kv_bytes_per_token": j["kv_bytes_per_token"],
            "prefill_s": pre["time_s"], "prefill_bound": pre["bound"],
            "prefill_j": pre["energy_j"], "decode_s": dec["time_per_token_s"],
            "tokens_per_s": dec["tokens_per_s"], "decode_j_per_token": dec["energy_j_per_token"],
            "decode_bound": dec["bound"], "precision": j["precision"]}


@functools.cache
def _model(name: str) -> LoadedModel:
    if name == WEIGHTED.name:
        return LoadedModel(name, build_model(WEIGHTED, seed=0), WEIGHTED, "test (random weights)")
    return api.load_model(name, "auto")


@pytest.fixture(scope="module", autouse=True)
def _fast_compile() -> Iterator[None]:
    """Trace each model once for all schemes, calibrate on 4 windows instead of
    16, and skip the PNGs: report.json depends on none of them."""
    traces: dict = {}
    trace = api.trace

    def cached(model, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        key = (model.name, args, tuple(sorted(kwargs.items())))
        if key not in traces:
            traces[key] = trace(model, *args, **kwargs)
        return traces[key]

    mp = pytest.MonkeyPatch()
    mp.setattr(api, "trace", cached)
    mp.setattr(Report, "plots", lambda self: {})
    mp.setattr(pipeline, "default_tokens", functools.partial(pipeline.default_tokens, n=4))
    mp.setattr("llmc.passes.memplan.plot.plot_plan", lambda *a, **k: b"")
    yield
    mp.undo()


@pytest.mark.parametrize("scheme", NAMES)
@pytest.mark.parametrize("model", [WEIGHTED.name, "tinyllama-1.1b"])
def test_compiled_report_equals_cost_model(model: str, scheme: str, tmp_path: Path) -> None:
    loaded = _model(model)
    c = api.compile(loaded, "a100", tmp_path / "out", seq_len=SEQ, quant=scheme)
    compiled = json.loads((c.out_dir / "report.json").read_text())
    cfg = WEIGHTED if model == WEIGHTED.name else get_config(model)
    costed = build_report(None, None, cfg, "a100", prompt=SEQ, context=SEQ, quant=scheme)
    assert figures(compiled) == figures(json.loads(json.dumps(costed.to_json())))
    # the KV figure is the cache the compiled decode graph holds (float32 caches,
    # the trace's precision, at the device's default)
    held = retype(c.graphs["decode"], costed.precision)
    caches = [n for n in held.inputs if "cache" in n.name]
    assert sum(n.type.nbytes for n in caches) == compiled["kv_bytes_per_token"] * SEQ
    assert compiled["precision"]["scheme"] == scheme
