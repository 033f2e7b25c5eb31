"""Evaluation harness, `llmc eval`, and quantizing shape-only big models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmc import api
from llmc.api import evaluate
from llmc.cli import main
from llmc.errors import UsageError
from llmc.frontend.loader import LoadedModel
from llmc.frontend.zoo.config import get_config
from llmc.frontend.zoo.decoder import build_model
from llmc.ir.cost import graph_cost
from llmc.passes.quant import SCHEMES, apply_scheme
from llmc.passes.quant.evaluate import kv_bytes_per_token, weight_bytes


def test_evaluate_random_windows() -> None:
    win = np.random.default_rng(0).integers(0, 128, (3, 9))
    r = evaluate("llama-tiny", "w8a8-int", windows=win, batch=2, weights="random",
                 calib_windows=2)
    assert r.windows == 3 and r.seq_len == 8 and r.scheme == "w8a8-int"
    assert 1 < r.perplexity < 1000 and abs(r.perplexity / r.float_perplexity - 1) < 0.05
    assert r.kv_bytes_per_token == 2 * 2 * 2 * 16            # layers * (k, v) * G * D, i8
    assert r.float_kv_bytes_per_token == 4 * r.kv_bytes_per_token
    assert r.weight_bytes < r.float_weight_bytes / 2


def test_cli_eval_json(capsys) -> None:
    rc = main(["eval", "llmc-tiny", "--weights", "random", "--quant", "bfp12-ksort",
               "--windows", "2", "--seq-len", "16", "--batch", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    for key in ("perplexity", "float_perplexity", "weight_bytes", "kv_bytes_per_token"):
        assert key in out
    assert out["kv_bytes_per_token"] == 6 * 2 * 64 * 4.5 / 8   # BFP12, block 16
    assert out["windows"] == 2


def test_cli_eval_refusals(capsys) -> None:
    assert main(["eval", "llmc-tiny", "--quant", "int3"]) == 2
    err = capsys.readouterr().err
    assert "unknown quantization scheme 'int3'" in err and "w8a8-int" in err
    assert main(["eval", "llmc-tiny", "--seq-len", "0"]) == 2
    with pytest.raises(UsageError, match=r"vocabulary of 128 tokens: held-out text is evaluated "
                                         r"byte by byte \(token ids = UTF-8 bytes"):
        evaluate("llama-tiny", None, seq_len=32, windows=2, weights="random")


def test_shape_only_7b_layers_quantize_for_the_cost_model() -> None:
    """Llama-2-7B's widths (2 of its 32 layers, to stay fast; bench does all 32),
    shape-only: every scheme quantizes and the cost model reads its bytes."""
    cfg = get_config("llama-2-7b").replace(n_layers=2)
    loaded = LoadedModel("llama-2-7b-2l", build_model(cfg, "meta"), cfg, "meta")
    t = api.trace(loaded, "decode", batch=1, seq_len=64)
    assert t.graph.shape_only
    base_w, base_bytes = weight_bytes(t.graph), graph_cost(t.graph).bytes
    seen = {}
    for name in SCHEMES:
        g = apply_scheme(t.graph, name)
        assert g.shape_only
        seen[name] = (weight_bytes(g), graph_cost(g).bytes)
        assert seen[name][1] < base_bytes, name
    assert seen["w4a16"][0] < 0.3 * base_w and seen["bfp16"][0] < 0.3 * base_w
    assert seen["w8a8-int"][0] < 0.35 * base_w   # its embedding table stays i16
    p = api.trace(loaded, "prefill", batch=1, seq_len=64).graph
    assert kv_bytes_per_token(apply_scheme(p, "bfp12")) == \
        kv_bytes_per_token(p) * 4.5 / 32
