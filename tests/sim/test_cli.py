"""`llmc sim gemm`: text and JSON output, errors as UsageError / exit code 2."""

from __future__ import annotations

import argparse
import json

import pytest

from llmc.errors import UsageError
from llmc.sim import ArraySpec, compute_cycles
from llmc.sim.cli import register


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
