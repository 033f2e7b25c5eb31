"""Lowering on small graphs: tiled int8/int4 linears (bit-exact, double-buffered
DMA that hides behind compute), shape-only timing equal to the executing
run's, and views that strides cannot express."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.backends.npu.backend import build, dram_image, machine, read_outputs, run_phase
from llmc.errors import UsageError
from llmc.hw.database import get_device
from llmc.ir import dtypes, interpret
from llmc.ir.graph import Builder, Graph
from llmc.ir.pack import pack_int4
from llmc.ir.types import TensorType
from llmc.passes.memplan import check_plan, plan, plan_to_json
from llmc.passes.memplan.liveness import liveness

DEV = get_device("edge-npu")


def plan_json(g: Graph) -> dict:
    problem = liveness(g).problem
    p = plan(problem)
    check_plan(problem, p, None)
    return plan_to_json(problem, p, timing=False)


def linear(m: int, k: int, n: int, int4: bool = False, group: int = 0) -> Graph:
    rng = np.random.default_rng(0)
    g = Graph("lin_prefill")
    b = Builder(g)
    x = b.input("x", TensorType((1, m, k), dtypes.i8))
    w = rng.integers(-8 if int4 else -127, 8 if int4 else 128, (n, k))
    if int4:
        wv = b.param("w", TensorType((n, k // 2), dtypes.u8, "int4x2_lane32"), pack_int4(w))
    else:
        wv = b.param("w", TensorType((n, k), dtypes.i8), w.astype(np.int8))
    ins, attrs = [x, wv], {}
    if group:
        ins.append(b.param("gs", TensorType((n, k // group), dtypes.u8),
                           rng.integers(1, 256, (n, k // group)).astype(np.uint8)))
        attrs = {"group": group}
    y = b.add("int_linear", ins, attrs, "y").out()
    r = b.add("requant", [y], {"mult": 1 << 20, "shift": 28, "dtype": dtypes.i8}, "r").out()
    g.outputs = [y, r]
    return g


def run(g: Graph, *xs: np.ndarray) -> tuple[list[np.ndarray], object, object]:
    graphs = {"prefill": g}
    image, io, dram = build(graphs, {"prefill": plan_json(g)}, DEV)
    sim = machine(image, DEV, np.frombuffer(dram_image(graphs, io["params"], dram.size),
                                            np.uint8).copy())
    st = run_phase(sim, io["prefill"], "prefill", list(xs))
    return read_outputs(sim, io["prefill"]), st, image


@pytest.mark.parametrize("int4,group", [(False, 0), (True, 0), (True, 64)])
def test_tiled_linear_is_bit_exact(int4: bool, group: int) -> None:
    g = linear(16, 1024, 1300, int4, group)      # several tiles and a partial one
    x = np.random.default_rng(1).integers(-127, 128, (1, 16, 1024)).astype(np.int8)
    got, st, image = run(g, x)
    for a, b in zip(got, interpret(g, [x]), strict=True):
        assert np.array_equal(a, b)
    text = [i.op for i in image.programs[0].instrs]
    assert "loop" in text and "endloop" in text
    assert st.macs == 16 * 1024 * 1300


@pytest.mark.parametrize("k,int4,group", [(4096, False, 0), (8192, True, 64)])
def test_wide_reductions_split_into_accumulating_tiles(k: int, int4: bool, group: int) -> None:
    g = linear(4, k, 200, int4, group)            # 128 whole rows exceed a 256 KiB bank
    x = np.random.default_rng(2).integers(-127, 128, (1, 4, k)).astype(np.int8)
    got, _, image = run(g, x)
    for a, b in zip(got, interpret(g, [x]), strict=True):
        assert np.array_equal(a, b)
    mm = [i for i in image.programs[0].instrs if i.op == "matmul"]
    assert len(mm) == 4 and [i.flags[0] for i in mm] == [0, 1, 0, 1]   # 2 row blocks x 2


def test_weight_dma_hides_behind_compute() -> None:
    """Many tiles with compute longer than a tile's DMA: with double buffering
    only the first tile's load is exposed, so stalls are far below the DMA time."""
    m, k, n = 512, 1024, 2048
    g = linear(m, k, n)
    x = np.zeros((1, m, k), np.int8)
    _, st, _ = run(g, x)
    rows = 128 * (8 * 2**20 // 32 // (128 * k))   # one 256 KiB bank per tile
    tiles = n // rows
    hw = machine(build({"prefill": g}, {"prefill": plan_json(g)}, DEV)[0], DEV).hw
    tile = hw.dram_latency_cycles + rows * k / hw.dram_bytes_per_cycle
    other_dma = st.dma_cycles - tiles * tile           # input x, outputs
    exposed = st.cycles - st.array_cycles - st.vector_cycles
    assert tiles >= 4 and tiles * tile > 2 * tile
    # only the first weight tile waits; serial loads would expose all of them
    assert exposed < other_dma + 1.5 * tile


def test_shape_only_timing_equals_the_executing_run() -> None:
    g = linear(8, 512, 384, True, 64)
    x = np.ones((1, 8, 512), np.int8)
    _, st, image = run(g, x)
    shape_only = machine(image, DEV, execute=False).run("prefill")
    assert (shape_only.cycles, shape_only.macs, shape_only.energy_pj) == \
        (st.cycles, st.macs, st.energy_pj)


def test_a_view_strides_cannot_express_is_copied() -> None:
    g = Graph("v_prefill")
    b = Builder(g)
    x = b.input("x", TensorType((2, 3, 4), dtypes.i16))
    p = b.add("permute", [x], {"perm": [1, 0, 2]}, "p").out()          # (3, 2, 4)
    r = b.add("reshape", [p], {"shape": [3, 8]}, "r").out()            # merges across
    w = b.add("cast", [r], {"dtype": dtypes.i32}, "w").out()
    s = b.add("add", [w, w], {}, "s").out()
    g.outputs = [s]
    xv = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    got, _, _ = run(g, xv)
    assert np.array_equal(got[0], interpret(g, [xv])[0])


def test_activations_beyond_the_scratchpad_are_refused_with_sizes() -> None:
    g = linear(2048, 1024, 2048)          # an 8 MiB int32 output alone fills the scratchpad
    with pytest.raises(UsageError, match=r"@lin_prefill needs [\d,]+ bytes of scratchpad "
                                         r"\(arena [\d,]+, scratch [\d,]+, weight tiles "
                                         r"[\d,]+\); the NPU has 8,388,608: compile with a "
                                         r"shorter --seq-len"):
        build({"prefill": g}, {"prefill": plan_json(g)}, DEV)
