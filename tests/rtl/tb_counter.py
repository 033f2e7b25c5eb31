"""A tiny cocotb test for the runner tests: the counter counts (or, on request, fails)."""

from __future__ import annotations

import os
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


@cocotb.test()
async def counts(dut: Any) -> None:
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(5):
        await FallingEdge(dut.clk)
    want = 5 + int(os.environ.get("COUNTER_OFF_BY", "0"))
    assert int(dut.q.value) == want, f"q = {int(dut.q.value)}, want {want}"
