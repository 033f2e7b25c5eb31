"""Generate the R×C output-stationary systolic array module (PEs, skew, drains).

Dataflow (output-stationary, as in SCALE-Sim): PE (i, j) owns C[m0+i][n0+j]
of the fold being computed. Beat k of a fold carries column k of the A tile
into the left edge (row i: A[m0+i][k]) and row k of the B tile into the top
edge (column j: B[k][n0+j]). Row i is delayed i+1 cycles by its skew line and
column j by j+1, and each PE forwards both one hop per cycle, so operand k
meets at PE (i, j) at cycle k + i + j + 1 after it entered the edge:

    a_edge ─▶ skew(1) ─▶ PE00 ─▶ PE01 ─▶ …          b_edge
    a_edge ─▶ skew(2) ─▶ PE10 ─▶ PE11 ─▶ …     skew(1) skew(2) … (down)

The beat flags {v, first, last} ride with the row operand. When the `last`
flag leaves the bottom PE of column j, that column's drain copies its R sums
and shifts them out, one per cycle (row R−1 first), on `c_valid[j]`,
`c_row[j]`, `c_data[j]`; `drain_start` marks column 0's copy.
`mac_first` / `mac_last` say that PE (0,0) / PE (R−1,C−1) accumulates in this
cycle: the core's cycle counter and the testbench's monitor time the GEMM by
them.
"""

from __future__ import annotations

from llmc.rtl.config import CoreConfig
from llmc.rtl.emit import (
    Assign,
    Comment,
    GenerateFor,
    Instance,
    Item,
    Lint,
    Localparam,
    Module,
    Net,
    Port,
)

BLOCKS = ("llmc_skew", "llmc_mac_os", "llmc_drain")

# A row word on the horizontal links: {v, first, last, a}.
_V, _FIRST, _LAST = "IN_BITS + 2", "IN_BITS + 1", "IN_BITS"


def _h(i: str, j: str) -> str:
    """Base bit of the row word entering PE (i, j) (j = COLS: leaving the array)."""
    return f"(({i})*(COLS+1) + ({j}))*FW"


def _vb(i: str, j: str) -> str:
    """Base bit of the column operand entering PE (i, j) (i = ROWS: leaving)."""
    return f"(({i})*COLS + ({j}))*IN_BITS"


def array_module(cfg: CoreConfig) -> Module:
    """The array module for `cfg` (named `cfg.array`)."""
    s = cfg.spec
    r, c, ib, ab, rb = s.rows, s.cols, s.in_bits, s.acc_bits, cfg.row_bits
    ports = (
        Port("clk", "input"),
        Port("rst", "input", comment="synchronous, active high"),
        Port("a_edge", "input", r * ib, "beat of A: row i at [i*IN_BITS +: IN_BITS]"),
        Port("v_edge", "input", comment="a beat is present"),
        Port("first_edge", "input", comment="first beat of a fold"),
        Port("last_edge", "input", comment="last beat of a fold"),
        Port("b_edge", "input", c * ib, "beat of B: column j at [j*IN_BITS +: IN_BITS]"),
        Port("mac_first", "output", comment="PE (0,0) accumulates this cycle"),
        Port("mac_last", "output", comment="PE (R-1,C-1) accumulates this cycle"),
        Port("drain_start", "output", comment="column 0 copies a finished fold's sums"),
        Port("c_valid", "output", c, "column j drains a sum"),
        Port("c_row", "output", c * rb, "... of row c_row[j*ROW_BITS +: ROW_BITS]"),
        Port("c_data", "output", c * ab, "... with value c_data[j*ACC_BITS +: ACC_BITS]"),
    )
    items: list[Item] = [
        Localparam("ROWS", r),
        Localparam("COLS", c),
        Localparam("IN_BITS", ib, comment="operand width (two's complement)"),
        Localparam("ACC_BITS", ab, comment="accumulator width (wraps)"),
        Localparam("ROW_BITS", rb, comment="bits of a row index"),
        Localparam("FW", "IN_BITS + 3", comment="row word: {v, first, last, a}"),
        Comment(""),
        Lint(
            ("UNUSEDSIGNAL",),
            "Links leaving the right and bottom edges of the array are not read.",
            (
                Net("wire", "h", "ROWS*(COLS+1)*FW", comment="row word into PE (i, j)"),
                Net("wire", "vb", "(ROWS+1)*COLS*IN_BITS", comment="B operand into PE (i, j)"),
            ),
        ),
        Net("wire", "acc", "ROWS*COLS*ACC_BITS", comment="sum of PE (i, j) at (j*ROWS + i)"),
        Net("genvar", "i"),
        Net("genvar", "j"),
        Comment(""),
        _row_skews(),
        _col_skews(),
        _pe_grid(),
        _drains(),
        Comment(""),
        Assign("mac_first", f"h[{_h('0', '0')} + {_V}]"),
        Assign("mac_last", f"h[{_h('ROWS-1', 'COLS-1')} + {_V}]"),
        Assign("drain_start", f"h[{_h('ROWS-1', '1')} + {_LAST}]"),
    ]
    doc = (
        f"{cfg.array}: {r}x{c} output-stationary systolic array, "
        f"int{ib} x int{ib} -> int{ab}.\n"
        "Operands enter unskewed at the edges; skew lines, PEs and column drains\n"
        "are the hand-written llmc_skew, llmc_mac_os and llmc_drain blocks."
    )
    return Module(cfg.array, ports=ports, items=tuple(items), doc=doc)


