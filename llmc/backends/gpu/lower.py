"""From an optimised graph to the gpu backend's program: a list of steps.

A step is one kernel launch (a fusion group, or the part of one that a
kernel covers), a view (reshape / permute / slice: no data moves), or an
index computation on the host side of the stream (positions, masks:
integers and booleans only). The rules, in the order they are tried:

  * `linear` / `wq_linear` and the pointwise ops after it in its fusion
    group (each the only user of the one before) -> one GEMM kernel with
    that epilogue (llmc/backends/gpu/gemm.py);
  * the rotate-half RoPE pattern (add(mul(x, cos), mul(concat(neg(x_hi),
    x_lo), sin))) -> the epilogue of the GEMM that x views as (B, H, T, D)
    (a projection's fusion group is then one kernel), else one RoPE kernel;
  * `attention`, or FlashAttention's tiled chain (flash_init, slices,
    flash_step...) -> one attention kernel, with the tiles the tiling pass
    chose or the device's rule (llmc.passes.tiling), its sliding window and
    sinks if any (a decode step's attention becomes split-K decode
    attention afterwards: llmc/backends/gpu/decode.py);
  * `qlinear` (block-format weights and/or inputs) -> a GEMM kernel that
    dequantises the weight and rounds x in registers, `embedding` of a
    block table + `dequantize` -> one gather (llmc/backends/gpu/blockfmt.py);
  * `moe_ffn` (+ the residual add after it) -> routing, grouped expert
    GEMMs and a combine (llmc/backends/gpu/moe.py);
  * the integer-only ops (int_linear + requant, int_rms_norm, int_attention,
    elementwise integer groups) -> llmc/backends/gpu/intk.py's kernels;
  * `embedding` (+ its `cast`), `rms_norm`, `quantize` (KV block formats),
    `index_copy` (the KV cache write) -> their kernels;
  * `layer_norm`, and float add / sub / mul / gelu that no GEMM took ->
    their kernels (llmc/backends/gpu/pointwise.py).

Anything else is listed, all at once, in program.json's "unsupported": the
artifact compiles (with its report) and `llmc run` refuses it in one line.
Values are named by their IR reference without the `%` ("add_2", "x#1").
"""

from __future__ import annotations

import math
from typing import Any

from llmc.backends.gpu import pointwise
from llmc.backends.gpu.gemm import EPILOGUE, UNARY, GemmKind
from llmc.errors import UsageError
from llmc.ir import Graph
from llmc.ir.graph import Node, Value

VIEWS = frozenset({"reshape", "permute", "slice"})
HOST = frozenset({"arange", "add", "sub", "le", "lt", "ge", "gt", "eq", "logical_not"})
KV_FORMATS = ("bfp", "mxint8")  # block formats with integer mantissas of <= 8 bits


def ref(v: Value) -> str:
    return v.ref.removeprefix("%")


def jattrs(attrs: Any) -> dict[str, Any]:
    """Attributes as JSON values (dtypes by name)."""
    return {k: (v if isinstance(v, (int, float, str, bool, list, tuple)) or v is None
                else str(v)) for k, v in dict(attrs).items()}


def dtype_of(v: Value) -> str:
    return v.type.dtype.name


def kv_format(dtype: Any) -> dict[str, int]:
    """KV_BLOCK, SHIFT, TOP of a block dtype the kernels store as int8
    mantissas + int8 exponents (UsageError for other block formats)."""
    if dtype.name == "mxint8":              # MXINT8 = BFP with p = 8, blocks of 32
        return {"block": dtype.block, "shift": 6, "top": 127}
    if dtype.name.startswith("bfp") and int(dtype.elem[3:]) <= 8:
        p = int(dtype.elem[3:])
        return {"block": dtype.block, "shift": p - 2, "top": 2 ** (p - 1) - 1}
    raise UsageError(f"the gpu backend stores block formats with integer mantissas of at most "
                     f"8 bits (bfp2..8, mxint8); {dtype.name} is not one")


