"""Generate the R×C weight-stationary systolic array module (PEs, skews, hops).

Dataflow (weight-stationary, as in SCALE-Sim and llmc.hw.array: K on the
rows, N on the columns, M streamed): PE (i, j) holds the weight
B[k0+i][n0+j] of the fold being computed. A fold has two phases:

* preload, R cycles: cycle s writes row s of the weight tile (column j:
  B[k0+s][n0+j] on `w_edge`) into PE row s (`w_load`, `w_row` = s);
* stream, M beats: beat m carries row m of the A tile into the left edge
  (row i: A[m][k0+i]). Row i is delayed i+1 cycles by its skew line and a hop
  register passes the activation one PE to the right per cycle; the partial
  sum of output row m enters the top of column j as 0, each PE adds
  a·w and passes it down, and it leaves the bottom of column j
  R + j + 1 cycles after beat m entered the edge:

      a_edge ─▶ skew(1) ─▶ PE00 ─hop▶ PE01 ─hop▶ …      (w_edge: preload only)
      a_edge ─▶ skew(2) ─▶ PE10 ─hop▶ PE11 ─hop▶ …      psums flow down ▼
                                                        out_v / out_data (C lanes)

The weight path (w_edge, w_load, w_row through one edge register) is as long
as an activation's path to PE (0,0) (its skew stage), so a preload cycle and a
beat issued in the same cycle would reach PE (0,0) at the same edge: the fold
occupies P = 2R + C + M − 2 issue cycles (llmc.hw.array.fold_cycles) and the
next fold's preload may start right after without disturbing a MAC.

Hop registers exist only where a neighbour reads them, and the beat flag
rides along the bottom row alone (it marks the sums leaving each column), so
every net has a driver and a reader. `mac_first` says PE (0,0) loads its
weight or multiplies this cycle (the first is the GEMM's first preload),
`mac_last` that PE (R−1,C−1) multiplies a beat: the core's cycle counter and
the testbench's monitor time the GEMM by them. `drain_next` says column 0
outputs the first sum of a fold in the next cycle.
"""

from __future__ import annotations

from llmc.rtl.array_os import array_head, flag_chain, genvars, hop, link, row_hops
from llmc.rtl.config import CoreConfig
from llmc.rtl.emit import (
    Assign,
    Comment,
    GenerateFor,
    Instance,
    Item,
    Localparam,
    Module,
    Net,
    Port,
)

BLOCKS = ("llmc_skew", "llmc_mac_ws")


def array_module(cfg: CoreConfig) -> Module:
    """The weight-stationary array module for `cfg` (named `cfg.array`)."""
    s = cfg.spec
    r, c, ib, ab, rb = s.rows, s.cols, s.in_bits, s.acc_bits, cfg.row_bits
    head, params = array_head(cfg, "partial-sum width (wraps)")
    ports = (
        *head,
        Port("w_load", "input", comment="preload: write a row of weights ..."),
        Port("w_row", "input", rb, "... into PE row w_row ..."),
        Port("w_edge", "input", c * ib, "... column j's at [j*IN_BITS +: IN_BITS]"),
        Port("mac_first", "output", comment="PE (0,0) loads its weight or multiplies"),
        Port("mac_last", "output", comment="PE (R-1,C-1) multiplies a beat this cycle"),
        Port("drain_next", "output", comment="column 0 outputs a fold's first sum next cycle"),
        Port("out_v", "output", c, "column j outputs a sum ..."),
        Port("out_data", "output", c * ab, "... out_data[j*ACC_BITS +: ACC_BITS]"),
    )
    items: list[Item] = [
        *params,
        Net("wire", "a_l", "IN_BITS", "ROWS*COLS", comment="activation, rightwards"),
        Net("wire", "p_in", "ACC_BITS", "ROWS*COLS", comment="partial sum from above"),
        Net("wire", "p_out", "ACC_BITS", "ROWS*COLS", comment="partial sum, downwards"),
        Net("wire", "v_in", None, "COLS", comment="beat flag into PE (R-1, j)"),
        Net("wire", "v_out", None, "COLS", comment="... one cycle later: column j's sum"),
        Net("wire", "w_en", None, "ROWS", comment="PE row i takes its weights"),
        Net("wire", "v_first", comment="a beat at PE (0,0)"),
        Net("wire", "wl_q", comment="the weight path's edge register"),
        Net("wire", "wr_q", "ROW_BITS"),
        Net("wire", "w_q", "COLS*IN_BITS"),
        *genvars(),
        Instance("llmc_skew", "u_w_edge",
                 params=(("WIDTH", "1 + ROW_BITS + COLS*IN_BITS"), ("DEPTH", 1)),
                 connections=(("clk", "clk"), ("rst", "rst"), ("d", "{w_load, w_row, w_edge}"),
                              ("q", "{wl_q, wr_q, w_q}")),
                 comment="Weights enter through one register, like operands through skew stage 0."),
        GenerateFor("i", "ROWS", "g_w_en", (
            Localparam("ROW", "i", rb),
            Assign("w_en[i]", "wl_q && (wr_q == ROW)"),
        ), "Row decoder of the preload."),
        _row_skews(),
        _row_hops(),
        *_beat_flag(),
        *_psum_links(),
        _pes(),
        Comment(""),
        Assign("mac_first", "w_en[0] || v_first"),
        Assign("mac_last", "v_in[COLS-1]"),
        Assign("drain_next", "v_in[0] && !v_out[0]"),
    ]
    doc = (
        f"{cfg.array}: {r}x{c} weight-stationary systolic array, "
        f"int{ib} x int{ib} -> int{ab}.\n"
        "Weights are preloaded a row per cycle; activations enter unskewed at the left\n"
        "edge and partial sums leave the bottom; skew lines and PEs are the hand-written\n"
        "llmc_skew and llmc_mac_ws blocks; hop registers between PEs are written inline."
    )
    return Module(cfg.array, ports=ports, items=tuple(items), doc=doc)


