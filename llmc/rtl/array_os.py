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

# Links are nets of unpacked net arrays, one element per link, rather than
# slices of a few wide vectors: a simulator re-evaluates every reader of a
# vector when any slice of it changes, which made Icarus ~100x slower.
_ROW_LINK = "{i}*(COLS+1) + {j}"   # row link (i, j) enters PE (i, j); j = COLS leaves
_COL_LINK = "{i}*COLS + {j}"       # column link (i, j) enters PE (i, j); i = ROWS leaves


def _rl(i: str, j: str) -> str:
    return "0" if i == j == "0" else _ROW_LINK.format(i=_term(i), j=_term(j))


def _cl(i: str, j: str) -> str:
    return _term(j) if i == "0" else _COL_LINK.format(i=_term(i), j=_term(j))


def _term(x: str) -> str:
    """`x` parenthesised unless it is a name or a number."""
    return x if x.isidentifier() or x.isdigit() else f"({x})"


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
    n_row, n_col = "ROWS*(COLS+1)", "(ROWS+1)*COLS"
    items: list[Item] = [
        Localparam("ROWS", r),
        Localparam("COLS", c),
        Localparam("IN_BITS", ib, comment="operand width (two's complement)"),
        Localparam("ACC_BITS", ab, comment="accumulator width (wraps)"),
        Localparam("ROW_BITS", rb, comment="bits of a row index"),
        Comment(""),
        Lint(
            ("UNUSEDSIGNAL",),
            "Links between PEs: row link (i, j) at i*(COLS+1) + j and column link (i, j)\n"
            "at i*COLS + j enter PE (i, j); those leaving the right and bottom edges\n"
            "(j = COLS, i = ROWS) are not read.",
            (
                Net("wire", "a_l", "IN_BITS", n_row, comment="A operand, rightwards"),
                Net("wire", "v_l", None, n_row, comment="beat flags riding with it"),
                Net("wire", "f_l", None, n_row),
                Net("wire", "l_l", None, n_row),
                Net("wire", "b_l", "IN_BITS", n_col, comment="B operand, downwards"),
            ),
        ),
        Comment(""),
        Net("genvar", "i"),
        Net("genvar", "j"),
        Comment(""),
        _row_skews(),
        _col_skews(),
        _columns(),
        Comment(""),
        Assign("mac_first", f"v_l[{_rl('0', '0')}]"),
        Assign("mac_last", f"v_l[{_rl('ROWS-1', 'COLS-1')}]"),
        Assign("drain_start", f"l_l[{_rl('ROWS-1', '1')}]"),
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
    link = _rl("i", "0")
    items: tuple[Item, ...] = (
        Net("wire", "q", "IN_BITS+3", comment="{v, first, last, a}"),
        Instance(
            "llmc_skew",
            "u_skew",
            params=(("WIDTH", "IN_BITS + 3"), ("DEPTH", "i + 1")),
            connections=(("clk", "clk"), ("rst", "rst"), ("d", word), ("q", "q")),
        ),
        Assign(f"a_l[{link}]", "q[IN_BITS-1:0]"),
        Assign(f"l_l[{link}]", "q[IN_BITS]"),
        Assign(f"f_l[{link}]", "q[IN_BITS+1]"),
        Assign(f"v_l[{link}]", "q[IN_BITS+2]"),
    )
    return GenerateFor("i", "ROWS", "g_row_skew", items,
                       "Row i of A (with the beat flags) enters i+1 cycles late.")


def _col_skews() -> GenerateFor:
    inst = Instance(
        "llmc_skew",
        "u_skew",
        params=(("WIDTH", "IN_BITS"), ("DEPTH", "j + 1")),
        connections=(
            ("clk", "clk"),
            ("rst", "rst"),
            ("d", "b_edge[j*IN_BITS +: IN_BITS]"),
            ("q", f"b_l[{_cl('0', 'j')}]"),
        ),
    )
    return GenerateFor("j", "COLS", "g_col_skew", (inst,), "Column j of B enters j+1 cycles late.")


def _columns() -> GenerateFor:
    here, right = _rl("i", "j"), _rl("i", "j+1")
    pe = Instance(
        "llmc_mac_os",
        "u_pe",
        params=(("IN_BITS", "IN_BITS"), ("ACC_BITS", "ACC_BITS")),
        connections=(
            ("clk", "clk"),
            ("rst", "rst"),
            ("a_in", f"a_l[{here}]"),
            ("v_in", f"v_l[{here}]"),
            ("first_in", f"f_l[{here}]"),
            ("last_in", f"l_l[{here}]"),
            ("b_in", f"b_l[{_cl('i', 'j')}]"),
            ("a_out", f"a_l[{right}]"),
            ("v_out", f"v_l[{right}]"),
            ("first_out", f"f_l[{right}]"),
            ("last_out", f"l_l[{right}]"),
            ("b_out", f"b_l[{_cl('i+1', 'j')}]"),
            ("acc", "sums[i*ACC_BITS +: ACC_BITS]"),
        ),
    )
    drain = Instance(
        "llmc_drain",
        "u_drain",
        params=(("ROWS", "ROWS"), ("ACC_BITS", "ACC_BITS"), ("ROW_BITS", "ROW_BITS")),
        connections=(
            ("clk", "clk"),
            ("rst", "rst"),
            ("load", f"l_l[{_rl('ROWS-1', 'j+1')}]"),
            ("acc_in", "sums"),
            ("valid", "c_valid[j]"),
            ("row", "c_row[j*ROW_BITS +: ROW_BITS]"),
            ("data", "c_data[j*ACC_BITS +: ACC_BITS]"),
        ),
        comment="It copies the column's sums when the last beat leaves its bottom PE.",
    )
    items: tuple[Item, ...] = (
        Net("wire", "sums", "ROWS*ACC_BITS", comment="PE (i, j)'s sum at [i*ACC_BITS +: ACC_BITS]"),
        GenerateFor("i", "ROWS", "g_pe", (pe,)),
        drain,
    )
    return GenerateFor("j", "COLS", "g_col", items,
                       "Column j: its R PEs (g_col[j].g_pe[i].u_pe) and their drain.")
