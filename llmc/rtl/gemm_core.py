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
buffers, parameters, operand feeds (`edge_feed`), fold sequencer
(`sequencer_body`, `tile_advance`), cycle counter and module layout
(`assemble_core`) built here.
"""

from __future__ import annotations

from llmc.rtl.array_os import BLOCKS, array_module, genvars
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


def zero(bits: int) -> str:
    return f"{bits}'d0"


def zext(expr: str, bits: int, to: int) -> str:
    """`expr` (`bits` wide) zero-extended to `to` bits."""
    return expr if to == bits else f"{{{{{to - bits}{{1'b0}}}}, {expr}}}"


def buffer_params(cfg: CoreConfig) -> list[Item]:
    """The parameters of a GEMM core (either dataflow): array shape, widths and
    the address bits of its buffers."""
    s = cfg.spec
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
    ]


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


def assemble_core(
    cfg: CoreConfig,
    *,
    first: str,
    doc: str,
    params: list[Item],
    k_bits: int,
    state: list[Item],
    edge: list[Item],
    feeds: list[Item],
    inputs: tuple[tuple[str, str], ...],
    outputs: tuple[tuple[str, str], ...],
    lanes: Item,
    control: tuple[Stmt, ...],
    drain: tuple[Stmt, ...],
) -> Module:
    """A GEMM core module (named `cfg.top`) of either dataflow from what the
    dataflow adds to the shared parts (ports, buffers, the command registers,
    the cycle counter): its `params`, controller `state` (k_r is `k_bits`
    wide), array-edge nets, operand `feeds`, the array's other `inputs` and
    `outputs`, write `lanes`, and the bodies of its `control` and `drain`
    processes. `first` documents `mac_first`."""
    items: list[Item] = [
        *buffer_params(cfg),
        *params,
        Comment(""),
        *buffer_items(cfg),
        Comment(""),
        Comment("Controller state."),
        Net("reg", "issuing", comment="folds are being issued"),
        Net("reg", "m_r", cfg.m_bits, comment="M, N, K latched at start"),
        Net("reg", "n_r", cfg.n_bits),
        Net("reg", "k_r", k_bits),
        *state,
        Net("reg", "counting", comment="the first MAC has happened"),
        Net("reg", "cnt", CYCLE_BITS, comment="edges since the first MAC"),
        *genvars(),
        Comment("Array edge."),
        *edge,
        Comment(""),
        *feeds,
        Instance(
            cfg.array,
            "u_array",
            comment="The systolic array.",
            connections=(
                ("clk", "clk"),
                ("rst", "rst"),
                ("a_edge", "a_edge"),
                ("v_edge", "beat"),
                *inputs,
                ("mac_first", "mac_first"),
                ("mac_last", "mac_last"),
                *outputs,
            ),
        ),
        Comment(""),
        lanes,
        Comment(""),
        Always("posedge clk", control, "Fold sequencer."),
        Comment(""),
        Always("posedge clk", drain, "Drain-side tile iterator, in the issue order."),
        Comment(""),
        Always("posedge clk", counter_body(), "Cycle counter (see the header)."),
    ]
    return Module(cfg.top, ports=core_ports(cfg, first), items=tuple(items), doc=doc)


def core_module(cfg: CoreConfig) -> Module:
    """The GEMM core module for `cfg` (named `cfg.top`)."""
    s = cfg.spec
    mw, nw, sw = cfg.m_bits, cfg.n_bits, cfg.step_bits
    state: list[Item] = [
        Net("reg", "p_last", sw, comment="P - 1 = K + R + C - 3"),
        Net("reg", "m0", mw, comment="tile being issued: rows m0.., cols n0.."),
        Net("reg", "n0", nw),
        Net("reg", "step", sw, comment="cycle of the fold, 0..P-1; beat k = step < K"),
        Net("reg", "flush", "FLUSH_BITS", comment="cycles until the last write"),
        Net("reg", "dm0", mw, comment="tile being drained"),
        Net("reg", "dn0", nw),
        Net("reg", "dstarted", comment="a tile has started draining"),
    ]
    edge: list[Item] = [
        Net("wire", "beat", assign="issuing && (step < k_r)"),
        Net("wire", "fold_end", assign="issuing && (step == p_last)"),
        Net("wire", "row_wrap", assign="(n0 + COLS_N) >= n_r", comment="last tile of its row"),
        Net("wire", "last_fold", assign="row_wrap && ((m0 + ROWS_M) >= m_r)"),
        Net("wire", "a_edge", s.rows * s.in_bits),
        Net("wire", "b_edge", s.cols * s.in_bits),
        Net("wire", "drain_start"),
        Net("wire", "c_valid", s.cols),
        Net("wire", "c_row", s.cols * cfg.row_bits),
    ]
    feeds: list[Item] = [
        edge_feed("a_edge", "m", "m0", mw, "beat && (m < m_r)", "rows past M read zeros",
                  "a_mem[{m[MA_BITS-1:0], step[KA_BITS-1:0]}]", "Beat k of the A tile: A[m0+i][k]."),
        edge_feed("b_edge", "n", "n0", nw, "beat && (n < n_r)", "columns past N read zeros",
                  "b_mem[{step[KA_BITS-1:0], n[NA_BITS-1:0]}]", "Beat k of the B tile: B[k][n0+j]."),
    ]
    doc = (
        f"{cfg.top}: int{s.in_bits} GEMM core on a {s.rows}x{s.cols} output-stationary array.\n"
        "Folds run back to back, P = R + C + K - 2 cycles each (SCALE-Sim 3.0);\n"
        "`cycles` = edge of the last MAC of PE (R-1,C-1) - edge of the first MAC\n"
        "of PE (0,0) = folds*P - 1 = llmc.hw.array.compute_cycles."
    )
    return assemble_core(
        cfg,
        first="PE (0,0) accumulates this cycle",
        doc=doc,
        params=_params(cfg),
        k_bits=sw,
        state=state,
        edge=edge,
        feeds=feeds,
        inputs=(
            ("first_edge", f"beat && (step == {zero(sw)})"),
            ("last_edge", f"beat && (step == k_r - {sw}'d1)"),
            ("b_edge", "b_edge"),
        ),
        outputs=(
            ("drain_start", "drain_start"),
            ("c_valid", "c_valid"),
            ("c_row", "c_row"),
            ("c_data", "c_wdata"),
        ),
        lanes=_write_lanes(cfg),
        control=_control_body(cfg),
        drain=_drain_body(cfg),
    )


def _params(cfg: CoreConfig) -> list[Item]:
    s = cfg.spec
    mw, nw, sw = cfg.m_bits, cfg.n_bits, cfg.step_bits
    flush, flush_bits = _flush(cfg)
    return [
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


def edge_feed(edge: str, idx: str, base: str, bits: int, on: str, why: str, word: str,
              doc: str) -> GenerateFor:
    """The generate loop that drives `edge` (one IN_BITS word per array row of
    a_edge, per column otherwise): word `word` of a buffer, at index `idx` =
    `base` + the row/column (`bits` wide), where `on`, zero elsewhere (`why`)."""
    var, bound = ("i", "ROWS") if edge == "a_edge" else ("j", "COLS")
    items: tuple[Item, ...] = (
        Localparam("OFF", var, bits),
        Net("wire", idx, bits, assign=f"{base} + OFF"),
        Net("wire", "on", assign=on, comment=why),
        Assign(f"{edge}[{var}*IN_BITS +: IN_BITS]", f"on ? {word} : {{IN_BITS{{1'b0}}}}"),
    )
    return GenerateFor(var, bound, f"g_{edge.split('_')[0]}_feed", items, doc)


def _write_lanes(cfg: CoreConfig) -> GenerateFor:
    mw, nw, rb = cfg.m_bits, cfg.n_bits, cfg.row_bits
    row_ext = zext("c_row[j*ROW_BITS +: ROW_BITS]", rb, mw)
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


def tile_advance(wrap: str, inner: str, inner_bits: int, inner_step: str, outer: str,
                 outer_step: str) -> If:
    """Step a tile iterator: `inner` += `inner_step`, or, where `wrap` (its last
    tile), `inner` = 0 and `outer` += `outer_step`."""
    return If(
        wrap,
        (NonBlocking(inner, zero(inner_bits)), NonBlocking(outer, f"{outer} + {outer_step}")),
        (NonBlocking(inner, f"{inner} + {inner_step}"),),
    )


def sequencer_body(cfg: CoreConfig, *, p_last: str, tile_start: tuple[Stmt, ...],
                   advance: Stmt, flush_bits: int, flush: str) -> tuple[Stmt, ...]:
    """The fold sequencer of either dataflow: `start` latches the command,
    P - 1 = `p_last` and the first tile (`tile_start`); each fold runs its
    `step` 0..P-1, then `advance`s the tile, or after the last fold counts the
    `flush` (`flush_bits` wide) down to `done`."""
    sw, fb = cfg.step_bits, flush_bits
    start = (
        NonBlocking("issuing", "1'b1"),
        NonBlocking("busy", "1'b1"),
        NonBlocking("done", "1'b0"),
        NonBlocking("m_r", "cfg_m"),
        NonBlocking("n_r", "cfg_n"),
        NonBlocking("k_r", "cfg_k"),
        NonBlocking("p_last", p_last),
        *tile_start,
        NonBlocking("step", zero(sw)),
    )
    next_tile = If(
        "last_fold",
        (NonBlocking("issuing", "1'b0"), NonBlocking("flush", flush)),
        (advance,),
    )
    issue = If(
        "fold_end",
        (NonBlocking("step", zero(sw)), next_tile),
        (NonBlocking("step", f"step + {sw}'d1"),),
    )
    finish = If(
        f"flush != {zero(fb)}",
        (
            NonBlocking("flush", f"flush - {fb}'d1"),
            If(f"flush == {fb}'d1", (NonBlocking("busy", "1'b0"), NonBlocking("done", "1'b1"))),
        ),
    )
    reset = (
        NonBlocking("issuing", "1'b0"),
        NonBlocking("busy", "1'b0"),
        NonBlocking("done", "1'b0"),
        NonBlocking("flush", zero(fb)),
    )
    return (
        If("rst", reset, (If("start && !busy", start, (If("issuing", (issue,), (finish,)),)),)),
    )


def _control_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    mw, nw, sw = cfg.m_bits, cfg.n_bits, cfg.step_bits
    return sequencer_body(
        cfg,
        p_last=f"cfg_k + RC_2 - {sw}'d1",
        tile_start=(NonBlocking("m0", zero(mw)), NonBlocking("n0", zero(nw))),
        advance=tile_advance("row_wrap", "n0", nw, "COLS_N", "m0", "ROWS_M"),
        flush_bits=_flush(cfg)[1],
        flush="FLUSH",
    )


def _drain_body(cfg: CoreConfig) -> tuple[Stmt, ...]:
    mw, nw = cfg.m_bits, cfg.n_bits
    advance = tile_advance("(dn0 + COLS_N) >= n_r", "dn0", nw, "COLS_N", "dm0", "ROWS_M")
    clear = (
        NonBlocking("dm0", zero(mw)),
        NonBlocking("dn0", zero(nw)),
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
        NonBlocking("cnt", zero(cb)),
        NonBlocking("cycles", zero(cb)),
    )
    run = (
        If(
            "counting",
            (NonBlocking("cnt", f"cnt + {cb}'d1"),),
            (If("mac_first", (NonBlocking("counting", "1'b1"), NonBlocking("cnt", f"{cb}'d1"))),),
        ),
        If("mac_last", (NonBlocking("cycles", f"counting ? cnt : {zero(cb)}"),)),
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
