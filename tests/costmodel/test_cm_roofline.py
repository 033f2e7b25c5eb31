"""Each bound against its hand-computed closed form: GEMM, causal attention,
GQA KV size, MoE active experts, tensor parallelism, pipelined hardwired units."""

from __future__ import annotations

import math

import pytest

from llmc.costmodel import formulas as F
from llmc.costmodel.precision import parse_quant
from llmc.costmodel.render_json import group
from llmc.costmodel.roofline import (
    Placement,
    allreduce_record,
    place,
    shard,
    time_comm,
    time_op,
)
from llmc.costmodel.synth import synth_workload
from llmc.costmodel.workload import records
from llmc.frontend.zoo.config import get_config
from llmc.hw.database import get_device
from llmc.ir.dtypes import bf16
from llmc.ir.graph import Builder, Graph
from llmc.ir.ops import get_op
from llmc.ir.types import TensorType

A100 = get_device("a100")
HBM = A100.main


def one_op(op: str, inputs: list[tuple[str, tuple[int, ...], bool]], **attrs: object):
    """The record of a single-op graph; inputs: (name, shape, is_weight)."""
    g = Graph("t")
    b = Builder(g)
    vals = [b.param(n, TensorType(s, bf16), None) if w else b.input(n, TensorType(s, bf16))
            for n, s, w in inputs]
    b.add(op, vals, attrs)
    return records(g)[0]


def test_gemm_closed_form() -> None:
    M = N = K = 4096
    rec = one_op("linear", [("x", (M, K), False), ("w", (N, K), True)])
    assert rec.flops == 2 * M * N * K
    assert rec.weight_bytes == N * K * 2
    assert rec.act_bytes == (M * K + M * N) * 2 and rec.kv_bytes == 0
    t = time_op(A100, rec, Placement(HBM, HBM))
    compute = 2 * M * N * K / 312e12
    memory = (M * K + N * K) * 2 / 2.039e12      # weights + x from HBM...
    assert t.compute_s == pytest.approx(compute)
    assert t.bound == "compute" and t.roofline_s == pytest.approx(compute)
    assert t.intensity == pytest.approx(2 * M * N * K / ((M * K + N * K + M * N) * 2))
    assert t.memory_s >= memory - 1e-12           # ...output may sit in L2 or HBM
    # expected time: datasheet peak divided by the measured efficiency, plus a kernel launch
    assert t.time_s == pytest.approx(compute / 0.76 + 3e-6)


def test_gemv_is_memory_bound() -> None:
    N = K = 4096
    rec = one_op("linear", [("x", (1, K), False), ("w", (N, K), True)])
    t = time_op(A100, rec, Placement(HBM, HBM))
    assert t.bound == "memory"
    assert t.level_s["hbm"] == pytest.approx(N * K * 2 / 2.039e12)    # the weights
    assert t.level_s["l2"] == pytest.approx((K + N) * 2 / 7.22e12)   # x and y fit in L2
    assert t.time_s == pytest.approx(N * K * 2 / 2.039e12 / 0.90 + 3e-6)


def test_causal_attention_closed_form() -> None:
    B, H, G, T, D = 2, 32, 8, 1024, 128
    rec = one_op("attention", [("q", (B, H, T, D), False), ("k", (B, G, T, D), False),
                               ("v", (B, G, T, D), False)], causal=True, scale=0.1)
    pairs = T * (T + 1) // 2                                       # bottom-right causal mask
    assert rec.flops == B * H * pairs * (4 * D + 5)
    assert rec.bytes == (2 * B * H * T * D + 2 * B * G * T * D) * 2   # q, out; k, v (GQA)
    dense = one_op("attention", [("q", (B, H, T, D), False), ("k", (B, G, T, D), False),
                                 ("v", (B, G, T, D), False)], causal=False, scale=0.1)
    assert dense.flops == B * H * T * T * (4 * D + 5)
    t = time_op(A100, rec, Placement(HBM, HBM))
    assert t.compute_s == pytest.approx(rec.flops / 312e12)
    assert t.time_s == pytest.approx(rec.flops / 312e12 / 0.73 + 3e-6)   # FA2's 73%


