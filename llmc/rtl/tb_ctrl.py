"""cocotb testbench of a decode step (llmc.rtl.hn_ctrl): the units and the
controller sequencing them.

Configured by the JSON file in $LLMC_TB_CONFIG: the input buses (the input
row x, the position, every layer's K and V cache), the outputs with the
values the golden model (the IR interpreter) gave, and the predicted cycle
count. It drives the buses, fills the attention buffers (one `fill` cycle),
raises `start` for one cycle, counts the rising edges until `done`, and
compares every output word bit for bit. Writes a JSON report; fails on any
mismatch or a wrong cycle count.
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

from llmc.rtl.tb_hn import pack, unpack


@cocotb.test()
async def decode_step(dut: Any) -> None:
    cfg = json.loads(Path(os.environ["LLMC_TB_CONFIG"]).read_text())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value, dut.start.value, dut.fill.value = 1, 0, 0
    for port in cfg["inputs"]:
        values = port["values"]
        word = values[0] if port["bits"] == 0 else pack(values, port["bits"])
        getattr(dut, port["name"]).value = word
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    dut.fill.value = 1                # the prompt's KV cache into the attention buffers
    await FallingEdge(dut.clk)
    dut.fill.value = 0
    t0 = time.perf_counter()
    dut.start.value = 1
    await FallingEdge(dut.clk)        # the rising edge just passed sampled start
    dut.start.value = 0
    cycles, limit = 0, 2 * cfg["expected_cycles"] + 16
    while cycles < limit:
        await FallingEdge(dut.clk)
        cycles += 1
        if int(dut.done.value):
            break
    wall = time.perf_counter() - t0
    outputs, wrong, first = [], 0, None
    for port in cfg["outputs"]:
        want = port["expected"]
        got = unpack(int(getattr(dut, port["name"]).value), len(want), port["bits"])
        outputs.append(got)
        bad = [j for j, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
        wrong += len(bad)
        if bad and first is None:
            first = {"port": port["name"], "index": bad[0], "got": got[bad[0]],
                     "expected": want[bad[0]]}
    passed = wrong == 0 and cycles == cfg["expected_cycles"]
    Path(cfg["report"]).write_text(json.dumps({
        "cycles": cycles, "mismatches": wrong, "first": first, "passed": passed,
        "outputs": outputs, "wall_s": wall}) + "\n")
    assert passed, f"{wrong} mismatches, {cycles} cycles (expected {cfg['expected_cycles']})"
