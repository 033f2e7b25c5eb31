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
from llmc.rtl.config import CYCLE_BITS, CoreConfig
from llmc.rtl.emit import (
    Always,
    Assign,
    Comment,
    GenerateFor,
    If,
    Instance,
    Item,
    Localparam,
    Module,
    Net,
    NonBlocking,
    Stmt,
)
from llmc.rtl.gemm_core import buffer_items, core_ports, counter_body

FLUSH = 2  # edges from the end of the last issue cycle to the last write (see the header)


def _zero(bits: int) -> str:
    return f"{bits}'d0"


def _ext(expr: str, bits: int, to: int) -> str:
    """`expr` (`bits` wide) zero-extended to `to` bits."""
    return expr if to == bits else f"{{{{{to - bits}{{1'b0}}}}, {expr}}}"


def core_module(cfg: CoreConfig) -> Module:
    """The weight-stationary GEMM core module for `cfg` (named `cfg.top`)."""
    s = cfg.spec
    mw, nw, kw, sw, rb = cfg.m_bits, cfg.n_bits, cfg.k_bits, cfg.step_bits, cfg.row_bits
    ports = core_ports(cfg, "PE (0,0) takes its weight or multiplies this cycle")
    items: list[Item] = [
        Localparam("ROWS", s.rows),
        Localparam("COLS", s.cols),
        Localparam("IN_BITS", s.in_bits),
        Localparam("ACC_BITS", s.acc_bits),
        Localparam("ROW_BITS", rb),
        Localparam("MA_BITS", cfg.ma_bits, comment="address bits of m, n, k in the buffers"),
        Localparam("NA_BITS", cfg.na_bits),
        Localparam("KA_BITS", cfg.ka_bits),
        Localparam("CA_BITS", cfg.c_addr_bits),
        Localparam("ROWS_K", f"{kw}'d{s.rows}", kw, "R and C at the widths of k and n"),
        Localparam("COLS_N", f"{nw}'d{s.cols}", nw),
        Localparam("ROWS_S", f"{sw}'d{s.rows}", sw, "R at the width of a step"),
        Localparam("P_3", f"{sw}'d{2 * s.rows + s.cols - 3}", sw, "P - 1 - M = 2R + C - 3"),
        Comment(""),
        *buffer_items(cfg),
        Comment(""),
        Comment("Controller state."),
        Net("reg", "issuing", comment="folds are being issued"),
        Net("reg", "m_r", mw, comment="M, N, K latched at start"),
        Net("reg", "n_r", nw),
        Net("reg", "k_r", kw),
        Net("reg", "p_last", sw, comment="P - 1 = 2R + C + M - 3"),
        Net("reg", "k0", kw, comment="tile being issued: rows k0.. of B, cols n0.."),
        Net("reg", "n0", nw),
        Net("reg", "step", sw, comment="cycle of the fold, 0..P-1: preload while < R, then beats"),
        Net("reg", "flush", 2, comment="cycles until the last write"),
        Net("reg", "dk0", kw, comment="tile being drained"),
        Net("reg", "dn0", nw),
        Net("reg", "dstarted", comment="a tile has started draining"),
        Net("reg", "tau", sw, comment="cycles since column 0's first sum of the tile"),
        Net("reg", "counting", comment="the first MAC has happened"),
        Net("reg", "cnt", CYCLE_BITS, comment="edges since the first MAC"),
        Comment(""),
        Net("genvar", "i"),
        Net("genvar", "j"),
        Comment(""),
        Comment("Array edge."),
        Net("wire", "preload", assign="issuing && (step < ROWS_S)", comment="weight row `step`"),
        Net("wire", "ms", sw, assign="step - ROWS_S", comment="beat m = step - R ..."),
        Net("wire", "beat", assign=f"issuing && (step >= ROWS_S) && (ms < {_ext('m_r', mw, sw)})"),
        Net("wire", "wk", kw, assign=f"k0 + {_ext('step[ROW_BITS-1:0]', rb, kw)}",
            comment="row of B being preloaded"),
        Net("wire", "fold_end", assign="issuing && (step == p_last)"),
        Net("wire", "k_wrap", assign="(k0 + ROWS_K) >= k_r", comment="last K tile of its column tile"),
        Net("wire", "last_fold", assign="k_wrap && ((n0 + COLS_N) >= n_r)"),
        Net("wire", "a_edge", s.rows * s.in_bits),
        Net("wire", "w_edge", s.cols * s.in_bits),
        Net("wire", "drain_next"),
        Net("wire", "out_v", s.cols),
        Net("wire", "out_data", s.cols * s.acc_bits),
        Comment(""),
        _a_feed(cfg),
        _w_feed(cfg),
        Instance(
            cfg.array,
            "u_array",
            comment="The systolic array.",
            connections=(
                ("clk", "clk"),
                ("rst", "rst"),
                ("a_edge", "a_edge"),
                ("v_edge", "beat"),
                ("w_load", "preload"),
                ("w_row", "step[ROW_BITS-1:0]"),
                ("w_edge", "w_edge"),
                ("mac_first", "mac_first"),
                ("mac_last", "mac_last"),
                ("drain_next", "drain_next"),
                ("out_v", "out_v"),
                ("out_data", "out_data"),
            ),
        ),
        Comment(""),
        _write_lanes(cfg),
        Comment(""),
        Always("posedge clk", _control_body(cfg), "Fold sequencer."),
        Comment(""),
        Always("posedge clk", _drain_body(cfg), "Drain-side tile iterator, in the issue order."),
        Comment(""),
        Always("posedge clk", counter_body(), "Cycle counter (see the header)."),
    ]
    doc = (
        f"{cfg.top}: int{s.in_bits} GEMM core on a {s.rows}x{s.cols} weight-stationary array.\n"
        "Folds run back to back, P = 2R + C + M - 2 cycles each (SCALE-Sim 3.0);\n"
        "`cycles` = edge of the last MAC of PE (R-1,C-1) - edge of PE (0,0)'s first\n"
        "weight = folds*P - 1 = llmc.hw.array.compute_cycles."
    )
    return Module(cfg.top, ports=ports, items=tuple(items), doc=doc)


