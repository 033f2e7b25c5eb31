"""cocotb testbench of a generated GEMM core: driver, monitor, scoreboard.

Runs inside the simulator (started by `llmc.rtl.gemm`), configured by the JSON
file named in $LLMC_TB_CONFIG (see `llmc.rtl.gemm.write_tb_config`). For each
case (M, N, K, seed) it

* drives: seeded random int operands into the core's buffers through its
  write ports (A and B side by side, one word each per cycle), then
  cfg_m/n/k and a one-cycle `start`, all on falling edges; after `done` it
  reads C back through the read port;
* monitors (unless the config turns it off, for benchmarks): every cycle it
  samples the result write lanes and the `mac_first` / `mac_last` flags,
  stamping each with the index of the rising edge it acts on;
* scores: every C[m][n] written the expected number of times (once on the
  output-stationary core; once per fold of K on the weight-stationary one,
  which accumulates partial sums in C) with each write equal bit for bit to
  numpy's partial or final sum (`llmc.rtl.golden.reference_gemm`), the C
  read back through the port equal to what was written (or, with the monitor
  off, to numpy); the core's `cycles` register and the monitor's own count
  (last `mac_last` edge − first `mac_first` edge) equal to `compute_cycles`
  (`expected_cycles`), and the load, start-to-done and read-back phases
  exactly as long as the core's cycle contract says (`CoreConfig`).

Benchmarks of big GEMMs may set `backdoor` in the config: A and B are then
written and C read through the hierarchy (like $readmemh), which costs no
cycles, and the load and read-back phases are not timed.

It writes a JSON report (per case: cycles, errors, first mismatch) to the
path in the config, and fails the cocotb test on the first bad case.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, RisingEdge, SimTimeoutError, with_timeout

from llmc.rtl.golden import random_operands, reference_gemm, wrap_signed

PERIOD_NS = 10
MAX_ERRORS = 10  # errors kept per case (all are counted)


@dataclass
class Write:
    """One result written by the core: C[m][n] = value, at rising edge `edge`."""

    m: int
    n: int
    value: int
    edge: int
    lane: int
    ns: float  # simulation time of that rising edge


@dataclass
class Observed:
    """What the monitor saw during one GEMM."""

    writes: list[Write] = field(default_factory=list)
    first_mac: int | None = None  # edge of PE (0,0)'s first MAC
    last_mac: int | None = None   # edge of PE (R−1,C−1)'s last MAC
    errors: list[tuple[int, str]] = field(default_factory=list)  # (edge, message)


class Driver:
    """Drives reset, the operand buffers and the start handshake."""

    def __init__(self, dut: Any, cfg: dict[str, Any]) -> None:
        self.dut, self.cfg = dut, cfg

    async def reset(self) -> None:
        d = self.dut
        d.rst.value, d.start.value = 1, 0
        d.cfg_m.value = d.cfg_n.value = d.cfg_k.value = 0
        for _ in range(2):
            await FallingEdge(d.clk)
        d.rst.value = 0

    async def load(self, a: np.ndarray, b: np.ndarray) -> int:
        """Write A (M, K) and B (K, N) through the write ports, word {m, k} and {k, n},
        the two ports side by side; the edges it took."""
        d, cfg = self.dut, self.cfg
        ka, na, mask = cfg["ka_bits"], cfg["na_bits"], (1 << cfg["in_bits"]) - 1
        a_words = [((m << ka) | k, int(v) & mask) for (m, k), v in np.ndenumerate(a)]
        b_words = [((k << na) | n, int(v) & mask) for (k, n), v in np.ndenumerate(b)]
        t0 = get_sim_time("ns")
        for t in range(max(len(a_words), len(b_words))):
            for port, words in (("a", a_words), ("b", b_words)):
                on = t < len(words)
                getattr(d, f"{port}_we").value = int(on)
                if on:
                    getattr(d, f"{port}_waddr").value, getattr(d, f"{port}_wdata").value = words[t]
            await FallingEdge(d.clk)
        d.a_we.value = d.b_we.value = 0
        return round((get_sim_time("ns") - t0) / PERIOD_NS)  # one rising edge per period

    def load_backdoor(self, a: np.ndarray, b: np.ndarray) -> None:
        """Write A and B straight into a_mem/b_mem through the hierarchy (like
        $readmemh): no cycles, for benchmarks of big GEMMs on big arrays."""
        ka, na, mask = self.cfg["ka_bits"], self.cfg["na_bits"], (1 << self.cfg["in_bits"]) - 1
        for (m, k), v in np.ndenumerate(a):
            self.dut.a_mem[(m << ka) | k].value = int(v) & mask
        for (k, n), v in np.ndenumerate(b):
            self.dut.b_mem[(k << na) | n].value = int(v) & mask

    def read_backdoor(self, m: int, n: int) -> np.ndarray:
        """C (M, N) read straight from c_mem through the hierarchy."""
        na, acc = self.cfg["na_bits"], self.cfg["acc_bits"]
        raw = np.array([[int(self.dut.c_mem[(i << na) | j].value) for j in range(n)]
                        for i in range(m)], dtype=object)
        return wrap_signed(np.vectorize(_as_i64, otypes=[np.int64])(raw), acc)

    async def read(self, m: int, n: int) -> tuple[np.ndarray, int, list[str]]:
        """C (M, N) read back through the read port, pipelined one word per cycle;
        (C, edges it took, errors for X/Z words)."""
        d, na, acc = self.dut, self.cfg["na_bits"], self.cfg["acc_bits"]
        c = np.zeros((m, n), np.int64)
        errors = []
        t0 = get_sim_time("ns")
        addrs = [(i, j) for i in range(m) for j in range(n)]
        for p in range(len(addrs) + 1):
            if p < len(addrs):
                i, j = addrs[p]
                d.c_raddr.value = (i << na) | j
            if p:  # the word of the previous address, latched by the edge in between
                i, j = addrs[p - 1]
                try:
                    c[i, j] = wrap_signed(np.int64(_as_i64(int(d.c_rdata.value))), acc)
                except ValueError:
                    errors.append(f"read port: unknown (X/Z) bits in C[{i}][{j}]")
            if p < len(addrs):
                await FallingEdge(d.clk)
        return c, round((get_sim_time("ns") - t0) / PERIOD_NS), errors

    def poison(self, m: int, n: int, value: int) -> None:
        """Fill C's region of c_mem with `value`, so a missed write cannot pass."""
        na = self.cfg["na_bits"]
        for i in range(m):
            for j in range(n):
                self.dut.c_mem[(i << na) | j].value = value

    async def start(self, m: int, n: int, k: int) -> None:
        d = self.dut
        await FallingEdge(d.clk)
        d.cfg_m.value, d.cfg_n.value, d.cfg_k.value = m, n, k
        d.start.value = 1
        await FallingEdge(d.clk)
        d.start.value = 0


