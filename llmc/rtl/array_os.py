"""Generate the R×C output-stationary systolic array module (PEs, skew, drains).

Dataflow (output-stationary, as in SCALE-Sim): PE (i, j) owns C[m0+i][n0+j]
of the fold being computed. Beat k of a fold carries column k of the A tile
into the left edge (row i: A[m0+i][k]) and row k of the B tile into the top
edge (column j: B[k][n0+j]). Row i is delayed i+1 cycles by its skew line and
column j by j+1, and a hop register between neighbouring PEs forwards both one
PE per cycle, so operand k meets at PE (i, j) at cycle k + i + j + 1 after it
entered the edge:

    a_edge ─▶ skew(1) ─▶ PE00 ─hop▶ PE01 ─hop▶ …         b_edge
    a_edge ─▶ skew(2) ─▶ PE10 ─hop▶ PE11 ─hop▶ …   skew(1) skew(2) … (hops down)

Hop registers exist only where a neighbour reads them (none to the right of
the last column or below the last row), so every net has a reader and a
driver; they are plain registers in the array (the operands' without a reset,
the flags' with one). The beat flags {v, first} ride with the row operand; the `last` flag
is needed only by the drains, so it rides along the bottom row alone. One
cycle after the `last` flag passes the bottom PE of column j, that column's
drain copies its R sums and shifts them out, one per cycle (row R−1 first),
on `c_valid[j]`, `c_row[j]`, `c_data[j]`; `drain_start` marks column 0's copy.
`mac_first` / `mac_last` say that PE (0,0) / PE (R−1,C−1) accumulates in this
cycle: the core's cycle counter and the testbench's monitor time the GEMM by
them.
"""

from __future__ import annotations

from llmc.rtl.config import CoreConfig
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
    Port,
)

BLOCKS = ("llmc_skew", "llmc_mac_os", "llmc_drain")

# Links are nets of unpacked net arrays, one element per link, rather than
# slices of a few wide vectors: a simulator re-evaluates every reader of a
# vector when any slice of it changes, which made Icarus ~100x slower.
# Link (i, j), at i*COLS + j, enters PE (i, j).


def link(i: str, j: str) -> str:
    """Index of link (i, j) in a ROWS*COLS link array."""
    if i == "0":
        return j
    i_t = i if i.isidentifier() or i.isdigit() else f"({i})"
    j_t = j if j.isidentifier() or j.isdigit() else f"({j})"
    return f"{i_t}*COLS + {j_t}"


def array_head(cfg: CoreConfig, acc: str) -> tuple[tuple[Port, ...], tuple[Item, ...]]:
    """The ports and parameters every array (either dataflow) starts with;
    `acc` documents ACC_BITS."""
    s = cfg.spec
    ports = (
        Port("clk", "input"),
        Port("rst", "input", comment="synchronous, active high"),
        Port("a_edge", "input", s.rows * s.in_bits, "beat of A: row i at [i*IN_BITS +: IN_BITS]"),
        Port("v_edge", "input", comment="a beat is present"),
    )
    params = (
        Localparam("ROWS", s.rows),
        Localparam("COLS", s.cols),
        Localparam("IN_BITS", s.in_bits, comment="operand width (two's complement)"),
        Localparam("ACC_BITS", s.acc_bits, comment=acc),
        Localparam("ROW_BITS", cfg.row_bits, comment="bits of a row index"),
        Comment(""),
        Comment("Links into PE (i, j), at i*COLS + j."),
    )
    return ports, params


def row_hops(items: tuple[Item, ...]) -> GenerateFor:
    """The row hops (`items`, one set per PE): PE (i, j) to PE (i, j+1)."""
    inner = GenerateFor("j", "COLS-1", "g_hop", items)
    return GenerateFor("i", "ROWS", "g_row_hop", (inner,),
                       "Row hops: PE (i, j) to PE (i, j+1), j < COLS-1.")


def flag_chain(flag: str, into: str, out: str, gen: str, doc: str) -> tuple[GenerateFor, ...]:
    """A flag along the bottom row: it passes PE (R-1, j) (`into`[j] to `out`[j]
    through the hop register `flag`, loop `gen`, comment `doc`) and reaches
    PE (R-1, j+1)."""
    chain = GenerateFor("j", "COLS", gen, hop(flag, None, f"{into}[j]", f"{out}[j]", reset=True),
                        doc)
    step = GenerateFor("j", "COLS-1", f"{gen}_next", (Assign(f"{into}[j+1]", f"{out}[j]"),),
                       "... and reaches PE (R-1, j+1).")
    return chain, step


def genvars() -> tuple[Item, ...]:
    """The loop variables i (rows) and j (columns) of a module's generate loops."""
    return Comment(""), Net("genvar", "i"), Net("genvar", "j"), Comment("")


def hop(name: str, width: str | None, d: str, q: str, *, reset: bool = False) -> tuple[Item, ...]:
    """A one-cycle register `name` from `d` to the net `q` (`reset`: cleared by rst).

    Written inline rather than as an instance, so a simulator evaluates it with
    the array (Verilator builds the PEs as separate calls, -fno-inline)."""
    zero = "1'b0" if width is None else f"{{{width}{{1'b0}}}}"
    body = (If("rst", (NonBlocking(name, zero),), (NonBlocking(name, d),)),) if reset else (
        NonBlocking(name, d),)
    return Net("reg", name, width), Always("posedge clk", body), Assign(q, name)


