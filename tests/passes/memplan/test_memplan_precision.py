"""The memory plan is made at the element sizes the report charges: a float32
trace at the report's precision (the device's default), a quantized graph as
its passes left it; plan.json and report.json say which precision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmc import api
from llmc.costmodel.workload import retype
from llmc.ir.cost import param_count
from llmc.ir.dtypes import f32
from llmc.passes.memplan.liveness import liveness

# (target, --quant): a float32 trace on a GPU (bf16), on the HNLPU (mxfp4 weights,
# int8 activations, a bf16 KV cache), and quantized graphs (the NPU's backend takes
# integer-only graphs; a float32 trace planned at its int8: test_plan_memory_says_what_it_planned_at)
CASES = [("a100", None), ("npu", "w8a8-int"), ("hnlpu", None), ("a100", "bfp12"),
         ("a100", "w8a16")]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("plans")
    return {(t, q): api.compile("llama-tiny", t, root / f"{t}-{q}", seq_len=16, weights="random",
                                quant=q) for t, q in CASES}


def _sizes(plan: dict, region: str) -> int:
    return sum(t["size"] for t in plan["static"]["regions"][region]["tensors"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_plan_regions_are_the_bytes_the_report_charges(compiled: dict, case: tuple) -> None:
    c = compiled[case]
    plans = json.loads((Path(c.out_dir) / "plan.json").read_text())
    report = json.loads((Path(c.out_dir) / "report.json").read_text())
    for ph in ("prefill", "decode"):
        p = plans[ph]
        assert _sizes(p, "weights") == report["weight_bytes"], ph
        # the KV cache a prefill writes and a decode reads, at the report's KV dtype
        assert _sizes(p, "kv_cache") == report["kv_bytes_per_request"] * report["batch"], ph
        assert p["precision"]["spec"] == report["precision"]["spec"]
        assert {k: p["precision"][k] for k in ("weight", "kv", "act")} == \
            {k: report["precision"][k] for k in ("weight", "kv", "act")}
        assert report["memory_plan"][ph]["precision"] == p["precision"]
        assert report["memory_plan"][ph]["static"]["weights"] == \
            p["static"]["regions"]["weights"]["bytes"]


def test_a_float32_trace_is_planned_at_the_device_default(compiled: dict) -> None:
    c = compiled[("a100", None)]
    plans = json.loads((Path(c.out_dir) / "plan.json").read_text())
    g = c.graphs["prefill"]
    assert _sizes(plans["prefill"], "weights") == param_count(g).nbytes // 2   # f32 -> bf16
    # every activation buffer at bf16: the arena is the plan of the bf16 graph
    as_traced = api.plan_memory(g)
    assert plans["prefill"]["arena_bytes"] < as_traced.json["arena_bytes"]
    live = liveness(g)
    planned = {b["name"]: b["size"] for b in plans["prefill"]["buffers"]}
    assert planned.keys() == {b.name for b in live.problem.buffers}
    floats = [b for b in live.problem.buffers if live.values[b.name].type.dtype == f32]
    assert floats and all(planned[b.name] * 2 == b.size for b in floats)


def test_a_quantized_graph_is_planned_as_it_stands(compiled: dict) -> None:
    c = compiled[("a100", "bfp12")]
    plans = json.loads((Path(c.out_dir) / "plan.json").read_text())
    g = c.graphs["decode"]
    held = {n.attrs["name"]: n.type for n in g.param_nodes}
    planned = {t["name"]: t["size"]
               for t in plans["decode"]["static"]["regions"]["weights"]["tensors"]}
    quantized = {k: t for k, t in held.items() if k in planned and t.dtype != f32}
    assert quantized, "bfp12 leaves block-format weights"
    assert all(planned[k] == t.nbytes for k, t in quantized.items())          # as they stand
    gains = {k: t for k, t in held.items() if k in planned and t.dtype == f32}
    assert gains and all(planned[k] == t.numel * 2 for k, t in gains.items())  # f32 -> bf16
    kv = {n.name: n.type for n in g.inputs if n.name.startswith(("k_cache", "v_cache"))}
    cache = {t["name"]: t["size"]
             for t in plans["decode"]["static"]["regions"]["kv_cache"]["tensors"]}
    assert kv and all(cache[k] == t.nbytes for k, t in kv.items())
    assert {t.dtype.name for t in kv.values()} == {"bfp4b16"}


def test_plan_memory_says_what_it_planned_at() -> None:
    g = api.trace("llama-tiny", "prefill", seq_len=16, weights="meta").graph
    f32_bytes = param_count(g).nbytes
    plain = api.plan_memory(g)                       # no target: the trace's float32
    assert plain.json["precision"]["spec"] == "as-is"
    assert plain.json["precision"]["weight"] == plain.json["precision"]["kv"] == "f32"
    assert "weights f32, KV cache f32" in plain.precision
    assert _sizes(plain.json, "weights") == f32_bytes
    for target, div, name in (("a100", 2, "bf16"), ("npu", 4, "i8")):
        mp = api.plan_memory(g, target=target)
        assert mp.json["precision"]["weight"] == name and name in mp.precision
        assert _sizes(mp.json, "weights") == f32_bytes // div
        assert mp.json["arena_bytes"] < plain.json["arena_bytes"]


def test_plan_and_cost_model_read_one_rule() -> None:
    """Every planned size is the size of the graph `retype` gives: the cost
    model's re-typing, not a copy of it."""
    from llmc.costmodel import parse_quant

    g = api.trace("llama-tiny", "decode", seq_len=16, weights="meta").graph
    p = parse_quant("fp8-w+bfp12-kv")                # weights, KV and activations all differ
    mp = api.plan_memory(g, precision=p)
    typed = retype(g, p)
    assert {b.name: b.size for b in mp.problem.buffers} == \
        {b.name: b.size for b in liveness(typed).problem.buffers}
    by_name = {n.attrs.get("name", n.name): n.type.nbytes for n in typed.nodes
               if n.op in ("param", "input")}
    for region in mp.json["static"]["regions"].values():
        assert all(t["size"] == by_name[t["name"]] for t in region["tensors"])
    assert mp.json["precision"]["kv"] == "bfp4b16"


def test_report_says_which_method_planned_and_what_it_proved(compiled: dict) -> None:
    """report.json and report.md's memory-plan section carry the plan's method,
    whether it is proved optimal and its gap (from plan.json's fields)."""
    out = Path(compiled[("a100", None)].out_dir)
    plans = json.loads((out / "plan.json").read_text())
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    for ph in ("prefill", "decode"):
        m = report["memory_plan"][ph]
        assert (m["method"], m["optimal"], m["gap"]) == \
            (plans[ph]["method"], plans[ph]["optimal"], plans[ph]["gap"])
        assert m["optimal"] is True and m["gap"] == 0.0
        assert f"| {m['method']}, optimal |" in md
