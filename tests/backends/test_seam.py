"""Backends load through one table; a family whose backend is not built runs
on the reference backend; a built one emits and runs its own artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import llmc.backends as backends
from llmc import api
from llmc.backends import REFERENCE, built_backends, get_backend, is_built, load_backend
from llmc.cli import main
from llmc.errors import LlmcError, UnsupportedOpError, UsageError
from llmc.hw.targets import TARGETS
from tests.backends import fake_gpu


def test_every_target_family_is_in_the_table() -> None:
    assert {t.backend for t in TARGETS.values()} <= set(backends.BACKENDS)
    assert REFERENCE in built_backends()
    for family in backends.BACKENDS:
        b = get_backend(family)
        assert b.name == (family if is_built(family) else REFERENCE)


def test_an_unbuilt_backend_falls_back(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setitem(backends.BACKENDS, "gpu", "llmc.backends.not_there")
    assert not is_built("gpu") and "gpu" not in built_backends()
    assert get_backend("gpu").name == REFERENCE
    with pytest.raises(UsageError, match="the gpu backend is not built"):
        load_backend("gpu")
    with pytest.raises(UsageError, match="unknown backend 'tpu'"):
        load_backend("tpu")
    assert main(["targets"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("a100 "))
    assert "backend gpu: not built yet, runs on the reference backend" in line


def test_a_built_backend_emits_and_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        capsys) -> None:  # noqa: ANN001
    monkeypatch.setitem(backends.BACKENDS, "gpu", "tests.backends.fake_gpu")
    assert "gpu" in built_backends()
    assert main(["targets"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("h100 "))
    assert line.endswith("[device h100-sxm5, backend gpu]")
    out = tmp_path / "gpu"
    assert main(["compile", "llama-tiny", "--target", "h100", "-o", str(out), "--weights",
                 "random", "--seq-len", "16"]) == 0
    assert "backend gpu; run it" in capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())
    assert m["backend"] == m["target_backend"] == "gpu" and "kernels.txt" in m["files"]
    kernels = (out / "kernels.txt").read_text()
    assert "h100-sxm5, seq 16" in kernels and kernels.startswith("prefill ")
    made = api.run(out, "ab", 4)
    assert made.backend == "gpu" and len(made.tokens) == 4
    # the artifact names its backend: one built by gpu does not run without it
    monkeypatch.setitem(backends.BACKENDS, "gpu", "llmc.backends.not_there")
    with pytest.raises(UsageError, match="the gpu backend is not built"):
        api.run(out, "ab", 4)


def test_unsupported_ops_are_listed_at_once(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setitem(backends.BACKENDS, "gpu", "tests.backends.fake_gpu")
    monkeypatch.setattr(fake_gpu, "BACKEND", fake_gpu.OnlyLinear())
    with pytest.raises(UnsupportedOpError) as exc:
        api.compile("llama-tiny", "a100", tmp_path / "x", seq_len=8, weights="random")
    msg = str(exc.value)
    assert msg.startswith("the gpu backend cannot render: op ")
    assert "op attention (e.g." in msg and "op rms_norm" in msg and "op linear" not in msg
    assert not (tmp_path / "x").exists()
    monkeypatch.setattr(fake_gpu, "BACKEND", fake_gpu.Clashing())
    with pytest.raises(LlmcError, match="emitted report.json, which compile writes itself"):
        api.compile("llama-tiny", "a100", tmp_path / "y", seq_len=8, weights="random")
    assert not (tmp_path / "y").exists()
