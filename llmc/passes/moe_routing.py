"""Recognise data-dependent expert routing and raise it into one `moe_ffn`.

transformers (5.x) runs a sparse MoE block as a softmax top-k router and a
grouped dispatch of the experts (transformers/integrations/moe.py,
`grouped_mm_experts_forward`); traced and converted, one block reads

    probs = softmax(linear(x, router))                   # (N, E)
    vals, idx = topk(probs, k)                           # (N, k)
    w = vals / sum(vals)  |  vals                        # norm_topk_prob or not
    ids, perm = sort(reshape(idx, S))                    # S = N * k pairs
    xs = index(x, perm // k)                             # tokens, grouped by expert
    offs = cumsum(histc(ids, bins=E, min=0, max=E-1))    # group ends
    h = grouped_mm(xs, gate_up^T, offs)                  # (S, 2f)
    o = grouped_mm(silu(h[:, :f]) * h[:, f:], down^T, offs)
    o = o * index(reshape(w, S), perm)[:, None]
    y = sum(reshape(index(o, inverse(perm)), (N, k, d)), 1)

which is `moe_ffn(x, router, gate, up, down, top_k=k, norm_topk=...)`
exactly: the fused gate_up weight (E, 2f, d) is split into gate and up
params (`<name>.gate`, `<name>.up`) as moe_ffn takes them. transformers'
other exportable form, `experts_implementation="batched_mm"`, gathers each
pair's expert weights instead and multiplies them one pair at a time:

    xs = reshape(expand(reshape(x, (N, 1, d)), (N, k, d)), (S, d))
    h = matmul(index(gate_up, ids), xs[..., None])[..., 0]      # ids = reshape(idx, S)
    o = matmul(index(down, ids), (silu(h[:, :f]) * h[:, f:])[..., None])[..., 0]
    y = sum(reshape(o * reshape(w, S)[:, None], (N, k, d)), 1)

(its "eager" form loops over the experts hit, which torch.export refuses).
Routing left after the rewrite (a `grouped_mm`, or expert weights gathered
per token) is in a form not recognised: refused, one line naming the op
and its module path.
"""

from __future__ import annotations

from llmc.errors import UnsupportedOpError
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.types import TensorType
from llmc.passes.rewrite import RewriteCtx, rewrite, scalar_const

RECOGNISED = ("a softmax top-k router over transformers' grouped_mm or batched_mm experts "
              "(gate_up fused, SiLU-gated)")


def _op(v: Value, op: str, index: int = 0) -> Node | None:
    """v's node if it is an `op` and v its output `index`."""
    return v.node if v.node.op == op and v.index == index else None


def _skip(v: Value, *ops: str) -> Value:
    """Follow single-input `ops` (reshapes, casts) back to their source."""
    while v.node.op in ops and len(v.node.inputs) == 1:
        v = v.node.inputs[0]
    return v


def _pair(n: Node | None, op: str) -> tuple[Value, Value] | None:
    """The inputs of a commutative binary `op` node n, both orders tried by callers."""
    if n is None or n.op != op:
        return None
    return n.inputs[0], n.inputs[1]


def _transposed_param(v: Value) -> Node | None:
    """The (E, a, b) param under a permute (0, 2, 1)."""
    p = _op(v, "permute")
    if p is None or tuple(p.attrs["perm"]) != (0, 2, 1):
        return None
    return _op(p.inputs[0], "param")


def _inverse_of(inv: Value, perm: Value) -> bool:
    """inv[perm] = arange(S): inv is the inverse permutation of perm."""
    n = inv.node
    if n.op != "index_copy" or n.attrs["dim"] != 0 or n.inputs[1] != perm:
        return False
    a = _op(n.inputs[2], "arange")
    s = perm.type.shape[0]
    return a is not None and (a.attrs["start"], a.attrs["end"], a.attrs["step"]) == (0, s, 1)


def _router(w: Value, idx: Value) -> tuple[Value, Node, int, bool] | None:
    """(x, router param, k, renormalised) of top-k weights `w` and indices `idx`."""
    topk = _op(idx, "topk", 1)
    if topk is None:
        return None
    vals, norm = _skip(w, "cast"), False
    div = _op(vals, "div")
    if div is not None:
        total = _op(div.inputs[1], "sum")
        if (total is None or total.inputs[0] != div.inputs[0] or not total.attrs["keepdim"]
                or tuple(total.attrs["dims"]) != (total.type.rank - 1,)):
            return None
        vals, norm = _skip(div.inputs[0], "cast"), True
    if vals != topk.out(0) or topk.attrs["dim"] != topk.type.rank - 1:
        return None
    softmax = _op(_skip(topk.inputs[0], "cast"), "softmax")
    if softmax is None or softmax.attrs["dim"] != softmax.type.rank - 1:
        return None
    linear = _op(_skip(softmax.inputs[0], "cast"), "linear")
    if linear is None or len(linear.inputs) != 2:
        return None
    router = _op(linear.inputs[1], "param")
    if router is None:
        return None
    return linear.inputs[0], router, topk.attrs["k"], norm


