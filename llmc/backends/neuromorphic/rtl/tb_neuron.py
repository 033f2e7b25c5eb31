"""cocotb testbench of the neuron cores (lif_core.v, egru_core.v) against the
simulator's fixed-point model (llmc/backends/neuromorphic/fixed.py).

A driver presents one seeded random operand set a clock (uniform over the
ranges a step meets, plus edge cases: values at the threshold, clamps of the
gates, 32-bit wrap); a monitor samples the registered outputs a clock later;
the scoreboard compares every one bit-exactly with fixed.py. Parameters come
from the environment: NEURON_CORE (lif or egru), NEURON_CASES, NEURON_SEED,
and NEURON_VECTORS: a JSON file of operand sets recorded from the simulator's
fixed-point run (Simulator(..., numeric="fixed", trace=N).traced), driven
before the random ones.
"""

from __future__ import annotations

import json
import os
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from llmc.backends.neuromorphic import fixed

LIF_IN = ("v_in", "i_syn", "beta", "threshold")
EGRU_IN = ("c_in", "a_u", "a_r", "a_zin", "a_zrec", "theta")


def operands(core: str, n: int, seed: int) -> list[dict[str, int]]:
    """n operand sets (Q.F ints); the first few are edge cases."""
    rng = np.random.default_rng(seed)
    one = fixed.ONE
    rows: list[dict[str, int]] = []
    if core == "lif":
        edge = [dict(v_in=one, i_syn=0, beta=one, threshold=one),        # v == threshold
                dict(v_in=-(1 << 31), i_syn=-1, beta=one, threshold=0),  # wraps
                dict(v_in=(1 << 31) - 1, i_syn=(1 << 31) - 1, beta=one, threshold=0)]
        rows += edge
        for _ in range(n - len(edge)):
            rows.append(dict(v_in=int(rng.integers(-4 * one, 4 * one)),
                             i_syn=int(rng.integers(-2 * one, 2 * one)),
                             beta=int(rng.integers(0, one + 1)),
                             threshold=int(rng.integers(0, 2 * one))))
    else:
        edge = [dict(c_in=one // 4, a_u=-8 * one, a_r=8 * one, a_zin=one // 10, a_zrec=0,
                     theta=one // 10),                                   # c == theta
                dict(c_in=0, a_u=8 * one, a_r=-8 * one, a_zin=5 * one, a_zrec=5 * one,
                     theta=0),
                dict(c_in=-one, a_u=0, a_r=0, a_zin=-(1 << 31), a_zrec=-(1 << 31),
                     theta=one)]
        rows += edge
        for _ in range(n - len(edge)):
            rows.append({k: int(rng.integers(-3 * one, 3 * one)) for k in EGRU_IN[:-1]}
                        | {"theta": int(rng.integers(0, one // 2))})
    return rows


def expected(core: str, op: dict[str, int]) -> tuple[int, ...]:
    if core == "lif":
        s, v = fixed.lif_update(np.array([op["v_in"]]), np.array([op["i_syn"]]), op["beta"],
                                op["threshold"])
        return int(s[0]), int(v[0])
    e, y, c = fixed.egru_update(*(np.array([op[k]]) for k in EGRU_IN[:-1]), op["theta"])
    return int(e[0]), int(y[0]), int(c[0])


def sampled(core: str, dut: Any) -> tuple[int, ...]:
    if core == "lif":
        return int(dut.spike.value), dut.v_out.value.to_signed()
    return int(dut.event_out.value), dut.y_out.value.to_signed(), dut.c_out.value.to_signed()


@cocotb.test()
async def bit_exact_with_fixed_model(dut: Any) -> None:
    core = os.environ.get("NEURON_CORE", "lif")
    n = int(os.environ.get("NEURON_CASES", "200"))
    ops = operands(core, n, int(os.environ.get("NEURON_SEED", "0")))
    if os.environ.get("NEURON_VECTORS"):
        with open(os.environ["NEURON_VECTORS"]) as f:
            ops = json.load(f) + ops
    n = len(ops)
    Clock(dut.clk, 10, unit="ns").start()
    dut.in_valid.value = 0
    await FallingEdge(dut.clk)
    mismatches = []
    for i, op in enumerate(ops):                       # driver
        for k, v in op.items():
            getattr(dut, k).value = v
        dut.in_valid.value = 1
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)                     # monitor: registered outputs
        assert int(dut.out_valid.value) == 1
        got, want = sampled(core, dut), expected(core, op)
        if got != want:                                # scoreboard
            mismatches.append((i, op, got, want))
    assert not mismatches, f"{len(mismatches)} of {n} differ; first {mismatches[0]}"
