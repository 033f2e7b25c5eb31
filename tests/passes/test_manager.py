"""The pass manager: one registration table, parameterised stages sharing a
context across phases, and LLMC_DUMP for every stage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmc.errors import UsageError
from llmc.ir import print_graph
from llmc.passes import manager
from llmc.passes.manager import (
    FAMILIES,
    PASSES,
    PassContext,
    family,
    get_pass,
    get_stage,
    run_pipeline,
)
from llmc.passes.quant import quantize_graphs
from llmc.passes.quant.calibrate import Calibration
from llmc.passes.sparsity import SparsityPlan, sparsify
from llmc.passes.tiling import apply_attention
from tests.conftest import traced

PASSES_DIR = Path(manager.__file__).parent


def tiny(phase: str):  # noqa: ANN201
    return traced("llama-tiny", phase, batch=1, seq_len=8).graph


def test_every_entry_resolves() -> None:
    for name in PASSES:
        assert callable(get_stage(name))
    for fam, arg in (("quant", "w8a8-int"), ("sparsity", "2:4"), ("attention", "flash"),
                     ("tile-attention", "h100-sxm5")):
        assert fam in FAMILIES and family(f"{fam}:{arg}") == fam
        assert callable(get_stage(f"{fam}:{arg}"))
    assert family("fuse") == "fuse" and family("sparsity:2:4:wanda") == "sparsity"


def test_no_pass_registers_itself() -> None:
    """Pass modules do not import the manager: the table is the only list."""
    for path in PASSES_DIR.rglob("*.py"):
        if path.name != "manager.py":
            text = path.read_text()
            assert not re.search(r"^\s*(from|import) llmc\.passes\.manager", text, re.M), path
            assert "register_pass" not in text, path


def test_unknown_names_and_bad_arguments_fail_before_any_work() -> None:
    with pytest.raises(UsageError, match="unknown pass 'fuze'.*quant:ARG"):
        run_pipeline(tiny("prefill"), ["fuse", "fuze"])
    with pytest.raises(UsageError, match="int3"):
        get_stage("quant:int3")
    with pytest.raises(UsageError):
        get_stage("sparsity:1.5")
    with pytest.raises(UsageError, match="needs an argument"):
        get_stage("attention:")


def test_quant_calibrates_once_for_both_phases() -> None:
    """Running quant:SCHEME through run_pipeline on prefill then decode with
    one context gives what quantize_graphs gives: decode reuses the prefill's
    calibration (the graph is prefill-only calibratable, so without the shared
    context decode would be refused)."""
    p, d = tiny("prefill"), tiny("decode")
    ctx = PassContext()
    got = {}
    for ph, g in (("prefill", p), ("decode", d)):
        ctx.phase = ph
        got[ph] = run_pipeline(g, ["quant:w8a8-int"], ctx=ctx)
    assert isinstance(ctx.shared["quant:w8a8-int"], Calibration)
    want = quantize_graphs({"prefill": p, "decode": d}, "w8a8-int")
    for ph in got:
        assert print_graph(got[ph]) == print_graph(want[ph])
    with pytest.raises(UsageError, match="calibrates on a prefill graph"):
        get_pass("quant:w8a8-int")(d)


def test_decode_sparsity_reuses_the_prefill_plan() -> None:
    p, d = tiny("prefill"), tiny("decode")
    ctx = PassContext()
    run_pipeline(p, ["sparsity:0.5:wanda"], ctx=ctx)
    plan = ctx.shared["sparsity:0.5:wanda"]
    assert isinstance(plan, SparsityPlan)
    ctx.phase = "decode"
    got = run_pipeline(d, ["sparsity:0.5:wanda"], ctx=ctx)
    assert ctx.shared["sparsity:0.5:wanda"] is plan
    assert print_graph(got) == print_graph(sparsify(d, "0.5:wanda", plan)[0])


def test_attention_stage_takes_tiles_from_the_context_device() -> None:
    g = run_pipeline(tiny("prefill"), ["attention:flash"], ctx=PassContext(device="h100-sxm5"))
    assert "flash_step" in {n.op for n in g.nodes}
    assert print_graph(g) == print_graph(apply_attention(tiny("prefill"), "flash", "h100-sxm5"))
    with pytest.raises(UsageError, match="needs a target"):
        run_pipeline(tiny("prefill"), ["attention:flash"])


def test_dump_by_family_and_by_full_name(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    stages = ["fuse-attention", "sparsity:2:4", "quant:w4a16-rtn", "fuse"]
    for dump, want in (("after:quant", ["quant:w4a16-rtn"]),
                       ("after:sparsity:2:4,after:fuse", ["sparsity:2:4", "fuse"]),
                       ("after:all", stages)):
        monkeypatch.setenv("LLMC_DUMP", dump)
        out = run_pipeline(tiny("prefill"), stages)
        err = capsys.readouterr().err
        assert re.findall(r"^// after (\S+) \(prefill\)$", err, re.M) == want
        assert err.endswith(print_graph(out)) == (want[-1] == "fuse")


def test_on_stage_sees_every_stage_and_timings_are_kept() -> None:
    seen = []
    ctx = PassContext()
    run_pipeline(tiny("prefill"), ["verify", "fuse"], ctx=ctx,
                 on_stage=lambda name, before, after: seen.append((name, before is after)))
    assert seen == [("verify", True), ("fuse", False)]
    assert set(ctx.timings) == {"prefill.verify_s", "prefill.fuse_s"}


def test_compile_runs_every_stage_through_the_manager(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from llmc import api
    from llmc.hw.targets import get_target

    stages = api.pipeline_stages(get_target("h100"), "w4a16", "2:4", "flash")
    assert stages == ["fuse-attention", "verify", "sparsity:2:4", "attention:flash",
                      "quant:w4a16", "fuse", "verify"]
    monkeypatch.setenv("LLMC_DUMP", "after:quant,after:attention")
    api.compile("llama-tiny", "h100", tmp_path / "o", seq_len=16, weights="meta",
                quant="w4a16", sparsity="2:4", attention="flash")
    err = capsys.readouterr().err
    assert re.findall(r"^// after (\S+) \((\w+)\)$", err, re.M) == [
        ("attention:flash", "prefill"), ("quant:w4a16", "prefill"),
        ("attention:flash", "decode"), ("quant:w4a16", "decode")]