def _gated(a: Value) -> tuple[Value, int] | None:
    """silu(h[:, :f]) * h[:, f:2f] -> (h, f)."""
    pair = _pair(_op(a, "mul"), "mul")
    if pair is None:
        return None
    for g, u in (pair, pair[::-1]):
        silu = _op(g, "silu")
        gs, us = (_op(silu.inputs[0], "slice") if silu else None), _op(u, "slice")
        if gs is None or us is None or gs.inputs[0] != us.inputs[0]:
            continue
        f = gs.type.shape[1]
        if ((gs.attrs["dim"], gs.attrs["start"], gs.attrs["end"], gs.attrs["step"]) == (1, 0, f, 1)
                and (us.attrs["dim"], us.attrs["start"], us.attrs["end"], us.attrs["step"])
                == (1, f, 2 * f, 1) and gs.inputs[0].type.shape[1] == 2 * f):
            return gs.inputs[0], f
    return None


def _offsets_of(offs: Value, sort: Node, experts: int) -> bool:
    """offs = cumsum(histc(sorted expert ids, bins=E, min=0, max=E-1))."""
    cs = _op(offs, "cumsum")
    hist = _op(cs.inputs[0], "histc") if cs is not None else None
    return (hist is not None and _skip(hist.inputs[0], "cast") == sort.out(0)
            and (hist.attrs["bins"], hist.attrs["min"], hist.attrs["max"])
            == (experts, 0.0, experts - 1.0))


def moe_rule(node: Node, ctx: RewriteCtx) -> Value | None:
    """sum(reshape(index(o, inverse(perm)), (N, k, d)), dim 1) of a grouped
    expert dispatch -> moe_ffn."""
    if node.op != "sum" or tuple(node.attrs["dims"]) != (1,) or node.attrs["keepdim"]:
        return None
    grouped = _op(node.inputs[0], "reshape")  # (N, k, d)
    if grouped is None:
        return None
    picked = _op(grouped.inputs[0], "index")  # grouped_mm: back in token order
    inv = picked.inputs[1] if picked is not None and len(picked.inputs) == 2 \
        and tuple(picked.attrs["dims"]) == (0,) else None
    weighted = _pair(_op(picked.inputs[0] if inv is not None else grouped.inputs[0], "mul"),
                     "mul")
    if weighted is None:
        return None
    for o, wcol in (weighted, weighted[::-1]):
        found = (_dispatch(o, wcol, inv, node.type.shape) if inv is not None
                 else _batched(o, wcol, node.type.shape))
        if found is not None and grouped.type.shape[1] == found[4]:
            return _emit(ctx, node, *found)
    return None


def _dispatch(o: Value, wcol: Value, inv: Value, out: tuple[int, ...]
              ) -> tuple[Value, Node, Node, Node, int, bool] | None:
    """(x, router, gate_up, down, k, renormalised) of a grouped dispatch whose
    weighted expert outputs are o * wcol, put back in token order by inv."""
    down_mm = _op(o, "grouped_mm")
    ws = _op(_skip(wcol, "reshape"), "index")
    if down_mm is None or ws is None or len(ws.inputs) != 2 or tuple(ws.attrs["dims"]) != (0,):
        return None
    perm = ws.inputs[1]
    sort = _op(perm, "sort", 1)
    if sort is None or sort.attrs["descending"] or not _inverse_of(inv, perm):
        return None
    routed = _router(_skip(ws.inputs[0], "reshape"), _skip(sort.inputs[0], "reshape"))
    gated = _gated(down_mm.inputs[0])
    down = _transposed_param(down_mm.inputs[1])
    if routed is None or gated is None or down is None:
        return None
    x, router, k, norm = routed
    h, f = gated
    up_mm = _op(h, "grouped_mm")
    gate_up = _transposed_param(up_mm.inputs[1]) if up_mm is not None else None
    xs = _op(up_mm.inputs[0], "index") if up_mm is not None else None
    if gate_up is None or xs is None or len(xs.inputs) != 2 or _skip(xs.inputs[0], "reshape") \
            != _skip(x, "reshape") or up_mm.inputs[2] != down_mm.inputs[2]:
        return None
    tok = _op(xs.inputs[1], "div")
    experts = router.type.shape[0]
    if (tok is None or tok.inputs[0] != perm or scalar_const(tok.inputs[1]) != k
            or not _offsets_of(up_mm.inputs[2], sort, experts)
            or gate_up.type.shape != (experts, 2 * f, out[-1])
            or down.type.shape != (experts, out[-1], f) or xs.inputs[0].type.shape != out):
        return None
    return xs.inputs[0], router, gate_up, down, k, norm


