"""Shape-only compiles of real-sized models: no weights allocated, and
parameter and FLOP counts that agree with the closed-form transformer
formulas (Kaplan et al. 2020, sec. 2.1; attention as FlashAttention counts it)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from llmc.frontend.zoo.config import ModelConfig, get_config


def closed_form_params(c: ModelConfig) -> tuple[int, int]:
    """(total, active) parameters."""
    attn = c.hidden * c.q_dim + 2 * c.hidden * c.kv_dim + c.q_dim * c.hidden
    if c.attn_bias:
        attn += c.q_dim + 2 * c.kv_dim + c.hidden
    norms = 2 * c.hidden
    if c.family == "moe":
        experts = c.n_experts * 3 * c.hidden * c.ffn_hidden
        ffn_total = experts + c.n_experts * c.hidden
        ffn_active = c.top_k * 3 * c.hidden * c.ffn_hidden + c.n_experts * c.hidden
    else:
        ffn_total = ffn_active = 3 * c.hidden * c.ffn_hidden
    embed = c.vocab_size * c.hidden * (1 if c.tie_embeddings else 2)
    total = c.n_layers * (attn + norms + ffn_total) + c.hidden + embed
    active = c.n_layers * (attn + norms + ffn_active) + c.hidden + embed
    return total, active


def closed_form_flops(c: ModelConfig, tokens: int, keys_seen: int) -> float:
    """Forward FLOPs: 2 per weight per token for every matmul weight (the
    input embedding is a lookup), plus attention's 4·d per (query, key) pair."""
    total, active = closed_form_params(c)
    matmul_weights = active - c.vocab_size * c.hidden * (0 if c.tie_embeddings else 1)
    if c.tie_embeddings:
        matmul_weights = active
    matmul_weights -= c.n_layers * 2 * c.hidden + c.hidden  # norms are not matmuls
    return 2 * tokens * matmul_weights + 4 * c.head_dim * c.n_heads * c.n_layers * keys_seen


def compile_report(tmp_path, name: str, seq_len: int) -> tuple[dict, float]:  # noqa: ANN001
    out = tmp_path / name
    code = ("import resource, sys; from llmc.cli import main; rc = main(sys.argv[1:]); "
            "print('RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "compile", name, "--target", "a100",
                           "-o", str(out), "--seq-len", str(seq_len)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rss = float(proc.stdout.split("RSS_MB")[1])
    return json.loads((out / "report.json").read_text()), rss


@pytest.mark.slow
@pytest.mark.parametrize("name, seq_len", [("llama-2-7b", 2048), ("yi-34b", 2048),
                                           ("gpt-oss-120b", 1024)])
def test_shape_only_compile_matches_closed_forms(tmp_path, name: str, seq_len: int) -> None:
    cfg = get_config(name)
    report, rss_mb = compile_report(tmp_path, name, seq_len)
    assert rss_mb < 2048, f"peak RSS {rss_mb:.0f} MB: weights were allocated?"
    total, active = closed_form_params(cfg)
    assert report["params_total"] == total
    assert report["params_active"] == pytest.approx(active, rel=1e-6)
    prefill_pairs = seq_len * (seq_len + 1) // 2
    want = closed_form_flops(cfg, seq_len, prefill_pairs)
    assert report["prefill"]["flops"] == pytest.approx(want, rel=0.01)
    assert report["decode"]["flops"] == pytest.approx(closed_form_flops(cfg, 1, seq_len), rel=0.01)


def test_published_sizes() -> None:
    # Published parameter counts: Llama-2-7B 6.74 B, Yi-34B 34.4 B,
    # gpt-oss-120b 116.83 B total / 5.13 B active, the latter without the
    # input embedding table (OpenAI gpt-oss model card, table 1).
    assert closed_form_params(get_config("llama-2-7b"))[0] == pytest.approx(6.74e9, rel=0.01)
    assert closed_form_params(get_config("yi-34b"))[0] == pytest.approx(34.4e9, rel=0.01)
    total, active = closed_form_params(get_config("gpt-oss-120b"))
    assert total == pytest.approx(116.8e9, rel=0.01)
    cfg = get_config("gpt-oss-120b")
    assert active - cfg.vocab_size * cfg.hidden == pytest.approx(5.13e9, rel=0.01)


def test_peak_rss_measure_is_in_megabytes() -> None:
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 < 4096
