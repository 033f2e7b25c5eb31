"""The fold pipeline: DMA loads, array compute and write-backs, as a max-plus recurrence.

One DRAM channel serves transfers in program order (an in-order DMA queue):
a transfer of b bytes that is ready at time q starts at max(q, channel free),
holds the channel for b·cycles_per_byte and lands `latency` cycles after that
(requests are pipelined, so back-to-back transfers pay the latency once).
Fold f of the array is issued when

* its inputs have landed (load f),
* the previous fold has moved on (issue f-1 + interval f-1), and
* its output buffer is free (write-back of fold f - buffers has landed),

and is done `latency_f` cycles after issue. With `buffers` = 2 (ping/pong
scratchpad) the load of fold f+1 is queued as soon as fold f-1 has left its
buffer, so DMA overlaps compute; with 1 buffer everything serialises.

The queue order is load 0..buffers-2 (prologue), then per fold f: load
f+buffers-1, write-back f-1; finally write-back F-1. Times are float cycles.
`run_pipeline` is the numba-compiled form of `pipeline_reference` (same code),
so that a 10^4-fold layer costs microseconds.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a dependency; the fallback only keeps the reference usable without it
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None


def pipeline_reference(load, store, fold_latency, interval, buffers, cycles_per_byte, latency):
    """Simulate the fold pipeline. Returns (end, issue, done, ld_start, ld_end, st_start, st_end).

    load/store: bytes per fold (F,); fold_latency: cycles from issue to done (F,);
    interval: cycles from issue f to the earliest issue of f+1 (F,).
    """
    nfold = load.shape[0]
    issue = np.zeros(nfold)
    done = np.zeros(nfold)
    ld_start = np.zeros(nfold)
    ld_end = np.zeros(nfold)
    st_start = np.zeros(nfold)
    st_end = np.zeros(nfold)
    channel = 0.0  # time the DRAM channel becomes free
    # prologue: the loads that need no freed buffer
    for g in range(min(buffers - 1, nfold)):
        if load[g] > 0:
            start = channel
            channel = start + load[g] * cycles_per_byte
            ld_start[g] = start
            ld_end[g] = channel + latency
    end = 0.0
    for f in range(nfold):
        free = issue[f - 1] + interval[f - 1] if f > 0 else 0.0
        g = f + buffers - 1  # the load whose buffer fold f-1 has just freed
        if g < nfold:
            if load[g] > 0:
                start = max(free, channel)
                channel = start + load[g] * cycles_per_byte
                ld_start[g] = start
                ld_end[g] = channel + latency
            else:
                ld_start[g] = free
                ld_end[g] = free
        if f > 0:
            h = f - 1
            if store[h] > 0:
                start = max(done[h], channel)
                channel = start + store[h] * cycles_per_byte
                st_start[h] = start
                st_end[h] = channel + latency
            else:
                st_start[h] = done[h]
                st_end[h] = done[h]
            end = max(end, st_end[h])
        t = max(ld_end[f], free)
        if f >= buffers:
            t = max(t, st_end[f - buffers])
        issue[f] = t
        done[f] = t + fold_latency[f]
    h = nfold - 1
    if store[h] > 0:
        start = max(done[h], channel)
        channel = start + store[h] * cycles_per_byte
        st_start[h] = start
        st_end[h] = channel + latency
    else:
        st_start[h] = done[h]
        st_end[h] = done[h]
    end = max(end, st_end[h], done[h])
    return end, issue, done, ld_start, ld_end, st_start, st_end


_compiled = njit(cache=True, nogil=True)(pipeline_reference) if njit is not None else None


def run_pipeline(load: np.ndarray, store: np.ndarray, fold_latency: np.ndarray,
                 interval: np.ndarray, buffers: int, cycles_per_byte: float,
                 latency: float) -> tuple:
    """`pipeline_reference`, compiled with numba (first call compiles, then cached on disk)."""
    args = (np.ascontiguousarray(load, dtype=np.float64),
            np.ascontiguousarray(store, dtype=np.float64),
            np.ascontiguousarray(fold_latency, dtype=np.float64),
            np.ascontiguousarray(interval, dtype=np.float64),
            int(buffers), float(cycles_per_byte), float(latency))
    fn = _compiled if _compiled is not None else pipeline_reference
    return fn(*args)
