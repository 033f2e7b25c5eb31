"""`--json` on every reporting command: stdout is one JSON document and
nothing else (`llmc rtl gemm --json` runs an HDL simulator:
tests/rtl/test_rtl_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmc.cli import main


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("json") / "tiny"


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # the whole of stdout, nothing before or after


CASES = {
    "models": (["models"], lambda j: any(m["name"] == "llmc-tiny" for m in j)),
    "targets": (["targets"], lambda j: {t["name"] for t in j} >= {"a100", "npu"}),
    "devices": (["devices"], lambda j: "h100-sxm5" in j),
    "show": (["show", "llama-tiny", "--seq-len", "8", "--weights", "meta"],
             lambda j: j["ops"]["attention"] == 2 and "ir" not in j),
    "show --ir": (["show", "llama-tiny", "--seq-len", "8", "--weights", "meta", "--ir"],
                  lambda j: j["ir"].startswith("graph @llama-tiny_prefill {")),
    "report": (["report", "gpt2", "--target", "a100", "--seq-len", "128", "--gen-tokens", "8"],
               lambda j: j["prompt"] == 128 and j["context"] == 136),
    "report --compare": (["report", "gpt2", "--compare", "a100,h100"], lambda j: bool(j)),
    "sweep": (["sweep", "--models", "gpt2", "--target", "a100,h100", "--quant", "bf16", "-j",
               "1"], lambda j: len(j["rows"]) == 2),
    "plan": (["plan", "llama-tiny", "--seq-len", "16"],
             lambda j: j["plan"]["arena_bytes"] >= j["lower_bound_bytes"] > 0),
    "partition": (["partition", "llama-tiny", "--stages", "2", "--seq-len", "16"],
                  lambda j: len(j["stages"]) == 2),
    "eval": (["eval", "llmc-tiny", "--weights", "random", "--windows", "1", "--seq-len", "16",
              "--batch", "1"], lambda j: j["windows"] == 1),
    "sim gemm": (["sim", "gemm", "--m", "16", "--n", "16", "--k", "16", "--dram-gbps", "inf"],
                 lambda j: j["hardware"]["dram_gbps"] == "inf" and j["cycles"] > 0),
}


@pytest.mark.parametrize("case", CASES)
def test_json_is_all_of_stdout(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, check = CASES[case]
    assert check(_json(capsys, *argv, "--json"))


def test_compile_and_run_json(artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    j = _json(capsys, "compile", "llama-tiny", "--target", "a100", "-o", str(artifact),
              "--weights", "random", "--seq-len", "16", "--json")
    assert j["out_dir"] == str(artifact) and j["prefill"]["flops"] > 0
    assert {"prefill.export_s", "decode.export_s"} <= set(j["timings_s"])
    j = _json(capsys, "run", str(artifact), "--prompt", "ab", "--gen-tokens", "3", "--json")
    assert j["prompt"] == "ab" and len(j["tokens"]) == 3 and j["prompt_tokens"] == [97, 98]
    assert j["target"] == "a100" and j["timings_s"]["total_s"] > 0
    assert capsys.readouterr().err == ""  # the summary line is in the JSON
