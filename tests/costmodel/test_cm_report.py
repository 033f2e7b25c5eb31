"""build_report: keys, graphs vs config, precision, memory, TP, rendering."""

from __future__ import annotations

import json
import re

import pytest

from llmc.costmodel.compare import Comparison
from llmc.costmodel.precision import parse_quant
from llmc.costmodel.report import build_report
from llmc.costmodel.workload import retype
from llmc.errors import UsageError
from llmc.frontend.zoo.config import get_config
from llmc.ir.cost import graph_cost, op_counts
from tests.conftest import traced

ISSUE_KEYS = {"model", "target", "params_total", "params_active", "weight_bytes",
              "kv_bytes_per_token", "max_concurrent_requests", "context_switch_s"}
COMPILE_KEYS = {"batch", "seq_len"}
PREFILL_KEYS = {"time_s", "roofline_s", "flops", "bytes", "bound", "energy_j", "nodes", "ops"}
DECODE_KEYS = {"time_per_token_s", "roofline_s", "tokens_per_s", "bound", "energy_j_per_token",
               "flops", "bytes", "nodes", "ops"}
LLAMA2 = get_config("llama-2-7b")


def test_from_traced_graphs_keeps_the_compile_keys() -> None:
    pre, dec = traced("llama-tiny", "prefill").graph, traced("llama-tiny", "decode").graph
    r = build_report(pre, dec, get_config("llama-tiny"), "a100", batch=2, prompt=8, context=8)
    j = r.to_json()
    assert ISSUE_KEYS | COMPILE_KEYS <= set(j)
    assert PREFILL_KEYS <= set(j["prefill"]) and DECODE_KEYS <= set(j["decode"])
    assert (j["batch"], j["seq_len"], j["prompt"], j["context"]) == (2, 8, 8, 8)
    assert j["prefill"]["flops"] == graph_cost(pre).flops       # FLOPs do not depend on dtype
    assert j["prefill"]["nodes"] == len(pre.nodes) and j["prefill"]["ops"] == op_counts(pre)
    assert j["decode"]["ops"] == op_counts(dec)
    assert j["params_total"] == j["params_active"] > 0
    assert j["weight_bytes"] == j["params_total"] * 2             # bf16: 2 bytes per weight
    assert j["decode"]["tokens_per_s"] == pytest.approx(2 / j["decode"]["time_per_token_s"],
                                                        rel=1e-5)
    json.dumps(j, allow_nan=False)                               # strict JSON


def test_graph_shapes_must_match_the_sizes() -> None:
    pre = traced("llama-tiny", "prefill").graph
    with pytest.raises(UsageError, match="do not match"):
        build_report(pre, None, get_config("llama-tiny"), "a100", batch=2, prompt=16)
    dec = traced("llama-tiny", "decode").graph
    with pytest.raises(UsageError, match="KV cache of 8"):
        build_report(pre, dec, get_config("llama-tiny"), "a100", batch=2, context=32)


def test_graph_dtypes_as_the_passes_left_them() -> None:
    pre = traced("llama-tiny", "prefill").graph
    int8 = retype(pre, parse_quant("int8"))                     # as a quantization pass would
    r = build_report(int8, None, get_config("llama-tiny"), "a100", batch=2)
    assert r.precision.as_is
    assert r.prefill_w.weight_bytes == pytest.approx(r.prefill_w.params_total, rel=0.01)
    assert any(o.unit == "int8" for o in r.prefill.ops)


def test_no_config_no_decode() -> None:
    pre = traced("llama-tiny", "prefill").graph
    r = build_report(pre, None, None, "h100", batch=2)
    j = r.to_json()
    assert j["decode"] is None and j["long_context"] is None and j["kv_bytes_per_token"] is None
    assert "report.md" in r.files()
    with pytest.raises(UsageError, match="needs a model config"):
        build_report(pre, None, None, "h100", batch=2, tp=2)


