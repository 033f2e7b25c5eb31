"""`llmc report` and `llmc devices`: output, files, and errors as one line + exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.hw.database import DEVICES_DIR


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_report_summary_and_json(capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run(capsys, "report", "llama-2-7b", "--target", "a100")
    assert rc == 0
    assert "prefill" in out and "decode" in out and "concurrent requests" in out
    rc, out, _ = run(capsys, "report", "yi-34b", "--target", "a100", "--seq-len", "50000",
                     "--context", "50000", "--json")
    j = json.loads(out)
    assert j["kv_bytes_per_token"] == 245_760 and j["max_concurrent_requests"] == 1


def test_report_writes_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    rc, out, _ = run(capsys, "report", "tinyllama-1.1b", "--target", "h100", "--batch", "4",
                     "--seq-len", "512", "--gen-tokens", "32", "--quant", "fp8", "-o", str(tmp_path))
    assert rc == 0 and "wrote" in out
    names = {p.name for p in tmp_path.iterdir()}
    assert {"report.md", "report.json", "report.html", "roofline.png"} <= names
    j = json.loads((tmp_path / "report.json").read_text())
    assert j["precision"]["weight"] == "fp8" and j["batch"] == 4 and j["context"] == 544


def test_compare(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    rc, out, _ = run(capsys, "report", "gpt2", "--compare", "a100,h100,npu", "-o", str(tmp_path))
    assert rc == 0 and "| a100 | h100 | npu |" in (tmp_path / "report.md").read_text()
    # one table side by side, not three reports one after another
    lines = out.splitlines()
    assert out.count("gpt2 on") == 1 and out.count("time to first token") == 1
    head = next(line for line in lines if line.split() == ["a100", "h100", "npu"])
    row = next(line for line in lines if line.startswith("decode tokens/s"))
    assert len(row) == len(head) and len(row.split()) == 2 + 3


def test_compare_json_is_json(capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run(capsys, "report", "gpt2", "--compare", "a100,npu", "--json")
    j = json.loads(out)
    assert rc == 0 and j["table"]["targets"] == ["a100", "npu"]
    assert set(j["reports"]) == {"a100", "npu"}


def test_device_file_as_target(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    mine = tmp_path / "my-gpu.toml"
    mine.write_text((DEVICES_DIR / "h100-sxm5.toml").read_text()
                    .replace('name = "h100-sxm5"', 'name = "my-gpu"'))
    rc, out, _ = run(capsys, "report", "gpt2", "--target", str(mine))
    assert rc == 0 and "gpt2 on my-gpu" in out


def test_devices(capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run(capsys, "devices")
    assert rc == 0 and "a100-sxm4-80gb" in out and "spinnaker2" in out
    rc, out, _ = run(capsys, "devices", "--json")
    assert json.loads(out)["h100-sxm5"]["compute_flops_per_s"]["bf16"] == 989.4e12


@pytest.mark.parametrize("argv, message", [
    (["--target", "a10"], "unknown device or target 'a10'; did you mean"),
    (["--target", "a100", "--batch", "-1"], "--batch must be a positive integer"),
    (["--target", "a100", "--seq-len", "0"], "--seq-len must be a positive integer"),
    (["--target", "a100", "--tp", "3"], "does not divide llama-2-7b's 32 attention heads"),
    (["--target", "a100", "--quant", "int3"], "unknown format 'int3'"),
    (["--target", "npu", "--quant", "bf16"], "does not fit on npu"),
    (["--target", "a100", "--compare", "h100"], "one of --target"),
    ([], "one of --target"),
])
def test_errors_are_one_line(capsys: pytest.CaptureFixture, argv: list[str],
                             message: str) -> None:
    model = "yi-34b" if "npu" in argv else "llama-2-7b"
    rc, out, err = run(capsys, "report", model, *argv)
    assert rc == 2
    assert err.startswith("llmc: error: ") and err.count("\n") == 1
    assert message in err


def test_does_not_fit_says_how_much(capsys: pytest.CaptureFixture) -> None:
    rc, _, err = run(capsys, "report", "yi-34b", "--target", "a100-40gb")
    assert rc == 2 and "exceed its 42.9 GB by 26.9 GB" in err and "--tp" in err


def test_unknown_model(capsys: pytest.CaptureFixture) -> None:
    rc, _, err = run(capsys, "report", "llama-9", "--target", "a100")
    assert rc == 2 and "unknown model" in err


def test_report_unfused_shows_what_fusion_buys(capsys) -> None:  # noqa: ANN001
    import json

    from llmc.cli import main

    got = {}
    for flag in ([], ["--unfused"]):
        assert main(["report", "llama-2-7b", "--target", "a100", "--json", *flag]) == 0
        got[bool(flag)] = json.loads(capsys.readouterr().out)
    fused, unfused = got[False], got[True]
    assert fused["prefill"]["flops"] == unfused["prefill"]["flops"]
    assert fused["prefill"]["bytes"] < unfused["prefill"]["bytes"]
    assert fused["prefill"]["time_s"] < unfused["prefill"]["time_s"]
    assert fused["prefill"]["kernels"] < unfused["prefill"]["kernels"]
