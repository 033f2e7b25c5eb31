"""Generate the weight-stationary GEMM core: the OS core's ports and buffers
(`llmc.rtl.gemm_core`), a fold controller for weight-stationary folds, write
lanes that accumulate partial sums in C, and the array (`llmc.rtl.array_ws`).

Schedule (SCALE-Sim 3.0's weight-stationary mapping, llmc.hw.array: K on the
array rows, N on the columns, M streamed): folds are tiles of R rows of K ×
C columns of N, column tiles outer, K tiles inner. Each fold preloads its
weight tile (R cycles, a PE row per cycle), issues the M rows of A (M beats),
then R + C − 2 idle cycles while the last beat crosses the array, so it
occupies exactly P = 2R + C + M − 2 issue cycles, and the next fold's preload
follows immediately. Partial tiles (K or N not multiples of R or C) pay the
full P with zero weights and activations and masked writes.

Column j's sums leave the array in row order, one per cycle; the first fold
of K writes them to C[m][n0+j] and every later fold adds them to it (a
read-modify-write of c_mem), so the host sees each C[m][n] written once per
fold of K, the last time with the final value.

`cycles` = (rising edge at which PE (R−1,C−1) makes the GEMM's last MAC) −
(rising edge at which PE (0,0) takes its first weight), which is folds·P − 1
= `llmc.hw.array.compute_cycles` for the same shape. From the edge that
samples `start` to the edge that raises `done` the core adds 3 edges: one to
latch the command, one for the edge register of the weight path (before PE
(0,0)'s first weight) and one to write the last sum after the last MAC.
"""

from __future__ import annotations

from llmc.rtl.array_ws import BLOCKS as BLOCKS  # noqa: F401 - the blocks of a ws core
from llmc.rtl.config import CoreConfig
from llmc.rtl.emit import Assign, GenerateFor, If, Item, Localparam, Module, Net, NonBlocking, Stmt
from llmc.rtl.gemm_core import (
    assemble_core,
    edge_feed,
    sequencer_body,
    tile_advance,
    zero,
    zext,
)

FLUSH = 2  # edges from the end of the last issue cycle to the last write (see the header)


def core_module(cfg: CoreConfig) -> Module:
    """The weight-stationary GEMM core module for `cfg` (named `cfg.top`)."""
    s = cfg.spec
    mw, nw, kw, sw, rb = cfg.m_bits, cfg.n_bits, cfg.k_bits, cfg.step_bits, cfg.row_bits
    params: list[Item] = [
        Localparam("ROWS_K", f"{kw}'d{s.rows}", kw, "R and C at the widths of k and n"),
        Localparam("COLS_N", f"{nw}'d{s.cols}", nw),
        Localparam("ROWS_S", f"{sw}'d{s.rows}", sw, "R at the width of a step"),
        Localparam("P_3", f"{sw}'d{2 * s.rows + s.cols - 3}", sw, "P - 1 - M = 2R + C - 3"),
    ]
    state: list[Item] = [
        Net("reg", "p_last", sw, comment="P - 1 = 2R + C + M - 3"),
        Net("reg", "k0", kw, comment="tile being issued: rows k0.. of B, cols n0.."),
        Net("reg", "n0", nw),
        Net("reg", "step", sw, comment="cycle of the fold, 0..P-1: preload while < R, then beats"),
        Net("reg", "flush", 2, comment="cycles until the last write"),
        Net("reg", "dk0", kw, comment="tile being drained"),
        Net("reg", "dn0", nw),
        Net("reg", "dstarted", comment="a tile has started draining"),
        Net("reg", "tau", sw, comment="cycles since column 0's first sum of the tile"),
    ]
    edge: list[Item] = [
        Net("wire", "preload", assign="issuing && (step < ROWS_S)", comment="weight row `step`"),
        Net("wire", "ms", sw, assign="step - ROWS_S", comment="beat m = step - R ..."),
        Net("wire", "beat", assign=f"issuing && (step >= ROWS_S) && (ms < {zext('m_r', mw, sw)})"),
        Net("wire", "wk", kw, assign=f"k0 + {zext('step[ROW_BITS-1:0]', rb, kw)}",
            comment="row of B being preloaded"),
        Net("wire", "fold_end", assign="issuing && (step == p_last)"),
        Net("wire", "k_wrap", assign="(k0 + ROWS_K) >= k_r", comment="last K tile of its column tile"),
        Net("wire", "last_fold", assign="k_wrap && ((n0 + COLS_N) >= n_r)"),
        Net("wire", "a_edge", s.rows * s.in_bits),
        Net("wire", "w_edge", s.cols * s.in_bits),
        Net("wire", "drain_next"),
        Net("wire", "out_v", s.cols),
        Net("wire", "out_data", s.cols * s.acc_bits),
    ]
    feeds: list[Item] = [
        edge_feed("a_edge", "k", "k0", kw, "beat && (k < k_r)", "rows past K read zeros",
                  "a_mem[{ms[MA_BITS-1:0], k[KA_BITS-1:0]}]", "Beat m, array row i: A[m][k0+i]."),
        edge_feed("w_edge", "n", "n0", nw, "preload && (wk < k_r) && (n < n_r)",
                  "weights past K or N are zeros", "b_mem[{wk[KA_BITS-1:0], n[NA_BITS-1:0]}]",
                  "Preload row s, column j: B[k0+s][n0+j]."),
    ]
    doc = (
        f"{cfg.top}: int{s.in_bits} GEMM core on a {s.rows}x{s.cols} weight-stationary array.\n"
        "Folds run back to back, P = 2R + C + M - 2 cycles each (SCALE-Sim 3.0);\n"
        "`cycles` = edge of the last MAC of PE (R-1,C-1) - edge of PE (0,0)'s first\n"
        "weight = folds*P - 1 = llmc.hw.array.compute_cycles."
    )
    return assemble_core(
        cfg,
        first="PE (0,0) takes its weight or multiplies this cycle",
        doc=doc,
        params=params,
        k_bits=kw,
        state=state,
        edge=edge,
        feeds=feeds,
        inputs=(("w_load", "preload"), ("w_row", "step[ROW_BITS-1:0]"), ("w_edge", "w_edge")),
        outputs=(("drain_next", "drain_next"), ("out_v", "out_v"), ("out_data", "out_data")),
        lanes=_write_lanes(cfg),
        control=_control_body(cfg),
        drain=_drain_body(cfg),
    )