class Monitor:
    """Samples the write port and MAC activity every cycle (at the falling edge)."""

    def __init__(self, dut: Any, cfg: dict[str, Any]) -> None:
        self.dut, self.cfg = dut, cfg
        self.seen = Observed()

    async def run(self) -> None:
        d, cols, acc = self.dut, self.cfg["cols"], self.cfg["acc_bits"]
        na, ca = self.cfg["na_bits"], self.cfg["ma_bits"] + self.cfg["na_bits"]
        edge = 0
        while True:
            await FallingEdge(d.clk)
            edge += 1  # the rising edge these values act on, half a period later
            try:
                if int(d.mac_first.value) and self.seen.first_mac is None:
                    self.seen.first_mac = edge
                if int(d.mac_last.value):
                    self.seen.last_mac = edge
                we, done = int(d.c_we.value), int(d.done.value)
            except ValueError:  # X or Z on a control signal
                self.seen.errors.append((edge, f"unknown (X/Z) MAC flag, c_we or done at edge {edge}"))
                return
            if we and done:  # C must be complete when `done` rises
                self.seen.errors.append((edge, f"a result is written at edge {edge}, after `done` rose"))
            if we:
                addrs, data = str(d.c_addr.value), str(d.c_wdata.value)  # MSB first
                for lane in range(cols):
                    if we >> lane & 1:
                        addr, raw = _lane(addrs, lane, ca), _lane(data, lane, acc)
                        if addr is None or raw is None:
                            self.seen.errors.append(
                                (edge, f"unknown (X/Z) bits in write lane {lane} at edge {edge}"))
                            continue
                        value = int(wrap_signed(np.int64(_as_i64(raw)), acc))
                        ns = get_sim_time("ns") + PERIOD_NS / 2
                        self.seen.writes.append(
                            Write(addr >> na, addr & ((1 << na) - 1), value, edge, lane, ns))


