"""The CLI's happy paths and the artifact it writes."""

from __future__ import annotations

import json
from pathlib import Path

from llmc.cli import main
from llmc.ir import parse_graph, verify

USER_MODEL = '''
import torch
class Attn(torch.nn.Module):
    """Attention written by hand, as many user models do."""
    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Linear(32, 96)
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, 4, 8).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (1.0 / 8 ** 0.5)
        att = torch.softmax(att, dim=-1)
        return (att @ v).transpose(1, 2).reshape(B, T, C)
def make():
    torch.manual_seed(0)
    return Attn(), (torch.randn(2, 5, 32),)
'''


def test_compile_writes_artifact(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "art"
    assert main(["compile", "llama-tiny", "--target", "h100", "-o", str(out),
                 "--weights", "random", "--seq-len", "16"]) == 0
    report = json.loads((out / "report.json").read_text())
    for key in ("model", "target", "params_total", "params_active", "weight_bytes"):
        assert key in report
    assert report["prefill"]["flops"] > report["decode"]["flops"] > 0
    verify(parse_graph((out / "model.llmir").read_text()))
    plans = json.loads((out / "plan.json").read_text())
    for phase in ("prefill", "decode"):
        assert plans[phase]["arena_bytes"] >= plans[phase]["lower_bound_bytes"] > 0
        assert (out / f"plan_{phase}.png").stat().st_size > 0
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["compile", "llama-tiny", "--target", "h100", "-o", str(out),
                 "--weights", "random", "--seq-len", "16"]) == 0
    again = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert first == again, "same inputs must give byte-identical artifacts"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]  # no temp dirs left
    assert "compiled llama-tiny for h100" in capsys.readouterr().out


def test_user_module_attention_is_fused(tmp_path: Path) -> None:
    from llmc import api
    from llmc.numerics import assert_close
    from llmc.passes.manager import run_pipeline

    f = tmp_path / "attn_model.py"
    f.write_text(USER_MODEL)
    traced = api.trace(f"{f}:make")
    assert "softmax" in api.summarize(traced.graph)["ops"]
    fused = run_pipeline(traced.graph, ["fuse-attention"])
    ops = api.summarize(fused)["ops"]
    assert ops.get("attention") == 1 and "softmax" not in ops
    assert_close(api.interpret(fused, traced.inputs)[0], api.torch_reference(traced)[0])


def test_models_targets_show(capsys) -> None:  # noqa: ANN001
    assert main(["models"]) == 0
    assert "gpt-oss-120b" in capsys.readouterr().out
    assert main(["targets"]) == 0
    assert "spinnaker2" in capsys.readouterr().out
    assert main(["show", "moe-tiny", "--weights", "random", "--seq-len", "8"]) == 0
    out = capsys.readouterr().out
    assert "moe_ffn 2" in out and "active" in out


def test_compile_with_quant_shape_only(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "q"
    assert main(["compile", "llama-tiny", "--target", "a100", "-o", str(out), "--weights",
                 "meta", "--seq-len", "16", "--quant", "w4a16"]) == 0
    assert "@int4" in (out / "model.llmir").read_text() or "u8[" in (out / "model.llmir").read_text()
    assert main(["compile", "llama-tiny", "--target", "a100", "-o", str(tmp_path / "bad"),
                 "--weights", "meta", "--seq-len", "16", "--quant", "nope"]) == 2
    assert "valid: bfp16" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_compile_with_sparsity_and_attention(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert main(["compile", "llama-tiny", "--target", "h100", "-o", str(out), "--weights",
                 "meta", "--seq-len", "32", "--sparsity", "2:4", "--attention", "flash"]) == 0
    saved = json.loads((out / "report.json").read_text())["decode"]["work_saved"]
    assert saved["sparse_linears"] > 0 and saved["flops_saved"] > 0.3
    assert main(["compile", "llama-tiny", "--target", "h100", "-o", str(tmp_path / "bad"),
                 "--weights", "meta", "--seq-len", "32", "--sparsity", "1.5"]) == 2
    assert not (tmp_path / "bad").exists()


def test_compile_prints_export_and_llmc_time_per_phase(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import re

    assert main(["compile", "llama-tiny", "--target", "a100", "-o", str(tmp_path / "t"),
                 "--weights", "meta", "--seq-len", "16"]) == 0
    out = capsys.readouterr().out
    for phase in ("prefill", "decode"):
        assert re.search(rf"^  time     {phase}: torch\.export \d+\.\d\d s, llmc \d+\.\d\d s$",
                         out, re.M), out
    assert re.search(r"^  time     memory plan \d+\.\d\d s, backend \d+\.\d\d s$", out, re.M)


def test_phase_times_split_export_from_llmc() -> None:
    from llmc.cli.core import phase_times

    t = {"prefill.export_s": 4.2, "prefill.convert_s": 0.05, "prefill.verify_s": 0.01,
         "prefill.passes_s": 0.04, "decode.export_s": 4.5, "decode.passes_s": 0.2,
         "memplan_s": 0.3, "backend_s": 0.01}
    assert phase_times(t) == ["  time     prefill: torch.export 4.20 s, llmc 0.10 s",
                              "  time     decode: torch.export 4.50 s, llmc 0.20 s",
                              "  time     memory plan 0.30 s, backend 0.01 s"]


def test_compile_prints_the_work_sparsity_saved(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The GFLOP printed are the roofline's (a sparse linear runs as its dense
    product, so they can exceed the dense model's); the line under them says
    what the passes removed, as report.json's work_saved defines it."""
    out_dir = tmp_path / "s"
    assert main(["compile", "llama-tiny", "--target", "h100", "-o", str(out_dir), "--weights",
                 "meta", "--seq-len", "32", "--sparsity", "2:4:sparsegpt",
                 "--attention", "flash"]) == 0
    out = capsys.readouterr().out
    report = json.loads((out_dir / "report.json").read_text())
    assert "GFLOP executed" in out
    for phase in ("prefill", "decode"):
        w = report[phase]["work_saved"]
        assert w["flops_saved"] > 0.3
        assert (f"sparsity/attention saved {w['flops_saved']:.1%} of the graph's FLOPs "
                f"({w['flops_before'] / 1e9:,.4g} -> {w['flops_after'] / 1e9:,.4g} GFLOP of "
                f"kept work) and {w['bytes_saved']:.1%} of its bytes") in out
    assert main(["compile", "llama-tiny", "--target", "h100", "-o", str(tmp_path / "d"),
                 "--weights", "meta", "--seq-len", "32"]) == 0
    assert "saved" not in capsys.readouterr().out  # nothing to say without the options


def test_partition_prints_the_capacity_asked_for(capsys) -> None:  # noqa: ANN001
    assert main(["partition", "llama-tiny", "--capacity", "250KiB", "--target", "a100"]) == 0
    out = capsys.readouterr().out
    assert "weights within --capacity 250KiB (250.00 KiB) per stage: every stage fits" in out
    assert "one a100 device holds 79.00 GiB" in out
    assert main(["partition", "llama-tiny", "--stages", "2", "--stage-capacity", "1MiB"]) == 0
    assert "weights within --stage-capacity 1MiB (1.00 MiB) per stage" in capsys.readouterr().out
    assert main(["partition", "llama-tiny", "--capacity", "250KiB", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["capacity_bytes"] == 250 * 1024