def _write_lanes(cfg: CoreConfig) -> GenerateFor:
    mw, nw, sw, kw = cfg.m_bits, cfg.n_bits, cfg.step_bits, cfg.k_bits
    items: tuple[Item, ...] = (
        Localparam("OFF_S", "j", sw),
        Localparam("OFF", "j", nw),
        Net("wire", "m", sw, assign="tau - OFF_S", comment="column j is j cycles behind column 0"),
        Net("wire", "n", nw, assign="dn0 + OFF"),
        Net("wire", "sum", "ACC_BITS", assign="out_data[j*ACC_BITS +: ACC_BITS]"),
        Assign("c_we[j]", f"out_v[j] && (m < {zext('m_r', mw, sw)}) && (n < n_r)"),
        Assign("c_addr[j*CA_BITS +: CA_BITS]", "{m[MA_BITS-1:0], n[NA_BITS-1:0]}"),
        Assign("c_wdata[j*ACC_BITS +: ACC_BITS]",
               f"(dk0 == {zero(kw)} ? {{ACC_BITS{{1'b0}}}} : "
               "c_mem[c_addr[j*CA_BITS +: CA_BITS]]) + sum",
               comment="the first K tile writes its sum, later ones add theirs"),
    )
    return GenerateFor("j", "COLS", "g_lane", items,
                       "Write lane j: the sum leaving column j, if inside C.")


def _control_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    mw, nw, kw, sw = cfg.m_bits, cfg.n_bits, cfg.k_bits, cfg.step_bits
    return sequencer_body(
        cfg,
        p_last=f"{zext('cfg_m', mw, sw)} + P_3",
        tile_start=(NonBlocking("k0", zero(kw)), NonBlocking("n0", zero(nw))),
        advance=tile_advance("k_wrap", "k0", kw, "ROWS_K", "n0", "COLS_N"),
        flush_bits=2,
        flush=f"2'd{FLUSH}",
    )


def _drain_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    nw, kw, sw = cfg.n_bits, cfg.k_bits, cfg.step_bits
    advance = tile_advance("(dk0 + ROWS_K) >= k_r", "dk0", kw, "ROWS_K", "dn0", "COLS_N")
    clear = (
        NonBlocking("dk0", zero(kw)),
        NonBlocking("dn0", zero(nw)),
        NonBlocking("dstarted", "1'b0"),
        NonBlocking("tau", zero(sw)),
    )
    on_next = (NonBlocking("dstarted", "1'b1"), NonBlocking("tau", zero(sw)),
               If("dstarted", (advance,)))
    return (If("rst || (start && !busy)", clear,
               (If("drain_next", on_next, (NonBlocking("tau", f"tau + {sw}'d1"),)),)),)
