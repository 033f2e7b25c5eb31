"""`llmc run` on llmc-tiny compiled for a100 with the gpu backend gives the
reference backend's greedy tokens: bf16, w4a16 (packed int4; GPTQ and
round-to-nearest) and a KV cache in MXINT8 (int8) or BFP12, batch 2, under
Triton's interpreter here.

A decode step of llmc-tiny (batch 2) is ~100 kernel launches, ~1.9 s of CPU
in the interpreter (a 32-token run ~60 s of CPU per artifact, measured), so
the default run checks the first 6 tokens (bf16) and 3 (w4a16, int8 KV);
the tests marked slow check all 32 of every kind (LLMC_LONG_TESTS=1: they
would take most of `make test`'s budget)."""

from __future__ import annotations

import os

import pytest

from llmc.cli import main

pytest.importorskip("triton")

from tests.backends.gpu.helpers import PROMPT, compiled  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("gpu-run"))


def check_tokens(root: str, quant: str | None, n: int, capsys) -> None:  # noqa: ANN001
    art, want = compiled(root, quant)
    assert main(["run", str(art), "--prompt", PROMPT, "--max-new-tokens", str(n),
                 "--json"]) == 0
    import json

    got = json.loads(capsys.readouterr().out)
    assert got["backend"] == "gpu" and got["target"] == "a100"
    assert got["tokens"] == want[:n]


@pytest.mark.parametrize(("quant", "n"), [(None, 6), ("w4a16-rtn", 3), ("kv-mxint8", 3)])
def test_first_tokens_match_the_reference_backend(root, quant, n, capsys):  # noqa: ANN001
    check_tokens(root, quant, n, capsys)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("LLMC_LONG_TESTS"),
                    reason="~70 s of CPU per artifact in the interpreter; LLMC_LONG_TESTS=1 runs it")
@pytest.mark.parametrize("quant", [None, "w4a16", "w4a16-rtn", "kv-mxint8", "kv-bfp12"])
def test_32_tokens_match_the_reference_backend(root, quant, capsys):  # noqa: ANN001
    check_tokens(root, quant, 32, capsys)


def test_the_artifact_holds_readable_kernels_and_the_program(root):  # noqa: ANN001
    import json

    art, _ = compiled(root, "w4a16-rtn")
    program = json.loads((art / "program.json").read_text())
    assert program["target"] == "a100" and program["act_dtype"] == "bf16"
    assert not program["unsupported"]
    kernels = sorted(p.name for p in (art / "kernels").iterdir())
    assert kernels == ["attention.py", "decode_attention.py", "embedding.py", "gemm.py",
                       "kv_cache.py", "rms_norm.py", "w4a16_gemv.cu"]
    attention = (art / "kernels/attention.py").read_text()
    assert "online softmax" in attention and "for k0 in range(lo, hi, BLOCK_K):" in attention
    gemm = (art / "kernels/gemm.py").read_text()
    assert "def gemm_w4_silu_mul(" in gemm and "def gemm_w4_add(" in gemm
    steps = program["phases"]["decode"]["steps"]
    kinds = {s.get("kernel", s["op"]) for s in steps}
    assert {"gemm_w4", "gemm_w4_add", "gemm_w4_silu_mul", "gemm_w4_rope", "decode_attention",
            "kv_write", "rms_norm", "embedding"} <= kinds
    # one kernel per fusion group (q and k projections carry RoPE in their epilogue)
    groups = [s["group"] for s in steps if "group" in s and s["op"] not in ("view", "host")]
    assert len(groups) == len(set(groups))
