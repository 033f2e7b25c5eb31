"""Activations beyond the scratchpad: llmc-tiny's prefill on an NPU whose
scratchpad is too small for its unspilled plan is row-tiled (tile-rows pass),
planned within the room the lowering leaves (spills to DRAM), and its
logits and K/V stay bit-identical to the interpreter's."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from llmc import api
from llmc.backends.npu.backend import (
    NpuBackend,
    build,
    dram_image,
    machine,
    read_outputs,
    run_phase,
)
from llmc.backends.npu.fit import fit_phase, reserve
from llmc.errors import UsageError
from llmc.hw.database import get_device
from llmc.ir import interpret
from llmc.ir.verify import verify
from llmc.passes.memplan import greedy_by_size, lower_bound, plan_to_json
from llmc.passes.memplan.liveness import liveness

SEQ = 40
EDGE = get_device("edge-npu")


def small_npu(spad_bytes: int) -> object:
    """edge-npu with a scratchpad of `spad_bytes` (everything else as it is)."""
    return dataclasses.replace(EDGE, scratchpad=dataclasses.replace(
        EDGE.scratchpad, capacity_bytes=spad_bytes))


@functools.cache
def tiny_prefill(scheme: str = "w8a8-int") -> object:
    from llmc.api import _run_phases, load_model, pipeline_stages
    from llmc.hw.targets import get_target
    from llmc.passes.manager import PassContext

    tgt = get_target("npu")
    graphs, _, _ = _run_phases(load_model("llmc-tiny"), pipeline_stages(tgt, scheme),
                               PassContext(device=tgt.device), 1, SEQ, lambda s: None)
    return graphs["prefill"]


def prompt() -> np.ndarray:
    tokens = np.zeros((1, SEQ), np.int64)
    tokens[0, :7] = list(b"The cat")
    return tokens


def test_a_small_scratchpad_tiles_rows_spills_and_stays_bit_exact() -> None:
    g = tiny_prefill()
    dev = small_npu(192 * 1024)
    spad = dev.scratchpad.capacity_bytes
    # the graph as compiled for edge-npu does not fit: its plan and scratch exceed 192 KiB
    problem = liveness(g).problem
    whole = greedy_by_size(problem)
    assert max(whole.arena_bytes, lower_bound(problem)) + reserve(g, dev) > spad
    with pytest.raises(UsageError, match="bytes of scratchpad"):
        build({"prefill": g}, {"prefill": plan_to_json(problem, whole, timing=False)}, dev)

    graphs, arenas = NpuBackend().fit({"prefill": g}, dev)
    fit = fit_phase(g, dev)
    tiled = graphs["prefill"]
    verify(tiled)
    assert fit.tiles >= 2 and arenas["prefill"] == fit.arena_bytes
    assert fit.arena_bytes + fit.reserve_bytes <= spad
    mp = api.plan_memory(tiled, arena_bytes=arenas["prefill"])
    assert mp.json["spills"]["buffers"] > 0 and mp.json["arena_bytes"] <= arenas["prefill"]

    image, io, dram = build(graphs, {"prefill": mp.json}, dev)
    comments = [i.comment for i in image.programs[0].instrs if i.op == "dma"]
    assert any("spill %" in c for c in comments) and any("reload %" in c for c in comments)
    sim = machine(image, dev, np.frombuffer(dram_image(graphs, io["params"], dram.size),
                                            np.uint8).copy())
    x = prompt()
    run_phase(sim, io["prefill"], "prefill", [x])
    got, want = read_outputs(sim, io["prefill"]), interpret(g, [x])
    assert len(got) == len(want) == 13            # logits and every layer's K and V
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_the_edge_npu_keeps_llmc_tiny_as_compiled() -> None:
    g = tiny_prefill()
    fit = fit_phase(g, EDGE)
    assert fit.graph is g and fit.tiles == 1
    assert greedy_by_size(liveness(g).problem).arena_bytes <= fit.arena_bytes


def test_a_scratchpad_too_small_for_one_row_is_refused_with_sizes() -> None:
    with pytest.raises(UsageError, match=r"no tiling fits the arena of [\d,]+ bytes: in 40 "
                                         r"row tile\(s\), the finest"):
        fit_phase(tiny_prefill(), small_npu(96 * 1024))


def test_last_logits_keeps_the_last_row_and_the_kv() -> None:
    from llmc.backends.npu.fit import last_logits

    g = tiny_prefill()
    last = last_logits(g)
    verify(last)
    x = prompt()
    got, want = interpret(last, [x]), interpret(g, [x])
    assert got[0].shape == (1, 1, want[0].shape[-1])
    assert np.array_equal(got[0][0, 0], want[0][0, -1])
    for a, b in zip(got[1:], want[1:], strict=True):
        assert np.array_equal(a, b)


def test_last_logits_of_a_row_tiled_graph_is_the_last_tiles_last_row() -> None:
    from llmc.backends.npu.fit import host_last, last_logits
    from llmc.passes.tile_rows import tile_rows

    g = tiny_prefill()
    tiled = last_logits(host_last(tile_rows(g, 3)))
    verify(tiled)
    assert sum(n.op == "int_linear" and n.loc == "lm_head" for n in tiled.nodes) == 1
    x = prompt()
    got, want = interpret(tiled, [x]), interpret(g, [x])
    assert np.array_equal(got[0][0, 0], want[0][0, -1])
    for a, b in zip(got[1:], want[1:], strict=True):
        assert np.array_equal(a, b)
