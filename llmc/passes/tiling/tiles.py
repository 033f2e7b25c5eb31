"""FlashAttention tile sizes from a target's on-chip memory.

Starting rule (FlashAttention, Dao et al. 2022, Algorithm 1): with M elements
of on-chip memory and head dim d, Bc = ceil(M / 4d) keys and
Br = min(Bc, d) queries per tile. Then each target's constraints:

  * a tile is never longer than the sequence it cuts (rounded up to `align`);
  * `align`: tiles are multiples of it (GPU: 16, one mma.sync m16n8k16
    fragment; NPU: its array edge), and GPUs use powers of two;
  * `max_block_q`: GPU query tiles are split over warps, 16 rows per warp,
    at most 8 warps (FlashAttention-2 runs 4 or 8 warps per block);
  * the working set must fit: Q_i, O_i (Br x d), K_j, V_j (Bc x d) at the
    element size, l_i, m_i in f32, and, where scores live in the same memory
    (not on GPUs, whose S_ij and P_ij stay in registers, FlashAttention-2
    section 3), the score tile S_ij (Br x Bc) in f32. If FA1's rule
    overfills, Bc shrinks to the largest size that fits, then Br is halved;
    if the smallest aligned tile does not fit, that is a UsageError.

The on-chip sizes are per unit that runs one tile loop (an SM's shared
memory, an NPU's scratchpad, HNLPU's attention buffer), each with its source.
When the cost model's device database lands, `OnChip` can be read from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmc.errors import UsageError

KIB = 1024


@dataclass(frozen=True)
class OnChip:
    """On-chip memory one tile loop may use, and the target's tiling rules."""

    name: str
    memory_bytes: int
    align: int = 1               # tile sizes are multiples of this
    pow2: bool = False           # tile sizes are powers of two (GPU kernels)
    max_block_q: int | None = None  # query-tile rows (GPU: 16 rows x at most 8 warps)
    rows_per_warp: int = 0       # GPU: rows of Br one warp owns (0: not a GPU)
    source: str = ""
    scores_on_chip: bool = True  # S_ij takes room in this memory (GPUs: registers)


# Keyed by the cost model's device names (llmc/targets.py `Target.device`).
ON_CHIP: dict[str, OnChip] = {c.name: c for c in [
    OnChip("a100-sxm4-80gb", 163 * KIB, 16, True, 128, 16,
           "NVIDIA Ampere Tuning Guide: 164 KB shared memory per SM, up to 163 KB "
           "per thread block", False),
    OnChip("a100-sxm4-40gb", 163 * KIB, 16, True, 128, 16,
           "NVIDIA Ampere Tuning Guide (same SM as the 80 GB part)", False),
    OnChip("h100-sxm5", 227 * KIB, 16, True, 128, 16,
           "NVIDIA Hopper Tuning Guide: 228 KB shared memory per SM, up to 227 KB "
           "per thread block", False),
    OnChip("h200-sxm", 227 * KIB, 16, True, 128, 16,
           "NVIDIA Hopper Tuning Guide (H200 uses the H100's SM)", False),
    OnChip("edge-npu", 1024 * KIB, 16, False, None, 0,
           "assumed: 1 MiB scratchpad, 16-wide array (issue's example; replace with "
           "the cost model's edge-npu entry)"),
    OnChip("hnlpu", 320 * 1000 * 1000, 1, False, None, 0,
           "HNLPU (Liu et al., arXiv 2508.16151): attention buffer 320 MB at 80 TB/s"),
    OnChip("spinnaker2", 96 * KIB, 4, False, None, 0,
           "SpiNNaker 2: 128 KB SRAM per PE, ~96 KB for data; 16x4 int8 MAC array"),
]}


def on_chip(target: str | OnChip) -> OnChip:
    """The OnChip entry of a device name or a target name (llmc targets)."""
    if isinstance(target, OnChip):
        return target
    if target in ON_CHIP:
        return ON_CHIP[target]
    from llmc.targets import TARGETS

    if target in TARGETS and TARGETS[target].device in ON_CHIP:
        return ON_CHIP[TARGETS[target].device]
    raise UsageError(f"no on-chip memory figure for target {target!r} "
                     f"(known: {', '.join(sorted(ON_CHIP))})")