def _per_pair(v: Value) -> tuple[Node, Value, Value] | None:
    """reshape(matmul(index(W, ids), reshape(a, (S, K, 1))), (S, M)) ->
    (W, ids, a): each pair's own expert weight (E, M, K) times its row."""
    mm = _op(_skip(v, "reshape"), "matmul")
    picked = _op(mm.inputs[0], "index") if mm is not None else None
    col = _op(mm.inputs[1], "reshape") if mm is not None else None
    if picked is None or col is None or len(picked.inputs) != 2 \
            or tuple(picked.attrs["dims"]) != (0,) or col.type.shape[-1] != 1:
        return None
    w = _op(picked.inputs[0], "param")
    return (w, picked.inputs[1], col.inputs[0]) if w is not None else None


def _batched(o: Value, wcol: Value, out: tuple[int, ...]
             ) -> tuple[Value, Node, Node, Node, int, bool] | None:
    """(x, router, gate_up, down, k, renormalised) of a batched_mm dispatch."""
    down_pair, (n, d) = _per_pair(o), out
    gated = _gated(down_pair[2]) if down_pair is not None else None
    up_pair = _per_pair(gated[0]) if gated is not None else None
    if up_pair is None or up_pair[1] != down_pair[1]:
        return None
    (down, ids, _), (gate_up, _, xs), f = down_pair, up_pair, gated[1]
    routed = _router(_skip(wcol, "reshape"), _skip(ids, "reshape"))
    spread = _op(_skip(xs, "reshape"), "expand")  # x repeated k times, pair order
    if routed is None or spread is None:
        return None
    x, router, k, norm = routed
    experts = router.type.shape[0]
    if (spread.type.shape != (n, k, d) or spread.inputs[0].type.shape != (n, 1, d)
            or _skip(spread.inputs[0], "reshape") != _skip(x, "reshape") or x.type.shape != out
            or gate_up.type.shape != (experts, 2 * f, d) or down.type.shape != (experts, d, f)):
        return None
    return x, router, gate_up, down, k, norm


def _emit(ctx: RewriteCtx, node: Node, x: Value, router: Node, gate_up: Node, down: Node,
          k: int, norm: bool) -> Value:
    """moe_ffn with the fused (E, 2f, d) gate_up weight split into gate and up."""
    name = gate_up.attrs["name"]
    E, f2, d = gate_up.type.shape
    value = ctx.graph.params.get(name)
    halves = []
    for part, rows in (("gate", slice(0, f2 // 2)), ("up", slice(f2 // 2, f2))):
        t = TensorType((E, f2 // 2, d), gate_up.type.dtype)
        halves.append(ctx.b.param(f"{name}.{part}", t,
                                  None if value is None else value[:, rows].copy()))
    y = ctx.b.add("moe_ffn", [x, router.out(), *halves, down.out()],
                  {"top_k": k, "norm_topk": norm}, name=node.name, loc=node.loc).out()
    if y.type.dtype != node.type.dtype:  # a float32 router's weights promoted the sum
        y = ctx.b.op("cast", y, dtype=node.type.dtype)
    return y


def raise_moe(graph: Graph) -> Graph:
    """The `raise-moe` pass: every recognised expert dispatch as one moe_ffn;
    UnsupportedOpError for routing left in a form not recognised."""
    out = rewrite(graph, [moe_rule]) if any(_routing(n) for n in graph.nodes) else graph
    left = [n for n in out.nodes if _routing(n)]
    if left:
        n = left[0]
        raise UnsupportedOpError(
            f"expert routing at {n.loc or '?'} ({n.op} %{n.name}, {len(left)} such op(s)) is "
            f"not in a form llmc recognises; recognised: {RECOGNISED}")
    return out


def _routing(n: Node) -> bool:
    """A grouped product, or expert weights (a 3-D param) gathered per token."""
    return n.op == "grouped_mm" or (n.op == "index" and n.inputs[0].node.op == "param"
                                    and n.inputs[0].type.rank == 3)