def _a_feed(cfg: CoreConfig) -> GenerateFor:
    kw = cfg.k_bits
    items: tuple[Item, ...] = (
        Localparam("OFF", "i", kw),
        Net("wire", "k", kw, assign="k0 + OFF"),
        Net("wire", "on", assign="beat && (k < k_r)", comment="rows past K read zeros"),
        Assign(
            "a_edge[i*IN_BITS +: IN_BITS]",
            "on ? a_mem[{ms[MA_BITS-1:0], k[KA_BITS-1:0]}] : {IN_BITS{1'b0}}",
        ),
    )
    return GenerateFor("i", "ROWS", "g_a_feed", items, "Beat m, array row i: A[m][k0+i].")


def _w_feed(cfg: CoreConfig) -> GenerateFor:
    nw = cfg.n_bits
    items: tuple[Item, ...] = (
        Localparam("OFF", "j", nw),
        Net("wire", "n", nw, assign="n0 + OFF"),
        Net("wire", "on", assign="preload && (wk < k_r) && (n < n_r)",
            comment="weights past K or N are zeros"),
        Assign(
            "w_edge[j*IN_BITS +: IN_BITS]",
            "on ? b_mem[{wk[KA_BITS-1:0], n[NA_BITS-1:0]}] : {IN_BITS{1'b0}}",
        ),
    )
    return GenerateFor("j", "COLS", "g_w_feed", items, "Preload row s, column j: B[k0+s][n0+j].")


