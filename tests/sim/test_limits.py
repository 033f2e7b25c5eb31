"""llmc.sim refuses a GEMM whose folds would exhaust memory, before it
allocates anything, and its estimate covers what a simulation allocates."""

from __future__ import annotations

import tracemalloc

import pytest

from llmc.errors import UsageError
from llmc.sim import (
    MAX_SIM_BYTES,
    check_gemm_size,
    clear_cache,
    from_device,
    gemm_sim_bytes,
    simulate_gemm,
)


def test_simulate_gemm_refuses_a_huge_gemm() -> None:
    hw = from_device("npu")
    with pytest.raises(UsageError, match=r"610,351,562,500 folds.*limit of 1\.0 GiB"):
        simulate_gemm(10**8, 10**8, 10**8, hw)
    with pytest.raises(UsageError, match="positive integer"):
        check_gemm_size(0, 4, 4, hw.array)


def test_the_limit_is_where_the_estimate_says() -> None:
    hw = from_device("npu", array="8x8")
    n = 8 * 2**12                 # (n/8)^2 = 2**24 folds at 128 B: 2 GiB
    assert gemm_sim_bytes(n, n, 8, hw.array) == 2**24 * 128 > MAX_SIM_BYTES
    with pytest.raises(UsageError):
        check_gemm_size(n, n, 8, hw.array)
    check_gemm_size(n // 2, n // 2, 8, hw.array)               # 2**22 folds: 512 MiB
    with pytest.raises(UsageError, match="with a trace"):
        check_gemm_size(n // 2, n // 2, 8, hw.array, trace=True)


@pytest.mark.parametrize("trace", [False, True])
def test_the_estimate_covers_the_allocations(trace: bool) -> None:
    """tracemalloc's peak while simulating 16K folds stays within the estimate
    (plus 1 MiB for what does not grow with the folds)."""
    hw = from_device("npu", array="8x8")
    simulate_gemm(64, 64, 8, hw, trace=trace)  # compile and warm caches first
    clear_cache()
    tracemalloc.start()
    try:
        simulate_gemm(1024, 1024, 64, hw, trace=trace)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = gemm_sim_bytes(1024, 1024, 64, hw.array, trace=trace)
    assert peak <= estimate + 2**20, (peak, estimate)
    assert peak >= estimate / 4  # and the estimate is not wildly loose
