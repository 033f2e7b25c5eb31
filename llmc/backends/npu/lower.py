"""Integer-only IR -> an NPU program (one per phase).

Placement: activations live in the scratchpad at the memory plan's arena
offsets (plan.json: llmc.passes.memplan); views read through strides; weights,
graph inputs and outputs and the decode KV cache live in DRAM (`Dram`).
Above the arena comes a scratch area (values internal to a fused kernel,
parameter vectors, attention scores, copies of views strides cannot
express), and at the top the ping/pong weight-tile buffers. The K/V a
prefill returns are stored to the KV cache in DRAM as soon as they are made.

A plan made within a bound moves values out and back (spills.py); the K/V
a row-tiled prefill joins are written to the cache tile by tile.

Each op is rendered by one function of `RENDER` (keyed by the registry's op
names); `int_linear` (weight tiles, double-buffered: lower_linear.py) and
`int_attention` (per head and query tile: lower_attention.py) have modules
of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmc.backends.npu.isa import ALU_OPS, DRAM, SPAD, NpuError, Program, itemsize
from llmc.backends.npu.layout import ALIGN, Dram, Loc, dtype_code, view
from llmc.backends.npu.lower_attention import render_int_attention
from llmc.backends.npu.lower_linear import k_split, render_int_linear, tile_bytes, tile_rows
from llmc.backends.npu.spills import Spills
from llmc.errors import UsageError
from llmc.ir.alias import alias_root
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op

POS_REG = 8  # r8: the decode position (r1: weight-tile loops, lower_linear.LOOP_REG)
BINARY = {"add": "add", "sub": "sub", "mul": "mul", "maximum": "max", "minimum": "min",
          "le": "le", "lt": "lt", "eq": "eq", "ge": "ge", "gt": "gt", "ne": "ne"}
HOST_OPS = ("dequantize_int",)  # the integer graph's way out, applied by the host


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class PhaseIO:
    """Where a phase's inputs and outputs are in DRAM (io.json)."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)


def float_nodes(graph: Graph) -> list[Node]:
    """Nodes computing floats the NPU cannot run (the final dequantize_int of
    the logits is the host's)."""
    outs = {v.node for v in graph.outputs}
    return [n for n in graph.nodes if n.op not in ("input", "param")
            and any(t.dtype.is_float for t in n.types)
            and not (n.op in HOST_OPS and n in outs)]


