"""Integer-only graphs (`--quant w8a8-int`) on the gpu backend: lowering rules,
the generated elementwise kernels and the launches.

Rules (`lower_int`, after the float rules of llmc/backends/gpu/lower.py):

  * `int_linear` of int8 x and int8 weights (or packed int4 with u8 group
    scales, w4a8), with the `requant` that is its only user -> `int_gemm`
    (templates/int_ops.py: tl.dot int8 -> int32, the requantisation in the
    epilogue);
  * `int_rms_norm` and `int_layer_norm` -> `int_rms_norm` (CENTRED: minus the
    row mean, + bias); `int_attention` (causal or masked, GQA) -> `int_attention`;
  * the integer elementwise ops of a fusion group (requant, cast, add, sub,
    mul, neg, concat, int_silu, int_gelu, dequantize_int) -> one generated kernel per
    value the group hands on (`render_elementwise`): the group's expression
    evaluated per output element in int64 from its leaves (values computed
    elsewhere, read through their strides, broadcast where the IR
    broadcasts), so the integer RoPE (cast, mul by the cos/sin tables,
    the rotate-half concat, add, requant) is one kernel. The per-node
    integers (multipliers, shifts, i-exp constants) are read from a small
    int64 table the step carries, so groups that differ only in them share
    a kernel.

Integer ops not listed (int_linear of int16 x, windowed int_attention) are
left to program.json's "unsupported".
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from llmc.backends.gpu.runtime import pow2
from llmc.ir import dtypes
from llmc.ir.graph import Node, Value

INTS = ("i8", "i16", "i32")
ELEMENTWISE = frozenset({"requant", "cast", "add", "sub", "mul", "neg", "concat", "int_silu",
                         "int_gelu", "dequantize_int"})
TEMPLATE = "int_ops"


def _ref(v: Value) -> str:
    return v.ref.removeprefix("%")


def qrange(name: str) -> tuple[int, int]:
    from llmc.ir.ops.intops import qrange as q

    return q(dtypes.parse_dtype(name))


def is_int_elementwise(n: Node) -> bool:
    if n.op not in ELEMENTWISE:
        return False
    ins = [i.type.dtype.name for i in n.inputs]
    out = n.type.dtype.name
    if n.op == "dequantize_int":
        return ins[0] in INTS
    if n.op == "requant":
        return ins[0] in INTS and out in INTS
    if n.op == "cast":
        return ins[0] in INTS and (out == "f32" or (out in INTS and n.type.dtype.bits
                                                    >= n.inputs[0].type.dtype.bits))
    return all(d in INTS for d in ins) and out in INTS


# ---- lowering ---------------------------------------------------------------------


def lower_int(low: Any) -> None:
    """Claim the integer ops of `low` (a lower.Lowering) that have kernels."""
    g = low.g
    for n in g.nodes:
        if n.name in low.absorbed or n.name in low.at:
            continue
        if n.op == "int_linear":
            _gemm(low, n)
        elif n.op in ("int_rms_norm", "int_layer_norm") and n.inputs[0].type.dtype.name in INTS:
            lo, hi = qrange(n.type.dtype.name)
            centred = n.op == "int_layer_norm"
            low.emit([n], {"op": "int_rms_norm", "x": _ref(n.inputs[0]), "g": _ref(n.inputs[1]),
                           "b": _ref(n.inputs[2]) if len(n.inputs) > 2 else None,
                           "centred": centred, "eps": int(n.attrs["eps"]),
                           "rbits": int(n.attrs["rbits"]), "shift": int(n.attrs["shift"]),
                           "lo": lo, "hi": hi})
        elif n.op == "int_attention":
            _attention(low, n)
    outs = {v.node for v in g.outputs}
    for n in g.nodes:
        if n.name in low.absorbed or n.name in low.at or not is_int_elementwise(n):
            continue
        users = low.users.get(n, [])
        if n in outs or any(not _inlines(low, n, u) for u in users) or not users:
            _elementwise(low, n)


def _inlines(low: Any, n: Node, user: Node) -> bool:
    """Whether `user`'s kernel computes n itself (same fusion group, both elementwise)."""
    f = n.attrs.get("fusion")
    return (f is not None and user.attrs.get("fusion") == f and is_int_elementwise(user)
            and is_int_elementwise(n) and user.name not in low.at and n.name not in low.at)