@dataclass(frozen=True)
class Tiles:
    block_q: int        # Br: query rows per tile
    block_k: int        # Bc: keys per tile
    footprint_bytes: int
    warps: int          # GPU warps per block (0 elsewhere)


def footprint(block_q: int, block_k: int, d: int, dv: int, elem_bytes: float,
              scores: bool = True) -> int:
    """On-chip bytes of one tile step: Q_i, O_i, K_j, V_j at the element size,
    l_i and m_i in f32, and (`scores`) the score tile S_ij in f32."""
    tiles = (block_q + block_k) * (d + dv) * elem_bytes
    return int(math.ceil(tiles + 4 * (2 * block_q + (block_q * block_k if scores else 0))))


def _largest_block_k(chip: OnChip, br: int, d: int, dv: int, elem_bytes: float) -> int:
    """The largest Bc whose footprint with Br fits the chip (may be < 1)."""
    room = chip.memory_bytes - br * (d + dv) * elem_bytes - 8 * br
    return int(room // ((d + dv) * elem_bytes + (4 * br if chip.scores_on_chip else 0)))


def fa1_rule(memory_bytes: int, d: int, elem_bytes: float) -> tuple[int, int]:
    """(Br, Bc) = (min(ceil(M/4d), d), ceil(M/4d)) for M = memory in elements."""
    m = int(memory_bytes // elem_bytes)
    bc = math.ceil(m / (4 * d))
    return min(bc, d), bc


def _fit(n: int, chip: OnChip, cap: int | None) -> int:
    """n rounded down to the chip's granularity, and at most cap."""
    if cap is not None:
        n = min(n, cap)
    if chip.pow2:
        n = 2 ** int(math.log2(max(n, 1)))
    return max(chip.align, n - n % chip.align)


def _cover(n: int, chip: OnChip) -> int:
    """The smallest tile the chip allows that covers n rows."""
    if chip.pow2:
        return max(chip.align, 2 ** math.ceil(math.log2(max(n, 1))))
    return -(-n // chip.align) * chip.align


def choose_tiles(chip: OnChip, d: int, dv: int, elem_bytes: float, tq: int, tk: int,
                 explicit: tuple[int, int] | None = None) -> Tiles:
    """Tile sizes for one attention (q rows tq, keys tk, head dims d/dv) on `chip`;
    `explicit` (Br, Bc) are checked instead of derived."""
    if explicit is not None:
        br, bc = explicit
        if br < 1 or bc < 1 or br % chip.align or bc % chip.align:
            raise UsageError(f"tiles {br}x{bc}: {chip.name} needs positive multiples of "
                             f"{chip.align}")
    else:
        br, bc = fa1_rule(chip.memory_bytes, d, elem_bytes)
        bc = _fit(bc, chip, _cover(tk, chip))
        br = _fit(br, chip, min(x for x in (chip.max_block_q, _cover(tq, chip)) if x))
        while footprint(br, bc, d, dv, elem_bytes, chip.scores_on_chip) > chip.memory_bytes:
            most = _largest_block_k(chip, br, d, dv, elem_bytes)
            if most >= chip.align:
                bc = _fit(most, chip, bc)
            elif br > chip.align:
                br = _fit(br // 2, chip, None)
            else:
                break
    need = footprint(br, bc, d, dv, elem_bytes, chip.scores_on_chip)
    if need > chip.memory_bytes:
        raise UsageError(f"attention tiles {br}x{bc} at head dim {d} need {need:,} bytes "
                         f"on chip; {chip.name} has {chip.memory_bytes:,} ({chip.source}); "
                         f"use smaller tiles or a smaller head dim")
    if chip.max_block_q is not None and br > chip.max_block_q:
        raise UsageError(f"query tile {br} exceeds {chip.name}'s {chip.max_block_q} rows "
                         f"({chip.max_block_q // chip.rows_per_warp} warps x "
                         f"{chip.rows_per_warp} rows)")
    warps = max(1, br // chip.rows_per_warp) if chip.rows_per_warp else 0
    return Tiles(br, bc, need, warps)
