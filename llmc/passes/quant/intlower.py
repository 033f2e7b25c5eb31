"""Integer-only lowering (after I-BERT and MobileQuant): W8A8 / W4A8 with int32
accumulation, dyadic requantization, integer RMSNorm, LayerNorm, SiLU, GELU and
softmax, and static per-tensor activation ranges from calibration.

Every float value of the source graph becomes an integer value with a static
real scale (real = int * scale). The lowering walks the graph once and, per op,
emits integer ops from a table of small rules; a rule asks for its inputs in
the representation it needs (`need`: dtype and per-tensor scale), which emits a
`requant` when the value is held differently. Representations:

  token embedding / RoPE tables   i16, power-of-two scale (a param)
  residual stream                 i32, scale = calibrated max / (2^(res_bits-1) - 1)
  matmul inputs, q/k/v, KV cache  i8, scale = calibrated max / 127
  linear output                   i32 accumulator, per-output-channel scale
  SiLU / GELU in/out, FFN product i16 (MobileQuant's 16-bit activations)
  norm gain / bias                i32 at the norm's output scale (gain also x 2^shift)
  logits                          i32 accumulator -> `dequantize_int` (the one float op)

Calibration statistics are looked up by semantic key (calibrate.py), so a
decode graph lowers with the ranges of its model's prefill graph; its K/V cache
inputs become i8 at the scale of the K/V rows written into them. Shape-only
graphs lower with placeholder ranges (max 1.0): structure and bytes are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from llmc.errors import UsageError
from llmc.ir import dtypes
from llmc.ir.dtypes import DType
from llmc.ir.formats import check_finite
from llmc.ir.graph import Builder, Graph, Node, Value
from llmc.ir.ops.intops import SIGMOID_FRAC, qrange
from llmc.ir.types import TensorType
from llmc.passes.quant.blockq import int_weight_param, quantize_int_weight, where
from llmc.passes.quant.calibrate import Calibration, semantic_keys
from llmc.passes.quant.intbase import QV, IntConfig, dyadic, pow2_scale
from llmc.passes.quant.intmoe import fold_moe_gates, lower_moe
from llmc.passes.quant.schemes import IntWeights, Scheme
from llmc.passes.quant.weights import two_level_scale

Rule = Callable[["Lowering", Node], "QV | Value"]


class Lowering:
    """One walk over a float graph, building its integer-only twin."""

    def __init__(self, graph: Graph, scheme: Scheme, cal: Calibration | None,
                 cfg: IntConfig) -> None:
        self.src, self.scheme, self.cal, self.cfg = graph, scheme, cal, cfg
        self.out = Graph(graph.name)
        self.b = Builder(self.out)
        self.keys = semantic_keys(graph)
        self.env: dict[Value, QV | Value] = {}
        self._need: dict[tuple[Value, DType, float | None], QV] = {}
        self.res = dtypes.i32 if cfg.res_bits > 16 else dtypes.i16

    # ---- values -------------------------------------------------------------------

    def amax(self, fv: Value) -> float:
        if self.cal is None:
            return 1.0  # shape-only: placeholder range
        key = self.keys[fv.node]
        if key not in self.cal.amax:
            raise UsageError(f"{where(fv.node)}: no calibration range for %{fv.node.name} "
                             f"({key}); calibrate on this model's prefill graph")
        return self.cal.amax[key] or 1.0

    def scale_for(self, fv: Value, dtype: DType, bits: int | None = None) -> float:
        top = 2 ** (bits - 1) - 1 if bits else qrange(dtype)[1]
        return self.amax(fv) / top

    def q(self, fv: Value) -> QV:
        if fv not in self.env and fv.node.op == "const":
            self.env[fv] = self._const(fv.node)
        if fv not in self.env:
            raise UsageError(f"{where(fv.node)}: integer-only lowering reads weight "
                             f"%{fv.node.name} {fv.type} only as an operand of linear, "
                             f"embedding, a norm or moe_ffn, or as a positive scalar factor")
        got = self.env[fv]
        if not isinstance(got, QV):
            raise UsageError(f"{where(fv.node)}: expected a quantized value for %{fv.node.name}")
        return got

    def _const(self, n: Node) -> QV:
        """A float constant c (emitted only when a rule does not fold it): the
        integer sign(c) at scale |c|."""
        c = float(n.attrs["value"])
        v = self.b.add("const", [], {"value": int(np.sign(c)), "shape": n.attrs["shape"],
                                     "dtype": dtypes.i32}, n.name, loc=n.loc).out()
        return QV(v, abs(c) or 1.0)

    def plain(self, fv: Value) -> Value:
        got = self.env[fv]
        if isinstance(got, QV):
            raise UsageError(f"{where(fv.node)}: %{fv.node.name} must be an integer index")
        return got

    def param(self, name: str, value: np.ndarray | None, dtype: DType,
              shape: tuple[int, ...], layout: str | None = None, buffer: bool = False
              ) -> Value:
        return self.b.param(name, TensorType(shape, dtype, layout),
                            None if value is None else np.asarray(value).astype(dtype.np),
                            buffer=buffer)

    def float_param(self, fv: Value) -> tuple[str, np.ndarray | None]:
        node = fv.node
        if node.op != "param":
            raise UsageError(f"%{node.name}: integer lowering needs a constant weight here")
        name = node.attrs["name"]
        value = self.src.params.get(name)
        if value is not None:
            check_finite(name, value)
        return name, value

    def requant_to(self, x: QV, dtype: DType, scale: float, loc: str) -> QV:
        mult, shift = dyadic(np.asarray(x.scale, np.float64) / scale)
        if x.per_tensor:
            v = self.b.add("requant", [x.v], {"mult": int(mult), "shift": shift,
                                              "dtype": dtype}, "rq", loc=loc).out()
        else:
            m = self.param(f"{x.v.node.name}.rq_mult", mult, dtypes.i32, mult.shape)
            v = self.b.add("requant", [x.v, m], {"shift": shift, "dtype": dtype}, "rq",
                           loc=loc).out()
        return QV(v, scale)

    def need(self, fv: Value, dtype: DType, scale: float | None = None) -> QV:
        """fv as a per-tensor `dtype` value (at `scale`, else as held when it already
        is per-tensor `dtype`, else at fv's calibrated scale)."""
        x = self.q(fv)
        if x.per_tensor and x.dtype == dtype and (scale is None or x.scale == scale):
            return x
        key = (fv, dtype, scale)
        if key not in self._need:
            target = scale if scale is not None else self.scale_for(fv, dtype)
            self._need[key] = self.requant_to(x, dtype, target, fv.node.loc)
        return self._need[key]

    def emit(self, op: str, inputs: list[Value], attrs: dict, node: Node) -> Value:
        return self.b.add(op, inputs, attrs, node.name, loc=node.loc).out()

    # ---- the walk -----------------------------------------------------------------

    def run(self) -> Graph:
        cache_scales = self._cache_inputs()
        unsupported: dict[str, list[str]] = {}
        for n in self.src.nodes:
            if self._is_float(n) and n.op not in RULES and n.op not in ("param", "input",
                                                                         "const"):
                unsupported.setdefault(n.op, []).append(where(n))
        if unsupported:
            ops = ", ".join(f"{op} ({len(w)}x, first at {w[0]})"
                            for op, w in sorted(unsupported.items()))
            raise UsageError(f"{self.scheme.name}: integer-only lowering does not support: {ops}; "
                             "integer schemes take the float graph as traced (no --sparsity or "
                             "--attention)")
        for n in self.src.nodes:
            if n.op == "param" or n.op == "const" and self._is_float(n):
                continue  # weights are read by their rules; float constants by L.q
            if n.op == "input":
                self._input(n, cache_scales)
            elif not self._is_float(n) and not any(isinstance(self.env.get(v), QV)
                                                   for v in n.inputs):
                new = self.b.add(n.op, [self.plain(v) for v in n.inputs], dict(n.attrs),
                                 n.name, n.types, n.loc)
                for i in range(len(n.types)):
                    self.env[Value(n, i)] = new.out(i)
            else:
                self.env[n.out()] = RULES[n.op](self, n)
        self.out.outputs = [self._output(i, v) for i, v in enumerate(self.src.outputs)]
        return self.out

    @staticmethod
    def _is_float(n: Node) -> bool:
        return any(t.dtype.is_float for t in n.types)

    def _cache_inputs(self) -> dict[str, Value]:
        """Float graph inputs written by index_copy (decode KV caches) -> the K/V
        row value whose scale the cache takes."""
        out = {}
        for n in self.src.nodes:
            if n.op == "index_copy" and n.inputs[0].node.op == "input":
                out[n.inputs[0].node.name] = n.inputs[2]
        return out

    def _input(self, n: Node, caches: dict[str, Value]) -> None:
        if not n.type.dtype.is_float:
            self.env[n.out()] = self.b.input(n.name, n.type)
            return
        if n.name not in caches:
            raise UsageError(f"integer-only lowering: float input %{n.name} is neither tokens "
                             f"nor a KV cache")
        src = caches[n.name]
        v = self.b.input(n.name, n.type.with_dtype(self.cfg.act))
        self.env[n.out()] = QV(v, self.scale_for(src, self.cfg.act))

    def _output(self, i: int, fv: Value) -> Value:
        got = self.env[fv]
        if not isinstance(got, QV):
            return got
        if i == 0:  # the logits
            scale = np.atleast_1d(np.asarray(got.scale, np.float32))
            s = self.param("logits.scale", scale, dtypes.f32, scale.shape)
            return self.b.add("dequantize_int", [got.v, s], {}, "logits", loc=fv.node.loc).out()
        return self.need(fv, self.cfg.act).v


# ---- rules -------------------------------------------------------------------------


def _embedding(L: Lowering, n: Node) -> QV:
    name, w = L.float_param(n.inputs[0])
    shape = n.inputs[0].type.shape
    scale = pow2_scale(float(np.abs(w).max()) if w is not None else 1.0, L.cfg.table)
    table = L.param(f"{name}.{L.cfg.table.name}",
                    None if w is None else np.rint(w / scale), L.cfg.table, shape,
                    buffer=bool(n.inputs[0].node.attrs.get("buffer")))  # RoPE tables stay buffers
    return QV(L.emit("embedding", [table, L.plain(n.inputs[1])], {}, n), scale)


def _norm(L: Lowering, n: Node, op: str, centred: bool) -> QV:
    """rms_norm -> int_rms_norm, layer_norm -> int_layer_norm: x per tensor, the
    gain as i32 at the output scale times 2^shift (~2^20 at its largest), a
    bias as i32 at the output scale."""
    x = L.q(n.inputs[0])
    if not x.per_tensor:
        x = L.need(n.inputs[0], L.res, L.scale_for(n.inputs[0], L.res, L.cfg.res_bits))
    c = n.type.shape[-1]
    if len(n.inputs) > 1:
        name, g = L.float_param(n.inputs[1])
    else:
        name, g = f"{n.name}.gain", np.ones(c, np.float32)
    s_out = L.scale_for(n.out(), L.cfg.act)
    gmax = float(np.abs(g).max()) / s_out if g is not None else 1.0
    shift = int(np.clip(20 - math.ceil(math.log2(max(gmax, 1e-30))), 0, 30))
    gq = None if g is None else np.rint(g.astype(np.float64) / s_out * 2.0**shift)
    inputs = [x.v, L.param(f"{name}.i32", gq, dtypes.i32, (c,))]
    if len(n.inputs) > 2:
        bname, b = L.float_param(n.inputs[2])
        bq = None if b is None else np.rint(b.astype(np.float64) / s_out)
        inputs.append(L.param(f"{bname}.i32", bq, dtypes.i32, (c,)))
    x_bits = (int(x.dtype.bits) if x.dtype != dtypes.i32 else L.cfg.res_bits) + centred
    rbits = int(np.clip((62 - 2 * x_bits) // 2, 0, 15))
    eps = int(round(n.attrs["eps"] / float(x.scale) ** 2))
    return QV(L.emit(op, inputs, {"eps": eps, "rbits": rbits, "shift": shift,
                                  "dtype": L.cfg.act}, n), s_out)


def _rms_norm(L: Lowering, n: Node) -> QV:
    return _norm(L, n, "int_rms_norm", centred=False)


def _layer_norm(L: Lowering, n: Node) -> QV:
    """x - mean deviates up to twice max |x|: one more bit for the sum of squares."""
    return _norm(L, n, "int_layer_norm", centred=True)


def _linear(L: Lowering, n: Node) -> QV:
    x = L.need(n.inputs[0], L.cfg.act)
    name, w = L.float_param(n.inputs[1])
    nout, k = n.inputs[1].type.shape
    spec = L.scheme.weights
    assert isinstance(spec, IntWeights)
    hessian = L.cal.hessian.get(name) if L.cal else None
    inputs = [x.v]
    if spec.bits == 4 and spec.group:  # per-group scales as u8 multiples of a channel scale
        chan, snap = two_level_scale(w, 4, spec.group) if w is not None else (None, None)
        qw, kp, g = quantize_int_weight(w, (nout, k), spec, hessian, snap)
        inputs.append(int_weight_param(L, name, qw, nout, kp, 4))
        gs = None if qw is None else np.clip(np.rint(qw.scales / chan[:, None]), 1, 255)
        inputs.append(L.param(f"{name}.gscale", gs, dtypes.u8, (nout, kp // g)))
        attrs = {"group": g}
        w_scale = chan if w is not None else np.ones(nout)
    else:
        qw, kp, g = quantize_int_weight(w, (nout, k), IntWeights(spec.bits, 0, spec.method),
                                        hessian)
        inputs.append(int_weight_param(L, name, qw, nout, kp, spec.bits))
        attrs = {}
        w_scale = qw.scales[:, 0].astype(np.float64) if qw is not None else np.ones(nout)
    acc = L.emit("int_linear", inputs, attrs, n)
    scale = float(x.scale) * w_scale
    if len(n.inputs) > 2:
        bname, b = L.float_param(n.inputs[2])
        bq = None if b is None else np.rint(b / scale)
        acc = L.b.add("add", [acc, L.param(f"{bname}.i32", bq, dtypes.i32, (nout,))], {},
                      n.name + "_bias", loc=n.loc).out()
    return QV(acc, scale)


def _view(L: Lowering, n: Node) -> QV:
    x = L.q(n.inputs[0])
    if not x.per_tensor:
        x = L.need(n.inputs[0], L.cfg.act)
    return QV(L.emit(n.op, [x.v], dict(n.attrs), n), x.scale)


def _concat(L: Lowering, n: Node) -> QV:
    xs = [L.q(v) for v in n.inputs]
    first = xs[0]
    if all(x.per_tensor and x.dtype == first.dtype and x.scale == first.scale for x in xs):
        return QV(L.emit("concat", [x.v for x in xs], dict(n.attrs), n), first.scale)
    dtype = first.dtype if first.per_tensor else L.cfg.act
    scale = L.scale_for(n.out(), dtype)
    xs = [L.need(v, dtype, scale) for v in n.inputs]
    return QV(L.emit("concat", [x.v for x in xs], dict(n.attrs), n), scale)


def _narrow(L: Lowering, fv: Value) -> QV:
    """fv per-tensor in at most 16 bits, then widened to i32 for products."""
    x = L.q(fv)
    if not x.per_tensor or x.dtype.bits > 16:
        x = L.need(fv, L.cfg.mid)
    v = L.b.add("cast", [x.v], {"dtype": dtypes.i32}, "wide", loc=fv.node.loc).out()
    return QV(v, x.scale)


def _scalar(L: Lowering, fv: Value) -> float | None:
    """The value of a positive float scalar (a const, or a one-element weight such
    as Gemma's embedding scale), else None; 1.0 for a weight of a shape-only graph."""
    n = fv.node
    if not n.type.dtype.is_float or n.type.numel != 1:
        return None
    if n.op == "const":
        c = float(n.attrs["value"])
    elif n.op == "param":
        w = L.src.params.get(n.attrs["name"])
        c = 1.0 if w is None else float(np.asarray(w).reshape(-1)[0])
    else:
        return None
    return c if c > 0 and math.isfinite(c) else None


def _mul(L: Lowering, n: Node) -> QV:
    for x, c in (n.inputs, n.inputs[::-1]):
        factor = _scalar(L, c)
        if factor is not None and x.type.shape == n.type.shape:  # x * c: a new scale
            q = L.q(x)
            return QV(q.v, q.scale * factor)
    a, b = _narrow(L, n.inputs[0]), _narrow(L, n.inputs[1])
    return QV(L.emit("mul", [a.v, b.v], {}, n), float(a.scale) * float(b.scale))


def _add(L: Lowering, n: Node) -> QV:
    a, b = L.q(n.inputs[0]), L.q(n.inputs[1])
    if a.per_tensor and b.per_tensor and a.dtype == b.dtype == dtypes.i32 and a.scale == b.scale:
        return QV(L.emit("add", [a.v, b.v], {}, n), a.scale)
    scale = L.scale_for(n.out(), L.res, L.cfg.res_bits)
    ra = L.requant_to(a, dtypes.i32, scale, n.loc)
    rb = L.requant_to(b, dtypes.i32, scale, n.loc)
    s = L.emit("add", [ra.v, rb.v], {}, n)
    if L.res != dtypes.i32:
        s = L.b.add("requant", [s], {"mult": 1, "shift": 0, "dtype": L.res}, "sat",
                    loc=n.loc).out()
    return QV(s, scale)


def _gated(L: Lowering, n: Node, op: str, extra: dict) -> QV:
    """x * gate(x) as `op` (int_silu, int_gelu): i16 in and out, x in fixed point
    with exp_frac bits for the gate, the gate with SIGMOID_FRAC bits."""
    x = L.need(n.inputs[0], L.cfg.mid)
    frac = L.cfg.exp_frac
    in_mult, in_shift = dyadic(float(x.scale) * 2.0**frac)
    s_out = L.scale_for(n.out(), L.cfg.mid)
    out_mult, out_shift = dyadic(float(x.scale) / (2.0**SIGMOID_FRAC * s_out))
    attrs = {"in_mult": int(in_mult), "in_shift": in_shift, "frac": frac,
             "out_mult": int(out_mult), "out_shift": out_shift, "dtype": L.cfg.mid, **extra}
    return QV(L.emit(op, [x.v], attrs, n), s_out)


def _silu(L: Lowering, n: Node) -> QV:
    return _gated(L, n, "int_silu", {})


def _gelu(L: Lowering, n: Node) -> QV:
    """gelu -> int_gelu: I-BERT's i-erf, or the tanh form through i-exp's sigmoid."""
    approximate = n.attrs.get("approximate", "none")
    return _gated(L, n, "int_gelu", {} if approximate == "none" else
                  {"approximate": approximate})


def _attention(L: Lowering, n: Node) -> QV:
    sparse = [f"{a}={n.attrs[a]}" for a in ("block_size", "block_topk") if a in n.attrs]
    if sparse:  # int_attention keeps windows and sinks, not block selection: refuse
        raise UsageError(f"{L.scheme.name}: integer attention does not implement "
                         f"{', '.join(sparse)} (at {where(n)})")
    q, k, v = (L.need(x, L.cfg.act) for x in n.inputs[:3])
    frac, pb = L.cfg.exp_frac, L.cfg.prob_bits
    s_mult, s_shift = dyadic(float(q.scale) * float(k.scale) * n.attrs["scale"] * 2.0**frac)
    s_out = L.scale_for(n.out(), L.cfg.act)
    o_mult, o_shift = dyadic(float(v.scale) / (2.0**pb * s_out))
    inputs = [q.v, k.v, v.v]
    if len(n.inputs) > 3:
        if n.inputs[3].type.dtype != dtypes.boolean:
            raise UsageError(f"{where(n)}: integer attention takes boolean masks only")
        inputs.append(L.plain(n.inputs[3]))
    attrs = {"causal": n.attrs["causal"], "s_mult": int(s_mult), "s_shift": s_shift,
             "frac": frac, "prob_bits": pb, "o_mult": int(o_mult), "o_shift": o_shift,
             "dtype": L.cfg.act, **{a: n.attrs[a] for a in ("window", "sinks") if a in n.attrs}}
    return QV(L.emit("int_attention", inputs, attrs, n), s_out)


def _index_copy(L: Lowering, n: Node) -> QV:
    cache = L.q(n.inputs[0])
    src = L.need(n.inputs[2], cache.dtype, float(cache.scale))
    return QV(L.emit("index_copy", [cache.v, L.plain(n.inputs[1]), src.v], dict(n.attrs), n),
              cache.scale)


RULES: dict[str, Rule] = {
    "embedding": _embedding, "rms_norm": _rms_norm, "layer_norm": _layer_norm,
    "gelu": _gelu, "linear": _linear,
    "reshape": _view, "permute": _view, "slice": _view, "expand": _view, "neg": _view,
    "concat": _concat, "mul": _mul, "add": _add, "silu": _silu, "attention": _attention,
    "index_copy": _index_copy, "moe_ffn": lower_moe,
}


def lower_integer(graph: Graph, scheme: Scheme, cal: Calibration | None,
                  cfg: IntConfig | None = None) -> Graph:
    """The integer-only twin of `graph` (see the module docstring)."""
    if not isinstance(scheme.weights, IntWeights):
        raise UsageError(f"scheme {scheme.name}: integer lowering needs integer weights")
    return Lowering(fold_moe_gates(graph), scheme, cal, cfg or IntConfig()).run()
