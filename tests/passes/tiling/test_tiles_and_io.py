"""Tile sizes from on-chip memory, the --attention spec, golden IR text, and
FlashAttention's IO complexity read from the op registry."""

from __future__ import annotations

import pytest

from llmc.errors import UsageError
from llmc.hw import get_device
from llmc.hw.targets import TARGETS
from llmc.ir import dtypes
from llmc.ir.cost import graph_cost
from llmc.ir.ops.tiled import naive_attention_cost
from llmc.ir.text import parse_graph, print_graph
from llmc.passes.manager import run_pipeline
from llmc.passes.tiling import (
    OnChip,
    apply_attention,
    choose_tiles,
    fa1_rule,
    on_chip,
    parse_attention_spec,
    tile_attention,
)

from .attn_graphs import attention_graph


def test_fa1_starting_rule() -> None:
    # M = 100 KiB of f16 = 51,200 elements, d = 64: Bc = ceil(51200 / 256) = 200, Br = 64
    assert fa1_rule(100 * 1024, 64, 2) == (64, 200)
    # small memory: Br = Bc when Bc < d
    assert fa1_rule(8 * 1024, 64, 4) == (8, 8)


@pytest.mark.parametrize("target,d,elem,want", [
    # H100: 227 KiB per block; FA1 gives Bc = 227 at d = 128 (bf16) -> power of two 128;
    # Br = d = 128 = 8 warps x 16 rows (FlashAttention-2/3 also run 128 x 128 at d = 128)
    ("h100", 128, 2, (128, 128, 8)),
    ("h100", 64, 2, (64, 256, 4)),
    ("a100", 64, 4, (64, 128, 4)),
    # SpiNNaker 2: 96 KiB, FA1 gives Bc = 96 at d = 128 f16; the working set with the
    # f32 score tile overflows, so Bc shrinks to the largest multiple of 4 that fits
    ("spinnaker2", 128, 2, (96, 52, 0)),
])
def test_target_tiles(target: str, d: int, elem: int, want: tuple[int, int, int]) -> None:
    t = choose_tiles(on_chip(target), d, d, elem, 4096, 4096)
    assert (t.block_q, t.block_k, t.warps) == want
    assert t.footprint_bytes <= on_chip(target).memory_bytes


def test_every_target_has_an_on_chip_figure_with_a_source() -> None:
    for t in TARGETS.values():
        chip = on_chip(t.name)
        dev = get_device(t.name)
        assert chip.name == t.device and chip.source
        assert chip.memory_bytes == dev.scratchpad.capacity_bytes
        assert chip.align == dev.tiling.align and chip.pow2 == dev.tiling.pow2


def test_on_chip_reads_the_device_file() -> None:
    """One edge NPU: tiling uses the 8 MiB scratchpad the cost model and the
    simulator read, and tiles of its 128-wide array (was a separate 1 MiB,
    16-aligned table entry); GPUs keep their tuning-guide figures."""
    npu = on_chip("npu")
    assert npu.memory_bytes == get_device("npu").level("sram").capacity_bytes == 8 * 2 ** 20
    assert npu.align == get_device("npu").array.spec.rows == 128
    assert on_chip("a100").memory_bytes == 163 * 1024
    assert on_chip("h100").memory_bytes == on_chip("h200").memory_bytes == 227 * 1024
    assert on_chip("spinnaker2").memory_bytes == 96 * 1024
    assert on_chip("hnlpu").memory_bytes == 320_000_000
    t = choose_tiles(npu, 128, 128, 1, 4096, 4096)
    assert t.block_q % 128 == 0 and t.block_k % 128 == 0


def test_tiles_never_exceed_the_sequence() -> None:
    t = choose_tiles(on_chip("hnlpu"), 64, 64, 2, 1, 300)
    assert (t.block_q, t.block_k) == (1, 300)
    t = choose_tiles(on_chip("h100"), 64, 64, 2, 1, 300)  # decode: one 16-row MMA tile
    assert (t.block_q, t.block_k) == (16, 256)


def test_tiles_that_do_not_fit_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="need .* bytes on chip; spinnaker2 has"):
        choose_tiles(on_chip("spinnaker2"), 128, 128, 2, 512, 512, explicit=(128, 128))
    with pytest.raises(UsageError, match="on chip"):
        choose_tiles(OnChip("tiny", 4096, align=16), 256, 256, 2, 512, 512)
    with pytest.raises(UsageError, match="multiples of 16"):
        choose_tiles(on_chip("h100"), 64, 64, 2, 512, 512, explicit=(20, 64))
    with pytest.raises(UsageError, match="exceeds h100-sxm5's 128 rows"):
        choose_tiles(on_chip("h100"), 16, 16, 2, 512, 512, explicit=(256, 64))
    with pytest.raises(UsageError, match="unknown device or target 'tpu-v9'"):
        on_chip("tpu-v9")
    g = attention_graph(1, 2, 2, 64, 64, 128, True, dtype=dtypes.f32)
    with pytest.raises(UsageError, match="spinnaker2"):
        apply_attention(g, "flash:96x96", "spinnaker2")
    with pytest.raises(UsageError, match="needs a target"):
        apply_attention(g, "flash")


@pytest.mark.parametrize("spec", ["", "stream", "stream:4", "stream:4+0", "block:8", "block:0/2",
                                  "flash:0x8", "flash:64", "tile", "stream:1+2,window:3",
                                  "window:-1"])
def test_bad_attention_specs(spec: str) -> None:
    with pytest.raises(UsageError, match="--attention"):
        parse_attention_spec(spec)


