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

The on-chip memory and the rules are the device's (llmc.hw): its
`[scratchpad]` (the memory one tile loop may use: an SM's shared memory per
thread block, an NPU's scratchpad, a SpiNNaker 2 PE's SRAM, one HNLPU chip's
attention buffer) and its `[tiling]` table, each with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmc.errors import UsageError
from llmc.hw import Device, get_device


@dataclass(frozen=True)
class OnChip:
    """On-chip memory one tile loop may use, and the target's tiling rules
    (a view of a device's [scratchpad] and [tiling], see `on_chip`)."""

    name: str
    memory_bytes: int
    align: int = 1               # tile sizes are multiples of this
    pow2: bool = False           # tile sizes are powers of two (GPU kernels)
    max_block_q: int | None = None  # query-tile rows (GPU: 16 rows x at most 8 warps)
    rows_per_warp: int = 0       # GPU: rows of Br one warp owns (0: not a GPU)
    source: str = ""
    scores_on_chip: bool = True  # S_ij takes room in this memory (GPUs: registers)


def _from_device(device: Device) -> OnChip:
    pad, rules = device.scratchpad, device.tiling
    if pad is None or rules is None:
        lacks = " and ".join(t for t, x in (("[scratchpad]", pad), ("[tiling]", rules)) if x is None)
        raise UsageError(f"device {device.name} has no {lacks} for attention tiling "
                         f"(add it to {device.path})")
    return OnChip(device.name, pad.capacity_bytes, rules.align, rules.pow2, rules.max_block_q,
                  rules.rows_per_warp, f"{pad.source}; {rules.source}", rules.scores_on_chip)


def on_chip(target: str | Device | OnChip) -> OnChip:
    """The OnChip view of a target name, device key, device-file path or Device."""
    if isinstance(target, OnChip):
        return target
    return _from_device(target if isinstance(target, Device) else get_device(target))


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
