"""A size that would exhaust memory or time is one line on stderr, exit 2,
nothing written, before any work: the simulator's folds, a traced step's
tokens, the cost model's 64-bit sizes, the RTL simulation's PE-cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc.cli import main
from llmc.cli.limits import MAX_BATCH, MAX_COST_TOKENS, MAX_LENGTH, MAX_TRACE_TOKENS

HUGE = str(10**8)


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> str:
    before = sorted(tmp_path.rglob("*"))
    capsys.readouterr()
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("llmc: error: ") and err.count("\n") == 1, err
    assert sorted(tmp_path.rglob("*")) == before, "nothing may be written"
    return err


def test_a_huge_gemm_is_refused_before_allocating(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    err = refused(capsys, tmp_path, "sim", "gemm", "--m", HUGE, "--n", HUGE, "--k", HUGE,
                  "--trace", str(trace))
    assert f"GEMM {HUGE}x{HUGE}x{HUGE} on a 128x128 os array" in err
    assert "610,351,562,500 folds" in err and "limit of 1.0 GiB" in err
    assert "PiB" in err  # the size it would need
    err = refused(capsys, tmp_path, "sim", "gemm", "--m", "100000", "--n", "100000", "--k",
                  "64", "--trace", str(trace))
    assert "with a trace" in err and "drop --trace" in err


def test_a_big_gemm_that_fits_still_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "gemm", "--m", "20000", "--n", "20000", "--k", "64", "--json"]) == 0


@pytest.mark.parametrize("argv", [
    ["compile", "llama-tiny", "--target", "a100", "--weights", "meta", "--batch", HUGE],
    ["show", "llama-tiny", "--weights", "random", "--batch", HUGE, "--seq-len", "8"],
    ["plan", "llama-tiny", "--batch", "65536", "--seq-len", "32"],
    ["partition", "llama-tiny", "--stages", "2", "--batch", HUGE],
    ["eval", "llmc-tiny", "--batch", "8192", "--seq-len", "256"],
])
def test_traced_tokens_are_bounded(argv: list[str], capsys: pytest.CaptureFixture[str],
                                   tmp_path: Path) -> None:
    if argv[0] in ("compile", "plan"):
        argv = [*argv, "-o", str(tmp_path / "out")]
    err = refused(capsys, tmp_path, *argv)
    assert f"over the limit of {MAX_TRACE_TOKENS:,}" in err and "tokens in one traced step" in err


def test_the_traced_limit_leaves_room(capsys: pytest.CaptureFixture[str]) -> None:
    """2**20 tokens exactly is allowed: a shape-only 7B prefill of 256 x 4096."""
    from llmc.cli.limits import check_trace

    check_trace(256, 4096)
    check_trace(MAX_TRACE_TOKENS // 128, None)   # the default seq-len is at most 128


@pytest.mark.parametrize("argv, needle", [
    (["report", "llama-2-7b", "--target", "a100", "--batch", str(10**12)],
     f"--batch 1,000,000,000,000 is over the limit of {MAX_BATCH:,}"),
    (["report", "llama-2-7b", "--target", "a100", "--seq-len", str(10**12)],
     f"--seq-len 1,000,000,000,000 is over the limit of {MAX_LENGTH:,}"),
    (["report", "llama-2-7b", "--target", "a100", "--gen-tokens", str(10**12)],
     "--gen-tokens 1,000,000,000,000 is over the limit"),
    (["report", "llama-2-7b", "--target", "a100", "--batch", str(MAX_BATCH), "--context",
      str(MAX_LENGTH)], f"over the cost model's limit of {MAX_COST_TOKENS:,}"),
    (["sweep", "--models", "llama-2-7b", "--target", "a100", "--batch", f"1,{10**12}"],
     "--batch 1,000,000,000,000 is over the limit"),
    (["sweep", "--models", "llama-2-7b", "--target", "a100", "--gen-tokens", "0"],
     "--gen-tokens must be a positive integer"),
    (["run", "no-such-artifact", "--prompt", "a", "--gen-tokens", str(10**12)],
     "--gen-tokens 1,000,000,000,000 is over the limit"),
])
def test_cost_model_and_run_sizes(argv: list[str], needle: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert needle in refused(capsys, tmp_path, *argv)


def test_the_cost_model_at_its_limits_gives_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """At the limits the 64-bit sizes do not overflow (10**12 x 2048 tokens did)."""
    import json

    for extra in (["--batch", str(MAX_BATCH), "--seq-len", str(MAX_COST_TOKENS // MAX_BATCH)],
                  ["--seq-len", str(MAX_LENGTH), "--gen-tokens", "1"]):
        assert main(["report", "gpt-oss-120b", "--target", "h200", "--tp", "2", "--json",
                     *extra]) == 0
        assert json.loads(capsys.readouterr().out)["prefill"]["flops"] > 0


def test_rtl_gemm_pe_cycles_are_bounded(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    from llmc.cli.rtl import MAX_PE_CYCLES

    err = refused(capsys, tmp_path, "rtl", "gemm", "--array", "64x64", "--m", "2048", "--n",
                  "2048", "--k", "1024", "-o", str(tmp_path / "rtl"))
    assert "GEMM 2048x2048x1024 on a 64x64 array" in err and "PE-cycles" in err
    assert f"limit of {MAX_PE_CYCLES:,}" in err