def test_attention_spec_items() -> None:
    s = parse_attention_spec("stream:4+1024,block:64/8,flash:64x128")
    assert s.attrs() == {"window": 1024, "sinks": 4, "block_size": 64, "block_topk": 8}
    assert s.tile and s.tiles == (64, 128)
    assert parse_attention_spec("window:16").attrs() == {"window": 16}
    assert parse_attention_spec("dense").attrs() == {}


BEFORE = """
graph @attn {
  %q = input() : f32[1,4,1,8]
  %k = input() : f32[1,2,20,8]
  %v = input() : f32[1,2,20,8]
  %mask = input() : bool[1,20]
  %attn = attention(%q, %k, %v, %mask) {causal=false, scale=0.25, sinks=1, window=4} : f32[1,4,1,8]
  return %attn
}
"""

AFTER = """
graph @attn {
  %q = input() : f32[1,4,1,8]
  %k = input() : f32[1,2,20,8]
  %v = input() : f32[1,2,20,8]
  %mask = input() : bool[1,20]
  %attn_state:3 = flash_init(%q, %v) : f32[1,4,1,8], f32[1,4,1], f32[1,4,1]
  %attn_k0 = slice(%k) {dim=2, end=16, start=0, step=1} : f32[1,2,16,8]
  %attn_v0 = slice(%v) {dim=2, end=16, start=0, step=1} : f32[1,2,16,8]
  %attn_t0:3 = flash_step(%q, %attn_k0, %attn_v0, %attn_state, %attn_state#1, %attn_state#2, %mask) {block_q=16, causal=false, key_len=20, key_start=0, scale=0.25, sinks=1, window=4} : f32[1,4,1,8], f32[1,4,1], f32[1,4,1]
  %attn_k1 = slice(%k) {dim=2, end=20, start=16, step=1} : f32[1,2,4,8]
  %attn_v1 = slice(%v) {dim=2, end=20, start=16, step=1} : f32[1,2,4,8]
  %attn_t1:3 = flash_step(%q, %attn_k1, %attn_v1, %attn_t0, %attn_t0#1, %attn_t0#2, %mask) {block_q=16, causal=false, key_len=20, key_start=16, scale=0.25, sinks=1, window=4} : f32[1,4,1,8], f32[1,4,1], f32[1,4,1]
  return %attn_t1
}
"""


def test_golden_tiled_decode_attention() -> None:
    # 3 KiB of f32 at d = 8: M = 768 elements, FA1 gives Bc = 24 -> 16 (a power of two
    # and a multiple of 16), Br = min(24, 8) -> 16 (one warp's 16 rows; the query is 1 row)
    chip = OnChip("test-gpu", 3 * 1024, 16, True, 128, 16, "test", False)
    got = tile_attention(parse_graph(BEFORE), chip)
    assert print_graph(got) == print_graph(parse_graph(AFTER))


def test_registered_tiling_pass_runs_in_a_pipeline() -> None:
    g = attention_graph(1, 4, 2, 40, 40, 16, True)
    out = run_pipeline(g, ["tile-attention:h100-sxm5", "verify"])
    assert [n.op for n in out.nodes].count("flash_step") == 1  # 40 keys fit one 64-key tile


# ---- IO complexity (FlashAttention Theorem 2) -----------------------------------


def _hbm_bytes(n: int, d: int, memory_bytes: int) -> tuple[int, int]:
    """(tiled, naive) HBM bytes of one non-causal f16 head of length n."""
    g = attention_graph(1, 1, 1, n, n, d, False, dtype=dtypes.f16)
    tiled = tile_attention(g, OnChip("sram", memory_bytes))
    return graph_cost(tiled).bytes, naive_attention_cost(g.outputs[0].node).bytes


@pytest.mark.parametrize("memory_kib", [32, 128, 512])
@pytest.mark.parametrize("n", [1024, 4096, 16384])
def test_hbm_bytes_follow_the_io_analysis(n: int, memory_kib: int) -> None:
    d, elem = 64, 2
    m = memory_kib * 1024 // elem                       # on-chip memory in elements
    tiled, naive = _hbm_bytes(n, d, memory_kib * 1024)
    # standard attention: Theta(N d + N^2); here exactly 4 N d + 4 N^2 elements
    assert naive == elem * (4 * n * d + 4 * n * n)
    # FlashAttention: Theta(N^2 d^2 / M) (+ the N d of reading Q, K, V once)
    ratio = tiled / (elem * (n * n * d * d / m + n * d))
    assert 4 < ratio < 40, ratio


def test_tiled_bytes_scale_as_n_squared_over_m() -> None:
    d = 64
    t1, n1 = _hbm_bytes(4096, d, 64 * 1024)
    t2, n2 = _hbm_bytes(16384, d, 64 * 1024)
    assert 14 < t2 / t1 < 18                            # N x4 -> ~16x (N^2 term)
    assert 15 < n2 / n1 < 17
    t3, _ = _hbm_bytes(16384, d, 256 * 1024)
    assert 3 < t2 / t3 < 5                              # M x4 -> ~1/4
    assert t3 < t2 < n2                                 # and both below standard attention


def test_tiled_hbm_bytes_below_naive_on_every_target() -> None:
    # Llama-2-7B-like head shapes at 2K, causal, bf16: the gain grows with M / d^2
    g = attention_graph(1, 32, 8, 2048, 2048, 128, True, dtype=dtypes.bf16)
    naive = naive_attention_cost(g.outputs[0].node).bytes
    most = {"a100": 0.5, "h100": 0.5, "npu": 0.15, "hnlpu": 0.1, "spinnaker2": 1.0}
    for target, bound in most.items():
        assert graph_cost(tile_attention(g, target)).bytes < bound * naive, target
