"""llmc-tiny compiled for the NPU: bit-identical to the IR interpreter's
integer graph (prefill and 8 decode steps), the same greedy tokens for 32
steps, the CLI's files and figures, and the refusals (float ops, DRAM)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

import llmc
from llmc import api
from llmc.backends.artifact import open_artifact
from llmc.backends.generate import Shapes, generate
from llmc.backends.npu.backend import (
    DRAM_IMAGE,
    PROGRAM,
    read_outputs,
    run_phase,
    sim_hardware,
)
from llmc.backends.npu.binary import decode
from llmc.backends.npu.iss import Machine
from llmc.cli import main
from llmc.hw.database import get_device
from llmc.ir import interpret

SEQ = 40           # prefill tokens and KV positions: 8 prompt + 32 generated fit
PROMPT = "The cat"
SCHEMES = ["w8a8-int", pytest.param("w4a8", marks=pytest.mark.slow)]


@functools.cache
def compiled(scheme: str, root: str) -> api.Compiled:
    return api.compile("llmc-tiny", "npu", Path(root) / scheme, seq_len=SEQ, quant=scheme)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("npu"))


def machine_of(c: api.Compiled) -> tuple[Machine, dict]:
    art = open_artifact(c.out_dir, llmc.__version__)
    image = decode(art.read_bytes(PROGRAM))
    dram = np.zeros(image.target.dram_bytes, np.uint8)
    raw = np.frombuffer(art.read_bytes(DRAM_IMAGE), np.uint8)
    dram[:raw.size] = raw
    return (Machine(image, sim_hardware(get_device("edge-npu")), dram),
            json.loads(art.read_text("io.json")))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_prefill_and_decode_bit_identical_to_the_interpreter(scheme: str, root: str) -> None:
    c = compiled(scheme, root)
    m, io = machine_of(c)
    pre, dec = c.graphs["prefill"], c.graphs["decode"]
    tokens = np.zeros((1, SEQ), np.int64)
    tokens[0, :7] = list(PROMPT.encode())
    stats = run_phase(m, io["prefill"], "prefill", [tokens])
    got, want = read_outputs(m, io["prefill"]), interpret(pre, [tokens])
    assert len(got) == len(want) == 13
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert stats.cycles > 0 and stats.macs > 0 and stats.energy_j > 0
    caches = [np.zeros(e["shape"], e["dtype"]) for e in io["decode"]["inputs"][2:]]
    for cache, kv in zip(caches, want[1:], strict=True):
        cache[:, :, :kv.shape[2]] = kv
    nxt = int(np.argmax(want[0][0, 6]))
    for step in range(8):
        xs = [np.array([[nxt]]), np.array([7 + step])] + caches
        run_phase(m, io["decode"], "decode", xs)
        got, want = read_outputs(m, io["decode"]), interpret(dec, xs)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), f"decode step {step}"
        caches = list(want[1:])
        nxt = int(np.argmax(want[0][0, -1]))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_greedy_tokens_match_for_32_steps(scheme: str, root: str) -> None:
    c = compiled(scheme, root)
    made = api.run(c.out_dir, PROMPT, 32)
    pre, dec = c.graphs["prefill"], c.graphs["decode"]
    caches = [np.zeros(n.type.shape, n.type.dtype.np) for n in dec.inputs[2:]]
    ref = generate(lambda xs: interpret(pre, xs), lambda xs: interpret(dec, xs), caches,
                   Shapes(1, SEQ, SEQ, 256), list(PROMPT.encode()), 32)
    assert made.tokens == ref.tokens and len(made.tokens) == 32
    r = made.result
    assert r.cycles > 0 and r.energy_j > 0
    assert r.timings["npu_tokens_per_s"] > 0 and r.timings["npu_j_per_token"] > 0


def test_cli_compile_files_and_run_figures(root: str, capsys: pytest.CaptureFixture) -> None:
    c = compiled("w8a8-int", root)
    for name in ("program.npu", "program.s", "plan.json", "report.md", "report.json",
                 "manifest.json", "io.json", "dram.bin", "npu.json", "npu_trace.json"):
        assert (c.out_dir / name).is_file(), name
    summary = json.loads((c.out_dir / "npu.json").read_text())
    pre = summary["prefill"]
    assert pre["cycles"] >= pre["array_cycles"] > 0 and 0 < pre["utilisation"] < 1
    assert set(pre["energy_pj"]) >= {"array", "vector", "sram", "dram", "leakage"}
    events = json.loads((c.out_dir / "npu_trace.json").read_text())["traceEvents"]
    names = {e["name"] for e in events if e["ph"] == "X"}
    assert {"matmul", "dma", "vsoftmax", "requant"} <= names
    assert c.manifest["backend"] == "npu"
    listing = (c.out_dir / "program.s").read_text()
    assert "matmul acc=" in listing and "vsoftmax dst=" in listing
    assert main(["run", str(c.out_dir), "--prompt", "Hi", "--gen-tokens", "4"]) == 0
    err = capsys.readouterr().err
    assert "cycles" in err and "NPU at 1.37 GHz" in err and "tokens/s" in err and \
        "J/token" in err


def test_a_float_graph_is_refused_naming_the_op(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    code = main(["compile", "llmc-tiny", "--target", "npu", "--seq-len", "8", "-o",
                 str(tmp_path / "f")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "the npu backend cannot render: float op" in err[0]
    assert "(the NPU computes integers only; compile with --quant w8a8-int or w4a8)" in err[0]


def test_weights_that_do_not_fit_the_dram_are_refused(tmp_path: Path, monkeypatch:
                                                      pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    import llmc.backends.npu.backend as backend

    monkeypatch.setattr(backend, "dram_capacity", lambda device: 1_000_000)
    code = main(["compile", "llmc-tiny", "--target", "npu", "--quant", "w8a8-int",
                 "--weights", "meta", "--seq-len", "8", "-o", str(tmp_path / "big")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert re.search(r"the model does not fit the edge-npu's DRAM: weights [\d,]+ bytes \+ "
                     r"inputs, outputs and KV cache [\d,]+ = [\d,]+ bytes; 1,000,000 are free",
                     err[0]), err[0]
    assert not (tmp_path / "big").exists()


def test_demo_section(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from llmc.backends.npu.demo import demo

    demo(tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert len(out) <= 12
    assert "bit-identical to the IR interpreter" in out[2]
    assert (tmp_path / "npu" / "program.s").read_text().startswith(".target rows=128")
