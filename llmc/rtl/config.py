"""What an RTL GEMM core is generated from: a device's array, plus buffer sizes.

`target_array(target, ...)` reads the MAC array of a target's device (the
hardware database, llmc.hw) with optional overrides; `CoreConfig` wraps that
`llmc.hw.array.ArraySpec` (R×C, dataflow, operand and accumulator widths)
with the largest GEMM the core's buffers hold, checks every value is in the
range the generator supports, and derives the bit widths the generated
Verilog uses, so generator, testbench and CLI agree. The limits below are the
generator's (what it can build and simulate), not any device's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from llmc.errors import UsageError
from llmc.hw import get_device
from llmc.hw.array import ArraySpec, Dataflow

MAX_DIM = 64            # array rows / cols the generator accepts
MAX_GEMM_DIM = 4096     # M, N, K limits of the behavioural buffers
MAX_BUFFER_WORDS = 1 << 22
IN_BITS_RANGE = (2, 16)
MAX_ACC_BITS = 64
CYCLE_BITS = 32         # width of the core's cycle counter
RTL_DATAFLOWS = (Dataflow.OS, Dataflow.WS)  # what the generator builds (not is)


def clog2(x: int) -> int:
    """⌈log2 x⌉ for x ≥ 1 (Verilog's $clog2)."""
    return max(0, (x - 1).bit_length())


def target_array(target: str, array: str | None = None, *, dataflow: str | None = None,
                 in_bits: int | None = None, acc_bits: int | None = None
                 ) -> tuple[ArraySpec, str, tuple[str, ...]]:
    """(spec, device name, overrides shown): the array of `target`'s device (a target
    name, device key or device-file path) with `array` ("RxC") and the other
    arguments replacing its figures. A device without an array needs `array`."""
    dev = get_device(target)
    base = dev.array.spec if dev.array is not None else None
    if array is None and base is None:
        raise UsageError(f"{dev.name} has no [array] for the RTL generator; "
                         f"pass --array RxC, e.g. --array 4x4")
    if array is None and dev.array.numeric != "int":
        raise UsageError(f"{dev.name}'s array is {dev.array.numeric}; the RTL generator builds "
                         f"integer arrays: pass --array RxC for an integer one")
    spec = base
    shown = []
    if array is not None:
        r_c = ArraySpec.parse(array)
        spec = replace(base, rows=r_c.rows, cols=r_c.cols) if base is not None else r_c
        shown.append(f"array {spec.rows}x{spec.cols}")
    given = {"dataflow": dataflow, "in_bits": in_bits, "acc_bits": acc_bits}
    given = {k: v for k, v in given.items() if v is not None}
    spec = replace(spec, **given)
    shown += [f"{k} {v}" for k, v in given.items() if base is None or getattr(base, k) != v]
    if array is None and max(spec.rows, spec.cols) > MAX_DIM:
        raise UsageError(f"{dev.name}'s array is {spec.rows}x{spec.cols}; the RTL generator "
                         f"builds arrays up to {MAX_DIM}x{MAX_DIM}: pass --array RxC, "
                         f"e.g. --array 4x4")
    return spec, dev.name, tuple(shown)


def check_rtl_dataflow(dataflow: Dataflow) -> Dataflow:
    """`dataflow` if the generator builds it, else the UsageError saying which it does."""
    if dataflow not in RTL_DATAFLOWS:
        raise UsageError(
            f"the RTL generator builds output- and weight-stationary arrays only; got "
            f"dataflow {dataflow.value!r} (use --dataflow os or --dataflow ws)"
        )
    return dataflow


def _in_range(name: str, value: int, lo: int, hi: int, hint: str = "") -> None:
    if not lo <= value <= hi:
        raise UsageError(f"{name} must be in {lo}..{hi}, got {value}{hint}")


@dataclass(frozen=True)
class CoreConfig:
    """An RTL GEMM core: the array `spec` and its buffer limits M, N, K ≤ *_max."""

    spec: ArraySpec
    m_max: int
    n_max: int
    k_max: int

    def __post_init__(self) -> None:
        s = self.spec
        check_rtl_dataflow(s.dataflow)
        _in_range("array rows", s.rows, 1, MAX_DIM)
        _in_range("array cols", s.cols, 1, MAX_DIM)
        _in_range("in_bits", s.in_bits, *IN_BITS_RANGE)
        _in_range("acc_bits", s.acc_bits, 2 * s.in_bits, MAX_ACC_BITS,
                  " (the accumulator must hold a full product: acc_bits >= 2*in_bits)")
        for name in ("m_max", "n_max", "k_max"):
            _in_range(name, getattr(self, name), 1, MAX_GEMM_DIM)
        for name, words in (("A", self.a_words), ("B", self.b_words), ("C", self.c_words)):
            if words > MAX_BUFFER_WORDS:
                raise UsageError(
                    f"the {name} buffer would need {words} words (> {MAX_BUFFER_WORDS}); "
                    "use a smaller GEMM"
                )

    # ---- names
    @property
    def ws(self) -> bool:
        """The array is weight-stationary (else output-stationary)."""
        return self.spec.dataflow is Dataflow.WS

    @property
    def top(self) -> str:
        """Name of the generated top module, e.g. `llmc_gemm_os_4x4`."""
        return f"llmc_gemm_{self.spec.dataflow.value}_{self.spec.rows}x{self.spec.cols}"

    @property
    def array(self) -> str:
        """Name of the generated array module, e.g. `llmc_os_array_4x4`."""
        return f"llmc_{self.spec.dataflow.value}_array_{self.spec.rows}x{self.spec.cols}"

    # ---- widths (bits)
    @property
    def row_bits(self) -> int:
        """Bits of a row index inside the array (≥ 1)."""
        return max(1, clog2(self.spec.rows))

    @property
    def m_bits(self) -> int:
        """Bits of M and of a row index m0 + i, which can reach M_MAX + R − 1."""
        return clog2(self.m_max + self.spec.rows)

    @property
    def n_bits(self) -> int:
        """Bits of N and of a column index n0 + j."""
        return clog2(self.n_max + self.spec.cols)

    @property
    def step_bits(self) -> int:
        """Bits of the step within a fold, 0..P−1, with P ≤ R + C + K_MAX − 2 (os; also
        the bits of K) or P ≤ 2R + C + M_MAX − 2 (ws)."""
        s = self.spec
        if self.ws:
            return clog2(2 * s.rows + s.cols + self.m_max)
        return clog2(s.rows + s.cols + self.k_max)

    @property
    def k_bits(self) -> int:
        """Bits of K: the step's (os); of K and a row index k0 + i ≤ K_MAX + R − 1 (ws)."""
        return clog2(self.k_max + self.spec.rows) if self.ws else self.step_bits

    @property
    def ma_bits(self) -> int:
        """Address bits of a row of A or C in the buffers."""
        return max(1, clog2(self.m_max))

    @property
    def na_bits(self) -> int:
        """Address bits of a column of B or C."""
        return max(1, clog2(self.n_max))

    @property
    def ka_bits(self) -> int:
        """Address bits of the K index of A or B."""
        return max(1, clog2(self.k_max))

    @property
    def c_addr_bits(self) -> int:
        """Bits of a C buffer address {m, n}."""
        return self.ma_bits + self.na_bits

    @property
    def a_words(self) -> int:
        return 1 << (self.ma_bits + self.ka_bits)

    @property
    def b_words(self) -> int:
        return 1 << (self.ka_bits + self.na_bits)

    @property
    def c_words(self) -> int:
        return 1 << self.c_addr_bits

    # ---- buffer layout, shared with the testbench
    def a_addr(self, m: int, k: int) -> int:
        """Word of A[m][k] in `a_mem`: the bits {m, k}."""
        return (m << self.ka_bits) | k

    def b_addr(self, k: int, n: int) -> int:
        """Word of B[k][n] in `b_mem`: the bits {k, n}."""
        return (k << self.na_bits) | n

    def c_addr(self, m: int, n: int) -> int:
        """Word of C[m][n] in `c_mem`: the bits {m, n}."""
        return (m << self.na_bits) | n

    # ---- the cycle contract of the ports (the compute phase is compute_cycles)
    def load_cycles(self, m: int, n: int, k: int) -> int:
        """Edges to load A and B through the write ports, one word per port per cycle
        with the two ports driven side by side: max(M·K, K·N)."""
        return max(m * k, k * n)

    def read_cycles(self, m: int, n: int) -> int:
        """Edges to read C back through the synchronous read port, one word per
        cycle, pipelined: M·N (each word is on c_rdata the cycle after its address)."""
        return m * n

    def start_to_done(self, compute: int) -> int:
        """Edges from the one sampling `start` to the one raising `done`, given the
        compute cycles: R + 3 more (os, see gemm_core) or 3 more (ws, see gemm_core_ws)."""
        return compute + (3 if self.ws else self.spec.rows + 3)

    def check_shape(self, m: int, n: int, k: int) -> None:
        """UsageError unless 1 ≤ M, N, K ≤ the buffer limits."""
        for name, v, hi in (("M", m, self.m_max), ("N", n, self.n_max), ("K", k, self.k_max)):
            _in_range(name, v, 1, hi, f" (the core was generated for {name} <= {hi})")

    def describe(self) -> str:
        """Everything the core was generated from (two lines)."""
        s = self.spec
        return (
            f"ArraySpec(rows={s.rows}, cols={s.cols}, dataflow={s.dataflow.value}, "
            f"in_bits={s.in_bits}, acc_bits={s.acc_bits})\nwith buffers for "
            f"M<={self.m_max}, N<={self.n_max}, K<={self.k_max}"
        )
