"""Generate the GEMM core: operand/result buffers, the fold controller, the array.

The core computes C[M×N] = A[M×K]·B[K×N] for any 1 ≤ M, N, K ≤ the limits it
was generated for. It is a standalone synthesizable design: its buffers are
register files on ports. A host (the testbench) writes A[m][k] through the
`a_we`/`a_waddr`/`a_wdata` port (word {m, k}) and B[k][n] through `b_*` (word
{k, n}), one word per port per cycle, sets cfg_m/n/k, pulses `start` and
waits for `done`; the core writes C[m][n] to word {m, n} of `c_mem` through
its write lanes (one per array column, visible on c_we/c_addr/c_wdata), and
the host reads C back through the synchronous read port `c_raddr` ->
`c_rdata` (the word is on c_rdata the cycle after its address).

Cycle contract, checked exactly by the testbench (llmc.rtl.tb_gemm):

* load: the two write ports side by side take max(M·K, K·N) cycles
  (`CoreConfig.load_cycles`); loading is done while the core is idle;
* compute: `cycles` = llmc.hw.array.compute_cycles (below), and the edges from
  the one sampling `start` to the one raising `done` are that plus R + 3 here,
  3 for the weight-stationary core (`CoreConfig.start_to_done`);
* read-back: M·N cycles through the read port (`CoreConfig.read_cycles`).

Schedule (the one SCALE-Sim 3.0 models): tiles of R rows × C columns of C
are computed one after another ("folds", row-major over the tile grid); each
fold issues its K beats and then R + C − 2 idle cycles while its wavefront
crosses the array, so a fold occupies exactly P = R + C + K − 2 issue cycles
and the next fold's first beat follows immediately. Partial tiles at the
right/bottom edge pay the full P with zero operands and masked writes.

`cycles` = (rising edge at which PE (R−1,C−1) makes the GEMM's last MAC) −
(rising edge at which PE (0,0) makes its first MAC), which is
folds·P − 1 = `llmc.hw.array.compute_cycles` for the same shape. Around
it, from the edge that samples `start` to the edge that raises `done`, the core
adds R + 3 edges: one to latch the command, one for the operand register at the
array edge (skew stage 0), then one for the last column's drain to copy its
sums and R to write them (the last write lands on the edge that raises `done`).

The weight-stationary core is `llmc.rtl.gemm_core_ws`; it shares the ports,
buffers and cycle counter built here.
"""

from __future__ import annotations

from llmc.rtl.array_os import BLOCKS, array_module
from llmc.rtl.config import CYCLE_BITS, CoreConfig
from llmc.rtl.design import Design
from llmc.rtl.emit import (
    Always,
    Assign,
    Comment,
    For,
    GenerateFor,
    If,
    Instance,
    Item,
    Localparam,
    Module,
    Net,
    NonBlocking,
    Port,
    SourceFile,
    Stmt,
    render,
)


def _zero(bits: int) -> str:
    return f"{bits}'d0"


def core_ports(cfg: CoreConfig, first: str) -> tuple[Port, ...]:
    """The ports of a GEMM core (either dataflow); `first` says what `mac_first` means."""
    s = cfg.spec
    return (
        Port("clk", "input"),
        Port("rst", "input", comment="synchronous, active high"),
        Port("a_we", "input", comment="A write port (while idle): A[m][k] at word {m, k}"),
        Port("a_waddr", "input", cfg.ma_bits + cfg.ka_bits),
        Port("a_wdata", "input", s.in_bits),
        Port("b_we", "input", comment="B write port (while idle): B[k][n] at word {k, n}"),
        Port("b_waddr", "input", cfg.ka_bits + cfg.na_bits),
        Port("b_wdata", "input", s.in_bits),
        Port("c_raddr", "input", cfg.c_addr_bits, "C read port: word {m, n} ..."),
        Port("c_rdata", "output", s.acc_bits, "... is here the next cycle", reg=True),
        Port("start", "input", comment="pulse while idle: run C = A*B on cfg_m/n/k"),
        Port("cfg_m", "input", cfg.m_bits, f"M, 1..{cfg.m_max}"),
        Port("cfg_n", "input", cfg.n_bits, f"N, 1..{cfg.n_max}"),
        Port("cfg_k", "input", cfg.k_bits, f"K, 1..{cfg.k_max}"),
        Port("busy", "output", reg=True, comment="a GEMM is running"),
        Port("done", "output", reg=True, comment="C is complete (until the next start)"),
        Port("cycles", "output", CYCLE_BITS, "compute cycles of the last GEMM", reg=True),
        Port("c_we", "output", s.cols, "result write lanes, lane j per array column"),
        Port("c_addr", "output", s.cols * cfg.c_addr_bits, "lane j: word {m, n} of c_mem"),
        Port("c_wdata", "output", s.cols * s.acc_bits, "lane j: C[m][n]"),
        Port("mac_first", "output", comment=first),
        Port("mac_last", "output", comment="PE (R-1,C-1) accumulates this cycle"),
    )