def test_decode_attention_reads_the_kv_cache() -> None:
    B, H, G, S, D = 1, 32, 8, 4096, 128
    rec = one_op("attention", [("q", (B, H, 1, D), False), ("k_cache", (B, G, S, D), False),
                               ("v_cache", (B, G, S, D), False)], causal=False, scale=0.1)
    assert rec.kv_bytes == 2 * B * G * S * D * 2
    assert rec.flops == B * H * S * (4 * D + 5)


def test_gqa_kv_size() -> None:
    assert F.kv_bytes_per_token(get_config("llama-2-7b"), 16) == 2 * 32 * 32 * 128 * 2
    assert F.kv_bytes_per_token(get_config("llama-3-8b"), 16) == 2 * 32 * 8 * 128 * 2
    assert F.kv_bytes_per_token(get_config("yi-34b"), 16) == 245_760
    assert F.kv_bytes_per_token(get_config("yi-34b"), 4.25) == 2 * 60 * 8 * 128 * 4.25 / 8
    w = synth_workload(get_config("llama-3-8b"), "decode", parse_quant("bf16"), batch=3,
                       tokens=1, context=1000)
    attn = [r for r in w.records if r.op == "attention"][0]
    assert attn.kv_bytes * attn.count == 3 * 1000 * 2 * 32 * 8 * 128 * 2


def test_moe_counts_only_routed_experts() -> None:
    N, d, E, f, k = 16, 64, 8, 96, 2
    g = Graph("moe")
    b = Builder(g)
    t = lambda *s: TensorType(s, bf16)  # noqa: E731
    x = b.input("x", t(N, d))
    ws = [b.param(n, t(*s), None) for n, s in
          (("router", (E, d)), ("wg", (E, f, d)), ("wu", (E, f, d)), ("wd", (E, d, f)))]
    b.add("moe_ffn", [x, *ws], {"top_k": k})
    rec = records(g)[0]
    assert rec.flops == 2 * N * d * E + N * k * (3 * 2 * d * f + 4 * f + d)
    hit = E * (1 - (1 - k / E) ** N)                     # expected distinct experts hit
    assert hit == pytest.approx(7.92, abs=0.01)
    assert rec.weight_bytes == pytest.approx(E * d * 2 + hit / E * 3 * E * f * d * 2, abs=1)
    one = rec.weight_bytes
    g1 = Graph("moe1")
    b1 = Builder(g1)
    x1 = b1.input("x", t(1, d))
    ws1 = [b1.param(n, t(*s), None) for n, s in
           (("router", (E, d)), ("wg", (E, f, d)), ("wu", (E, f, d)), ("wd", (E, d, f)))]
    b1.add("moe_ffn", [x1, *ws1], {"top_k": k})
    r1 = records(g1)[0]                                  # one token reads top_k experts
    assert r1.weight_bytes == pytest.approx(E * d * 2 + k * 3 * f * d * 2, abs=1)
    assert r1.weight_bytes < one
    cfg = get_config("mixtral-8x7b")
    w = synth_workload(cfg, "decode", parse_quant("bf16"), batch=1, tokens=1, context=128)
    assert w.params_active == pytest.approx(12_879_925_248)


def test_tensor_parallel_shards_and_all_reduce() -> None:
    T, h, f = 8, 4096, 11008
    g = Graph("mlp")
    b = Builder(g)
    x = b.input("x", TensorType((T, h), bf16))
    up = b.add("linear", [x, b.param("up", TensorType((f, h), bf16), None)],
               loc="layers.0.ffn.up").out()
    b.add("linear", [up, b.param("down", TensorType((h, f), bf16), None)],
          loc="layers.0.ffn.down")
    col, row = (shard(r, 2, 0.5) for r in records(g, fuse=False))
    assert col.flops == 2 * T * h * f / 2 and col.weight_bytes == f * h * 2 / 2
    assert col.act_bytes == (T * h + T * f / 2) * 2        # whole input, half the output
    assert row.flops == 2 * T * f * h / 2 and row.weight_bytes == h * f * 2 / 2
    assert row.act_bytes == (T * f / 2 + T * h) * 2        # half the input, whole output
    comm = allreduce_record(n_layers=32, batch=1, tokens=1, hidden=4096, act_bits=16)
    assert comm.count == 64 and comm.act_bytes == 4096 * 2
    t = time_comm(A100, comm, tp=4)
    moved = 2 * 3 / 4 * 4096 * 2                          # ring: 2(N-1)/N of the payload
    assert t.time_s == pytest.approx(moved / 300e9 + 2 * 3 * 2e-6)


