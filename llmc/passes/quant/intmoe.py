"""Integer-only lowering of routed experts: `moe_ffn` -> `int_moe_ffn`
(llmc/ir/ops/intmoe.py), with static ranges per expert from calibration.

Representations (the dense FFN's, per expert; docs/quant_layouts.md section 6):

  x (the layer input)       i8, the calibrated scale of the moe's input, shared
                            by the router and every expert
  router                    i8 weights, one scale per expert (also under w4a8:
                            E x d is small and routing flips cost more than bytes)
  router logits             fixed point with `exp_frac` fraction bits (i-softmax's input)
  gate / up projections     i16, scale = expert's calibrated max / 32767
  SiLU output               i16, likewise; gate * up product -> i8 for w_down
  expert weights            the scheme's: i8 per channel (w8a8-int) or int4 packed
                            with u8 group sub-scales (w4a8; GPTQ on the Hessian of
                            the rows routed to that expert)
  output                    i32, scale = calibrated max / (2^(res_bits-1) - 1)

Per-expert ranges are max |.| over the calibration rows the float router sends
to the expert (calibrate.MoEStats); an expert no calibration row reaches takes
the largest range of its layer's other experts.

`fold_moe_gates` first raises the zoo's un-renormalised gating (Qwen3-MoE's
norm_topk_prob=False, traced as moe_ffn times the top-k share of the router's
softmax, llmc/frontend/zoo/layers.py) into one `moe_ffn {norm_topk=false}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from llmc.errors import UsageError
from llmc.ir import dtypes
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops.intmoe import RQ_EXPERT_COLS
from llmc.ir.ops.intops import SIGMOID_FRAC, qrange
from llmc.ir.ops.quant import INT4_LAYOUT
from llmc.ir.ops.registry import norm_dim
from llmc.ir.pack import pack_int4
from llmc.passes.quant.blockq import quantize_int_weight, where
from llmc.passes.quant.calibrate import MoEStats
from llmc.passes.quant.intbase import QV, dyadic
from llmc.passes.quant.schemes import IntWeights
from llmc.passes.quant.weights import rtn, two_level_scale
from llmc.passes.rewrite import RewriteCtx, rewrite

if TYPE_CHECKING:
    from llmc.passes.quant.intlower import Lowering

# ---- Qwen3-MoE's gating, as the zoo traces it --------------------------------------


def _last(node: Node, attr: str) -> bool:
    """node's `attr` (a dim or [dim]) is its input's last dim."""
    d = node.attrs[attr]
    d = d[0] if isinstance(d, tuple) and len(d) == 1 else d
    return isinstance(d, int) and norm_dim(d, node.inputs[0].type.rank) == \
        node.inputs[0].type.rank - 1


def _router_logits_of(v: Value, moe: Node) -> bool:
    """v = x @ router^T over moe's own x and router (matmul with a permuted
    router, or linear)."""
    n = v.node
    x, router = moe.inputs[0], moe.inputs[1].node
    if n.op == "linear" and len(n.inputs) == 2:
        w = n.inputs[1].node
    elif n.op == "matmul" and n.inputs[1].node.op == "permute" and \
            tuple(n.inputs[1].node.attrs["perm"]) == (1, 0):
        w = n.inputs[1].node.inputs[0].node
    else:
        return False
    return n.inputs[0] == x and w.op == router.op == "param" and \
        w.attrs["name"] == router.attrs["name"]


def _topk_share(v: Value, moe: Node) -> bool:
    """v = sum(topk(softmax(x @ router^T), top_k).values, last, keepdim)."""
    s = v.node
    if s.op != "sum" or not s.attrs["keepdim"] or not _last(s, "dims"):
        return False
    t = s.inputs[0]
    if t.node.op != "topk" or t.index != 0 or t.node.attrs["k"] != moe.attrs["top_k"] \
            or not _last(t.node, "dim"):
        return False
    sm = t.node.inputs[0].node
    return sm.op == "softmax" and _last(sm, "dim") and _router_logits_of(sm.inputs[0], moe)


def _fold(node: Node, ctx: RewriteCtx) -> Value | None:
    """mul(moe_ffn(x, ...), share) -> moe_ffn(x, ...) {norm_topk=false}: the top-k
    softmax times the top-k share of the full softmax is the full softmax at the top k."""
    if node.op != "mul":
        return None
    for a, b in (node.inputs, node.inputs[::-1]):
        moe = a.node
        if moe.op == "moe_ffn" and moe.attrs.get("norm_topk", True) and _topk_share(b, moe):
            return ctx.b.add("moe_ffn", list(moe.inputs),
                             {"top_k": moe.attrs["top_k"], "norm_topk": False},
                             loc=moe.loc).out()
    return None


def fold_moe_gates(graph: Graph) -> Graph:
    """`graph` with every moe_ffn scaled by its top-k softmax share as one
    moe_ffn {norm_topk=false} (the same function); unchanged when there is none."""
    if not any(n.op == "mul" and any(v.node.op == "moe_ffn" for v in n.inputs)
               for n in graph.nodes):
        return graph
    return rewrite(graph, [_fold])


# ---- the lowering rule ---------------------------------------------------------------


def _stats(L: Lowering, n: Node, experts: int) -> MoEStats:
    if L.cal is None:  # shape-only: placeholder ranges
        ones = np.ones(experts)
        return MoEStats(np.ones(experts, np.int64), ones, ones, ones, ones, ones, 1.0)
    key = L.keys[n]
    if key not in L.cal.moe:
        raise UsageError(f"{where(n)}: no expert ranges for %{n.name} ({key}); calibrate "
                         f"on this model's prefill graph")
    return L.cal.moe[key]


def _scale(amax: np.ndarray, dtype: dtypes.DType) -> np.ndarray:
    """Per-expert scale of a `dtype` value whose calibrated max |.| is amax."""
    return np.where(amax > 0, amax, 1.0) / qrange(dtype)[1]


def _experts(L: Lowering, fv: Value, inputs_of: Value) -> tuple[list[Value], np.ndarray, int]:
    """A stacked expert weight (E, rows, K) as the scheme stores it: ([weight,
    group scales or nothing], real scale per (expert, row) (E, rows), group).
    GPTQ uses the Hessian of the rows routed to each expert, recorded under the
    name of the weight `inputs_of` (w_up shares w_gate's input)."""
    name, w = L.float_param(fv)
    hname = inputs_of.node.attrs["name"]
    E, rows, k = fv.type.shape
    spec = L.scheme.weights
    assert isinstance(spec, IntWeights)
    two_level = spec.bits == 4 and spec.group > 0
    q, scales, gs, kp, g = [], [], [], k, 0
    for e in range(E):
        we = None if w is None else w[e]
        hessian = L.cal.hessian.get(f"{hname}[{e}]") if L.cal else None
        if two_level:
            chan, snap = two_level_scale(we, 4, spec.group) if we is not None else (None, None)
            qw, kp, g = quantize_int_weight(we, (rows, k), spec, hessian, snap)
            if qw is not None:
                gs.append(np.clip(np.rint(qw.scales / chan[:, None]), 1, 255))
                scales.append(chan)
        else:
            qw, kp, _ = quantize_int_weight(we, (rows, k), IntWeights(spec.bits, 0, spec.method),
                                            hessian)
            if qw is not None:
                scales.append(qw.scales[:, 0].astype(np.float64))
        if qw is not None:
            q.append(qw.q)
    known = w is not None
    if spec.bits == 4:
        wp = L.param(f"{name}.int4", pack_int4(np.stack(q)) if known else None, dtypes.u8,
                     (E, rows, kp // 2), INT4_LAYOUT)
    else:
        wp = L.param(f"{name}.int8", np.stack(q) if known else None, dtypes.i8, (E, rows, kp))
    out = [wp]
    if two_level:
        out.append(L.param(f"{name}.gscale", np.stack(gs) if known else None, dtypes.u8,
                           (E, rows, kp // g)))
    return out, (np.stack(scales) if known else np.ones((E, rows))), g


def _table(L: Lowering, name: str, m: np.ndarray) -> tuple[Value, int]:
    mult, shift = dyadic(m)
    return L.param(name, mult, dtypes.i32, mult.shape), shift


def lower_moe(L: Lowering, n: Node) -> QV:
    """moe_ffn -> int_moe_ffn (see the module docstring)."""
    cfg = L.cfg
    x = L.need(n.inputs[0], cfg.act)
    E, f, d = n.inputs[2].type.shape
    st = _stats(L, n, E)
    rname, wr = L.float_param(n.inputs[1])
    qr = rtn(wr, 8, 0) if wr is not None else None
    router = L.param(f"{rname}.int8", None if qr is None else qr.q, dtypes.i8, (E, d))
    r_scale = qr.scales[:, 0].astype(np.float64) if qr is not None else np.ones(E)
    (wg, *gs_g), c_g, group = _experts(L, n.inputs[2], n.inputs[2])
    (wu, *gs_u), c_u, _ = _experts(L, n.inputs[3], n.inputs[2])
    (wd, *gs_d), c_d, _ = _experts(L, n.inputs[4], n.inputs[4])

    # fixed point logits: exp_frac fraction bits, fewer if the largest logit needs them
    top = max(st.logits, 1.0)
    frac = int(min(cfg.exp_frac, 30 - np.ceil(np.log2(top))))
    s_x = float(x.scale)
    s_g, s_u = _scale(st.expert_amax("gate"), cfg.mid), _scale(st.expert_amax("up"), cfg.mid)
    s_s = _scale(st.expert_amax("silu"), cfg.mid)
    s_p = _scale(st.expert_amax("prod"), cfg.act)
    s_y = L.scale_for(n.out(), L.res, cfg.res_bits)
    cols = {"router": s_x * r_scale * 2.0**frac, "silu_in": s_g * 2.0**frac,
            "silu_out": s_g / (2.0**SIGMOID_FRAC * s_s), "prod": s_s * s_u / s_p}
    shifts, mults = {}, []
    for col in RQ_EXPERT_COLS:
        mult, shifts[col] = dyadic(cols[col])
        mults.append(mult)
    rq_e = L.param(f"{rname}.rq_expert", np.stack(mults, axis=1), dtypes.i32,
                   (E, len(RQ_EXPERT_COLS)))
    rq_g, g_shift = _table(L, f"{n.inputs[2].node.attrs['name']}.rq", s_x * c_g / s_g[:, None])
    rq_u, u_shift = _table(L, f"{n.inputs[3].node.attrs['name']}.rq", s_x * c_u / s_u[:, None])
    rq_d, d_shift = _table(L, f"{n.inputs[4].node.attrs['name']}.rq", s_p[:, None] * c_d / s_y)
    attrs = {"top_k": n.attrs["top_k"], "norm_topk": bool(n.attrs.get("norm_topk", True)),
             "frac": frac, "prob_bits": cfg.prob_bits,
             "router_shift": shifts["router"], "gate_shift": g_shift, "up_shift": u_shift,
             "silu_in_shift": shifts["silu_in"], "silu_out_shift": shifts["silu_out"],
             "prod_shift": shifts["prod"], "down_shift": d_shift,
             **({"group": group} if group else {})}
    inputs = [x.v, router, wg, wu, wd, rq_e, rq_g, rq_u, rq_d, *gs_g, *gs_u, *gs_d]
    return QV(L.b.add("int_moe_ffn", inputs, attrs, n.name, loc=n.loc).out(), s_y)