class Lowering:
    """One graph's steps (see the module docstring); `tiles(node)` gives an
    untiled attention's (block_q, block_k) and checks them."""

    def __init__(self, graph: Graph, tiles: Any) -> None:
        self.g, self.tiles = graph, tiles
        self.users = graph.users()
        self.absorbed: set[str] = set()
        self.at: dict[str, dict[str, Any]] = {}   # node name -> the step emitted there
        self.bad: dict[str, str] = {}
        self.kinds: dict[str, GemmKind] = {}   # kernel name -> its GEMM kind

    def only_user(self, n: Node) -> Node | None:
        us = self.users.get(n, [])
        return us[0] if len(us) == 1 else None

    # -- pattern rules: each fills self.at / self.absorbed, or returns False --
    def gemm(self, n: Node) -> None:
        chain, ops, extra = [n], [], []
        cur = n
        while True:
            u = self.only_user(cur)
            if (u is None or u.attrs.get("fusion") != n.attrs.get("fusion")
                    or u.op not in EPILOGUE or u.type.shape != n.type.shape
                    or not u.type.dtype.is_float):
                break
            if u.op in UNARY:
                if [i.node for i in u.inputs] != [cur]:
                    break
                ops.append(pointwise.gelu_name(u) if u.op == "gelu" else u.op)
            else:
                if len(u.inputs) != 2 or sum(i.node is cur for i in u.inputs) != 1:
                    break
                other = next(i for i in u.inputs if i.node is not cur)
                if other.type.shape != n.type.shape or other.type.dtype.kind == "block":
                    break
                ops.append("rsub" if u.op == "sub" and u.inputs[1].node is cur else u.op)
                extra.append(ref(other))
            chain.append(u)
            cur = u
        if n.op == "qlinear":       # block-format weights / activations
            from llmc.backends.gpu.blockfmt import gemm_step
            return gemm_step(self, n, chain, tuple(ops), extra)
        x, w = n.inputs[0], n.inputs[1]
        int4 = n.op == "wq_linear"
        kind = GemmKind("int4" if int4 else "dense", not int4 and len(n.inputs) > 2, tuple(ops))
        if x.type.dtype.kind == "block" or (not int4 and w.type.dtype.kind == "block"):
            self.bad.setdefault(f"{n.op} on block-format operands", f"%{n.name}")
            return
        if int4 and w.type.dtype.name != "u8":
            self.bad.setdefault("wq_linear with unpacked int8 weights", f"%{n.name}")
            return
        self.kinds[kind.name] = kind
        K = x.type.shape[-1]
        step = {"op": "gemm", "kernel": kind.name, "x": ref(x), "w": ref(w),
                "scales": ref(n.inputs[2]) if int4 else None,
                "bias": ref(n.inputs[2]) if kind.bias else None, "extra": extra,
                "M": math.prod(x.type.shape[:-1]), "N": n.type.shape[-1], "K": K,
                "KP": w.type.shape[1] * 2 if int4 else K,
                "group_size": int(n.attrs["group"]) if int4 else 0}
        self.emit(chain, step)

    def rope(self, n: Node) -> bool:
        """n = add(mul(x, cos), mul(concat(neg(slice hi of x), slice lo of x), sin))."""
        if n.op != "add" or len(n.inputs) != 2:
            return False
        m1, m2 = (i.node for i in n.inputs)
        if m1.op != "mul" or m2.op != "mul":
            return False
        cat = m2.inputs[0].node
        if cat.op != "concat" or len(cat.inputs) != 2 or cat.inputs[0].node.op != "neg":
            return False
        hi, lo = cat.inputs[0].node.inputs[0].node, cat.inputs[1].node
        x = m1.inputs[0]
        d = x.type.shape[-1]
        ok = (hi.op == lo.op == "slice" and hi.inputs[0] == lo.inputs[0] == x
              and hi.attrs["start"] == d // 2 and lo.attrs["start"] == 0
              and lo.attrs["end"] == d // 2 and int(hi.attrs["dim"]) % 4 == 3
              and x.type.rank == 4 and n.type.shape == x.type.shape)
        if not ok:
            return False
        cos, sin = m1.inputs[1], m2.inputs[1]
        nodes = [m1, cat.inputs[0].node, cat, m2, n, hi, lo]
        if self.rope_into_gemm(x, cos, sin, nodes):
            return True
        step = {"op": "rope", "x": ref(x), "cos": ref(cos), "sin": ref(sin)}
        self.emit(nodes, step)
        return True

    def rope_into_gemm(self, x: Value, cos: Value, sin: Value, nodes: list[Node]) -> bool:
        """RoPE as the epilogue of the GEMM whose output x views as (B, H, T, D):
        x = permute(reshape(gemm out, (B, T, H, D)), (0, 2, 1, 3)), nothing else
        reading the views, whole power-of-two heads, cos/sin (T, D)."""
        perm = x.node
        if perm.op != "permute" or list(perm.attrs["perm"]) != [0, 2, 1, 3]:
            return False
        view = perm.inputs[0].node
        if view.op != "reshape" or view.inputs[0].type.rank != 3:
            return False
        src = view.inputs[0]
        B, T, H, D = view.type.shape
        owner = next((k for k, s in self.at.items() if s.get("out") == ref(src)
                      and s["op"] == "gemm"), None)
        ok = (owner is not None and D >= 2 and D & (D - 1) == 0
              and self.users.get(view, []) == [perm] and self.only_user(src.node) == view
              and set(self.users.get(perm, [])) <= set(nodes)
              and cos.type.shape == sin.type.shape == (T, D))
        if not ok:
            return False
        step = self.at.pop(owner)
        kind = self.kinds[step["kernel"]]
        kind = GemmKind(kind.weight, kind.bias, kind.epilogue, rope=True, act=kind.act)
        self.kinds[kind.name] = kind
        step.update({"kernel": kind.name, "cos": ref(cos), "sin": ref(sin), "T": T,
                     "head_dim": D})
        self.emit([*nodes, perm, view], step)
        return True

    def attention(self, n: Node) -> None:
        q, k, v = n.inputs[:3]
        mask = n.inputs[3] if len(n.inputs) > 3 else None
        if mask is not None and mask.type.dtype.name != "bool":
            self.bad.setdefault("attention with an additive mask", f"%{n.name}")
            return
        if any(a in n.attrs for a in ("block_size", "stride")):
            self.bad.setdefault("block-sparse attention", f"%{n.name}")
            return
        bq, bk = self.tiles(n, None)
        self.emit([n], self.attn_step(n, q, k, v, mask, bq, bk))

    def attn_step(self, n: Node, q: Value, k: Value, v: Value, mask: Value | None,
                  bq: int, bk: int) -> dict[str, Any]:
        if k.type.dtype.kind == "block":
            try:
                kv_format(k.type.dtype)
            except UsageError:
                self.bad.setdefault(f"attention over {k.type.dtype}", f"%{n.name}")
        return {"op": "attention", "q": ref(q), "k": ref(k), "v": ref(v),
                "mask": ref(mask) if mask is not None else None,
                "causal": bool(n.attrs["causal"]), "scale": float(n.attrs["scale"]),
                "block_q": bq, "block_k": bk,
                # sliding window and attention sinks (llmc/ir/ops/tiled.py), when set
                **({"window": int(n.attrs["window"]), "sinks": int(n.attrs.get("sinks") or 0)}
                   if n.attrs.get("window") else {})}

    def flash(self, init: Node) -> None:
        """flash_init, its per-tile slices and flash_steps -> one attention step."""
        steps, cur, chain = [], init, [init]
        while True:
            nxt = [u for u in self.users.get(cur, []) if u.op == "flash_step"]
            if len(nxt) != 1:
                break
            steps.append(nxt[0])
            cur = nxt[0]
        if not steps:
            self.bad.setdefault("flash_init without flash_step", f"%{init.name}")
            return
        first = steps[0]
        if any(a in first.attrs for a in ("block_size", "stride")):
            self.bad.setdefault("block-sparse attention", f"%{first.name}")
            return
        for s in steps:
            chain += [s, s.inputs[1].node, s.inputs[2].node]
        ks = first.inputs[1].node
        q, k, v = init.inputs[0], ks.inputs[0], first.inputs[2].node.inputs[0]
        mask = first.inputs[6] if len(first.inputs) > 6 else None
        bq, bk = self.tiles(first, (int(first.attrs["block_q"]),
                                    int(ks.attrs["end"]) - int(ks.attrs["start"])))
        step = self.attn_step(first, q, k, v, mask, bq, bk)
        self.emit(chain, step, out=ref(steps[-1].out(0)))

    # -- the walk ---------------------------------------------------------
    def emit(self, nodes: list[Node], step: dict[str, Any], out: str | None = None) -> None:
        last = max(nodes, key=self.g.nodes.index)
        step["out"] = out or ref(last.out())
        step["loc"] = last.loc or ""
        if "fusion" in last.attrs:
            step["group"] = int(last.attrs["fusion"])
        self.absorbed.update(x.name for x in nodes)
        self.at[last.name] = step

    def run(self) -> list[dict[str, Any]]:
        for n in self.g.nodes:
            if n.name in self.absorbed or n.op in ("input", "param"):
                continue
            if n.op in ("linear", "wq_linear", "qlinear"):
                self.gemm(n)
            elif n.op == "flash_init":
                self.flash(n)
            elif n.op == "embedding" and n.inputs[0].type.dtype.kind == "block":
                from llmc.backends.gpu.blockfmt import embedding_step
                embedding_step(self, n)
            elif n.op == "moe_ffn":
                from llmc.backends.gpu.moe import moe_step
                moe_step(self, n)
        from llmc.backends.gpu.intk import lower_int
        lower_int(self)             # integer-only graphs (w8a8-int)
        for n in self.g.nodes:
            if n.name not in self.absorbed and n.op == "add":
                self.rope(n)
        steps = []
        for n in self.g.nodes:
            if n.name in self.at:
                steps.append(self.at[n.name])
            elif n.name not in self.absorbed and n.op not in ("input", "param"):
                s = self.single(n)
                if s is not None:
                    s.setdefault("out", ref(n.out()))
                    s["loc"] = n.loc or ""
                    steps.append(s)
        return steps

    def unsupported(self) -> list[str]:
        return [f"{what} (e.g. {where} in @{self.g.name})"
                for what, where in sorted(self.bad.items())]

    def single(self, n: Node) -> dict[str, Any] | None:
        ins = [ref(i) for i in n.inputs]
        if n.op in VIEWS:
            return {"op": "view", "view": n.op, "in": ins[0], "attrs": jattrs(n.attrs),
                    "shape": list(n.type.shape)}
        if n.op in HOST and not n.type.dtype.is_float:
            return {"op": "host", "fn": n.op, "in": ins, "attrs": jattrs(n.attrs)}
        if n.op == "embedding":
            u = self.only_user(n)
            if u is not None and u.op == "cast" and u.attrs.get("fusion") == n.attrs.get("fusion"):
                self.absorbed.add(u.name)
                return {"op": "embedding", "table": ins[0], "idx": ins[1], "out": ref(u.out()),
                        "dtype": dtype_of(u.out())}
            return {"op": "embedding", "table": ins[0], "idx": ins[1], "dtype": dtype_of(n.out())}
        if n.op == "rms_norm":
            return {"op": "rms_norm", "x": ins[0], "w": ins[1] if len(ins) > 1 else None,
                    "eps": float(n.attrs["eps"])}
        if n.op == "attention":
            self.attention(n)
            return self.at.pop(n.name, None)
        if n.op == "quantize":
            try:
                fmt = kv_format(n.attrs["dtype"])
            except UsageError:
                self.bad.setdefault(f"block format {n.attrs['dtype']}", f"%{n.name}")
                return None
            if n.type.rank != 4:
                self.bad.setdefault("quantize of a tensor that is not (B, G, T, D)", f"%{n.name}")
                return None
            return {"op": "quantize", "x": ins[0], "dtype": n.type.dtype.name, **fmt}
        if n.op == "index_copy" and int(n.attrs["dim"]) % n.type.rank == 2 and n.type.rank == 4:
            return {"op": "kv_write", "cache": ins[0], "idx": ins[1], "src": ins[2]}
        s = pointwise.step(n, ins)       # layer_norm, float add / sub / mul / gelu on their own
        if s is not None:
            return s
        self.bad.setdefault(f"op {n.op}" + (f" on {n.type.dtype}" if n.op in HOST else ""),
                            f"%{n.name}")
        return None


def lower(graph: Graph, tiles: Any) -> tuple[list[dict[str, Any]], set[GemmKind], list[str]]:
    """The steps of `graph`, the GEMM kinds they use, and what has no kernel
    (one line each; such an artifact compiles, with its report, but
    does not run)."""
    low = Lowering(graph, tiles)
    steps = low.run()
    used = {s["kernel"] for s in steps if s["op"] == "gemm"}
    return steps, {low.kinds[k] for k in used}, low.unsupported()