def _lane(bits: str, lane: int, width: int) -> int | None:
    """Lane `lane` (width bits, lane 0 at the LSB end) of a binary string; None if X/Z."""
    end = len(bits) - lane * width
    try:
        return int(bits[end - width:end], 2)
    except ValueError:
        return None


def _as_i64(raw: int) -> int:
    """An unsigned ≤64-bit pattern as the int64 with the same bits."""
    return raw - (1 << 64) if raw >= 1 << 63 else raw


class Scoreboard:
    """Compares one case's outputs and cycle counts with the golden model."""

    def __init__(self, case: dict[str, Any], expected: np.ndarray) -> None:
        self.case, self.expected = case, expected
        self._errors: list[tuple[float, int, str]] = []  # (edge, order, message)
        self.count = 0          # every error
        self.output_errors = 0  # wrong, missing, duplicate or stray elements of C

    def error(self, text: str, output: bool = False, edge: float = float("inf")) -> None:
        """Record an error that happened at rising edge `edge` (inf: at the end)."""
        self.count += 1
        self.output_errors += output
        self._errors.append((edge, self.count, text))

    @property
    def errors(self) -> list[str]:
        """The first MAX_ERRORS messages, earliest in simulation time first."""
        return [text for _, _, text in sorted(self._errors)[:MAX_ERRORS]]

    def check_writes(self, writes: list[Write], partials: list[np.ndarray]) -> np.ndarray:
        """Each C[m][n] written len(partials) times, write t equal to partials[t] (the
        last is C); C as the lanes left it."""
        m, n = self.expected.shape
        times = len(partials)
        count = np.zeros((m, n), np.int64)
        final = np.zeros((m, n), np.int64)
        for w in writes:  # in time order, so the first error is the earliest
            where = f"C[{w.m}][{w.n}] (written by lane {w.lane} at {w.ns:g} ns, edge {w.edge})"
            if not (w.m < m and w.n < n):
                self.error(f"write outside C ({m}x{n}): {where}", output=True, edge=w.edge)
                continue
            t = int(count[w.m, w.n])
            count[w.m, w.n] += 1
            final[w.m, w.n] = w.value
            if t >= times:
                self.error(f"{where} written {'twice' if times == 1 else f'more than {times} times'}",
                           output=True, edge=w.edge)
                continue
            want = int(partials[t][w.m, w.n])
            if w.value != want:
                what = "numpy" if t == times - 1 else f"numpy's partial sum {t + 1}/{times}"
                self.error(f"{where}: RTL {w.value} != {what} {want}", output=True, edge=w.edge)
        missing = np.argwhere(count < times)
        if len(missing):
            i, j = missing[0]
            self.error(f"C[{i}][{j}] written {count[i, j]} of {times} times "
                       f"({len(missing)} elements short)", output=True)
            self.count += len(missing) - 1
            self.output_errors += len(missing) - 1
        return final

    def check_matrix(self, c: np.ndarray) -> None:
        bad = np.argwhere(c != self.expected)  # row-major order
        for i, j in bad:
            self.error(f"C[{i}][{j}]: RTL {int(c[i, j])} != numpy {int(self.expected[i, j])}",
                       output=True)

    def check_readback(self, c: np.ndarray, written: np.ndarray) -> None:
        bad = np.argwhere(c != written)
        for i, j in bad[:MAX_ERRORS]:
            self.error(f"read port: C[{i}][{j}] = {int(c[i, j])} but the lanes wrote "
                       f"{int(written[i, j])}")

    def check_cycles(self, name: str, got: int | None, want: int,
                     model: str = "compute_cycles") -> None:
        if got != want:
            self.error(f"{name} cycles {got} != {model} {want}")


def _partials(a: np.ndarray, b: np.ndarray, acc: int, fold_k: int | None) -> list[np.ndarray]:
    """What the lanes write, in order: C (os), or C summed over K's first t·R rows for
    each fold t of K (ws, `fold_k` = R)."""
    k = a.shape[1]
    ends = [k] if fold_k is None else list(range(fold_k, k, fold_k)) + [k]
    return [reference_gemm(a[:, :e], b[:e, :], acc) for e in ends]