def buffer_items(cfg: CoreConfig) -> list[Item]:
    """The three buffers (register files) with the host's ports and the write lanes.

    A and B: one synchronous write port (the host's) and asynchronous read
    ports (one per array row / column). C: the lanes' synchronous writes and
    the host's synchronous read port.
    """
    load = (
        If("a_we", (NonBlocking("a_mem[a_waddr]", "a_wdata"),)),
        If("b_we", (NonBlocking("b_mem[b_waddr]", "b_wdata"),)),
    )
    return [
        Comment("Buffers."),
        Net("reg", "a_mem", "IN_BITS", cfg.a_words, comment="A[m][k] at {m, k}"),
        Net("reg", "b_mem", "IN_BITS", cfg.b_words, comment="B[k][n] at {k, n}"),
        Net("reg", "c_mem", "ACC_BITS", cfg.c_words, comment="C[m][n] at {m, n}"),
        Net("integer", "w"),
        Always("posedge clk", load, "The host loads A and B."),
        Always("posedge clk", _write_body(), "The result buffer takes every lane's write."),
        Always("posedge clk", (NonBlocking("c_rdata", "c_mem[c_raddr]"),),
               "The host reads C back."),
    ]


def core_module(cfg: CoreConfig) -> Module:
    """The GEMM core module for `cfg` (named `cfg.top`)."""
    s = cfg.spec
    mw, nw, sw = cfg.m_bits, cfg.n_bits, cfg.step_bits
    ports = core_ports(cfg, "PE (0,0) accumulates this cycle")
    items: list[Item] = [
        *_params(cfg),
        Comment(""),
        *buffer_items(cfg),
        Comment(""),
        Comment("Controller state."),
        Net("reg", "issuing", comment="folds are being issued"),
        Net("reg", "m_r", mw, comment="M, N, K latched at start"),
        Net("reg", "n_r", nw),
        Net("reg", "k_r", sw),
        Net("reg", "p_last", sw, comment="P - 1 = K + R + C - 3"),
        Net("reg", "m0", mw, comment="tile being issued: rows m0.., cols n0.."),
        Net("reg", "n0", nw),
        Net("reg", "step", sw, comment="cycle of the fold, 0..P-1; beat k = step < K"),
        Net("reg", "flush", "FLUSH_BITS", comment="cycles until the last write"),
        Net("reg", "dm0", mw, comment="tile being drained"),
        Net("reg", "dn0", nw),
        Net("reg", "dstarted", comment="a tile has started draining"),
        Net("reg", "counting", comment="the first MAC has happened"),
        Net("reg", "cnt", CYCLE_BITS, comment="edges since the first MAC"),
        Comment(""),
        Net("genvar", "i"),
        Net("genvar", "j"),
        Comment(""),
        Comment("Array edge."),
        Net("wire", "beat", assign="issuing && (step < k_r)"),
        Net("wire", "fold_end", assign="issuing && (step == p_last)"),
        Net("wire", "row_wrap", assign="(n0 + COLS_N) >= n_r", comment="last tile of its row"),
        Net("wire", "last_fold", assign="row_wrap && ((m0 + ROWS_M) >= m_r)"),
        Net("wire", "a_edge", s.rows * s.in_bits),
        Net("wire", "b_edge", s.cols * s.in_bits),
        Net("wire", "drain_start"),
        Net("wire", "c_valid", s.cols),
        Net("wire", "c_row", s.cols * cfg.row_bits),
        Comment(""),
        _a_feed(cfg),
        _b_feed(cfg),
        Instance(
            cfg.array,
            "u_array",
            comment="The systolic array.",
            connections=(
                ("clk", "clk"),
                ("rst", "rst"),
                ("a_edge", "a_edge"),
                ("v_edge", "beat"),
                ("first_edge", f"beat && (step == {_zero(sw)})"),
                ("last_edge", f"beat && (step == k_r - {sw}'d1)"),
                ("b_edge", "b_edge"),
                ("mac_first", "mac_first"),
                ("mac_last", "mac_last"),
                ("drain_start", "drain_start"),
                ("c_valid", "c_valid"),
                ("c_row", "c_row"),
                ("c_data", "c_wdata"),
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
        f"{cfg.top}: int{s.in_bits} GEMM core on a {s.rows}x{s.cols} output-stationary array.\n"
        "Folds run back to back, P = R + C + K - 2 cycles each (SCALE-Sim 3.0);\n"
        "`cycles` = edge of the last MAC of PE (R-1,C-1) - edge of the first MAC\n"
        "of PE (0,0) = folds*P - 1 = llmc.hw.array.compute_cycles."
    )
    return Module(cfg.top, ports=ports, items=tuple(items), doc=doc)


def _params(cfg: CoreConfig) -> list[Item]:
    s = cfg.spec
    mw, nw, sw = cfg.m_bits, cfg.n_bits, cfg.step_bits
    flush, flush_bits = _flush(cfg)
    return [
        Localparam("ROWS", s.rows),
        Localparam("COLS", s.cols),
        Localparam("IN_BITS", s.in_bits),
        Localparam("ACC_BITS", s.acc_bits),
        Localparam("ROW_BITS", cfg.row_bits),
        Localparam("MA_BITS", cfg.ma_bits, comment="address bits of m, n, k in the buffers"),
        Localparam("NA_BITS", cfg.na_bits),
        Localparam("KA_BITS", cfg.ka_bits),
        Localparam("CA_BITS", cfg.c_addr_bits),
        Localparam("ROWS_M", f"{mw}'d{s.rows}", mw, "R and C at the widths of m and n"),
        Localparam("COLS_N", f"{nw}'d{s.cols}", nw),
        Localparam("RC_2", f"{sw}'d{s.rows + s.cols - 2}", sw, "R + C - 2"),
        Localparam("FLUSH_BITS", flush_bits),
        Localparam("FLUSH", f"{flush_bits}'d{flush}", flush_bits,
                   "cycles from the last issue cycle to the last write (R + 2)"),
    ]


def _flush(cfg: CoreConfig) -> tuple[int, int]:
    """(cycles, bits) of the flush: from the last issue cycle, the last MAC is 1
    edge later, the column drain copies 1 edge after it and writes R sums, the
    last of them on the same edge that raises `done`: R + 2 edges."""
    flush = cfg.spec.rows + 2
    return flush, flush.bit_length()


def _a_feed(cfg: CoreConfig) -> GenerateFor:
    mw = cfg.m_bits
    items: tuple[Item, ...] = (
        Localparam("OFF", "i", mw),
        Net("wire", "m", mw, assign="m0 + OFF"),
        Net("wire", "on", assign="beat && (m < m_r)", comment="rows past M read zeros"),
        Assign(
            "a_edge[i*IN_BITS +: IN_BITS]",
            "on ? a_mem[{m[MA_BITS-1:0], step[KA_BITS-1:0]}] : {IN_BITS{1'b0}}",
        ),
    )
    return GenerateFor("i", "ROWS", "g_a_feed", items, "Beat k of the A tile: A[m0+i][k].")


def _b_feed(cfg: CoreConfig) -> GenerateFor:
    nw = cfg.n_bits
    items: tuple[Item, ...] = (
        Localparam("OFF", "j", nw),
        Net("wire", "n", nw, assign="n0 + OFF"),
        Net("wire", "on", assign="beat && (n < n_r)", comment="columns past N read zeros"),
        Assign(
            "b_edge[j*IN_BITS +: IN_BITS]",
            "on ? b_mem[{step[KA_BITS-1:0], n[NA_BITS-1:0]}] : {IN_BITS{1'b0}}",
        ),
    )
    return GenerateFor("j", "COLS", "g_b_feed", items, "Beat k of the B tile: B[k][n0+j].")


def _write_lanes(cfg: CoreConfig) -> GenerateFor:
    mw, nw, rb = cfg.m_bits, cfg.n_bits, cfg.row_bits
    row = "c_row[j*ROW_BITS +: ROW_BITS]"
    row_ext = row if mw == rb else f"{{{{{mw - rb}{{1'b0}}}}, {row}}}"
    items: tuple[Item, ...] = (
        Localparam("OFF", "j", nw),
        Net("wire", "m", mw, assign=f"dm0 + {row_ext}"),
        Net("wire", "n", nw, assign="dn0 + OFF"),
        Assign("c_we[j]", "c_valid[j] && (m < m_r) && (n < n_r)"),
        Assign("c_addr[j*CA_BITS +: CA_BITS]", "{m[MA_BITS-1:0], n[NA_BITS-1:0]}"),
    )
    return GenerateFor(
        "j", "COLS", "g_lane", items, "Write lane j: the sum column j drains, if inside C."
    )


def _write_body() -> tuple[Stmt, ...]:
    write = If(
        "c_we[w]",
        (NonBlocking("c_mem[c_addr[w*CA_BITS +: CA_BITS]]", "c_wdata[w*ACC_BITS +: ACC_BITS]"),),
    )
    return (For("w", "0", "w < COLS", "w + 1", (write,)),)


def _control_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    mw, nw, sw = cfg.m_bits, cfg.n_bits, cfg.step_bits
    fb = _flush(cfg)[1]
    start = (
        NonBlocking("issuing", "1'b1"),
        NonBlocking("busy", "1'b1"),
        NonBlocking("done", "1'b0"),
        NonBlocking("m_r", "cfg_m"),
        NonBlocking("n_r", "cfg_n"),
        NonBlocking("k_r", "cfg_k"),
        NonBlocking("p_last", f"cfg_k + RC_2 - {sw}'d1"),
        NonBlocking("m0", _zero(mw)),
        NonBlocking("n0", _zero(nw)),
        NonBlocking("step", _zero(sw)),
    )
    next_tile = If(
        "last_fold",
        (NonBlocking("issuing", "1'b0"), NonBlocking("flush", "FLUSH")),
        (If(
            "row_wrap",
            (NonBlocking("n0", _zero(nw)), NonBlocking("m0", "m0 + ROWS_M")),
            (NonBlocking("n0", "n0 + COLS_N"),),
        ),),
    )
    issue = If(
        "fold_end",
        (NonBlocking("step", _zero(sw)), next_tile),
        (NonBlocking("step", f"step + {sw}'d1"),),
    )
    finish = If(
        f"flush != {_zero(fb)}",
        (
            NonBlocking("flush", f"flush - {fb}'d1"),
            If(f"flush == {fb}'d1", (NonBlocking("busy", "1'b0"), NonBlocking("done", "1'b1"))),
        ),
    )
    reset = (
        NonBlocking("issuing", "1'b0"),
        NonBlocking("busy", "1'b0"),
        NonBlocking("done", "1'b0"),
        NonBlocking("flush", _zero(fb)),
    )
    return (
        If("rst", reset, (If("start && !busy", start, (If("issuing", (issue,), (finish,)),)),)),
    )


def _drain_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    mw, nw = cfg.m_bits, cfg.n_bits
    advance = If(
        "(dn0 + COLS_N) >= n_r",
        (NonBlocking("dn0", _zero(nw)), NonBlocking("dm0", "dm0 + ROWS_M")),
        (NonBlocking("dn0", "dn0 + COLS_N"),),
    )
    clear = (
        NonBlocking("dm0", _zero(mw)),
        NonBlocking("dn0", _zero(nw)),
        NonBlocking("dstarted", "1'b0"),
    )
    on_drain = (NonBlocking("dstarted", "1'b1"), If("dstarted", (advance,)))
    return (If("rst || (start && !busy)", clear, (If("drain_start", on_drain),)),)


def counter_body() -> tuple[Stmt, ...]:
    """The cycle counter: `cycles` = edge of the last `mac_last` − edge of the first
    `mac_first` of the GEMM."""
    cb = CYCLE_BITS
    clear = (
        NonBlocking("counting", "1'b0"),
        NonBlocking("cnt", _zero(cb)),
        NonBlocking("cycles", _zero(cb)),
    )
    run = (
        If(
            "counting",
            (NonBlocking("cnt", f"cnt + {cb}'d1"),),
            (If("mac_first", (NonBlocking("counting", "1'b1"), NonBlocking("cnt", f"{cb}'d1"))),),
        ),
        If("mac_last", (NonBlocking("cycles", f"counting ? cnt : {_zero(cb)}"),)),
    )
    return (If("rst || (start && !busy)", clear, run),)


def generate_core(cfg: CoreConfig) -> Design:
    """The GEMM core for `cfg` (os or ws): generated array and core files plus the
    blocks they use.

    Deterministic: the same `cfg` gives the same bytes.
    """
    if cfg.ws:
        from llmc.rtl import array_ws, gemm_core_ws

        modules, blocks = (array_ws.array_module(cfg), gemm_core_ws.core_module(cfg)), array_ws.BLOCKS
    else:
        modules, blocks = (array_module(cfg), core_module(cfg)), BLOCKS
    files = tuple(
        (f"{mod.name}.v",
         render(SourceFile((mod,), generated_from=cfg.describe(), generator="llmc.rtl.generate_core")))
        for mod in modules
    )
    return Design(top=cfg.top, generated=files, blocks=blocks)
