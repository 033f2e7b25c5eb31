"""cocotb testbench of a hardwired linear layer (llmc.rtl.hn): driver, monitor, scoreboard.

Runs inside the simulator (started by `llmc.rtl.hn_sim`), configured by the
JSON file named in $LLMC_TB_CONFIG: for each layer port pair (x, y) its
input vectors and the outputs the golden model gave for them, and the
predicted cycle count. One design may hold several layers (a decode step's
projections side by side, sharing `start` and `done`). For each vector it

* drives every layer's x onto its bus and a one-cycle `start`, on falling edges;
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


async def one_vector(dut: Any, cfg: dict[str, Any], i: int, limit: int
                     ) -> tuple[int, list[list[int]]]:
    """Drive vector i on every layer's bus; return (cycles to done, each layer's y)."""
    for port in cfg["ports"]:
        if port["x"]:  # None: an output-only port (an intermediate the design shows)
            getattr(dut, port["x"]).value = pack(port["inputs"][i], cfg["x_bits"])
    dut.start.value = 1
    await FallingEdge(dut.clk)       # the rising edge just passed sampled start
    dut.start.value = 0
    cycles = 0
    while cycles < limit:
        await FallingEdge(dut.clk)
        cycles += 1
        if int(dut.done.value):
            break
    return cycles, [unpack(int(getattr(dut, p["y"]).value), p["n"], p.get("bits", OUT_BITS))
                    for p in cfg["ports"]]


@cocotb.test()
async def hn_layer(dut: Any) -> None:
    cfg = json.loads(Path(os.environ["LLMC_TB_CONFIG"]).read_text())
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rst.value, dut.start.value = 1, 0
    for port in cfg["ports"]:
        if port["x"]:
            getattr(dut, port["x"]).value = 0
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    rows, bad = [], 0
    t0 = time.perf_counter()
    for i in range(cfg["vectors"]):
        cycles, got = await one_vector(dut, cfg, i, 4 * cfg["expected_cycles"] + 16)
        wrong = [(p["y"], j) for p, ys in zip(cfg["ports"], got, strict=True)
                 for j, (a, b) in enumerate(zip(ys, p["expected"][i], strict=True)) if a != b]
        first = None
        if wrong:
            name, j = wrong[0]
            port = next(p for p in cfg["ports"] if p["y"] == name)
            first = {"port": name, "index": j, "got": got[cfg["ports"].index(port)][j],
                     "expected": port["expected"][i][j]}
        ok = not wrong and cycles == cfg["expected_cycles"]
        bad += not ok
        rows.append({"vector": i, "cycles": cycles, "mismatches": len(wrong), "first": first,
                     "passed": ok, "y": got})
        await FallingEdge(dut.clk)
    wall = time.perf_counter() - t0
    report = {"vectors": rows, "wall_s": wall}
    Path(cfg["report"]).write_text(json.dumps(report) + "\n")
    assert bad == 0, f"{bad} of {len(rows)} vectors wrong (see {cfg['report']})"
