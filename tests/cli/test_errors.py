"""Bad input: one clear line on stderr, exit code 2, no traceback, and no
partial output directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmc.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmc.cli", *args], capture_output=True,
                          text=True, timeout=300)


def assert_clean_failure(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


UNSUPPORTED = '''
import torch
class M(torch.nn.Module):
    def forward(self, x):
        return torch.special.i0(x) + torch.fft.fft(x).real + torch.special.i0(x)
def make():
    return M(), (torch.randn(8),)
'''


def test_unknown_model_suggests(tmp_path: Path) -> None:
    proc = run_cli("compile", "lama-2-7b", "--target", "a100", "-o", str(tmp_path / "o"))
    assert_clean_failure(proc, "unknown model 'lama-2-7b'", "llama-2-7b")
    assert not (tmp_path / "o").exists()


def test_unknown_target(tmp_path: Path) -> None:
    proc = run_cli("compile", "llama-tiny", "--target", "a10O", "-o", str(tmp_path / "o"))
    assert_clean_failure(proc, "unknown target 'a10O'", "a100")
    assert not (tmp_path / "o").exists()


def test_output_is_an_existing_file(tmp_path: Path) -> None:
    f = tmp_path / "taken"
    f.write_text("keep me")
    proc = run_cli("compile", "llama-tiny", "--target", "a100", "-o", str(f))
    assert_clean_failure(proc, "exists and is not a directory")
    assert f.read_text() == "keep me"


@pytest.mark.parametrize("cmd", [
    ["compile", "llama-tiny", "--target", "a100", "--seq-len", "8"],
    ["report", "llama-2-7b", "--target", "a100"],
    ["plan", "llama-tiny", "--seq-len", "8"],
    ["sweep", "--models", "llama-2-7b", "--target", "a100"],
])
def test_a_directory_llmc_did_not_write_is_left_alone(tmp_path: Path, cmd: list[str],
                                                      capsys) -> None:  # noqa: ANN001
    (tmp_path / "mine.txt").write_text("keep me")
    assert main([*cmd, "-o", str(tmp_path)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize("content, needle", [
    (None, "no config.json"),
    ("{not json", "not valid JSON"),
    ('{"model_type": "llama"}', "config.json lacks"),
    ('{"model_type": "t5"}', "model_type 't5' is not supported"),
])
def test_bad_config_dir(tmp_path: Path, content: str | None, needle: str) -> None:
    d = tmp_path / "model"
    d.mkdir()
    if content is not None:
        (d / "config.json").write_text(content)
    proc = run_cli("compile", str(d), "--target", "a100", "-o", str(tmp_path / "o"))
    assert_clean_failure(proc, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_corrupt_weights(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(
        '{"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1,'
        ' "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 32}')
    (d / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    proc = run_cli("compile", str(d), "--target", "a100", "-o", str(tmp_path / "o"))
    assert_clean_failure(proc, "cannot read safetensors")
    assert not (tmp_path / "o").exists()


def test_unsupported_ops_listed_at_once(tmp_path: Path) -> None:
    f = tmp_path / "user_model.py"
    f.write_text(UNSUPPORTED)
    proc = run_cli("compile", f"{f}:make", "--target", "a100", "-o", str(tmp_path / "o"))
    assert_clean_failure(proc, "unsupported operator", "aten.i0.default x2",
                         "user_model.py:5")
    assert not (tmp_path / "o").exists()


def test_bad_sizes_in_process(capsys) -> None:  # noqa: ANN001
    assert main(["show", "llama-tiny", "--seq-len", "0", "--weights", "random"]) == 2
    assert "seq-len must be a positive integer" in capsys.readouterr().err
    assert main(["show", "llama-tiny", "--seq-len", "999", "--weights", "random"]) == 2
    assert "exceeds its context of 64" in capsys.readouterr().err


def test_argparse_errors_are_one_line(tmp_path: Path) -> None:
    proc = run_cli("compile", "llama-tiny")
    assert_clean_failure(proc, "required")
