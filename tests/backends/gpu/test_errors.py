"""Bad input to the gpu backend, through the CLI: one line on stderr, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmc.cli import main

pytest.importorskip("triton")


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpu-err") / "tiny"
    assert main(["compile", "llmc-tiny", "--target", "a100", "-o", str(out), "--seq-len",
                 "16"]) == 0
    return out


def refused(capsys, *argv: str) -> str:  # noqa: ANN001
    capsys.readouterr()
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("llmc: error: ") and err.count("\n") == 1, err
    return err


def test_a_tile_the_target_cannot_run(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    err = refused(capsys, "compile", "llmc-tiny", "--target", "a100", "-o",
                  str(tmp_path / "t"), "--seq-len", "16", "--attention", "flash:48x48")
    assert "tile 48" in err and "powers of two" in err
    err = refused(capsys, "compile", "llmc-tiny", "--target", "h100", "-o",
                  str(tmp_path / "u"), "--seq-len", "16", "--attention", "flash:4096x4096")
    assert "on chip" in err
    assert not (tmp_path / "t").exists() and not (tmp_path / "u").exists()


def test_an_artifact_for_another_target(art: Path, capsys) -> None:  # noqa: ANN001
    err = refused(capsys, "run", str(art), "--prompt", "a", "--target", "h100")
    assert "built for target a100, not h100" in err


def test_an_artifact_from_another_llmc_version(art: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    old = tmp_path / "old"
    shutil.copytree(art, old)
    m = json.loads((old / "manifest.json").read_text())
    m["llmc_version"] = "0.0.1"
    (old / "manifest.json").write_text(json.dumps(m))
    assert "built by llmc 0.0.1" in refused(capsys, "run", str(old), "--prompt", "a")


def test_a_missing_weights_file(art: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bare = tmp_path / "bare"
    shutil.copytree(art, bare)
    (bare / "weights.safetensors").unlink()
    assert "weights.safetensors" in refused(capsys, "run", str(bare), "--prompt", "a")


def test_a_prompt_longer_than_the_compiled_context(art: Path, capsys) -> None:  # noqa: ANN001
    err = refused(capsys, "run", str(art), "--prompt", "x" * 17, "--max-new-tokens", "1")
    assert "17 tokens" in err and "at most 16" in err


def test_no_gpu_and_no_triton(art: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake" / "triton"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('triton is not installed')\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(Path.cwd())])}
    r = subprocess.run([sys.executable, "-m", "llmc.cli", "run", str(art), "--prompt", "a",
                        "--max-new-tokens", "1"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "needs Triton" in r.stderr, r.stderr