async def _run_case(dut: Any, cfg: dict[str, Any], case: dict[str, Any], drv: Driver) -> dict:
    m, n, k, acc = case["m"], case["n"], case["k"], cfg["acc_bits"]
    a, b = random_operands(m, n, k, cfg["in_bits"], case["seed"])
    partials = _partials(a, b, acc, cfg["fold_k"])
    expected = partials[-1]  # the same array: an injected error changes both
    if case.get("inject") is not None:  # negative test: a wrong expectation must be caught
        i, j = case["inject"]
        expected[i, j] = wrap_signed(expected[i, j] + 1, acc)
    backdoor = cfg.get("backdoor", False)
    load_cycles = None if backdoor else await drv.load(a, b)
    if backdoor:
        drv.load_backdoor(a, b)
    monitor = Monitor(dut, cfg) if cfg["monitor"] else None
    if monitor is None:  # so that a missed write cannot pass (test aid, through the hierarchy)
        drv.poison(m, n, 0x5A5A5A5A & ((1 << acc) - 1))
    task = cocotb.start_soon(monitor.run()) if monitor else None
    budget = 2 * case["expected_cycles"] + 8 * (cfg["rows"] + cfg["cols"]) + 100
    await drv.start(m, n, k)
    # the rising edge that sampled `start` was half a period ago
    t_sim, t_wall = get_sim_time("ns") - PERIOD_NS / 2, time.perf_counter()
    board = Scoreboard(case, expected)
    try:
        await with_timeout(RisingEdge(dut.done), budget * PERIOD_NS, "ns")
    except SimTimeoutError:
        board.error(f"timeout: `done` did not rise within {budget} cycles of start")
    wall = time.perf_counter() - t_wall
    sim_cycles = round((get_sim_time("ns") - t_sim) / PERIOD_NS)  # edges from start to done
    await FallingEdge(dut.clk)  # let the monitor sample the last cycle
    if task:
        task.cancel()
    rtl_cycles = int(dut.cycles.value)
    if backdoor:
        c, read_cycles = drv.read_backdoor(m, n), None
    else:
        c, read_cycles, read_errors = await drv.read(m, n)
        for text in read_errors:
            board.error(text, output=True)
        board.check_cycles("load", load_cycles, case["expected_load_cycles"],
                           "CoreConfig.load_cycles")
        board.check_cycles("read-back", read_cycles, case["expected_read_cycles"],
                           "CoreConfig.read_cycles")
    board.check_cycles("RTL", rtl_cycles, case["expected_cycles"])
    board.check_cycles("start-to-done", sim_cycles, case["expected_start_to_done"],
                       "CoreConfig.start_to_done")
    if monitor:
        seen = monitor.seen
        for edge, text in seen.errors:
            board.error(text, edge=edge)
        mon = None if seen.first_mac is None or seen.last_mac is None else seen.last_mac - seen.first_mac
        board.check_cycles("monitor", mon, case["expected_cycles"])
        board.check_readback(c, board.check_writes(seen.writes, partials))
    else:
        mon = None
        board.check_matrix(c)
    return {
        **case,
        "rtl_cycles": rtl_cycles,
        "monitor_cycles": mon,
        "sim_cycles": sim_cycles,
        "load_cycles": load_cycles,
        "read_cycles": read_cycles,
        "wall_s": wall,
        "passed": board.count == 0,
        "n_errors": board.count,
        "output_errors": board.output_errors,
        "errors": board.errors,
    }


@cocotb.test()
async def gemm(dut: Any) -> None:
    """Every case of the config: outputs bit-exact, cycles exact."""
    cfg_path = Path(os.environ["LLMC_TB_CONFIG"])
    cfg = json.loads(cfg_path.read_text())
    report = cfg_path.parent / cfg["report"]  # relative to the config file
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    drv = Driver(dut, cfg)
    await drv.reset()
    results = []
    for case in cfg["cases"]:
        results.append(await _run_case(dut, cfg, case, drv))
        report.write_text(json.dumps({"cases": results}, indent=1))
    bad = [r for r in results if not r["passed"]]
    if bad:
        r = bad[0]
        shape = f"M={r['m']} N={r['n']} K={r['k']} seed={r['seed']}"
        raise AssertionError(f"{shape}: {r['errors'][0]} ({r['n_errors']} errors)")
