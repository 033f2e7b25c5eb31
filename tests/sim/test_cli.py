"""`llmc sim gemm`: text and JSON output, errors as UsageError / exit code 2."""

from __future__ import annotations

import argparse
import json

import pytest

from llmc.cli.sim import register
from llmc.errors import UsageError
from llmc.sim import ArraySpec, compute_cycles


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llmc")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_json_output(capsys):
    rc = run(["sim", "gemm", "--m", "100", "--n", "50", "--k", "300", "--array", "32x32",
              "--dataflow", "ws", "--dram-gbps", "inf", "--dram-latency-ns", "0", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("cycles", "compute_cycles", "stall_cycles", "utilization", "energy_pj",
                "energy_breakdown_pj"):
        assert key in out
    assert out["cycles"] == out["compute_cycles"] == 3879
    assert out["stall_cycles"] == 0
    assert out["hardware"]["dram_gbps"] == "inf"


def test_text_output_and_trace(capsys, tmp_path):
    trace = tmp_path / "t.json"
    rc = run(["sim", "gemm", "--m", "64", "--n", "64", "--k", "64", "--array", "16x16",
              "--sram", "512", "--dram-gbps", "25", "--trace", str(trace)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "cycles" in text and "energy" in text and "utilization" in text
    assert f"compute      {compute_cycles(64, 64, 64, ArraySpec(16, 16)):,}" in text
    assert json.loads(trace.read_text())["traceEvents"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--m", "0", "--n", "4", "--k", "4"], "positive integer"),
    (["--m", "4", "--n", "-4", "--k", "4"], "positive integer"),
    (["--m", "4", "--n", "4", "--k", "4", "--dataflow", "rs"], "unknown dataflow"),
    (["--m", "4", "--n", "4", "--k", "4", "--array", "128x128", "--sram", "32"], "SRAM"),
    (["--m", "4", "--n", "4", "--k", "4", "--array", "big"], "RxC"),
    (["--m", "4", "--n", "4", "--k", "4", "--dram-gbps", "0"], "bandwidth"),
    (["--m", "4", "--n", "4", "--k", "4", "--node", "12"], "known nodes"),
])
def test_bad_input_is_a_usage_error(extra, message):
    with pytest.raises(UsageError, match=message):
        run(["sim", "gemm", *extra])


def test_top_level_cli_exit_code(capsys):
    from llmc.cli import main

    assert main(["sim", "gemm", "--m", "0", "--n", "4", "--k", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmc: error:") and err.count("\n") == 1


def test_the_target_device_is_the_hardware(capsys):
    """Without flags the npu target's device file is simulated, and the output
    says so; flags are overrides of its figures, and the output lists them."""
    assert run(["sim", "gemm", "--m", "64", "--n", "64", "--k", "64", "--json"]) == 0
    hw = json.loads(capsys.readouterr().out)["hardware"]
    assert (hw["target"], hw["device"], hw["overrides"]) == ("npu", "edge-npu", [])
    assert (hw["array"], hw["dataflow"], hw["sram_kb"], hw["dram_gbps"], hw["node_nm"]) == (
        "128x128", "os", 8192.0, 68.3, 5)
    assert run(["sim", "gemm", "--m", "64", "--n", "64", "--k", "64", "--array", "32x32",
                "--dram-gbps", "400"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("GEMM 64x64x64 on edge-npu: 32x32 os int8->int32 array")
    assert "overrides: array 32x32 os 8/32-bit, dram_gbps 400" in first
    assert first.endswith("(target npu)")


def test_a_device_file_path_is_a_target(capsys, tmp_path):
    from llmc.hw.database import DEVICES_DIR

    text = (DEVICES_DIR / "spinnaker2.toml").read_text().replace(
        'name = "spinnaker2"', 'name = "my-chip"')
    path = tmp_path / "my-chip.toml"
    path.write_text(text)
    assert run(["sim", "gemm", "--m", "16", "--n", "4", "--k", "8", "--target", str(path),
                "--json"]) == 0
    hw = json.loads(capsys.readouterr().out)["hardware"]
    assert (hw["device"], hw["array"], hw["array_count"], hw["clock_ghz"]) == (
        "my-chip", "16x4", 152, 0.3)


@pytest.mark.parametrize("target", ["h100", "hnlpu"])
def test_a_device_without_an_array_asks_for_one(capsys, target):
    from llmc.cli import main

    assert main(["sim", "gemm", "--m", "4", "--n", "4", "--k", "4", "--target", target]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks what the simulator needs: [array]" in err
    assert "--array RxC, e.g. --array 128x128" in err
