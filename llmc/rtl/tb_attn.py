"""cocotb testbench of the decode attention unit (llmc.rtl.hn_attn).

Configured by the JSON file in $LLMC_TB_CONFIG: per case the K/V cache to
fill the attention buffer with, the new token's q, k, v and position, the
output the golden model gave (the op registry's index_copy + int_attention)
and the predicted cycle count. For each case it fills the buffer (one
`fill` cycle), raises `start` for one cycle, counts the rising edges until
`done`, and compares y bit for bit. Writes a JSON report; fails on any
wrong case.
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
async def attention(dut: Any) -> None:
    cfg = json.loads(Path(os.environ["LLMC_TB_CONFIG"]).read_text())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value, dut.start.value, dut.fill.value = 1, 0, 0
    for name in ("kc", "vc", "q", "k_new", "v_new", "pos"):
        getattr(dut, name).value = 0
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    rows, bad, t0 = [], 0, time.perf_counter()
    for case in cfg["cases"]:
        dut.kc.value, dut.vc.value = pack(case["kc"], 8), pack(case["vc"], 8)
        dut.fill.value = 1
        await FallingEdge(dut.clk)
        dut.fill.value = 0
        dut.q.value = pack(case["q"], 8)
        dut.k_new.value, dut.v_new.value = pack(case["k_new"], 8), pack(case["v_new"], 8)
        dut.pos.value = case["pos"]
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        cycles = 0
        while cycles < 2 * cfg["expected_cycles"] + 16:
            await FallingEdge(dut.clk)
            cycles += 1
            if int(dut.done.value):
                break
        got = unpack(int(dut.y.value), len(case["expected"]), 8)
        wrong = [i for i, (a, b) in enumerate(zip(got, case["expected"], strict=True)) if a != b]
        ok = not wrong and cycles == cfg["expected_cycles"]
        bad += not ok
        rows.append({"cycles": cycles, "mismatches": len(wrong), "passed": ok, "y": got,
                     "first": None if not wrong else
                     {"index": wrong[0], "got": got[wrong[0]],
                      "expected": case["expected"][wrong[0]]}})
    Path(cfg["report"]).write_text(json.dumps({"vectors": rows,
                                               "wall_s": time.perf_counter() - t0}) + "\n")
    assert bad == 0, f"{bad} of {len(rows)} cases wrong (see {cfg['report']})"