def _row_skews() -> GenerateFor:
    inst = Instance(
        "llmc_skew",
        "u_skew",
        params=(("WIDTH", "IN_BITS"), ("DEPTH", "i + 1")),
        connections=(("clk", "clk"), ("rst", "rst"), ("d", "a_edge[i*IN_BITS +: IN_BITS]"),
                     ("q", f"a_l[{link('i', '0')}]")),
    )
    return GenerateFor("i", "ROWS", "g_row_skew", (inst,),
                       "Row i of the activations enters i+1 cycles late.")


def _row_hops() -> GenerateFor:
    return row_hops(hop("a_q", "IN_BITS", f"a_l[{link('i', 'j')}]", f"a_l[{link('i', 'j+1')}]"))


def _beat_flag() -> tuple[Item, ...]:
    first = Instance(
        "llmc_skew", "u_v_first", params=(("WIDTH", 1), ("DEPTH", 1)),
        connections=(("clk", "clk"), ("rst", "rst"), ("d", "v_edge"), ("q", "v_first")),
        comment="The beat flag reaches PE (0,0) with row 0's activation ...",
    )
    skew = Instance(
        "llmc_skew", "u_v_skew", params=(("WIDTH", 1), ("DEPTH", "ROWS")),
        connections=(("clk", "clk"), ("rst", "rst"), ("d", "v_edge"), ("q", "v_in[0]")),
        comment="... and PE (R-1, 0) with row R-1's,",
    )
    return first, skew, *flag_chain(
        "v_q", "v_in", "v_out", "g_beat",
        "passes PE (R-1, j) with the sum it makes, into column j's output ...")


def _psum_links() -> tuple[Item, ...]:
    top = GenerateFor("j", "COLS", "g_psum_top",
                      (Assign(f"p_in[{link('0', 'j')}]", "{ACC_BITS{1'b0}}"),),
                      "Partial sums: 0 into the top row, ...")
    inner = GenerateFor("j", "COLS", "g_col",
                        (Assign(f"p_in[{link('i+1', 'j')}]", f"p_out[{link('i', 'j')}]"),))
    down = GenerateFor("i", "ROWS-1", "g_psum_down", (inner,), "PE (i, j) into PE (i+1, j), ...")
    out = GenerateFor("j", "COLS", "g_psum_out",
                      (Assign("out_v[j]", "v_out[j]"),
                       Assign("out_data[j*ACC_BITS +: ACC_BITS]", f"p_out[{link('ROWS-1', 'j')}]")),
                      "... and the bottom row's out of the array.")
    return top, down, out


def _pes() -> GenerateFor:
    pe = Instance(
        "llmc_mac_ws",
        "u_pe",
        params=(("IN_BITS", "IN_BITS"), ("ACC_BITS", "ACC_BITS")),
        connections=(
            ("clk", "clk"),
            ("w_load", "w_en[i]"),
            ("w_in", "w_q[j*IN_BITS +: IN_BITS]"),
            ("a_in", f"a_l[{link('i', 'j')}]"),
            ("psum_in", f"p_in[{link('i', 'j')}]"),
            ("psum_out", f"p_out[{link('i', 'j')}]"),
        ),
    )
    return GenerateFor("j", "COLS", "g_col", (GenerateFor("i", "ROWS", "g_pe", (pe,)),),
                       "Column j: its R PEs (g_col[j].g_pe[i].u_pe).")