def array_module(cfg: CoreConfig) -> Module:
    """The array module for `cfg` (named `cfg.array`)."""
    s = cfg.spec
    r, c, ib, ab, rb = s.rows, s.cols, s.in_bits, s.acc_bits, cfg.row_bits
    head, params = array_head(cfg, "accumulator width (wraps)")
    ports = (
        *head,
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
        *params,
        Net("wire", "a_l", "IN_BITS", "ROWS*COLS", comment="A operand, rightwards"),
        Net("wire", "v_l", None, "ROWS*COLS", comment="beat flags riding with it"),
        Net("wire", "f_l", None, "ROWS*COLS"),
        Net("wire", "b_l", "IN_BITS", "ROWS*COLS", comment="B operand, downwards"),
        Net("wire", "l_in", None, "COLS", comment="`last` flag into PE (R-1, j)"),
        Net("wire", "l_out", None, "COLS", comment="... one cycle after it: drain j loads"),
        *genvars(),
        _row_skews(),
        _col_skews(),
        _row_hops(),
        _col_hops(),
        *_last_flag(),
        _columns(),
        Comment(""),
        Assign("mac_first", "v_l[0]"),
        Assign("mac_last", f"v_l[{link('ROWS-1', 'COLS-1')}]"),
        Assign("drain_start", "l_out[0]"),
    ]
    doc = (
        f"{cfg.array}: {r}x{c} output-stationary systolic array, "
        f"int{ib} x int{ib} -> int{ab}.\n"
        "Operands enter unskewed at the edges; skew lines, PEs and column drains are\n"
        "the hand-written llmc_skew, llmc_mac_os and llmc_drain blocks; hop registers\n"
        "between PEs are written inline."
    )
    return Module(cfg.array, ports=ports, items=tuple(items), doc=doc)


def _row_skews() -> GenerateFor:
    word = "{v_edge, first_edge, a_edge[i*IN_BITS +: IN_BITS]}"
    items: tuple[Item, ...] = (
        Net("wire", "q", "IN_BITS+2", comment="{v, first, a}"),
        Instance(
            "llmc_skew",
            "u_skew",
            params=(("WIDTH", "IN_BITS + 2"), ("DEPTH", "i + 1")),
            connections=(("clk", "clk"), ("rst", "rst"), ("d", word), ("q", "q")),
        ),
        Assign(f"a_l[{link('i', '0')}]", "q[IN_BITS-1:0]"),
        Assign(f"f_l[{link('i', '0')}]", "q[IN_BITS]"),
        Assign(f"v_l[{link('i', '0')}]", "q[IN_BITS+1]"),
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
            ("q", f"b_l[{link('0', 'j')}]"),
        ),
    )
    return GenerateFor("j", "COLS", "g_col_skew", (inst,), "Column j of B enters j+1 cycles late.")


def _row_hops() -> GenerateFor:
    here, right = link("i", "j"), link("i", "j+1")
    return row_hops((
        *hop("a_q", "IN_BITS", f"a_l[{here}]", f"a_l[{right}]"),
        *hop("v_q", None, f"v_l[{here}]", f"v_l[{right}]", reset=True),
        *hop("f_q", None, f"f_l[{here}]", f"f_l[{right}]", reset=True),
    ))


def _col_hops() -> GenerateFor:
    inner = GenerateFor("j", "COLS", "g_hop",
                        hop("b_q", "IN_BITS", f"b_l[{link('i', 'j')}]", f"b_l[{link('i+1', 'j')}]"))
    return GenerateFor("i", "ROWS-1", "g_col_hop", (inner,),
                       "Column hops: PE (i, j) to PE (i+1, j), i < ROWS-1.")


def _last_flag() -> tuple[Item, ...]:
    skew = Instance(
        "llmc_skew",
        "u_last_skew",
        params=(("WIDTH", 1), ("DEPTH", "ROWS")),
        connections=(("clk", "clk"), ("rst", "rst"), ("d", "last_edge"), ("q", "l_in[0]")),
        comment="The `last` flag (for the drains) reaches PE (R-1, 0) with row R-1's operands,",
    )
    return skew, *flag_chain("l_q", "l_in", "l_out", "g_last",
                             "It passes PE (R-1, j) one cycle later ...")


def _columns() -> GenerateFor:
    pe = Instance(
        "llmc_mac_os",
        "u_pe",
        params=(("IN_BITS", "IN_BITS"), ("ACC_BITS", "ACC_BITS")),
        connections=(
            ("clk", "clk"),
            ("a_in", f"a_l[{link('i', 'j')}]"),
            ("b_in", f"b_l[{link('i', 'j')}]"),
            ("v_in", f"v_l[{link('i', 'j')}]"),
            ("first_in", f"f_l[{link('i', 'j')}]"),
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
            ("load", "l_out[j]"),
            ("acc_in", "sums"),
            ("valid", "c_valid[j]"),
            ("row", "c_row[j*ROW_BITS +: ROW_BITS]"),
            ("data", "c_data[j*ACC_BITS +: ACC_BITS]"),
        ),
        comment="It copies the column's sums when the last beat has left its bottom PE.",
    )
    items: tuple[Item, ...] = (
        Net("wire", "sums", "ROWS*ACC_BITS", comment="PE (i, j)'s sum at [i*ACC_BITS +: ACC_BITS]"),
        GenerateFor("i", "ROWS", "g_pe", (pe,)),
        drain,
    )
    return GenerateFor("j", "COLS", "g_col", items,
                       "Column j: its R PEs (g_col[j].g_pe[i].u_pe) and their drain.")
