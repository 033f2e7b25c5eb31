"""`int_linear` on the NPU: weight tiles streamed from DRAM, double-buffered.

A linear is a loop over weight tiles of `tile_rows` output rows (a multiple
of the array's columns, sized so a tile fills about one scratchpad bank,
`tile_bytes`: 256 KiB on edge-npu, whose 8 MiB are 32 banks): DMA of tile
i+1 is issued before the matmul of tile i and WAIT 1 lets it fly (double
buffering through LOOP and a ping/pong descriptor); int4 weights stay in
their SIMD-packed layout (two per byte) and the matmul's 4-bit mode reads
them so, with their u8 group scales. A reduction too wide for 128 whole rows
in one tile is split (`k_split`) into slices whose matmuls accumulate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llmc.backends.npu.isa import DRAM, I4X2, SPAD, itemsize
from llmc.backends.npu.layout import Loc, reshape
from llmc.ir.graph import Node

if TYPE_CHECKING:
    from llmc.backends.npu.lower import Lowering

LOOP_REG = 1  # r1: weight-tile loops


def tile_bytes(spad_bytes: int, banks: int | None) -> int:
    """A weight tile's budget: one scratchpad bank (the whole scratchpad / 32
    when the device gives no banks), so the DMA filling one tile and the
    array reading the other touch different banks."""
    return spad_bytes // (banks or 32)


def k_split(row_bytes: int, cols: int, budget: int, int4: bool, group: int) -> int:
    """Bytes of each weight row a tile holds: the whole row, or when 128 whole
    rows exceed the budget (a wide reduction, such as llama-2-7b's 11,008-wide
    down projection in int8), a slice of it on int4 lane (32 elements) and
    group boundaries; the matmuls of a row's slices accumulate."""
    if cols * row_bytes <= budget:
        return row_bytes
    unit = 16 if int4 else 64
    if group:
        g = group // 2 if int4 else group
        unit = unit * g // math.gcd(unit, g)
    return max(unit, budget // cols // unit * unit)


def tile_rows(n: int, row_bytes: int, cols: int, budget: int) -> int:
    """Output rows per weight tile: a multiple of the array's columns, about
    `budget` bytes."""
    rows = cols * max(1, budget // max(cols * row_bytes, 1))
    return min(rows, n)


def render_int_linear(L: Lowering, n: Node) -> None:
    x = L.spad(n.inputs[0])
    xt = n.inputs[0].type
    k = xt.shape[-1]
    m = xt.numel // k
    x2 = reshape(x, (m, k))
    if x2 is None:
        dense = L.scratch(x.dtype, x.shape)
        L.valu("mov", dense, x, None, "dense matmul input")
        x2 = Loc.dense(SPAD, x.dtype, dense.base, (m, k))
    w = L.locs[n.inputs[1]]
    nout, row_bytes = w.shape
    int4 = n.inputs[1].type.dtype.name == "u8"
    gs = L.locs[n.inputs[2]] if len(n.inputs) > 2 else None
    group = n.attrs.get("group", 0)
    out = L.out_loc(n)
    acc = Loc.dense(SPAD, out.dtype, out.base, (m, nout))
    if k_split(row_bytes, L.cols, L.tile_bytes, int4, group) < row_bytes:
        _ksplit(L, n, x2, w, gs, group, acc, int4)
        L.locs[n.out()] = out
        return
    rows = tile_rows(nout, row_bytes, L.cols, L.tile_bytes)
    full, rem = divmod(nout, rows)
    wdt = I4X2 if int4 else w.dtype
    per = 2 if gs is not None else 1

    def wtile(r: int, buf_of: int) -> tuple[Loc, Loc]:
        """(DRAM tile, SPAD buffer) of r rows."""
        src = Loc.dense(DRAM, w.dtype, w.base, (r, row_bytes))
        dst = Loc.dense(SPAD, w.dtype, L.wbuf_addr(buf_of), (r, row_bytes))
        return src, dst

    def gtile(r: int, buf_of: int) -> tuple[Loc, Loc]:
        g = gs.shape[1]
        return (Loc.dense(DRAM, gs.dtype, gs.base, (r, g)),
                Loc.dense(SPAD, gs.dtype, L.wbuf_addr(buf_of, True), (r, g)))

    def load(first_row: int, r: int, buf: int, regs: dict | None, pp: dict | None) -> None:
        src, dst = wtile(r, buf)
        step = rows * row_bytes * itemsize(w.dtype)
        sregs = {"reg_a": LOOP_REG, "step_a": step} if regs else {}
        src = Loc(DRAM, src.dtype, src.base + first_row * row_bytes, src.shape, src.strides)
        L.dma(dst, src, f"weight rows {first_row}+{r}" + (" (+i tiles)" if regs else ""),
              dst_regs=pp, src_regs=sregs)
        if gs is not None:
            gsrc, gdst = gtile(r, buf)
            gstep = rows * gs.shape[1]
            gsrc = Loc(DRAM, gs.dtype, gsrc.base + first_row * gs.shape[1], gsrc.shape,
                       gsrc.strides)
            gpp = None
            if pp:
                gpp = {"reg_pp": LOOP_REG, "pp_step": L.wbuf_addr(1 - buf, True)
                       - L.wbuf_addr(buf, True)}
            L.dma(gdst, gsrc, "group scales", dst_regs=gpp,
                  src_regs={"reg_a": LOOP_REG, "step_a": gstep} if regs else {})

    def mm(first_col: int, r: int, buf: int, loop: bool) -> None:
        b = Loc.dense(SPAD, wdt, L.wbuf_addr(buf), (r, row_bytes))
        c = acc.cols(first_col, r)
        regs_b = {"reg_pp": LOOP_REG, "pp_step": L.wbuf_addr(1 - buf) - L.wbuf_addr(buf)} \
            if loop else {}
        regs_c = {"reg_a": LOOP_REG, "step_a": rows * itemsize(acc.dtype)} if loop else {}
        gd = -1
        if gs is not None:
            gb = Loc.dense(SPAD, gs.dtype, L.wbuf_addr(buf, True), (r, gs.shape[1]))
            greg = {"reg_pp": LOOP_REG, "pp_step": L.wbuf_addr(1 - buf, True)
                    - L.wbuf_addr(buf, True)} if loop else {}
            gd = L.p.desc(gb.desc(**greg))
        L.p.emit("matmul", L.p.desc(c.desc(**regs_c)), L.p.desc(x2.desc()),
                 L.p.desc(b.desc(**regs_b)), gd, group,
                 comment=L._c(f"{m}x{r}x{k} tile" + (" i" if loop else f" @{first_col}")))

    # prologue: tile 0 -> buffer 0
    load(0, rows if full else rem, 0, None, None)
    if full > 1:
        # loop i = 0 .. full-2: load tile i+1 into buffer (i+1)&1, matmul tile i in i&1
        L.p.emit("loop", LOOP_REG, full - 1, comment=L._c(f"{full} weight tiles of {rows} rows"))
        load(rows, rows, 1, True, {"reg_pp": LOOP_REG,
                                   "pp_step": L.wbuf_addr(0) - L.wbuf_addr(1)})
        L.p.emit("wait", per)
        mm(0, rows, 0, True)
        L.p.emit("endloop", LOOP_REG)
    if full:
        last = (full - 1) & 1
        if rem:
            load(full * rows, rem, 1 - last, None, None)
        L.p.emit("wait", per if rem else 0)
        mm((full - 1) * rows, rows, last, False)
        if rem:
            L.p.emit("wait", 0)
            mm(full * rows, rem, 1 - last, False)
    else:
        L.p.emit("wait", 0)
        mm(0, rem, 0, False)
    L.locs[n.out()] = out


def _ksplit(L: Lowering, n: Node, x2: Loc, w: Loc, gs: Loc | None, group: int,
                       acc: Loc, int4: bool) -> None:
    """int_linear whose 128 whole weight rows exceed a tile: tiles of 128 rows x a
    slice of the reduction, unrolled, double-buffered, the slices of a row block
    accumulating into its int32 outputs."""
    nout, row_bytes = w.shape
    m, k = x2.shape
    kb = k_split(row_bytes, L.cols, L.tile_bytes, int4, group)
    per_byte = 2 if int4 else 1
    rows = tile_rows(nout, kb, L.cols, L.tile_bytes)
    tiles = [(n0, min(rows, nout - n0), k0, min(kb, row_bytes - k0))
             for n0 in range(0, nout, rows) for k0 in range(0, row_bytes, kb)
             if k0 * per_byte < k]
    wdt = I4X2 if int4 else w.dtype

    def load(i: int) -> None:
        n0, r, k0, nb = tiles[i]
        src = Loc(DRAM, w.dtype, w.base + n0 * row_bytes + k0, (r, nb), (row_bytes, 1))
        L.dma(Loc.dense(SPAD, w.dtype, L.wbuf_addr(i & 1), (r, nb)), src,
              f"weight rows {n0}+{r}, bytes {k0}+{nb}")
        if gs is not None:
            g0, gn = k0 * per_byte // group, -(-nb * per_byte // group)
            gsrc = Loc(DRAM, gs.dtype, gs.base + n0 * gs.shape[1] + g0, (r, gn),
                       (gs.shape[1], 1))
            L.dma(Loc.dense(SPAD, gs.dtype, L.wbuf_addr(i & 1, True), (r, gn)), gsrc,
                  "group scales")

    per = 2 if gs is not None else 1
    load(0)
    for i, (n0, r, k0, nb) in enumerate(tiles):
        if i + 1 < len(tiles):
            load(i + 1)
        L.p.emit("wait", per if i + 1 < len(tiles) else 0)
        ka = min(nb * per_byte, k - k0 * per_byte)
        a = x2.cols(k0 * per_byte, ka)
        b = Loc.dense(SPAD, wdt, L.wbuf_addr(i & 1), (r, nb))
        gd = -1
        if gs is not None:
            gb = Loc.dense(SPAD, gs.dtype, L.wbuf_addr(i & 1, True),
                           (r, -(-nb * per_byte // group)))
            gd = L.p.desc(gb.desc())
        L.p.emit("matmul", L.p.desc(acc.cols(n0, r).desc()), L.p.desc(a.desc()),
                 L.p.desc(b.desc()), gd, group if gs is not None else 0,
                 flags=(int(k0 > 0), 0, 0),
                 comment=L._c(f"{m}x{r}x{ka} tile @{n0}, k {k0 * per_byte}"))


__all__ = ["LOOP_REG", "k_split", "render_int_linear", "tile_bytes", "tile_rows"]