class Lowering:
    def __init__(self, graph: Graph, plan: dict[str, Any], dram: Dram, params: dict[str, int],
                 array_cols: int, spad_bytes: int, spad_banks: int | None = None,
                 chip: Any = None) -> None:
        self.chip = chip  # llmc.passes.tiling.OnChip: attention's tiles (None: whole rows)
        self.g, self.dram, self.cols, self.spad_bytes = graph, dram, array_cols, spad_bytes
        self.tile_bytes = tile_bytes(spad_bytes, spad_banks)
        self.params = params
        self.p = Program(graph.name.rsplit("_", 1)[-1])
        self.offsets = {b["name"]: int(b["offset"]) for b in plan.get("buffers", [])}
        self.sizes = {b["name"]: int(b["size"]) for b in plan.get("buffers", [])}
        self.arena = _align(int(plan.get("arena_bytes", 0)))
        self.locs: dict[Value, Loc | None] = {}
        self.scratch_top = self.arena
        self.scratch_max = self.arena
        self.io = PhaseIO()
        self.wbuf = self._weight_buffers()
        self.node: Node | None = None
        self.spills = Spills.of(graph, plan)

    # ---- scratchpad map -----------------------------------------------------------

    def _weight_buffers(self) -> tuple[int, int]:
        """Bytes of one weight tile buffer and of one group-scale tile buffer."""
        w = gs = 0
        for n in self.g.nodes:
            if n.op != "int_linear":
                continue
            wt = n.inputs[1].type
            int4, group = wt.dtype.name == "u8", n.attrs.get("group", 0)
            kb = k_split(wt.shape[1], self.cols, self.tile_bytes, int4, group)
            rows = tile_rows(wt.shape[0], kb, self.cols, self.tile_bytes)
            w = max(w, _align(rows * kb))
            if len(n.inputs) > 2:
                gs = max(gs, _align(rows * -(-kb * (2 if int4 else 1) // group)))
        return w, gs

    def top(self) -> int:
        w, gs = self.wbuf
        return self.spad_bytes - 2 * w - 2 * gs

    def wbuf_addr(self, which: int, gs: bool = False) -> int:
        w, g = self.wbuf
        base = self.top()
        return base + (2 * w + which * g if gs else which * w)

    def scratch(self, dtype: int, shape: tuple[int, ...]) -> Loc:
        loc = Loc.dense(SPAD, dtype, self.scratch_top, shape)
        self.scratch_top += _align(loc.nbytes)
        self.scratch_max = max(self.scratch_max, self.scratch_top)
        return loc

    # ---- values -------------------------------------------------------------------

    def loc(self, v: Value) -> Loc | None:
        return self.locs[v]

    def out_loc(self, n: Node, i: int = 0) -> Loc:
        t = n.types[i]
        name = n.name if len(n.types) == 1 else f"{n.name}#{i}"
        code = dtype_code(t.dtype.name)
        if name in self.offsets:
            loc = Loc.dense(SPAD, code, self.offsets[name], t.shape)
            if loc.nbytes > self.sizes[name]:
                raise NpuError(f"plan buffer {name} holds {self.sizes[name]} bytes; "
                               f"%{name} needs {loc.nbytes}")
            return loc
        return self.scratch(code, t.shape)  # internal to a kernel, or K/V bound for DRAM

    def spad(self, v: Value) -> Loc:
        """v in the scratchpad: copied there first when it lives in DRAM or is a
        view strides cannot express."""
        loc = self.locs[v]
        if loc is None:
            loc = self._materialize(v)
        if loc.space == DRAM:
            dst = self.scratch(loc.dtype, loc.shape)
            self.dma(dst, loc, "load")
            self.p.emit("wait", 0)
            loc = dst
        return loc

    def _materialize(self, v: Value) -> Loc:
        """A view strides cannot express: copy its source densely, then view that."""
        chain = []
        while self.locs[v] is None:
            chain.append(v.node)
            v = v.node.inputs[0]
        src = self.spad(v)
        dense = self.scratch(src.dtype, src.shape)
        self.valu("mov", dense, src, None, "copy for a view")
        loc: Loc | None = dense
        for node in reversed(chain):
            loc = view(node, loc)
            if loc is None:
                raise NpuError(f"%{node.name}: {node.op} cannot be expressed as a view")
        return loc

    # ---- instruction helpers ----------------------------------------------------------

    def _c(self, what: str) -> str:
        n = self.node
        return f"{n.loc or '-'} %{n.name} {what}" if n is not None else what

    def dma(self, dst: Loc, src: Loc, what: str, dst_regs: dict | None = None,
            src_regs: dict | None = None) -> None:
        self.p.emit("dma", self.p.desc(dst.desc(**(dst_regs or {}))),
                    self.p.desc(src.desc(**(src_regs or {}))), comment=self._c(what))

    def valu(self, op: str, dst: Loc, a: Loc, b: Loc | None, what: str = "") -> None:
        self.p.emit("valu", self.p.desc(dst.desc()), self.p.desc(a.desc()),
                    -1 if b is None else self.p.desc(b.desc()),
                    flags=(ALU_OPS.index(op), 0, 0), comment=self._c(what or op))

    # ---- the walk -------------------------------------------------------------------

    def run(self, check: bool = True) -> Program:
        """The program; `check=False` skips the scratchpad's capacity check
        (to measure what a graph needs, `reserve`)."""
        bad = float_nodes(self.g)
        if bad:
            names = sorted({n.op for n in bad})
            raise UsageError(f"@{self.g.name}: the NPU runs integer-only graphs; float op "
                             f"{', '.join(names)} left (e.g. %{bad[0].name}); compile with "
                             "--quant w8a8-int or w4a8")
        from llmc.ir.kernels import kernel_spans
        from llmc.passes.memplan.liveness import kv_outputs

        self.kv = kv_outputs(self.g)
        spans = kernel_spans(self.g) or {}
        open_until = -1
        for i, n in enumerate(self.g.nodes):
            self.node = n
            # a fused kernel's internal values live in scratch until the kernels
            # open at this step have all ended
            if i > open_until:
                self.scratch_top = self.arena
            open_until = max(open_until, spans.get(n, (i, i))[1])
            self.spills.load(self, i)
            if n.op == "param":
                addr = self.params[n.attrs["name"]]
                if n.type.dtype.is_float:  # host data (the logits' scales): its bytes
                    self.locs[n.out()] = Loc.dense(DRAM, dtype_code("u8"), addr,
                                                   (n.type.nbytes,))
                else:
                    self.locs[n.out()] = Loc.dense(DRAM, dtype_code(n.type.dtype.name), addr,
                                                   n.type.shape)
            elif n.op == "input":
                t = n.type
                addr = self.dram.alloc(f"{self.p.name}:in:{n.name}", t.nbytes)
                self.io.inputs.append({"name": n.name, "addr": addr,
                                       "dtype": np.dtype(t.dtype.np).name,
                                       "shape": list(t.shape)})
                self.locs[n.out()] = Loc.dense(DRAM, dtype_code(t.dtype.name), addr, t.shape)
            elif get_op(n.op).kind == "view":
                src = self.locs[n.inputs[0]]
                self.locs[n.out()] = None if src is None else view(n, src)
            elif n.op in HOST_OPS:
                continue
            elif n.op in RENDER:
                RENDER[n.op](self, n)
                self._store_kv(n)
            else:
                raise UsageError(f"the npu backend has no rendering of op {n.op} "
                                 f"(%{n.name} in @{self.g.name})")
            self.spills.store(self, i)
        self.node = None
        self.spills.load(self, len(self.g.nodes))
        self._outputs()
        self.p.emit("wait", 0)
        self.p.emit("halt")
        if check:
            self._finish()
        return self.p

    def _store_kv(self, n: Node) -> None:
        """K/V a prefill returns go to the KV cache in DRAM as soon as they are
        made (the scratch they were made in is reused); readers fetch them back."""
        for i in range(len(n.types)):
            v = Value(n, i)
            src = self.locs[v]
            if v not in self.kv or src is None or src.space == DRAM:  # decode: in place
                continue
            addr = self.dram.alloc(f"{self.p.name}:kv:{n.name}", src.nbytes)
            dst = Loc.dense(DRAM, src.dtype, addr, src.shape)
            self.dma(dst, src, "K/V to the DRAM cache")
            self.p.emit("wait", 0)
            self.locs[v] = dst

    def _outputs(self) -> None:
        for i, v in enumerate(self.g.outputs):
            entry: dict[str, Any] = {"index": i}
            if v.node.op in HOST_OPS:
                x, s = v.node.inputs
                sloc = self.locs[s]
                entry["dequantize"] = {"addr": sloc.base, "shape": list(s.type.shape)}
                v = x
            loc = self.locs[v]
            if loc is not None and loc.space == DRAM and loc.is_dense:
                entry.update(addr=loc.base, dtype=np.dtype(v.type.dtype.np).name,
                             shape=list(v.type.shape))
            else:
                self.scratch_top = self.arena
                src = loc if loc is not None and loc.space == DRAM else self.spad(v)
                addr = self.dram.alloc(f"{self.p.name}:out:{i}", src.nbytes)
                dst = Loc.dense(DRAM, src.dtype, addr, src.shape)
                self.dma(dst, src, f"output {i}")
                entry.update(addr=addr, dtype=np.dtype(v.type.dtype.np).name,
                             shape=list(v.type.shape))
            self.io.outputs.append(entry)

    def _finish(self) -> None:
        """Check that the arena, the scratch and the weight tiles fit the scratchpad."""
        top = self.top()
        if self.scratch_max > top:
            need = self.scratch_max + self.spad_bytes - top
            raise UsageError(f"@{self.g.name} needs {need:,} bytes of scratchpad (arena "
                             f"{self.arena:,}, scratch {self.scratch_max - self.arena:,}, "
                             f"weight tiles {self.spad_bytes - top:,}); the NPU has "
                             f"{self.spad_bytes:,}: compile with a shorter --seq-len, or "
                             "plan its arena within the scratchpad (NpuBackend.fit: row tiles "
                             "and spills)")


# ---- renderers ---------------------------------------------------------------------------


def _arange(L: Lowering, n: Node) -> None:
    out = L.out_loc(n)
    a = n.attrs
    L.p.emit("viota", L.p.desc(out.desc()), a["start"], a["step"], comment=L._c("arange"))
    L.locs[n.out()] = out


def _unary(op: str):  # noqa: ANN202
    def render(L: Lowering, n: Node) -> None:
        x = L.spad(n.inputs[0])
        out = L.out_loc(n)
        L.valu(op, out, x, None, n.op)
        L.locs[n.out()] = out
    return render


def _binary(L: Lowering, n: Node) -> None:
    a, b = L.spad(n.inputs[0]), L.spad(n.inputs[1])
    out = L.out_loc(n)
    L.valu(BINARY[n.op], out, a, b, n.op)
    L.locs[n.out()] = out


def _requant(L: Lowering, n: Node) -> None:
    x = L.spad(n.inputs[0])
    m = L.spad(n.inputs[1]) if len(n.inputs) > 1 else None
    out = L.out_loc(n)
    L.p.emit("requant", L.p.desc(out.desc()), L.p.desc(x.desc()),
             -1 if m is None else L.p.desc(m.desc()), n.attrs.get("mult", 0) if m is None else 0,
             n.attrs["shift"], 0, comment=L._c("requant"))
    L.locs[n.out()] = out


def _embedding(L: Lowering, n: Node) -> None:
    table, idx = L.locs[n.inputs[0]], L.locs[n.inputs[1]]
    if idx is None or not idx.is_dense:
        idx = L.spad(n.inputs[1])
    out = L.out_loc(n)
    rows = idx.numel
    dst = Loc.dense(SPAD, out.dtype, out.base, (rows, table.shape[1]))
    L.p.emit("gather", L.p.desc(dst.desc()), L.p.desc(table.desc()),
             L.p.desc(Loc.dense(idx.space, idx.dtype, idx.base, (rows,)).desc()),
             comment=L._c("embedding rows"))
    L.p.emit("wait", 0)
    L.locs[n.out()] = out


def _rms_norm(L: Lowering, n: Node) -> None:
    x, g = L.spad(n.inputs[0]), L.spad(n.inputs[1])
    out = L.out_loc(n)
    a = n.attrs
    L.p.emit("vrmsnorm", L.p.desc(out.desc()), L.p.desc(x.desc()), L.p.desc(g.desc()),
             a["eps"], a["rbits"], a["shift"], comment=L._c("int_rms_norm"))
    L.locs[n.out()] = out


def _silu(L: Lowering, n: Node) -> None:
    x = L.spad(n.inputs[0])
    out = L.out_loc(n)
    a = n.attrs
    L.p.emit("vsilu", L.p.desc(out.desc()), L.p.desc(x.desc()), a["in_mult"], a["in_shift"],
             a["frac"], a["out_mult"], a["out_shift"], comment=L._c("int_silu"))
    L.locs[n.out()] = out


def _concat(L: Lowering, n: Node) -> None:
    if n.out() in L.kv:   # the K/V a row-tiled prefill joins: its tiles go to the cache
        t = n.type
        addr = L.dram.alloc(f"{L.p.name}:kv:{n.name}", t.nbytes)
        out = Loc.dense(DRAM, dtype_code(t.dtype.name), addr, t.shape)
    else:
        out = L.out_loc(n)
    d = n.attrs["dim"] % len(out.shape)
    at = 0
    for v in n.inputs:
        x = L.spad(v)
        shape = list(out.shape)
        shape[d] = x.shape[d]
        part = Loc(out.space, out.dtype, out.base + at * out.strides[d] * itemsize(out.dtype),
                   tuple(shape), out.strides)
        if out.space == DRAM:
            L.dma(part, x, "K/V tile to the DRAM cache")
        else:
            L.valu("mov", part, x, None, "concat")
        at += x.shape[d]
    if out.space == DRAM:
        L.p.emit("wait", 0)
    L.locs[n.out()] = out


def _index_copy(L: Lowering, n: Node) -> None:
    """A KV-cache row written in place into the DRAM cache (the decode's input)."""
    cache = L.locs[n.inputs[0]]
    if alias_root(n.inputs[0]).node.op != "input" or cache is None or cache.space != DRAM:
        raise UsageError(f"%{n.name}: the npu backend writes index_copy in place into a "
                         "DRAM input (a KV cache) only")
    if n.inputs[1].type.shape != (1,):
        raise UsageError(f"%{n.name}: index_copy of one position at a time only")
    idx = L.locs[n.inputs[1]]
    if idx is None:
        idx = L.spad(n.inputs[1])
    src = L.spad(n.inputs[2])
    d = n.attrs["dim"] % len(cache.shape)
    L.p.emit("ldreg", POS_REG, L.p.desc(Loc.dense(idx.space, idx.dtype, idx.base, (1,)).desc()),
             comment=L._c("KV position"))
    shape = list(cache.shape)
    shape[d] = 1
    row = Loc(DRAM, cache.dtype, cache.base, tuple(shape), cache.strides)
    L.dma(row, src, "KV cache write", dst_regs={"reg_a": POS_REG,
                                                 "step_a": cache.strides[d] * itemsize(
                                                     cache.dtype)})
    L.locs[n.out()] = cache


RENDER = {
    "arange": _arange, "cast": _unary("mov"), "neg": _unary("neg"),
    **dict.fromkeys(BINARY, _binary),
    "requant": _requant, "embedding": _embedding, "int_rms_norm": _rms_norm,
    "int_silu": _silu, "concat": _concat, "index_copy": _index_copy,
    "int_linear": render_int_linear, "int_attention": render_int_attention,
}


def lower(graph: Graph, plan: dict[str, Any], dram: Dram, params: dict[str, int],
          array_cols: int, spad_bytes: int, spad_banks: int | None = None, chip: Any = None
          ) -> tuple[Program, PhaseIO]:
    """The program of one phase (param name -> DRAM address in `params`) and
    where its inputs and outputs are."""
    low = Lowering(graph, plan, dram, params, array_cols, spad_bytes, spad_banks, chip)
    return low.run(), low.io


__all__ = ["PhaseIO", "RENDER", "float_nodes", "k_split", "lower", "tile_bytes", "tile_rows"]