def test_pipelined_hardwired_device_reaches_its_paper_figures() -> None:
    """HNLPU (Liu et al. 2025): gpt-oss-120b at 216 sequences in flight makes
    ~249,960 tokens/s and ~36 tokens/J; one sequence waits a full pipeline."""
    from llmc.costmodel.report import build_report

    cfg = get_config("gpt-oss-120b")
    r = build_report(None, None, cfg, "hnlpu", batch=216, prompt=256, output=1, context=256)
    tps = 216 / r.decode.time_s
    assert tps == pytest.approx(249_960, rel=0.02)
    assert 216 / r.decode.energy_j == pytest.approx(36.2, rel=0.15)
    assert r.decode.placement.weights.hardwired
    one = build_report(None, None, cfg, "hnlpu", batch=1, prompt=256, output=1, context=256)
    assert one.decode.time_s == pytest.approx(216 / 249_960, rel=0.05)


def test_energy_is_flops_bytes_and_idle_power() -> None:
    rec = one_op("linear", [("x", (4096, 4096), False), ("w", (4096, 4096), True)])
    t = time_op(A100, rec, Placement(HBM, HBM))
    dyn = (rec.flops * 1.09 + sum(b * A100.level(n).energy_pj_per_byte
                                  for n, b in t.bytes_by_level.items())) * 1e-12
    assert t.dynamic_j == pytest.approx(dyn)
    assert math.isclose(A100.compute["bf16"].energy_pj_per_flop, (400 - 60) / 312, rel_tol=0.01)


