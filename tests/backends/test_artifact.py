"""`llmc run` refuses, with one line on stderr, exit 2 and nothing written:
a directory that is not an artifact, one from another llmc version or
format, a changed or missing file, a shape-only model, a bad prompt or
token count."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmc import __version__, api
from llmc.backends.artifact import MANIFEST, open_artifact
from llmc.cli import main
from llmc.errors import UsageError


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("art") / "tiny"
    api.compile("llama-tiny", "h100", out, seq_len=16, weights="random")
    return out


@pytest.fixture
def art(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the artifact, free to spoil."""
    return Path(shutil.copytree(built, tmp_path / "copy"))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def refused(capsys, directory: Path, *args: str) -> str:  # noqa: ANN001
    """Run `llmc run`; it must exit 2 with one line and leave the tree as it was."""
    root = directory.parent
    before = snapshot(root)
    capsys.readouterr()
    try:
        rc = main(["run", str(directory), *args])
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    assert rc == 2
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert out == "" and len(lines) == 1 and lines[0].startswith("llmc: error: "), err
    assert snapshot(root) == before
    return lines[0]


def test_the_artifact_runs(art: Path, capsys) -> None:  # noqa: ANN001
    assert main(["run", str(art), "--prompt", "ab", "--gen-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("ab")
    seen: list[int] = []
    made = api.run(art, "ab", 5, on_token=seen.append)  # what the CLI's progress bar follows
    assert seen == made.tokens and len(seen) == 5


def test_not_an_artifact(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "plain").mkdir()
    assert "not an llmc artifact (no manifest.json)" in refused(
        capsys, tmp_path / "plain", "--prompt", "a")
    assert "not an llmc artifact (not a directory)" in refused(
        capsys, tmp_path / "absent", "--prompt", "a")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / MANIFEST).write_text('{"name": "some other tool"}')
    assert "is not llmc's" in refused(capsys, tmp_path / "other", "--prompt", "a")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MANIFEST).write_text("{not json")
    assert "cannot be read" in refused(capsys, tmp_path / "broken", "--prompt", "a")


@pytest.mark.parametrize("key,value", [("llmc_version", "0.0.1"), ("format_version", 99)])
def test_another_version_or_format(art: Path, capsys, key: str, value: object) -> None:  # noqa: ANN001
    m = json.loads((art / MANIFEST).read_text())
    m[key] = value
    (art / MANIFEST).write_text(json.dumps(m))
    line = refused(capsys, art, "--prompt", "a")
    assert f"was built by llmc {m['llmc_version']} (artifact format {m['format_version']})" \
        in line and "compile it again" in line


def test_another_target(art: Path, capsys) -> None:  # noqa: ANN001
    assert "was built for target h100, not a100" in refused(
        capsys, art, "--prompt", "a", "--target", "a100")
    assert main(["run", str(art), "--prompt", "a", "--gen-tokens", "2", "-t", "h100"]) == 0


def test_a_changed_manifest(art: Path, capsys) -> None:  # noqa: ANN001
    """The backend checks the request against its own graphs, not only
    against the manifest's figures."""
    m = json.loads((art / MANIFEST).read_text())
    m["generate"].update(prompt_tokens=64, context_tokens=64)
    (art / MANIFEST).write_text(json.dumps(m))
    assert "need a KV cache of 21 positions; this artifact's holds 16" in refused(
        capsys, art, "--prompt", "ab", "--gen-tokens", "20")
    del m["backend"]
    (art / MANIFEST).write_text(json.dumps(m))
    assert "manifest.json lacks backend" in refused(capsys, art, "--prompt", "ab")


def test_a_changed_file(art: Path, capsys) -> None:  # noqa: ANN001
    w = art / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    assert "modified after compile: weights.safetensors does not match its sha256" in refused(
        capsys, art, "--prompt", "a")


def test_a_changed_graph(art: Path, capsys) -> None:  # noqa: ANN001
    ir = art / "decode.llmir"
    ir.write_text(ir.read_text().replace("silu", "gelu", 1))
    assert "decode.llmir does not match" in refused(capsys, art, "--prompt", "a")


def test_a_missing_file(art: Path, capsys) -> None:  # noqa: ANN001
    (art / "prefill.llmir").unlink()
    assert "incomplete: prefill.llmir (listed in manifest.json) is missing" in refused(
        capsys, art, "--prompt", "a")


def test_bad_prompts_and_counts(art: Path, capsys) -> None:  # noqa: ANN001
    assert "prompt is empty" in refused(capsys, art, "--prompt", "")
    assert "prompt is 17 tokens; this artifact's prefill takes at most 16" in refused(
        capsys, art, "--prompt", "x" * 17)
    assert "outside the model's vocabulary of 128" in refused(capsys, art, "--prompt", "é")
    assert "--gen-tokens must be a positive integer, got 0" in refused(
        capsys, art, "--prompt", "a", "--gen-tokens", "0")
    assert "need a KV cache of 17 positions; this artifact's holds 16" in refused(
        capsys, art, "--prompt", "ab", "--gen-tokens", "16")
    assert "invalid int value" in refused(capsys, art, "--prompt", "a", "--gen-tokens", "many")
    with pytest.raises(UsageError, match="positive integer"):
        api.run(art, "a", max_new_tokens=-1)
    with pytest.raises(UsageError, match="text or a sequence of integer token ids"):
        api.run(art, [1.5], max_new_tokens=1)
    assert len(api.run(art, [1, 2, 3], max_new_tokens=14).tokens) == 14  # 3 + 14 - 1 = 16


def test_a_shape_only_model_compiles_but_does_not_run(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "meta"
    assert main(["compile", "llama-tiny", "--target", "npu", "--quant", "w8a8-int", "-o",
                 str(out), "--weights", "meta", "--seq-len", "16"]) == 0
    assert "run it:" not in capsys.readouterr().out
    m = open_artifact(out, __version__).manifest
    assert m["model"]["shape_only"] and not {"weights.safetensors", "dram.bin"} & set(m["files"])
    assert {"program.npu", "program.s", "npu.json", "report.json"} <= set(m["files"])
    assert "shape-only model" in refused(capsys, out, "--prompt", "a")


def test_a_model_without_a_decode_phase_does_not_run(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    f = tmp_path / "lin.py"
    f.write_text("import torch\n"
                 "def make():\n"
                 "    torch.manual_seed(0)\n"
                 "    return torch.nn.Linear(8, 4), (torch.randn(2, 8),)\n")
    out = tmp_path / "lin"
    api.compile(f"{f}:make", "a100", out)
    assert "without a decode phase" in refused(capsys, out, "--prompt", "a")