def test_quantization_and_sparsity_change_bytes_and_rates() -> None:
    base = build_report(None, None, LLAMA2, "a100", prompt=512, output=16)
    w4 = build_report(None, None, LLAMA2, "a100", prompt=512, output=16, quant="int4-w+int4-kv")
    assert w4.prefill_w.weight_bytes / base.prefill_w.weight_bytes == pytest.approx(
        4.125 / 16, rel=0.01)
    assert w4.kv_bytes_per_token == base.kv_bytes_per_token * 4.125 / 16
    assert w4.decode.time_s < base.decode.time_s / 2.5            # decode reads 1/4 of the bytes
    sparse = build_report(None, None, LLAMA2, "a100", prompt=512, output=16, quant="2:4")
    gemm = lambda r: sum(o.compute_s * o.rec.count for o in r.prefill.ops  # noqa: E731
                         if o.rec.op == "linear")
    assert gemm(sparse) == pytest.approx(gemm(base) / 2)          # 624 vs 312 TFLOP/s
    fp8 = build_report(None, None, LLAMA2, "a100", prompt=512, output=16, quant="fp8")
    assert any("no fp8 units" in n for n in fp8.notes)           # Ampere: bf16 rate


def test_memory_does_not_fit_says_how_much() -> None:
    r = build_report(None, None, get_config("yi-34b"), "a100-40gb", prompt=512)
    assert not r.memory.fits
    assert r.memory.missing_bytes == pytest.approx(68_777_834_496 + 2 ** 30 - 40 * 2 ** 30)
    j = r.to_json()
    assert j["max_concurrent_requests"] == 0 and j["memory"]["missing_bytes"] > 26e9
    assert any("does not fit" in n for n in r.notes)
    big = build_report(None, None, LLAMA2, "a100", prompt=4096, context=100_000, batch=8)
    assert big.max_concurrent_requests == 1
    assert any("needs" in n and "free after weights" in n for n in big.notes)


def test_tensor_parallelism() -> None:
    one = build_report(None, None, LLAMA2, "a100", prompt=512, output=16)
    two = build_report(None, None, LLAMA2, "a100", prompt=512, output=16, tp=2)
    assert two.memory.weight_bytes == pytest.approx(one.memory.weight_bytes / 2, rel=0.001)
    assert two.decode.time_by_bound()["interconnect"] > 0
    assert two.decode.time_s < one.decode.time_s
    assert two.max_concurrent_requests > 2 * one.max_concurrent_requests - 2
    with pytest.raises(UsageError, match="does not divide"):
        build_report(None, None, LLAMA2, "a100", tp=3)
    with pytest.raises(UsageError, match="at most 8"):
        build_report(None, None, LLAMA2, "a100", tp=16)
    with pytest.raises(UsageError, match="at most 1"):
        build_report(None, None, LLAMA2, "npu", tp=2)
    gqa = build_report(None, None, get_config("qwen2-7b"), "h100", prompt=256, tp=4)
    assert gqa.tp == 4                                            # 28 heads, 4 KV heads


@pytest.mark.parametrize("bad", [dict(batch=0), dict(prompt=-1), dict(output=0),
                                 dict(context=0), dict(tp=0)])
def test_bad_sizes(bad: dict) -> None:
    with pytest.raises(UsageError, match="positive integer"):
        build_report(None, None, LLAMA2, "a100", **bad)


def test_rendering_is_deterministic_and_self_contained() -> None:
    files = [build_report(None, None, get_config("tinyllama-1.1b"), "h100", prompt=512,
                          output=64).files() for _ in range(2)]
    assert files[0] == files[1]
    assert set(files[0]) == {"report.json", "report.md", "report.html", "roofline.png",
                             "breakdown.png", "context_sweep.png"}
    html = files[0]["report.html"].decode()
    assert html.count("data:image/png;base64,") == 3
    assert not re.search(r"(src|href)=\"(http|//)", html)
    md = files[0]["report.md"].decode()
    for section in ("## What bounds you", "## Summary", "## Memory", "## Long context",
                    "## Device figures and their sources"):
        assert section in md
    assert b"tIME" not in files[0]["roofline.png"]               # no PNG timestamp chunk


def test_compare_side_by_side(tmp_path) -> None:  # noqa: ANN001
    reports = [build_report(None, None, get_config("tinyllama-1.1b"), t, prompt=256, output=16)
               for t in ("a100", "h100", "npu")]
    c = Comparison(reports)
    md = c.to_markdown()
    assert "| a100 | h100 | npu |" in md
    paths = c.write(tmp_path)
    assert {p.name for p in paths} == {"report.json", "report.md", "report.html", "compare.png"}
    j = json.loads((tmp_path / "report.json").read_text())
    assert j["targets"] == ["a100", "h100", "npu"]
    assert j["reports"]["h100"]["decode"]["time_per_token_s"] < \
        j["reports"]["a100"]["decode"]["time_per_token_s"]
