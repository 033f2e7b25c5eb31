"""The reference backend end to end: llmc-tiny compiled for a100 and run
generates PyTorch eager's greedy tokens; artifacts are byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from llmc import __version__, api
from llmc.backends.artifact import MANIFEST, sha256
from llmc.backends.reference.backend import WEIGHTS, pack_weights, unpack_weights
from llmc.backends.weights import loads
from llmc.cli import main
from llmc.ir import Graph

PROMPT = "The "


@pytest.fixture(scope="module", autouse=True)
def a100_on_the_reference_backend():
    """These tests are the reference backend's: a100 compiles onto it here, as
    it does wherever the gpu backend is not built."""
    import llmc.backends as backends

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(backends.BACKENDS, "gpu", "llmc.backends.not_built")
        yield


@pytest.fixture(scope="module")
def tiny_a100(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "a100"
    assert main(["compile", "llmc-tiny", "--target", "a100", "-o", str(out)]) == 0
    return out


def eager_greedy(model: str, prompt: list[int], n: int) -> list[int]:
    """Greedy tokens from the zoo module in PyTorch, recomputing the whole
    sequence every step (no KV cache)."""
    module = api.load_model(model).module
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits, _ = module(torch.tensor([ids]))
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt):]


def test_llmc_tiny_on_a100_matches_pytorch_eager(tiny_a100: Path) -> None:
    made = api.run(tiny_a100, PROMPT, max_new_tokens=32)
    want = eager_greedy("llmc-tiny", list(PROMPT.encode()), 32)
    assert made.tokens == want
    assert len(made.tokens) == 32 and made.backend == "reference" and made.target == "a100"
    assert made.text == bytes(want).decode("utf-8", errors="replace")
    assert made.text.startswith("statement")  # the shipped sample: "The statement is ..."
    assert made.result.timings["prefill_s"] > 0 and made.result.timings["decode_s"] > 0


def test_llmc_run_prints_text_and_timing(tiny_a100: Path, capsys) -> None:  # noqa: ANN001
    assert main(["run", str(tiny_a100), "--prompt", PROMPT, "--gen-tokens", "8"]) == 0
    out, err = capsys.readouterr()
    assert out == PROMPT + api.run(tiny_a100, PROMPT, 8).text + "\n"
    assert "8 tokens" in err and "tokens/s" in err and "reference backend" in err
    assert main(["run", str(tiny_a100), "--prompt", PROMPT, "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out == PROMPT + api.run(tiny_a100, PROMPT, 3).text + "\n"


def test_artifact_holds_both_phases_and_a_manifest(tiny_a100: Path) -> None:
    m = json.loads((tiny_a100 / MANIFEST).read_text())
    assert m["backend"] == "reference" and m["target"] == "a100"
    assert m["target_backend"] == "gpu" and m["device"] == "a100-sxm4-80gb"
    assert m["llmc_version"] == __version__
    assert m["format"] == "llmc-artifact" and m["format_version"] == 1
    assert m["model"]["name"] == "llmc-tiny" and not m["model"]["shape_only"]
    assert m["model"]["sha256"] == api.model_sha256(api.load_model("llmc-tiny"))
    assert m["options"]["seq_len"] == 128 and len(m["options_sha256"]) == 64
    assert m["generate"] == {"batch": 1, "prompt_tokens": 128, "context_tokens": 128,
                             "vocab_size": 256, "tokenizer": "utf-8 bytes"}
    on_disk = sorted(p.name for p in tiny_a100.iterdir() if p.name != MANIFEST)
    assert sorted(m["files"]) == on_disk
    for name in ("prefill.llmir", "decode.llmir", WEIGHTS, "report.json", "plan.json"):
        assert m["files"][name] == sha256((tiny_a100 / name).read_bytes())


def test_same_inputs_give_byte_identical_artifacts(tiny_a100: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["compile", "llmc-tiny", "--target", "a100", "-o", str(again)]) == 0
    names = sorted(p.name for p in tiny_a100.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (tiny_a100 / name).read_bytes() == (again / name).read_bytes(), name


def test_weights_file_is_deterministic_and_readable(tiny_a100: Path) -> None:
    data = (tiny_a100 / WEIGHTS).read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    names = [k for k in header if k != "__metadata__"]
    assert names == sorted(names)
    assert header["__metadata__"] == {"format": "np", "producer": "llmc reference backend"}
    tensors = loads(data)
    assert tensors["embed.weight"].shape == (256, 256) and tensors["rope_cos"].shape == (512, 32)
    assert sum(t.size for n, t in tensors.items() if not n.startswith("rope")) == 3771648


def test_a_weight_that_differs_between_phases_is_kept_per_phase() -> None:
    a, b = np.arange(6, dtype=np.int8).reshape(2, 3), np.ones(4, np.float32)
    graphs = {"prefill": Graph("p", params={"w": a, "x": b}),
              "decode": Graph("d", params={"w": a + 1, "x": b})}
    data = pack_weights(graphs)
    assert sorted(loads(data)) == ["decode/w", "w", "x"]
    assert pack_weights(graphs) == data
    assert np.array_equal(unpack_weights(data, graphs["decode"], "decode")["w"], a + 1)
    assert np.array_equal(unpack_weights(data, graphs["prefill"], "prefill")["w"], a)


def test_quantized_artifact_runs_like_the_interpreter(tmp_path: Path) -> None:
    """An integer-only artifact decodes with its KV cache; the same tokens come
    from running its graphs one full sequence at a time (no cache reuse)."""
    out = tmp_path / "q"
    c = api.compile("llmc-tiny", "npu", out, seq_len=24, quant="w8a8-int")
    made = api.run(out, PROMPT, 6)
    prefill = c.graphs["prefill"]
    ids = list(PROMPT.encode())
    for _ in range(6):
        tokens = np.zeros((1, 24), np.int64)
        tokens[0, :len(ids)] = ids
        logits = api.interpret(prefill, [tokens])[0]
        ids.append(int(np.argmax(logits[0, len(ids) - 1])))
    assert made.tokens == ids[len(PROMPT):]


def test_backend_option_chooses_the_emitter(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--backend reference compiles any target onto the interpreter, says so,
    and another family's backend is refused in one line."""
    from llmc.cli import main

    assert main(["compile", "llama-tiny", "--target", "npu", "--backend", "reference",
                 "--weights", "random", "--seq-len", "8", "-o", str(tmp_path / "a")]) == 0
    assert "backend reference (chosen with --backend)" in capsys.readouterr().out
    assert main(["compile", "llama-tiny", "--target", "npu", "--backend", "gpu",
                 "--weights", "random", "--seq-len", "8", "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "target npu compiles with its npu backend or the reference" in err[0]
    assert not (tmp_path / "b").exists()
