"""cocotb testbench of a hardwired linear layer (llmc.rtl.hn): driver, monitor, scoreboard.

Runs inside the simulator (started by `llmc.rtl.hn_sim`), configured by the
JSON file named in $LLMC_TB_CONFIG: the layer's sizes, the input vectors,
the outputs the golden model gave for them and the predicted cycle count.
For each vector it

* drives x onto the bus and a one-cycle `start`, on falling edges;
* monitors `done` at every falling edge, counting the rising edges from the
  one that sampled `start` to the one after which `done` is high;
* scores every output word bit for bit against the expected int32 and the
  count against `expected_cycles`.

It writes a JSON report (per vector: cycles, mismatches, first mismatch) and
fails the cocotb test if any vector is wrong.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

PERIOD_NS = 10
OUT_BITS = 32


def pack(values: list[int], bits: int) -> int:
    """Little-endian packing of signed ints into one bus value."""
    word, mask = 0, (1 << bits) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (bits * i)
    return word


def unpack(word: int, count: int, bits: int) -> list[int]:
    """Inverse of pack (signed)."""
    out, mask, top = [], (1 << bits) - 1, 1 << (bits - 1)
    for i in range(count):
        v = (word >> (bits * i)) & mask
        out.append(v - (1 << bits) if v & top else v)
    return out


async def one_vector(dut: Any, cfg: dict[str, Any], x: list[int], limit: int) -> tuple[int, list[int]]:
    """Drive one x, return (cycles to done, y read after done)."""
    dut.x.value = pack(x, cfg["x_bits"])
    dut.start.value = 1
    await FallingEdge(dut.clk)       # the rising edge just passed sampled start
    dut.start.value = 0
    cycles = 0
    while cycles < limit:
        await FallingEdge(dut.clk)
        cycles += 1
        if int(dut.done.value):
            break
    return cycles, unpack(int(dut.y.value), cfg["n"], OUT_BITS)


@cocotb.test()
async def hn_layer(dut: Any) -> None:
    cfg = json.loads(Path(os.environ["LLMC_TB_CONFIG"]).read_text())
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rst.value, dut.start.value, dut.x.value = 1, 0, 0
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    rows, bad = [], 0
    t0 = time.perf_counter()
    for i, (x, want) in enumerate(zip(cfg["inputs"], cfg["expected"], strict=True)):
        cycles, got = await one_vector(dut, cfg, x, 4 * cfg["expected_cycles"] + 16)
        wrong = [j for j, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
        first = None if not wrong else {"index": wrong[0], "got": got[wrong[0]],
                                        "expected": want[wrong[0]]}
        ok = not wrong and cycles == cfg["expected_cycles"]
        bad += not ok
        rows.append({"vector": i, "cycles": cycles, "mismatches": len(wrong), "first": first,
                     "passed": ok, "y": got})
        await FallingEdge(dut.clk)
    wall = time.perf_counter() - t0
    report = {"vectors": rows, "wall_s": wall}
    Path(cfg["report"]).write_text(json.dumps(report) + "\n")
    assert bad == 0, f"{bad} of {len(rows)} vectors wrong (see {cfg['report']})"
