"""Lower a float graph to a scheme's storage formats, explicitly in the IR:
block-format weights (bfp/mx params), `quantize` nodes on linear inputs and on
K/V, `qlinear` for block matmuls and `wq_linear` for packed int4 / int8
weight-only layers. Rules are small functions node -> replacement (rewrite.py).

Which tensors: every `linear` whose weight is a param (lm_head included); the
token embedding table (block schemes: in the weight format; weight-only
integer schemes: bf16); the K and V that attention reads (prefill: the values
the graph also returns as its KV cache; decode: the cache inputs, retyped,
and the rows `index_copy` writes into them). Attention's q, scores and
probabilities stay f32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from llmc.errors import UsageError
from llmc.ir import dtypes
from llmc.ir.dtypes import DType
from llmc.ir.formats import check_finite, quantize_block
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops.quant import INT4_LAYOUT
from llmc.ir.pack import pack_int4
from llmc.ir.types import TensorType
from llmc.passes.quant.calibrate import Calibration
from llmc.passes.quant.schemes import IntWeights, Scheme
from llmc.passes.quant.weights import QuantWeight, gptq, padded_k, rtn, symmetric_scale
from llmc.passes.rewrite import RewriteCtx, rewrite


def where(node: Node) -> str:
    """How an error message names a layer: its module path, else its SSA name."""
    return node.loc or f"%{node.name}"


def param_value(ctx_graph: Graph, node: Node, index: int) -> tuple[str, np.ndarray | None]:
    p = node.inputs[index].node
    name = p.attrs["name"]
    value = ctx_graph.params.get(name)
    if value is not None:
        check_finite(name, value)
    return name, value


def check_block(node: Node, width: int, fmt: DType, what: str) -> None:
    if width % fmt.block:
        raise UsageError(f"{where(node)}: {what} {width} is not a multiple of {fmt}'s block "
                         f"of {fmt.block}; pick a block size that divides it")


# ---- weights ----------------------------------------------------------------------


def quantize_int_weight(w: np.ndarray | None, shape: tuple[int, int], spec: IntWeights,
                        hessian: np.ndarray | None,
                        scale_fn: Callable | None = None) -> tuple[QuantWeight | None, int, int]:
    """(QuantWeight or None for shape-only, padded K, group)."""
    kp, g = padded_k(shape[1], spec.bits, spec.group)
    if w is None:
        return None, kp, g
    if spec.method == "gptq" and hessian is not None:
        return gptq(w, hessian, spec.bits, spec.group, scale_fn), kp, g
    return rtn(w, spec.bits, spec.group, scale_fn), kp, g


def int_weight_param(ctx: RewriteCtx, name: str, qw: QuantWeight | None, n: int, kp: int,
                     bits: int) -> Value:
    """The stored integer weight: packed int4 (u8, two per byte) or i8."""
    if bits == 4:
        value = None if qw is None else pack_int4(qw.q)
        return ctx.b.param(f"{name}.int4", TensorType((n, kp // 2), dtypes.u8, INT4_LAYOUT),
                           value)
    return ctx.b.param(f"{name}.int8", TensorType((n, kp), dtypes.i8),
                       None if qw is None else qw.q)


# ---- rules --------------------------------------------------------------------------


def _rules(scheme: Scheme, cal: Calibration | None, kv_names: set[str]) -> list:
    act_cache: dict[Value, Value] = {}

    def act(ctx: RewriteCtx, x: Value, node: Node) -> Value:
        fmt = scheme.acts
        if fmt is None:
            return x
        if x not in act_cache:
            check_block(node, x.type.shape[-1], fmt, "in_features")
            act_cache[x] = ctx.b.op("quantize", x, dtype=fmt, name=f"{x.node.name}_q")
        return act_cache[x]

    def linear(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op != "linear" or node.inputs[1].node.op != "param":
            return None
        w_spec = scheme.weights
        name, w = param_value(ctx.graph, node, 1)
        n, k = node.inputs[1].type.shape
        x = node.inputs[0]
        bias = list(node.inputs[2:])
        if isinstance(w_spec, DType):
            check_block(node, k, w_spec, "in_features")
            wq = ctx.b.param(f"{name}.{w_spec.name}", TensorType((n, k), w_spec),
                             None if w is None else quantize_block(w, w_spec))
            return ctx.b.add("qlinear", [act(ctx, x, node), wq, *bias], {},
                             node.name + "_q", loc=node.loc).out()
        if isinstance(w_spec, IntWeights):
            hessian = cal.hessian.get(name) if cal else None
            base = symmetric_scale(w_spec.bits)  # scales are stored in bf16
            qw, kp, g = quantize_int_weight(w, (n, k), w_spec, hessian,
                                            lambda amax: dtypes.round_bf16(base(amax)))
            wq = int_weight_param(ctx, name, qw, n, kp, w_spec.bits)
            s = ctx.b.param(f"{name}.scale", TensorType((n, kp // g), dtypes.bf16),
                            None if qw is None else qw.scales)
            y = ctx.b.add("wq_linear", [act(ctx, x, node), wq, s], {"group": g},
                          node.name + "_q", loc=node.loc).out()
            for b in bias:
                y = ctx.b.add("add", [y, b], {}, node.name + "_bias", loc=node.loc).out()
            return y
        return None

    def embedding(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op != "embedding" or node.inputs[0].node.op != "param" or \
                node.inputs[0].node.attrs.get("buffer") or scheme.weights is None:
            return None
        name, w = param_value(ctx.graph, node, 0)
        shape = node.inputs[0].type.shape
        fmt = scheme.weights if isinstance(scheme.weights, DType) else dtypes.bf16
        if fmt.kind == "block":
            check_block(node, shape[1], fmt, "embedding width")
            value = None if w is None else quantize_block(w, fmt)
        else:
            value = None if w is None else dtypes.round_bf16(w)
        table = ctx.b.param(f"{name}.{fmt.name}", TensorType(shape, fmt), value)
        rows = ctx.b.add("embedding", [table, node.inputs[1]], {}, node.name + "_q",
                         loc=node.loc).out()
        if fmt.kind == "block":
            return ctx.b.add("dequantize", [rows], {}, node.name + "_f", loc=node.loc).out()
        return ctx.b.add("cast", [rows], {"dtype": dtypes.f32}, node.name + "_f",
                         loc=node.loc).out()

    def kv_prefill(node: Node, ctx: RewriteCtx) -> Value | None:
        if scheme.kv is None or node.name not in kv_names:
            return None
        check_block(node, node.type.shape[-1], scheme.kv, "head dim")
        return ctx.b.add("quantize", [node.out()], {"dtype": scheme.kv}, node.name + "_kv",
                         loc=node.loc).out()

    def kv_decode(node: Node, ctx: RewriteCtx) -> Value | None:
        if scheme.kv is None or node.op != "index_copy":
            return None
        cache, idx, src = node.inputs
        if cache.type.dtype != scheme.kv:
            return None
        check_block(node, src.type.shape[-1], scheme.kv, "head dim")
        src_q = ctx.b.add("quantize", [src], {"dtype": scheme.kv}, src.node.name + "_kv",
                          loc=node.loc).out()
        return ctx.b.add("index_copy", [cache, idx, src_q], dict(node.attrs),
                         node.name + "_kv", loc=node.loc).out()

    return [linear, embedding, kv_prefill, kv_decode]


def kv_inputs(graph: Graph) -> tuple[set[str], set[str]]:
    """(nodes whose output attention reads as K/V in prefill form, names of decode
    cache inputs)."""
    values, caches = set(), set()
    for n in graph.nodes:
        if n.op != "attention":
            continue
        for v in n.inputs[1:3]:
            src = v.node
            if src.op == "index_copy" and src.inputs[0].node.op == "input":
                caches.add(src.inputs[0].node.name)
            else:
                values.add(v.node.name)
    return values, caches


def retype_inputs(graph: Graph, types: dict[str, TensorType]) -> Graph:
    """The graph with the named inputs given new types (same names, same order)."""
    remap: dict[Node, Node] = {}
    nodes = []
    for n in graph.nodes:
        inputs = tuple(Value(remap.get(v.node, v.node), v.index) for v in n.inputs)
        types_ = (types[n.name],) if n.op == "input" and n.name in types else n.types
        new = Node(n.op, inputs, n.attrs, types_, n.name, n.loc)
        remap[n] = new
        nodes.append(new)
    outputs = [Value(remap[v.node], v.index) for v in graph.outputs]
    return Graph(graph.name, nodes, outputs, dict(graph.params))


def apply_storage(graph: Graph, scheme: Scheme, cal: Calibration | None) -> Graph:
    """Weights, linear inputs and KV cache in `scheme`'s formats (not integer-only)."""
    values, caches = kv_inputs(graph)
    if scheme.kv is not None and caches:
        by_name = {n.name: n for n in graph.inputs}
        graph = retype_inputs(graph, {c: by_name[c].type.with_dtype(scheme.kv) for c in caches})
        for c in caches:
            check_block(by_name[c], by_name[c].type.shape[-1], scheme.kv, "KV cache head dim")
    return rewrite(graph, _rules(scheme, cal, values))