def _gemm(low: Any, n: Node) -> None:
    from llmc.ir.ops.quant import weight_k

    x, w = n.inputs[0], n.inputs[1]
    int4 = w.type.dtype.name == "u8"
    group = int(n.attrs.get("group", 0)) if len(n.inputs) > 2 else 0
    if x.type.dtype.name != "i8" or (int4 and not group) or (group and group not in (32, 64, 128)):
        low.bad.setdefault(f"int_linear of {x.type.dtype} x {w.type}"
                           + (f" with group {group}" if group else ""), f"%{n.name}")
        low.absorbed.add(n.name)
        return
    u = low.only_user(n)
    chain, rq = [n], None
    if u is not None and u.op == "requant" and u.attrs.get("fusion") == n.attrs.get("fusion"):
        chain.append(u)
        rq = u
    step = {"op": "int_gemm", "x": _ref(x), "w": _ref(w), "M": math.prod(x.type.shape[:-1]),
            "N": n.type.shape[-1], "K": x.type.shape[-1], "KP": weight_k(w.type),
            "int4": int4, "wgroup": group, "gs": _ref(n.inputs[2]) if group else None,
            "requant": rq is not None}
    if rq is not None:
        lo, hi = qrange(rq.type.dtype.name)
        step.update({"shift": int(rq.attrs["shift"]), "lo": lo, "hi": hi,
                     "mult": _ref(rq.inputs[1]) if len(rq.inputs) > 1 else None,
                     "mult_value": int(rq.attrs.get("mult", 1))})
    step["config"] = f"int_gemm:{step['M']}x{step['N']}x{step['K']}"
    low.emit(chain, step)


def _attention(low: Any, n: Node) -> None:
    from llmc.ir.ops.intops import exp_consts

    a = n.attrs
    if any(k in a for k in ("window", "sinks", "block_size")):
        low.bad.setdefault("windowed int_attention", f"%{n.name}")
        return
    x0, b_q, c_q = exp_consts(int(a["frac"]))
    lo, hi = qrange(n.type.dtype.name)
    mask = n.inputs[3] if len(n.inputs) > 3 else None
    low.emit([n], {"op": "int_attention", "q": _ref(n.inputs[0]), "k": _ref(n.inputs[1]),
                   "v": _ref(n.inputs[2]), "mask": _ref(mask) if mask is not None else None,
                   "causal": bool(a["causal"]),
                   "consts": {"S_MULT": int(a["s_mult"]), "S_SHIFT": int(a["s_shift"]),
                              "O_MULT": int(a["o_mult"]), "O_SHIFT": int(a["o_shift"]),
                              "X0": x0, "B_Q": b_q, "C_Q": c_q,
                              "PROB_BITS": int(a["prob_bits"]), "LO": lo, "HI": hi}})


# ---- the elementwise kernels ------------------------------------------------------


