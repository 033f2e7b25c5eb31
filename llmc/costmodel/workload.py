"""A phase's work as the cost model sees it: one record per op of the graph,
with the registry's FLOPs and bytes split into weight, KV-cache and
activation traffic at the precision being costed.

The split uses the registry's cost itself: an op's cost is linear in the
storage width of each input, so costing a node once more with its weight
inputs set to a zero-bit dtype leaves its non-weight bytes (likewise KV).
The precision is applied by re-typing the graph (what a quantization pass
would do to the types, without touching values): weight matrices to the
weight dtype, the KV cache to the KV dtype, every other float value to the
activation dtype. A graph whose passes already chose dtypes is costed as is.

`retype` is the one element-size rule: the memory planner plans the graph
`retype` returns at the report's precision (`llmc.api.plan_memory`), so the
report's weights, KV cache and the plan's regions are the same bytes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from llmc.costmodel.precision import Precision, compute_class, sparse_24
from llmc.ir.alias import alias_root
from llmc.ir.cost import param_count
from llmc.ir.dtypes import DType, boolean, f32, i64
from llmc.ir.graph import Attrs, Graph, Node, Value
from llmc.ir.kernels import Kernel
from llmc.ir.ops import get_op
from llmc.ir.ops.registry import Cost
from llmc.ir.types import TensorType
from llmc.passes.fusion import planned_kernels as kernels  # annotations, else planned

_ZERO = DType("zero", 0, "float")
_SHARDED_LOC = re.compile(r"(^|\.)(attn|ffn|mlp|lm_head)(\.|$)")
_SHARDED_PARAM = re.compile(r"(^|\.)(attn|ffn|mlp|lm_head|embed)\.")
_LAYER = re.compile(r"(^|\.)layers\.\d+(?=\.|$)")
_WEIGHT_OPS = ("linear", "moe_ffn")
_NO_WORK = ("source", "view")


@dataclass(frozen=True)
class OpRecord:
    """One op (or `count` identical ops): FLOPs and bytes per copy.

    compute: the arithmetic class it runs in (bf16, int8, ... or vector);
    weight_operand: multiplies by stored weights (linear, moe);
    shard: its weights are split across devices under tensor parallelism;
    tp_flops / tp_act_bytes: the part of its FLOPs / activation bytes that
    tensor parallelism splits (see `tp_split`; the rest every device repeats)."""

    name: str
    op: str
    kind: str
    loc: str
    flops: float
    weight_bytes: float
    kv_bytes: float
    act_bytes: float
    compute: str
    weight_operand: bool = False
    sparse: bool = False
    shard: bool = False
    count: int = 1
    fused: int = 1  # ops in the kernel (an anchor and its fused epilogue)
    tp_flops: float = 0.0
    tp_act_bytes: float = 0.0

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes + self.act_bytes


@dataclass(frozen=True)
class Workload:
    """The ops of one phase (prefill or decode) and what the model stores.

    tokens: new tokens per sequence; context: keys each new token attends to
    (prefill: the prompt; decode: the KV cache length)."""

    phase: str
    records: tuple[OpRecord, ...]
    batch: int
    tokens: int
    context: int
    weight_bytes: float              # storage of all weights at the costed precision
    weight_bytes_sharded: float      # the part tensor parallelism splits
    params_total: int
    params_active: int
    nodes: int
    op_counts: dict[str, int]

    @property
    def flops(self) -> float:
        return sum(r.flops * r.count for r in self.records)

    @property
    def bytes(self) -> float:
        return sum(r.bytes * r.count for r in self.records)


def layer_pattern(loc: str) -> str:
    """`layers.3.attn.q_proj` -> `layers.*.attn.q_proj`."""
    return _LAYER.sub(lambda m: f"{m.group(1)}layers.*", loc)


# ---- re-typing ----------------------------------------------------------------

def _chain(v: Value) -> list[Node]:
    """The producer of v and the views it reads through, down to their source."""
    out = [v.node]
    while get_op(out[-1].op).kind == "view" and out[-1].inputs:
        out.append(out[-1].inputs[0].node)
    return out


def kv_nodes(graph: Graph) -> set[Node]:
    """The KV cache: index_copy results (cache writes), and the graph inputs
    (through any views) that an index_copy writes into or an attention-kind
    op reads as its keys and values."""
    kv: set[Node] = set()
    for n in graph.nodes:
        kind = get_op(n.op).kind
        if n.op == "index_copy":
            kv.add(n)
            chains = [_chain(n.inputs[0])]
        elif kind == "attention" and len(n.inputs) >= 3:
            chains = [_chain(v) for v in n.inputs[1:3]]
        else:
            continue
        for c in chains:
            if c[-1].op == "input" or c[-1].op == "index_copy":
                kv.update(c)
    return kv


def weight_nodes(graph: Graph) -> set[Node]:
    """Params that are weights (not buffers, gains or biases): matrices, and
    any non-float or sparse-format tensor a pass stored (packed int4, 2:4
    metadata, CSR values and indices)."""
    sparse_parts = {v.node for n in graph.nodes if n.op == "sparse_linear"
                    for v in n.inputs[1:4]}
    return {n for n in graph.param_nodes if not n.attrs.get("buffer")
            and (n.type.rank >= 2 or not n.type.dtype.is_float or n in sparse_parts)}


def _sparse_params(graph: Graph) -> set[Node]:
    """Params used only as the weight of linear ops (candidates for 2:4)."""
    uses: dict[Node, list[bool]] = {}
    for n in graph.nodes:
        for i, v in enumerate(n.inputs):
            if v.node.op == "param":
                uses.setdefault(v.node, []).append(n.op == "linear" and i == 1)
    return {p for p, u in uses.items() if all(u)}


_TRACED = (f32, i64, boolean)                  # the dtypes torch.export leaves in a trace


def dtypes_chosen(graph: Graph) -> bool:
    """Some tensor has a dtype a pass (or the model's author) chose: one the
    trace does not produce (float32 values, int64 indices, bool masks)."""
    return any(t.dtype not in _TRACED for n in graph.nodes for t in n.types)


def traced_in_f32(graph: Graph) -> bool:
    """Whether the graph's float32 is the trace's reference precision rather
    than a choice: some weight, gain or bias is float32, or none is float at
    all (the frontend traces in float32 and the passes leave its 1-D gains
    there). A graph whose float parameters are all half precision (a model
    exported in bf16) holds float32 only where its author upcast on purpose."""
    floats = [n.type.dtype for n in graph.param_nodes
              if not n.attrs.get("buffer") and n.type.dtype.kind == "float"]
    return not floats or f32 in floats


def attended_kv(graph: Graph) -> set[tuple[Node, int]]:
    """(node, output index) of the keys and values attention-kind ops read
    (their producers, through any views) and of the views of them: the KV
    cache a prefill writes (and returns; `llmc.passes.memplan.liveness.
    kv_outputs`), stored in the KV dtype like the cache a decode reads and
    as a quantization scheme stores it (llmc.passes.quant.blockq)."""
    roots = {alias_root(v) for n in graph.nodes
             if get_op(n.op).kind == "attention" and len(n.inputs) >= 3 for v in n.inputs[1:3]}
    if not roots:
        return set()
    return {(n, i) for n in graph.nodes for i in range(len(n.types))
            if alias_root(Value(n, i)) in roots}


def retype(graph: Graph, p: Precision) -> Graph:
    """A copy of `graph` with storage dtypes set by precision `p`: the element
    sizes the cost model charges and the memory planner plans (weights at
    p.weight, the KV cache a decode reads and a prefill writes at p.kv, other
    float values at p.act). With
    ``p.as_is`` (a graph whose passes chose its dtypes) only float32 tensors
    that are the trace's reference precision change (`traced_in_f32`): no
    device serves in it, so they take `p.floats` (the device's default)."""
    kv, weights = kv_nodes(graph), weight_nodes(graph)
    sparse = _sparse_params(graph) if p.sparse and not p.as_is else set()
    if p.as_is and not traced_in_f32(graph):
        return graph
    to = p.floats if p.as_is else p
    cache = attended_kv(graph)
    new: dict[Node, Node] = {}

    def dtype(n: Node, i: int, t: TensorType) -> TensorType:
        if not t.dtype.is_float or (p.as_is and t.dtype != f32):
            return t
        if n in weights:
            return t.with_dtype(sparse_24(to.weight) if n in sparse else to.weight)
        return t.with_dtype(to.kv if n in kv or (n, i) in cache else to.act)

    for n in graph.nodes:
        inputs = tuple(Value(new[v.node], v.index) for v in n.inputs)
        types = tuple(dtype(n, i, t) for i, t in enumerate(n.types))
        new[n] = Node(n.op, inputs, n.attrs, types, n.name, n.loc)
    out = Graph(graph.name, list(new.values()), [Value(new[v.node], v.index) for v in graph.outputs],
                graph.params)
    return out


def held_dtypes(graph: Graph) -> dict[str, str | None]:
    """The dtypes a graph holds, each the one with the most bytes: its weights
    (`weight_nodes`), KV cache (`kv_nodes`, `attended_kv`) and other float
    values (act); None where the graph has none."""
    weights, kv, cache = weight_nodes(graph), kv_nodes(graph), attended_kv(graph)
    held: dict[str, Counter[str]] = {"weight": Counter(), "kv": Counter(), "act": Counter()}
    for n in graph.nodes:
        for i, t in enumerate(n.types):
            role = ("weight" if n in weights else
                    "kv" if n in kv or (n, i) in cache else "act")
            if role != "act" or t.dtype.is_float:
                held[role][t.dtype.name] += t.nbytes
    return {k: c.most_common(1)[0][0] if c else None for k, c in held.items()}


# ---- records -----------------------------------------------------------------

def _zeroed(node: Node, which: set[Node]) -> float:
    """Bytes of `node` with the inputs produced by `which` zero-width."""
    def z(v: Value) -> Value:
        if v.node not in which:
            return v
        t = v.type.with_dtype(_ZERO)
        return Value(Node("input", (), Attrs(), (t,), "zero"), 0)

    probe = Node(node.op, tuple(map(z, node.inputs)), node.attrs, node.types, node.name, node.loc)
    return get_op(node.op).cost(probe).bytes


def _operand(t: TensorType) -> DType:
    """An operand's dtype; an int4 tensor packed two per byte counts as int4."""
    if t.layout and "int4" in t.layout:
        return DType("int4", 4, "int")
    return t.dtype


def _compute(n: Node) -> tuple[str, bool]:
    """(arithmetic class, multiplies by stored weights) of an op: linalg ops
    run in the class of their first two operands (activations x weights),
    attention-kind ops in that of q and k, MoE in that of x and the experts;
    everything else on the vector units."""
    kind = get_op(n.op).kind
    weights = any(v.node.op == "param" and not v.node.attrs.get("buffer") for v in n.inputs)
    if kind == "linalg" and len(n.inputs) >= 2:
        return compute_class(_operand(n.inputs[0].type), _operand(n.inputs[1].type)), weights
    if kind == "attention" and len(n.inputs) >= 2:
        return compute_class(_operand(n.inputs[0].type), _operand(n.inputs[1].type)), False
    if kind == "moe":
        return compute_class(_operand(n.inputs[0].type), _operand(n.inputs[2].type)), True
    return "vector", False


def _is_sparse(n: Node) -> bool:
    """Runs on 2:4 sparse tensor cores: a 2:4 `sparse_linear`, or a linear
    whose weight a precision marked 2:4."""
    if n.op == "sparse_linear":
        return n.attrs["pattern"] == "2:4"
    if n.op != "linear":
        return False
    w = n.inputs[1]
    return (n.attrs.get("sparsity") == "2:4" or "2:4" in (w.type.layout or "")
            or w.type.dtype.name.endswith("s24"))


def _flops(n: Node, registry_flops: float) -> float:
    """FLOPs as the roofline counts them: the multiply-adds the hardware
    executes. A `sparse_linear`'s registry cost counts only the kept weights'
    multiply-adds; hardware runs the dense product instead:

    - 2:4: at its dense FLOPs, which sparse tensor cores run at twice the
      dense peak (the unit's sparse_flops_per_s) and other hardware at the
      dense peak (no skipping without sparse units);
    - unstructured (CSR): a dense unit gets no speed-up from scattered zeros
      (it multiplies the decompressed dense weight), so all the dense work is
      charged at the dense peak; no device file declares a unit that skips
      them. The bytes stay those of the CSR tensors as stored."""
    if n.op == "sparse_linear":
        tokens = n.type.numel // n.type.shape[-1]
        kept = 2 * tokens * n.inputs[1].type.numel
        dense = 2 * tokens * n.type.shape[-1] * n.attrs["in_features"]
        return registry_flops - kept + dense
    return registry_flops


# ---- tensor parallelism --------------------------------------------------------

def _tp_weighted(n: Node) -> bool:
    """A matmul with stored weights in a part Megatron-style TP splits."""
    kind = get_op(n.op).kind
    return (kind in ("linalg", "moe") and bool(_SHARDED_LOC.search(n.loc))
            and any(v.node.op == "param" for v in n.inputs[1:]))


def tp_split(graph: Graph) -> set[Node]:
    """The nodes whose output tensor parallelism splits across devices, as
    Megatron-LM lays it out (Shoeybi et al. 2019): a column-parallel linear
    (q/k/v, gate/up, the LM head: its input is whole on every device) writes
    1/N of its output; a row-parallel one (o, down: its input is split)
    writes the whole output, summed by the all-reduce; attention splits by
    heads; MoE experts split inside and return whole outputs; any other op
    (RoPE, SiLU, a quantize on the way) is split iff an input is. Norms,
    residual adds and the embedding see whole tensors."""
    split: set[Node] = set()
    for n in graph.nodes:
        kind = get_op(n.op).kind
        if kind == "source":
            continue
        if _tp_weighted(n):
            if kind == "linalg" and n.inputs[0].node not in split:
                split.add(n)                   # column-parallel
        elif kind == "attention" and _SHARDED_LOC.search(n.loc):
            split.add(n)
        elif any(v.node in split for v in n.inputs):
            split.add(n)
    return split


def _tp_act_bytes(n: Node, cost: Cost, split: set[Node], skip: set[Node]) -> float:
    """Activation bytes of `n` (whose registry cost is `cost`) in tensors TP
    splits (inputs in `skip`, its weights and KV cache, are counted apart)."""
    which = {v.node for v in n.inputs if v.node in split and v.node not in skip}
    read = cost.bytes - _zeroed(n, which) if which else 0.0
    return read + (cost.bytes_written if n in split else 0.0)


def _tp_saved(k: Kernel, split: set[Node]) -> float:
    """The part of k.saved_bytes (values kept on chip) in split tensors."""
    inner = set(k.nodes)
    saved = sum(x.type.nbytes for n in k.nodes for x in n.inputs
                if alias_root(x).node in inner and alias_root(x).node is not n
                and x.node in split)
    return saved + sum(v.type.nbytes for v in k.internal if v.node in split)


# ---- records -------------------------------------------------------------------

def records(graph: Graph, fuse: bool = True) -> list[OpRecord]:
    """One record per kernel of a re-typed graph: per op, then (``fuse``) the
    ops of one fused kernel (llmc.passes.fusion: the graph's annotations,
    else planned here) as one record. Sources and views cost nothing."""
    weights, kv = weight_nodes(graph), kv_nodes(graph)
    split, skip = tp_split(graph), weights | kv
    out: dict[Node, OpRecord] = {}
    for n in graph.nodes:
        op = get_op(n.op)
        if op.kind in _NO_WORK:
            continue
        cost = op.cost(n)
        total = cost.bytes
        if n.op == "index_copy":              # the KV-cache write
            w_b, kv_b, tp_act = 0.0, float(total), 0.0
        else:
            w_b = total - _zeroed(n, weights) if any(v.node in weights for v in n.inputs) else 0
            kv_b = total - _zeroed(n, kv) if any(v.node in kv for v in n.inputs) else 0
            tp_act = _tp_act_bytes(n, cost, split, skip)
        cls, wop = _compute(n)
        flops = float(_flops(n, cost.flops))
        divided = n in split or _tp_weighted(n) or (op.kind == "attention"
                                                    and bool(_SHARDED_LOC.search(n.loc)))
        out[n] = OpRecord(n.name, n.op, op.kind, layer_pattern(n.loc), flops,
                          float(w_b), float(kv_b), float(total - w_b - kv_b), cls, wop,
                          _is_sparse(n), _tp_weighted(n), tp_flops=flops if divided else 0.0,
                          tp_act_bytes=float(tp_act))
    if not fuse:
        return list(out.values())
    return [_fused(k, [out[n] for n in k.nodes], _tp_saved(k, split)) for k in kernels(graph)]


def _fused(k: Kernel, recs: list[OpRecord], tp_saved: float) -> OpRecord:
    """One kernel's record: the anchor's, with the members' FLOPs and bytes
    summed, less the activation traffic that stays on chip."""
    if len(recs) == 1:
        return recs[0]
    act = max(0.0, sum(r.act_bytes for r in recs) - k.saved_bytes)
    tp_act = min(act, max(0.0, sum(r.tp_act_bytes for r in recs) - tp_saved))
    return replace(recs[0], flops=sum(r.flops for r in recs),
                   weight_bytes=sum(r.weight_bytes for r in recs),
                   kv_bytes=sum(r.kv_bytes for r in recs), act_bytes=act,
                   shard=any(r.shard for r in recs), tp_flops=sum(r.tp_flops for r in recs),
                   tp_act_bytes=tp_act, fused=len(recs))


def merge_key(r: OpRecord) -> tuple:
    """What makes two records the same op (all but the name and the count)."""
    return (r.op, r.kind, r.loc, r.flops, r.weight_bytes, r.kv_bytes, r.act_bytes, r.compute,
            r.weight_operand, r.sparse, r.shard, r.fused, r.tp_flops, r.tp_act_bytes)


def merge(recs: list[OpRecord]) -> tuple[OpRecord, ...]:
    """Merge identical ops (same op, layer pattern and costs) into counts."""
    merged: dict[tuple, OpRecord] = {}
    for r in recs:
        key = merge_key(r)
        m = merged.get(key)
        merged[key] = r if m is None else replace(m, count=m.count + r.count)
    return tuple(merged.values())


def weight_storage(graph: Graph, names: set[str] | None = None) -> tuple[float, float]:
    """(all weight bytes, the tensor-parallel-sharded part) of a re-typed graph,
    of the params named in `names` (default all); 1-D params (norm gains,
    biases) count at their (activation) dtype."""
    total = sharded = 0.0
    for n in live_weights(graph):
        name = n.attrs.get("name", n.name)
        if names is not None and name not in names:
            continue
        b = n.type.nbytes
        total += b
        if _SHARDED_PARAM.search(name):
            sharded += b
    return total, sharded


def live_weights(graph: Graph) -> list[Node]:
    """Weight params some op reads (buffers and unread params are not weights
    a device has to hold)."""
    read = {v.node for n in graph.nodes for v in n.inputs}
    return [n for n in graph.param_nodes if not n.attrs.get("buffer") and n in read]


def from_graph(graph: Graph, phase: str, p: Precision, *, batch: int, tokens: int,
               context: int, fuse: bool = True) -> Workload:
    """The workload of a traced (or synthesized) graph at precision `p`;
    ``fuse``: one record per fused kernel (see `records`), else per op."""
    g = retype(graph, p)
    total, sharded = weight_storage(g)
    counted = param_count(graph)
    n_total, n_active = counted.total, counted.active
    counts = dict(sorted(Counter(n.op for n in graph.nodes).items()))
    return Workload(phase, merge(records(g, fuse)), batch, tokens, context, total, sharded,
                    n_total, n_active, len(graph.nodes), counts)