def test_ops_the_passes_leave() -> None:
    """Weight-only int8 and 2:4-compressed linears are costed as they stand."""
    from llmc.ir.dtypes import i8

    M, N, K, g = 16, 256, 512, 128
    gr = Graph("wq")
    b = Builder(gr)
    x = b.input("x", TensorType((M, K), bf16))
    w = b.param("w", TensorType((N, K), i8), None)
    s = b.param("s", TensorType((N, K // g), bf16), None)
    b.add("wq_linear", [x, w, s], {"group": g})
    rec = records(gr)[0]
    assert rec.compute == "bf16" and rec.weight_operand          # dequantized in the kernel
    assert rec.weight_bytes == N * K + N * (K // g) * 2
    gs = sparse_24_graph(M, N, K)
    rec = records(gs)[0]
    # counted at dense FLOPs, as a 2:4 linear is; executed on sparse tensor cores
    assert rec.sparse and rec.flops == 2 * M * N * K
    assert gs.nodes[-1].op == "sparse_linear"
    assert get_op("sparse_linear").cost(gs.nodes[-1]).flops == M * N * K  # registry: kept half
    assert rec.weight_bytes == N * K // 2 * 2 + N * K // 4 // 2   # values + 4-bit metadata
    assert rec.compute == "bf16" and rec.weight_operand
    assert group(time_op(A100, rec, place(A100, 0, 0))) == "matmul"


def test_sparse_linear_runs_at_the_2to4_peak_only_where_there_is_one() -> None:
    """A 2:4 sparse_linear takes dense FLOPs / sparse peak on an A100 (624
    TFLOP/s bf16 with sparsity) and dense FLOPs / dense peak on hardware
    without sparse units; energy counts only the executed (kept) half."""
    M, N, K = 4096, 4096, 4096
    rec = records(sparse_24_graph(M, N, K))[0]
    dense = 2 * M * N * K
    t = time_op(A100, rec, place(A100, 0, 0))
    assert t.compute_s == pytest.approx(dense / 624e12)
    bf16_pj = A100.unit(rec.compute, True).energy_pj_per_flop
    assert t.dynamic_j - sum(b * A100.level(n).energy_pj_per_byte * 1e-12
                             for n, b in t.bytes_by_level.items()) == pytest.approx(
        dense / 2 * bf16_pj * 1e-12)
    flat = get_device("npu")
    unit = flat.unit(rec.compute, True)
    assert unit.sparse_flops_per_s is None
    t2 = time_op(flat, rec, place(flat, 0, 0))
    assert t2.compute_s == pytest.approx(dense / (unit.flops_per_s * flat.occupancy(1)))


def sparse_24_graph(M: int, N: int, K: int) -> Graph:
    """x (M, K) @ a 2:4-compressed (N, K) weight, bf16."""
    from llmc.ir.dtypes import u4

    gs = Graph("sp")
    b = Builder(gs)
    x = b.input("x", TensorType((M, K), bf16))
    vals = b.param("w.values", TensorType((N, K // 2), bf16), None)
    meta = b.param("w.meta", TensorType((N, K // 4), u4), None)
    b.add("sparse_linear", [x, vals, meta], {"pattern": "2:4", "in_features": K,
                                               "density": 0.5})
    return gs


def test_tensor_parallel_activations_as_megatron_moves_them() -> None:
    """llama-2-7b prefill at TP 2, op by op: column-parallel projections read
    their whole input and write half their output, row-parallel ones the
    reverse, attention splits by heads, norms and residuals are replicated."""
    from llmc.costmodel.report import build_report

    cfg = get_config("llama-2-7b")
    T, h, f = 64, cfg.hidden, cfg.ffn_hidden
    one, two = (build_report(None, None, cfg, "a100", prompt=T, tp=n, fuse=False)
                for n in (1, 2))

    def act(r, op: str, loc: str) -> float:  # noqa: ANN001
        return next(o.rec.act_bytes for o in r.prefill.ops
                    if o.rec.op == op and o.rec.loc == loc)

    assert act(two, "linear", "layers.*.attn.q_proj") == (T * h + T * h / 2) * 2
    assert act(two, "linear", "layers.*.ffn.gate") == (T * h + T * f / 2) * 2
    assert act(two, "linear", "layers.*.ffn.down") == (T * f / 2 + T * h) * 2
    assert act(two, "linear", "layers.*.attn.o_proj") == (T * h / 2 + T * h) * 2
    assert act(two, "linear", "lm_head") == (T * h + T * cfg.vocab_size / 2) * 2
    assert act(two, "attention", "layers.*.attn") == act(one, "attention", "layers.*.attn") / 2
    assert act(two, "silu", "layers.*.ffn") == act(one, "silu", "layers.*.ffn") / 2
    assert act(two, "rms_norm", "layers.*.attn_norm") == act(one, "rms_norm",
                                                             "layers.*.attn_norm")
    assert act(two, "add", "layers.*") == act(one, "add", "layers.*")


def test_unstructured_sparsity_gets_no_speedup_on_dense_units() -> None:
    """llmc-tiny's prefill on an A100 at 50% sparsity: 2:4 runs at the sparse
    tensor cores' peak (half the dense time); unstructured (CSR) zeros give a
    dense unit nothing to skip, so its matmuls take the dense time, while its
    weight bytes are the CSR tensors'."""
    from llmc.costmodel.report import build_report
    from llmc.frontend.zoo.config import get_config
    from llmc.passes.sparsity import apply_sparsity
    from tests.conftest import traced

    g = traced("llmc-tiny", "prefill", batch=1, seq_len=64).graph
    cfg = get_config("llmc-tiny")
    dense, csr, s24 = (build_report(x, None, cfg, "a100", batch=1) for x in
                       (g, apply_sparsity(g, "0.5"), apply_sparsity(g, "2:4")))

    def matmul_s(r, op: str) -> float:  # noqa: ANN001
        return sum(o.compute_s * o.rec.count for o in r.prefill.ops if o.rec.op == op)

    assert matmul_s(csr, "sparse_linear") > 0 and matmul_s(s24, "sparse_linear") > 0
    assert matmul_s(csr, "sparse_linear") == pytest.approx(2 * matmul_s(s24, "sparse_linear"))
    assert (matmul_s(csr, "sparse_linear") + matmul_s(csr, "linear")
            == pytest.approx(matmul_s(dense, "linear")))
    assert csr.prefill.flops == pytest.approx(dense.prefill.flops)
    assert csr.prefill_w.weight_bytes != dense.prefill_w.weight_bytes     # CSR storage