def _pad(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (4 - len(shape)) + tuple(shape)


class _Expr:
    """The body of one elementwise kernel: lines computing the sink from leaves."""

    def __init__(self, low: Any, sink: Node) -> None:
        self.low, self.sink = low, sink
        self.lines: list[str] = []
        self.leaves: list[str] = []           # value refs, in parameter order
        self.consts: list[int] = []
        self.nodes: list[Node] = [sink]
        self.count = 0

    def tmp(self) -> str:
        self.count += 1
        return f"t{self.count}"

    def const(self, value: int, what: str) -> str:
        self.consts.append(int(value))
        name = f"c{len(self.consts) - 1}"
        self.lines.append(f"{name} = tl.load(c_ptr + {len(self.consts) - 1})"
                          f"{' ' * max(1, 40 - len(name) - len(str(len(self.consts))))}# {what}")
        return name

    def leaf(self, v: Value, idx: list[str], mask: str) -> str:
        shape = _pad(v.type.shape)
        j = len(self.leaves)
        self.leaves.append(_ref(v))
        at = " + ".join(f"{i} * s{j}_{d}" for d, i in enumerate(idx) if shape[d] != 1) or "0"
        conv = "tl.float32" if v.type.dtype.is_float else "tl.int64"
        t = self.tmp()
        self.lines.append(f"{t} = tl.load(p{j} + {at}, mask={mask}, other=0).to({conv})"
                          f"  # {v.type}")
        return t

    def value(self, v: Value, consumer: Node, idx: list[str], mask: str) -> str:
        """v at output index idx of `consumer` (broadcast dims of v read at 0)."""
        shape = _pad(v.type.shape)
        idx = [i if shape[d] != 1 else "0" for d, i in enumerate(idx)]
        n = v.node
        if n.op not in ("input", "param") and _inlines(self.low, n, consumer):
            self.nodes.append(n)
            return self.node(n, idx, mask)
        return self.leaf(v, idx, mask)

    def node(self, n: Node, idx: list[str], mask: str) -> str:
        from llmc.ir.ops.intops import SIGMOID_FRAC, exp_consts, exp_one

        a = n.attrs
        if n.op == "concat":
            d = int(a["dim"]) % n.type.rank + 4 - n.type.rank
            parts, start = [], 0
            for v in n.inputs:
                size = v.type.shape[d - 4 + n.type.rank]
                sub = list(idx)
                sub[d] = f"({idx[d]} - {start})" if start else idx[d]
                inside = f"({mask}) & ({idx[d]} >= {start}) & ({idx[d]} < {start + size})"
                parts.append((self.value(v, n, sub, inside), start + size))
                start += size
            t = parts[-1][0]
            for val, end in reversed(parts[:-1]):
                nxt = self.tmp()
                self.lines.append(f"{nxt} = tl.where({idx[d]} < {end}, {val}, {t})"
                                  f"  # concat on dim {int(a['dim'])}")
                t = nxt
            return t
        xs = [self.value(v, n, idx, mask)
              for v in (n.inputs[:1] if n.op == "requant" else n.inputs)]
        t = self.tmp()
        out = n.type.dtype.name
        if n.op == "cast":
            self.lines.append(f"{t} = {xs[0]}" + (".to(tl.float32)" if out == "f32" else "")
                              + f"  # cast to {out}")
        elif n.op in ("add", "sub", "mul"):
            self.lines.append(f"{t} = {xs[0]} {dict(add='+', sub='-', mul='*')[n.op]} {xs[1]}")
        elif n.op == "neg":
            self.lines.append(f"{t} = -{xs[0]}")
        elif n.op == "dequantize_int":
            self.lines.append(f"{t} = {xs[0]}.to(tl.float32) * {xs[1]}  # dequantize_int")
        elif n.op == "requant":
            m = (self.value(n.inputs[1], n, idx, mask) if len(n.inputs) > 1
                 else self.const(a["mult"], "requant multiplier"))
            s = self.const(a["shift"], "requant shift")
            lo, hi = qrange(out)
            self.lines.append(f"{t} = tl.minimum(tl.maximum(_rshift({xs[0]} * {m}, {s}), {lo}), "
                              f"{hi})  # requant to {out}")
        elif n.op == "int_silu":
            frac = int(a["frac"])
            x0, b_q, c_q = exp_consts(frac)
            c = [self.const(a["in_mult"], "int_silu in_mult"),
                 self.const(a["in_shift"], "int_silu in_shift"),
                 self.const(x0, "i-exp x0"), self.const(b_q, "i-exp b"),
                 self.const(c_q, "i-exp c"), self.const(exp_one(frac), "i-exp 1.0"),
                 self.const(a["out_mult"], "int_silu out_mult"),
                 self.const(a["out_shift"], "int_silu out_shift")]
            lo, hi = qrange(out)
            xf, e, sg = self.tmp(), self.tmp(), self.tmp()
            self.lines += [
                f"{xf} = _rshift({xs[0]} * {c[0]}, {c[1]})  # x in fixed point ({frac} bits)",
                f"{e} = _i_exp(-tl.abs({xf}), {c[2]}, {c[3]}, {c[4]})",
                f"{sg} = tl.where({xf} >= 0, {c[5]}, {e})",
                f"{sg} = (2 * ({sg} << {SIGMOID_FRAC}) + {c[5]} + {e}) // (2 * ({c[5]} + {e}))"
                f"  # sigmoid, {SIGMOID_FRAC} bits",
                f"{t} = tl.minimum(tl.maximum(_rshift({xs[0]} * {sg} * {c[6]}, {c[7]}), {lo}), "
                f"{hi})  # int_silu to {out}"]
        elif n.op == "int_gelu":
            t = self.gelu(n, xs[0], t)
        else:  # pragma: no cover - is_int_elementwise lists the ops above
            raise AssertionError(n.op)
        return t


    def gelu(self, n: Node, x: str, t: str) -> str:
        """int_gelu (llmc/ir/ops/intops.py int_phi): x * phi(x), phi with 15 bits."""
        from llmc.ir.ops import intops as io

        a = n.attrs
        frac = int(a["frac"])
        xf, phi = self.tmp(), self.tmp()
        c_in = [self.const(a["in_mult"], "int_gelu in_mult"),
                self.const(a["in_shift"], "int_gelu in_shift")]
        self.lines.append(f"{xf} = _rshift({x} * {c_in[0]}, {c_in[1]})  # x in fixed point "
                          f"({frac} bits)")
        if a.get("approximate", "none") == "tanh":
            x0, b_q, c_q = io.exp_consts(frac)
            c = [self.const(x0, "i-exp x0"), self.const(b_q, "i-exp b"),
                 self.const(c_q, "i-exp c"), self.const(io.exp_one(frac), "i-exp 1.0")]
            cl, cube, z2, e = self.tmp(), self.tmp(), self.tmp(), self.tmp()
            k1, k3 = round(io.TANH_K1 * 2 ** io.TANH_BITS), round(io.TANH_K3 * 2 ** io.TANH_BITS)
            top = io.TANH_CLIP << frac
            self.lines += [
                f"{cl} = tl.minimum(tl.maximum({xf}, -{top}), {top})",
                f"{cube} = _rshift(_rshift({cl} * {cl}, {frac} + {cl} * 0) * {cl}, "
                f"{frac} + {cl} * 0)",
                f"{z2} = _rshift({cl} * {k1} + {cube} * {k3}, {io.TANH_BITS} + {cl} * 0)"
                "  # 2 sqrt(2/pi) (x + 0.044715 x^3)",
                f"{e} = _i_exp(-tl.abs({z2}), {c[0]}, {c[1]}, {c[2]})",
                f"{phi} = tl.where({z2} >= 0, {c[3]}, {e})",
                f"{phi} = (2 * ({phi} << {io.SIGMOID_FRAC}) + {c[3]} + {e}) // "
                f"(2 * ({c[3]} + {e}))  # sigmoid(2 z), {io.SIGMOID_FRAC} bits"]
        else:
            tt, p = self.tmp(), self.tmp()
            r2 = round(2 ** io.ERF_A_BITS / math.sqrt(2))
            ea = round(-io.ERF_A * 2 ** io.ERF_A_BITS)
            top = math.floor(-io.ERF_B * 2 ** frac)
            one = 1 << (2 * frac)
            self.lines += [
                f"{tt} = _rshift({xf} * {r2}, {io.ERF_A_BITS} + {xf} * 0)  # x / sqrt 2",
                f"{p} = tl.minimum(tl.abs({tt}), {top}) - {top}",
                f"{p} = {one} - _rshift({p} * {p} * {ea}, {io.ERF_A_BITS} + {p} * 0)"
                "  # |i-erf|",
                f"{p} = tl.where({tt} >= 0, {p}, -{p})",
                f"{phi} = _rshift({one} + {p}, {2 * frac + 1 - io.SIGMOID_FRAC} + {p} * 0)"
                "  # (1 + erf) / 2"]
        c_out = [self.const(a["out_mult"], "int_gelu out_mult"),
                 self.const(a["out_shift"], "int_gelu out_shift")]
        lo, hi = qrange(n.type.dtype.name)
        self.lines.append(f"{t} = tl.minimum(tl.maximum(_rshift({x} * {phi} * {c_out[0]}, "
                          f"{c_out[1]}), {lo}), {hi})  # int_gelu to {n.type.dtype.name}")
        return t


def render_elementwise(expr: _Expr, name: str, shape: tuple[int, ...]) -> str:
    S = _pad(shape)
    params = "".join(f"p{j}, s{j}_0, s{j}_1, s{j}_2, s{j}_3, " for j in range(len(expr.leaves)))
    head = [
        "@triton.jit",
        f"def {name}(out_ptr, c_ptr, {params}BLOCK: tl.constexpr):",
        f'    """{expr.sink.op} to {expr.sink.type}: {len(expr.nodes)} ops in int64 on '
        f'{len(expr.leaves)} values"""',
        "    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
        f"    ok = o < {math.prod(S)}",
        f"    i3 = o % {S[3]}",
        f"    i2 = (o // {S[3]}) % {S[2]}",
        f"    i1 = (o // {S[3] * S[2]}) % {S[1]}",
        f"    i0 = o // {S[3] * S[2] * S[1]}",
    ]
    body = [f"    {x}" for x in expr.lines]
    tail = [f"    tl.store(out_ptr + o, {expr.result}.to(out_ptr.dtype.element_ty), mask=ok)"]
    return "\n".join(head + body + tail) + "\n"


def _elementwise(low: Any, sink: Node) -> None:
    expr = _Expr(low, sink)
    expr.result = expr.node(sink, ["i0", "i1", "i2", "i3"], "ok")
    body = render_elementwise(expr, "KERNEL", sink.type.shape)
    name = f"int_{sink.op}_{hashlib.sha1(body.encode()).hexdigest()[:8]}"
    for n in expr.nodes:
        if n is not sink:
            low.absorbed.add(n.name)
    low.emit([sink], {"op": "int_elementwise", "kernel": name,
                      "source": body.replace("def KERNEL(", f"def {name}("),
                      "leaves": expr.leaves, "consts": expr.consts})


def kernels_file(head: str, steps: list[dict[str, Any]]) -> str:
    """kernels/int_ops.py (`head`: its header and the template's kernels), then
    each generated kernel once."""
    text = head
    seen = set()
    for s in steps:
        if s["op"] == "int_elementwise" and s["kernel"] not in seen:
            seen.add(s["kernel"])
            text += "\n\n" + s["source"]
    return text


# ---- launches (called by runtime.Runtime) ---------------------------------------------


def table(rt: Any, s: dict[str, Any], values: list[int]) -> Any:
    """A step's integers as an int64 device tensor, made on its first run only:
    a decode step captured as a CUDA graph replays the same tensor."""
    import torch

    tables = rt.__dict__.setdefault("_int_tables", {})
    if id(s) not in tables:
        tables[id(s)] = torch.tensor(values, dtype=torch.int64, device=rt.where.device)
    return tables[id(s)]


def run_gemm(rt: Any, s: dict[str, Any], vals: dict[str, Any], types: Any) -> Any:

    M, N, K = s["M"], s["N"], s["K"]
    x = rt.rows(vals[s["x"]], K)
    out = rt.empty((M, N), types[s["out"]][0])
    if s["requant"] and s["mult"]:
        m = vals[s["mult"]].reshape(-1)
    else:
        m = table(rt, s, [s.get("mult_value", 1)])
    c = {"BLOCK_M": pow2(min(M, 128)), "BLOCK_N": pow2(min(N, 256)), "BLOCK_K": pow2(min(K, 256), 32)}
    if not rt.where.interpret:
        c = rt.cfg(s, {"BLOCK_M": 16 if M <= 16 else 64, "BLOCK_N": 64, "BLOCK_K": 64})
    group = s.get("wgroup", 0)
    if group:
        c["BLOCK_K"] = group                      # one group scale per K tile
    gs = vals[s["gs"]] if group else m
    grid = (math.ceil(M / c["BLOCK_M"]), math.ceil(N / c["BLOCK_N"]))
    rt.k["int_gemm"][grid](x, vals[s["w"]], gs, m, out, M, N, K, s.get("KP", K), x.stride(0),
                           1 if m.numel() > 1 else 0, INT4=s.get("int4", False), GROUP=group,
                           REQUANT=s["requant"], SHIFT=s.get("shift", 0), LO=s.get("lo", 0),
                           HI=s.get("hi", 0), **c)
    return out.reshape(types[s["out"]][1])


def run_rms_norm(rt: Any, s: dict[str, Any], vals: dict[str, Any], types: Any) -> Any:
    x, x2, out = rt.norm_rows(s, vals, types)
    R, D = x2.shape
    br = pow2(min(R, 64 if rt.where.interpret else 4), 1)
    b = vals[s["b"]] if s.get("b") else vals[s["g"]]
    rt.k["int_rms_norm"][(math.ceil(R / br),)](
        x2, vals[s["g"]], b, out, R, D, x2.stride(0), s["eps"], RBITS=s["rbits"],
        SHIFT=s["shift"], LO=s["lo"], HI=s["hi"], CENTRED=s.get("centred", False),
        HAS_B=bool(s.get("b")), BLOCK_R=br, BLOCK_D=pow2(D, 1))
    return out.reshape(x.shape)


def run_attention(rt: Any, s: dict[str, Any], vals: dict[str, Any], types: Any) -> Any:
    import torch

    q, k, v = (rt._unit(vals[s[n]]) for n in ("q", "k", "v"))
    B, H, T, D = q.shape
    G, TK = k.shape[1], k.shape[2]
    mask, s_mt = k, 0
    if s["mask"]:
        m = vals[s["mask"]]
        m = m.reshape(-1, m.shape[-1])
        mask = m.to(torch.uint8).contiguous()
        s_mt = TK if m.shape[0] == T else 0
    out = rt.empty((B, H, T, D), types[s["out"]][0])
    hpg = H // G
    bq = pow2(min(hpg * T, 64 if rt.where.interpret else 32))
    grid = (math.ceil(hpg * T / bq), B * G)
    rt.k["int_attention"][grid](
        q, k, v, out, mask, G, T, TK, hpg, D, q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2), s_mt,
        **s["consts"], CAUSAL=s["causal"], HAS_MASK=s["mask"] is not None,
        BLOCK_Q=bq, BLOCK_K=16, BLOCK_D=pow2(D, 32))   # int8 tl.dot: K >= 32
    return out


def run_elementwise(rt: Any, s: dict[str, Any], vals: dict[str, Any], types: Any) -> Any:

    dtype, shape = types[s["out"]]
    out = rt.empty(shape, dtype)
    consts = table(rt, s, s["consts"] or [0])
    args: list[Any] = []
    for r in s["leaves"]:
        t = vals[r]
        args += [t, *([0] * (4 - t.dim())), *t.stride()]
    numel = max(1, out.numel())
    block = pow2(min(numel, 4096 if rt.where.interpret else 1024), 1)
    rt.k[s["kernel"]][(math.ceil(numel / block),)](out, consts, *args, BLOCK=block)
    return out
