"""A whole decode step in RTL: every unit of llama-tiny (2 layers, width 64,
int4 weights) and the controller sequencing them, bit-exact with the
interpreter's integer graph and cycle-exact with the controller's schedule;
one llmc-tiny layer likewise.

Both run in Icarus and Verilator (llama-tiny: ~15 s and ~40 s; the
llmc-tiny layer, 606,208 hardwired weights: ~70 s and ~90 s with its lint)
thanks to the compact hardwired neurons (llmc_hn_neuron).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmc import api
from llmc.backends.hnlpu.decode import choose, decode_case, decode_files, decode_spec
from llmc.cli import main
from llmc.rtl.hn_ctrl import generate_decode
from llmc.rtl.hn_sim import build_decode, decode_cycles, decode_schedule, run_decode
from llmc.rtl.lint import lint
from tests.rtl.rtl_helpers import SIMS, needs

PROMPT = [104, 105, 33]
TINY_CYCLES = 10898  # the schedule below, summed


def _case(compiled, layers=None):  # noqa: ANN001, ANN202
    prefill, decode = compiled.graphs["prefill"], compiled.graphs["decode"]
    match = decode_spec(decode, layers)
    return match, decode_case(prefill, decode, match, PROMPT)


@pytest.mark.parametrize("layers", [None, 1])
def test_reference_is_the_interpreter(tiny_artifact, layers) -> None:  # noqa: ANN001
    match, case = _case(tiny_artifact, layers)
    spec = match.spec
    assert [la.name for la in spec.layers] == ["layers.0", "layers.1"][:layers]
    assert spec.in_bits == 16 and (spec.head is not None) == (layers is None)
    assert case.pos == len(PROMPT) and case.y.shape == ((128,) if layers is None else (64,))
    y, hs = spec.reference(case.x, case.kcs, case.vcs, case.pos)
    assert np.array_equal(y, case.y)
    assert all(np.array_equal(a, b) for a, b in zip(hs, case.hs, strict=True))
    # another cache gives another answer: the check can fail
    vcs = [-v for v in case.vcs]
    assert not np.array_equal(spec.reference(case.x, case.kcs, vcs, case.pos)[0], case.y)


def test_schedule_is_the_units_plus_the_controller(tiny_artifact) -> None:  # noqa: ANN001
    spec = _case(tiny_artifact)[0].spec
    sched = dict(decode_schedule(spec))
    la = spec.layers[0]
    assert sched["layers.0.attn_norm"] == la.attn_norm.cycles() + 2 == 706 + 2
    assert sched["layers.0.qkv"] == 9 + 2 and sched["layers.0.qkv_requant"] == 64
    assert sched["layers.0.rope"] == 64 and sched["layers.0.residual"] == 64
    assert sched["layers.1.attn"] == la.attn.cycles() + 2
    assert sched["layers.1.ffn"] == la.ffn.cycles() + 2 and sched["lm_head"] == 11
    assert len(sched) == 2 * 10 + 2 + 1 and decode_cycles(spec) == TINY_CYCLES


def test_compile_writes_the_decode_design(tiny_artifact) -> None:  # noqa: ANN001
    out = tiny_artifact.out_dir / "rtl"
    meta = json.loads((out / "layers.json").read_text())["decode"]
    assert meta["top"] == "decode_llama_tiny" and meta["whole_model"]
    assert meta["cycles"] == meta["model_cycles"] == TINY_CYCLES and meta["weights"] == 94208
    assert sum(r["cycles"] for r in meta["schedule"]) == TINY_CYCLES
    for name in meta["sources"]:
        assert (out / name).is_file()
    assert (out / "tb_ctrl.py").is_file()
    text = (out / "decode_llama_tiny.v").read_text()
    assert "u_att_1" in text and "u_lm" in text and "endmodule" in text


def test_run_counts_the_controllers_cycles(tiny_artifact) -> None:  # noqa: ANN001
    made = api.run(tiny_artifact.out_dir, "ab", 3)
    assert made.result.cycles == 2 * TINY_CYCLES


def test_too_large_for_the_controller_takes_its_first_layer_or_nothing(
        tiny_artifact, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    graph = tiny_artifact.graphs["decode"]
    assert choose(graph).spec.head is not None
    # the model (94,208 weights) is above it, its first layer (43,008) is not
    monkeypatch.setattr("llmc.backends.hnlpu.decode.CTRL_MAX_WEIGHTS", 50000)
    one = choose(graph)
    assert one.spec.head is None and [la.name for la in one.spec.layers] == ["layers.0"]
    monkeypatch.setattr("llmc.backends.hnlpu.decode.CTRL_MAX_WEIGHTS", 4096)
    assert choose(graph) is None and decode_files(graph, "rtl") == ({}, {})


def test_a_generation_that_cannot_follow_is_refused_before_the_rtl(
        tiny_artifact, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert main(["run", str(tiny_artifact.out_dir), "--prompt", "hi!", "--gen-tokens", "32",
                 "--simulator", "icarus"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "need a KV cache of 34 positions" in err


@pytest.mark.rtl
@needs("icarus")
def test_llmc_run_simulates_the_decode_step_in_icarus(
        tiny_artifact, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert main(["run", str(tiny_artifact.out_dir), "--prompt", "hi!", "--gen-tokens", "2",
                 "--simulator", "icarus"]) == 0
    err = capsys.readouterr().err
    assert "RTL decode step (icarus): 2 layers + LM head (units + controller, 22 steps), " \
           f"94,208 weights; bit-exact vs the interpreter; {TINY_CYCLES} cycles (cycle model " \
           f"{TINY_CYCLES})" in err, err


@pytest.mark.rtl
@pytest.mark.slow
def test_decode_design_lints_clean(tiny_artifact, tmp_path: Path) -> None:  # noqa: ANN001
    design = generate_decode(_case(tiny_artifact)[0].spec)
    assert lint(design.write(tmp_path), design.top) == []


@pytest.mark.rtl
@pytest.mark.slow
@needs("verilator")
def test_decode_step_in_verilator_and_a_wrong_answer_fails(
        tiny_artifact, tmp_path: Path) -> None:  # noqa: ANN001
    match, case = _case(tiny_artifact)
    build = build_decode(match.spec, "verilator", tmp_path)
    run = run_decode(build, match.spec, case.x, case.kcs, case.vcs, case.pos, case.y, case.hs,
                     tmp_path / "run")
    assert run.passed and run.cycles == (TINY_CYCLES,), (run.problem, run.cycles)
    wrong = case.y.copy()
    wrong[5] += 1
    bad = run_decode(build, match.spec, case.x, case.kcs, case.vcs, case.pos, wrong, case.hs,
                     tmp_path / "bad")
    assert not bad.passed and bad.mismatches == (1,)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMS)
def test_llmc_tiny_layer_bit_and_cycle_exact(tmp_path_factory: pytest.TempPathFactory, sim: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """One llmc-tiny layer (its trained weights, 606,208 hardwired): compile
    writes the first layer's design (the whole model is above the controller's
    limit), and it runs bit-exact and cycle-exact."""
    out = tmp_path_factory.getbasetemp() / "llmc-tiny-hnlpu"
    if not (out / "manifest.json").is_file():
        api.compile("llmc-tiny", "hnlpu", out, quant="w4a8", seq_len=16)
    meta = json.loads((out / "rtl" / "layers.json").read_text())["decode"]
    assert meta["layers"] == ["layers.0"] and not meta["whole_model"]
    assert meta["weights"] == 606208
    # the whole model's step by the cycle model: its layers are alike, plus the head
    assert meta["model_cycles"] > 6 * meta["cycles"]
    rtl = out / "rtl"
    if sim == SIMS[0]:  # lint once: the design as compile wrote it
        assert lint([rtl / name for name in meta["sources"]], meta["top"]) == []
        # the standalone step (262,144 weights) is compact too: a few MB, and it runs
        step = json.loads((rtl / "layers.json").read_text())
        assert step["compact"] and step["layers"][0]["module"].endswith("_me_c")
        assert sum(f.stat().st_size for f in rtl.iterdir()) < 10_000_000
        capsys.readouterr()
        assert main(["run", str(out), "--prompt", "def", "--gen-tokens", "2", "--simulator",
                     sim, "--rtl-layers", "layers.0.attn.k_proj"]) == 0
        assert "bit-exact vs the interpreter; 9 cycles (cycle model 9)" in \
            capsys.readouterr().err
    capsys.readouterr()
    assert main(["run", str(out), "--prompt", "def", "--gen-tokens", "2",
                 "--simulator", sim]) == 0
    err = capsys.readouterr().err
    assert f"RTL decode step ({sim}): layer layers.0 (units" in err and "606,208 weights; bit-exact vs the " \
        f"interpreter; {meta['cycles']} cycles (cycle model {meta['cycles']})" in err, err