def _write_lanes(cfg: CoreConfig) -> GenerateFor:
    mw, nw, sw, kw = cfg.m_bits, cfg.n_bits, cfg.step_bits, cfg.k_bits
    items: tuple[Item, ...] = (
        Localparam("OFF_S", "j", sw),
        Localparam("OFF", "j", nw),
        Net("wire", "m", sw, assign="tau - OFF_S", comment="column j is j cycles behind column 0"),
        Net("wire", "n", nw, assign="dn0 + OFF"),
        Net("wire", "sum", "ACC_BITS", assign="out_data[j*ACC_BITS +: ACC_BITS]"),
        Assign("c_we[j]", f"out_v[j] && (m < {_ext('m_r', mw, sw)}) && (n < n_r)"),
        Assign("c_addr[j*CA_BITS +: CA_BITS]", "{m[MA_BITS-1:0], n[NA_BITS-1:0]}"),
        Assign("c_wdata[j*ACC_BITS +: ACC_BITS]",
               f"(dk0 == {_zero(kw)} ? {{ACC_BITS{{1'b0}}}} : "
               "c_mem[c_addr[j*CA_BITS +: CA_BITS]]) + sum",
               comment="the first K tile writes its sum, later ones add theirs"),
    )
    return GenerateFor("j", "COLS", "g_lane", items,
                       "Write lane j: the sum leaving column j, if inside C.")


def _control_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    mw, nw, kw, sw = cfg.m_bits, cfg.n_bits, cfg.k_bits, cfg.step_bits
    start = (
        NonBlocking("issuing", "1'b1"),
        NonBlocking("busy", "1'b1"),
        NonBlocking("done", "1'b0"),
        NonBlocking("m_r", "cfg_m"),
        NonBlocking("n_r", "cfg_n"),
        NonBlocking("k_r", "cfg_k"),
        NonBlocking("p_last", f"{_ext('cfg_m', mw, sw)} + P_3"),
        NonBlocking("k0", _zero(kw)),
        NonBlocking("n0", _zero(nw)),
        NonBlocking("step", _zero(sw)),
    )
    next_tile = If(
        "last_fold",
        (NonBlocking("issuing", "1'b0"), NonBlocking("flush", f"2'd{FLUSH}")),
        (If(
            "k_wrap",
            (NonBlocking("k0", _zero(kw)), NonBlocking("n0", "n0 + COLS_N")),
            (NonBlocking("k0", "k0 + ROWS_K"),),
        ),),
    )
    issue = If(
        "fold_end",
        (NonBlocking("step", _zero(sw)), next_tile),
        (NonBlocking("step", f"step + {sw}'d1"),),
    )
    finish = If(
        "flush != 2'd0",
        (
            NonBlocking("flush", "flush - 2'd1"),
            If("flush == 2'd1", (NonBlocking("busy", "1'b0"), NonBlocking("done", "1'b1"))),
        ),
    )
    reset = (
        NonBlocking("issuing", "1'b0"),
        NonBlocking("busy", "1'b0"),
        NonBlocking("done", "1'b0"),
        NonBlocking("flush", "2'd0"),
    )
    return (
        If("rst", reset, (If("start && !busy", start, (If("issuing", (issue,), (finish,)),)),)),
    )


def _drain_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    nw, kw, sw = cfg.n_bits, cfg.k_bits, cfg.step_bits
    advance = If(
        "(dk0 + ROWS_K) >= k_r",
        (NonBlocking("dk0", _zero(kw)), NonBlocking("dn0", "dn0 + COLS_N")),
        (NonBlocking("dk0", "dk0 + ROWS_K"),),
    )
    clear = (
        NonBlocking("dk0", _zero(kw)),
        NonBlocking("dn0", _zero(nw)),
        NonBlocking("dstarted", "1'b0"),
        NonBlocking("tau", _zero(sw)),
    )
    on_next = (NonBlocking("dstarted", "1'b1"), NonBlocking("tau", _zero(sw)),
               If("dstarted", (advance,)))
    return (If("rst || (start && !busy)", clear,
               (If("drain_next", on_next, (NonBlocking("tau", f"tau + {sw}'d1"),)),)),)