def _row_skews() -> GenerateFor:
    word = "{v_edge, first_edge, last_edge, a_edge[i*IN_BITS +: IN_BITS]}"
    inst = Instance(
        "llmc_skew",
        "u_skew",
        params=(("WIDTH", "FW"), ("DEPTH", "i + 1")),
        connections=(("clk", "clk"), ("rst", "rst"), ("d", word), ("q", f"h[{_h('i', '0')} +: FW]")),
    )
    return GenerateFor("i", "ROWS", "g_row_skew", (inst,), "Row i of A enters i+1 cycles late.")


def _col_skews() -> GenerateFor:
    inst = Instance(
        "llmc_skew",
        "u_skew",
        params=(("WIDTH", "IN_BITS"), ("DEPTH", "j + 1")),
        connections=(
            ("clk", "clk"),
            ("rst", "rst"),
            ("d", "b_edge[j*IN_BITS +: IN_BITS]"),
            ("q", f"vb[{_vb('0', 'j')} +: IN_BITS]"),
        ),
    )
    return GenerateFor("j", "COLS", "g_col_skew", (inst,), "Column j of B enters j+1 cycles late.")


def _pe_grid() -> GenerateFor:
    here, right, below = _h("i", "j"), _h("i", "j+1"), _vb("i+1", "j")
    inst = Instance(
        "llmc_mac_os",
        "u_pe",
        params=(("IN_BITS", "IN_BITS"), ("ACC_BITS", "ACC_BITS")),
        connections=(
            ("clk", "clk"),
            ("rst", "rst"),
            ("a_in", f"h[{here} +: IN_BITS]"),
            ("v_in", f"h[{here} + {_V}]"),
            ("first_in", f"h[{here} + {_FIRST}]"),
            ("last_in", f"h[{here} + {_LAST}]"),
            ("b_in", f"vb[{_vb('i', 'j')} +: IN_BITS]"),
            ("a_out", f"h[{right} +: IN_BITS]"),
            ("v_out", f"h[{right} + {_V}]"),
            ("first_out", f"h[{right} + {_FIRST}]"),
            ("last_out", f"h[{right} + {_LAST}]"),
            ("b_out", f"vb[{below} +: IN_BITS]"),
            ("acc", "acc[(j*ROWS + i)*ACC_BITS +: ACC_BITS]"),
        ),
    )
    cols = GenerateFor("j", "COLS", "g_col", (inst,))
    return GenerateFor("i", "ROWS", "g_row", (cols,), "The PE grid: PE (i, j) is g_row[i].g_col[j].u_pe.")


def _drains() -> GenerateFor:
    inst = Instance(
        "llmc_drain",
        "u_drain",
        params=(("ROWS", "ROWS"), ("ACC_BITS", "ACC_BITS"), ("ROW_BITS", "ROW_BITS")),
        connections=(
            ("clk", "clk"),
            ("rst", "rst"),
            ("load", f"h[{_h('ROWS-1', 'j+1')} + {_LAST}]"),
            ("acc_in", "acc[j*ROWS*ACC_BITS +: ROWS*ACC_BITS]"),
            ("valid", "c_valid[j]"),
            ("row", "c_row[j*ROW_BITS +: ROW_BITS]"),
            ("data", "c_data[j*ACC_BITS +: ACC_BITS]"),
        ),
    )
    return GenerateFor(
        "j", "COLS", "g_drain", (inst,),
        "Column j drains when the last beat has left its bottom PE.",
    )
