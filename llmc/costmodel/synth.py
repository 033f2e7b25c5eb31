"""The zoo decoder's IR, built straight from its config (no torch.export).

`synth_graph` emits the ops the frontend produces when it traces a zoo
model (llmc/frontend/zoo/decoder.py and layers.py, through torch.export and
llmc/frontend/export.py): same ops, shapes, attributes and module paths, in
float32 like a trace. Costs then come from the op registry, as for a traced
graph. The middle layers are all the same graph, so `synth_workload` builds
2 and 3 layers and counts their difference `n_layers - 2` times: a report of
a 34B model at a 1M-token context costs milliseconds instead of a ~10 s trace
of the full model.

tests/costmodel/test_cm_synth.py checks that the synthesized graph's costs
equal the traced graph's, node for node, and that the scaled layers equal the
full trace; tests/costmodel/test_cm_scheme_agreement.py that under every
quantization scheme they equal what `llmc compile --quant` reports.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

from llmc.costmodel.precision import Precision
from llmc.costmodel.workload import OpRecord, Workload, from_graph, merge_key
from llmc.frontend.zoo.config import ModelConfig
from llmc.ir.dtypes import f32, i64
from llmc.ir.graph import Builder, Graph, Value
from llmc.ir.types import TensorType


class _Decoder:
    """Emits one decoder's ops into a graph (mirrors zoo Decoder.forward)."""

    def __init__(self, cfg: ModelConfig, phase: str, batch: int, tokens: int,
                 cache_len: int) -> None:
        self.cfg, self.phase, self.B, self.T, self.S = cfg, phase, batch, tokens, cache_len
        self.g = Graph(f"{cfg.name}_{phase}")
        self.b = Builder(self.g)

    def op(self, op: str, *inputs: Value, loc: str = "", **attrs: object) -> Value:
        return self.b.add(op, inputs, attrs, loc=loc).out()

    def param(self, name: str, *shape: int, buffer: bool = False) -> Value:
        return self.b.param(name, TensorType(shape, f32), None, buffer)

    def linear(self, x: Value, name: str, n_in: int, n_out: int, bias: bool, loc: str) -> Value:
        w = self.param(f"{name}.weight", n_out, n_in)
        args = (x, w, self.param(f"{name}.bias", n_out)) if bias else (x, w)
        return self.op("linear", *args, loc=loc)

    def norm(self, x: Value, name: str) -> Value:
        c = self.cfg
        if c.family == "gpt2":
            w, bias = self.param(f"{name}.weight", c.hidden), self.param(f"{name}.bias", c.hidden)
            return self.op("layer_norm", x, w, bias, loc=name, eps=c.norm_eps)
        return self.op("rms_norm", x, self.param(f"{name}.weight", c.hidden), loc=name,
                       eps=c.norm_eps)

    def heads(self, x: Value, n: int, loc: str, norm: str = "") -> Value:
        """(B, T, n*D) -> (B, n, T, D), RMSNorm'd per head by param `norm` if given."""
        D = self.cfg.head_dim
        x = self.op("reshape", x, loc=loc, shape=[self.B, self.T, n, D])
        if norm:
            x = self.op("rms_norm", x, self.param(f"{norm}.weight", D), loc=norm,
                        eps=self.cfg.norm_eps)
        return self.op("permute", x, loc=loc, perm=[0, 2, 1, 3])

    def rope(self, x: Value, cos: Value, sin: Value, loc: str) -> Value:
        """x * cos + rotate_half(x) * sin (zoo layers.apply_rope)."""
        D = self.cfg.head_dim
        hi = self.op("slice", x, loc=loc, dim=3, start=D // 2, end=D, step=1)
        lo = self.op("slice", x, loc=loc, dim=3, start=0, end=D // 2, step=1)
        rotated = self.op("concat", self.op("neg", hi, loc=loc), lo, loc=loc, dim=3)
        return self.op("add", self.op("mul", x, cos, loc=loc), self.op("mul", rotated, sin, loc=loc),
                       loc=loc)

    def attention(self, x: Value, i: int, positions: Value, rope: tuple[Value, Value] | None,
                  cache: tuple[Value, Value] | None) -> Value:
        c, loc = self.cfg, f"layers.{i}.attn"
        bias = c.attn_bias
        qn, kn = (f"{loc}.q_norm", f"{loc}.k_norm") if c.qk_norm else ("", "")
        q = self.heads(self.linear(x, f"{loc}.q_proj", c.hidden, c.q_dim, bias, f"{loc}.q_proj"),
                       c.n_heads, loc, qn)
        k = self.heads(self.linear(x, f"{loc}.k_proj", c.hidden, c.kv_dim, bias, f"{loc}.k_proj"),
                       c.n_kv_heads, loc, kn)
        v = self.heads(self.linear(x, f"{loc}.v_proj", c.hidden, c.kv_dim, bias, f"{loc}.v_proj"),
                       c.n_kv_heads, loc)
        if rope is not None:
            cos = self.op("embedding", rope[0], positions, loc=loc)
            sin = self.op("embedding", rope[1], positions, loc=loc)
            q, k = self.rope(q, cos, sin, loc), self.rope(k, cos, sin, loc)
        scale = 1.0 / math.sqrt(c.head_dim)
        window = {"window": c.window(i)} if c.window(i) else {}   # zoo window_op.py
        if cache is None:
            out = self.op("attention", q, k, v, loc=loc, causal=True, scale=scale, **window)
        else:
            kc = self.op("index_copy", cache[0], positions, k, loc=loc, dim=2)
            vc = self.op("index_copy", cache[1], positions, v, loc=loc, dim=2)
            keys = self.op("arange", loc=loc, start=0, end=self.S, step=1, dtype=i64)
            keys = self.op("reshape", keys, loc=loc, shape=[1, self.S])
            pos = self.op("reshape", positions, loc=loc, shape=[self.T, 1])
            mask = self.op("le", keys, pos, loc=loc)
            out = self.op("attention", q, kc, vc, mask, loc=loc, causal=False, scale=scale,
                          **window)
        out = self.op("permute", out, loc=loc, perm=[0, 2, 1, 3])
        out = self.op("reshape", out, loc=loc, shape=[self.B, self.T, c.q_dim])
        return self.linear(out, f"{loc}.o_proj", c.q_dim, c.hidden, bool(c.o_bias),
                           f"{loc}.o_proj")

    def act(self, x: Value, loc: str) -> Value:
        """The MLP's activation (zoo layers._ACT)."""
        if self.cfg.act == "silu":
            return self.op("silu", x, loc=loc)
        return self.op("gelu", x, loc=loc,
                       approximate="tanh" if self.cfg.act == "gelu_tanh" else "none")

    def ffn(self, x: Value, i: int) -> Value:
        c, loc = self.cfg, f"layers.{i}.ffn"
        h, f, bias = c.hidden, c.ffn_hidden, c.mlp_bias
        if c.family == "gpt2":
            up = self.linear(x, f"{loc}.up", h, f, bias, f"{loc}.up")
            return self.linear(self.act(up, loc), f"{loc}.down", f, h, bias, f"{loc}.down")
        if c.family == "moe":
            E = c.n_experts
            x2 = self.op("reshape", x, loc=loc, shape=[self.B * self.T, h])
            router = self.param(f"{loc}.router", E, h)
            y = self.op("moe_ffn", x2, router,
                        self.param(f"{loc}.w_gate", E, f, h), self.param(f"{loc}.w_up", E, f, h),
                        self.param(f"{loc}.w_down", E, h, f), loc=loc, top_k=c.top_k)
            if not c.moe_norm_topk:  # gates scaled by the top-k share of the softmax
                logits = self.op("matmul", x2, self.op("permute", router, loc=loc, perm=[1, 0]),
                                 loc=loc)
                probs = self.op("softmax", logits, loc=loc, dim=1)
                top = self.b.add("topk", (probs,), {"dim": 1, "k": c.top_k}, loc=loc).out(0)
                share = self.op("sum", top, loc=loc, dims=[1], keepdim=True)
                y = self.op("mul", y, share, loc=loc)
            return self.op("reshape", y, loc=loc, shape=[self.B, self.T, h])
        gate = self.act(self.linear(x, f"{loc}.gate", h, f, bias, f"{loc}.gate"), loc)
        up = self.linear(x, f"{loc}.up", h, f, bias, f"{loc}.up")
        return self.linear(self.op("mul", gate, up, loc=loc), f"{loc}.down", f, h, bias,
                           f"{loc}.down")

    def build(self, n_layers: int) -> Graph:
        c, B, T = self.cfg, self.B, self.T
        embed = self.param("embed.weight", c.vocab_size, c.hidden)
        tokens = self.b.input("tokens", TensorType((B, T), i64))
        rope = None
        if c.family != "gpt2":
            rope = (self.param("rope_cos", c.max_seq_len, c.head_dim, buffer=True),
                    self.param("rope_sin", c.max_seq_len, c.head_dim, buffer=True))
        caches: list[tuple[Value, Value]] = []
        positions = self.op("arange", start=0, end=T, step=1, dtype=i64)
        if self.phase == "decode":
            pos = self.b.input("pos", TensorType((1,), i64))
            shape = TensorType((B, c.n_kv_heads, self.S, c.head_dim), f32)
            caches = [(self.b.input(f"k_cache_{i}", shape), self.b.input(f"v_cache_{i}", shape))
                      for i in range(n_layers)]
            positions = self.op("add", positions, pos)
        x = self.op("embedding", embed, tokens, loc="embed")
        if c.embed_scale != 1.0:
            x = self.op("mul", x, self.op("const", value=c.embed_scale, shape=(), dtype=f32))
        if c.family == "gpt2":
            pe = self.param("pos_embed.weight", c.max_seq_len, c.hidden)
            x = self.op("add", x, self.op("embedding", pe, positions, loc="pos_embed"))
        for i in range(n_layers):
            h = self.attention(self.norm(x, f"layers.{i}.attn_norm"), i, positions, rope,
                               caches[i] if caches else None)
            x = self.op("add", x, h, loc=f"layers.{i}")
            x = self.op("add", x, self.ffn(self.norm(x, f"layers.{i}.ffn_norm"), i),
                        loc=f"layers.{i}")
        head = embed if c.tie_embeddings else self.param("lm_head.weight", c.vocab_size, c.hidden)
        logits = self.op("linear", self.norm(x, "norm"), head, loc="lm_head")
        self.g.outputs = [logits]
        return self.g


def synth_graph(cfg: ModelConfig, phase: str, batch: int, tokens: int,
                cache_len: int | None = None, n_layers: int | None = None) -> Graph:
    """The IR the frontend would trace for `cfg` (float32, shape only).

    prefill: `tokens` prompt tokens; decode: one new token (tokens must be 1)
    with a KV cache of `cache_len` slots. n_layers: build only that many."""
    if phase == "decode" and tokens != 1:
        raise ValueError("decode graphs have one new token")
    S = cache_len if cache_len is not None else tokens
    return _Decoder(cfg, phase, batch, tokens, S).build(n_layers or cfg.n_layers)


def synth_workload(cfg: ModelConfig, phase: str, p: Precision, *, batch: int, tokens: int,
                   context: int, fuse: bool = True) -> Workload:
    """The workload of `cfg` from a synthesized model of 2 and of 3 layers:
    the difference is one middle layer, counted n_layers - 2 times more.

    Two depths rather than one layer times n: a pass may treat the first
    layer (integer lowering reads the embedding's i16 there, the residual's
    i32 after) or the last one differently, and the difference of 3 and 2
    layers is exactly a layer that is neither. A precision with a scheme runs
    the scheme's passes on each graph first, as `llmc compile --quant` does.

    prefill: `tokens` prompt tokens attending causally (context = tokens);
    decode: one token per sequence reading a KV cache of `context` slots."""
    def build(n_layers: int) -> Workload:
        graph = synth_graph(cfg, phase, batch, tokens, context, n_layers=n_layers)
        if p.scheme is not None:  # shape only: structure and bytes are exact
            from llmc.passes.quant import apply_scheme

            graph = apply_scheme(graph, p.scheme)
        return from_graph(graph, phase, p, batch=batch, tokens=tokens, context=context,
                          fuse=fuse)

    if cfg.n_layers <= 3:
        return build(cfg.n_layers)
    two, three = build(2), build(3)
    return _extrapolate(two, three, cfg.n_layers - 2)


def _extrapolate(two: Workload, three: Workload, extra: int) -> Workload:
    """`two` plus `extra` copies of what `three` has beyond it (one layer)."""
    def grow(a: float, b: float) -> float:
        return a + (b - a) * extra

    recs: dict[tuple, OpRecord] = {merge_key(r): r for r in two.records}
    counts = {k: r.count for k, r in recs.items()}
    for r in three.records:
        k = merge_key(r)
        recs.setdefault(k, r)
        counts[k] = counts.get(k, 0) + r.count * extra
    for r in two.records:
        counts[merge_key(r)] -= r.count * extra
    if any(c < 0 for c in counts.values()):
        raise AssertionError(f"{two.phase}: a layer of 3 is not a superset of 2 layers' ops")
    ops = Counter(two.op_counts)
    for op in set(two.op_counts) | set(three.op_counts):
        ops[op] = int(grow(two.op_counts.get(op, 0), three.op_counts.get(op, 0)))
    return replace(two, records=tuple(replace(recs[k], count=c) for k, c in counts.items() if c),
                   weight_bytes=grow(two.weight_bytes, three.weight_bytes),
                   weight_bytes_sharded=grow(two.weight_bytes_sharded,
                                             three.weight_bytes_sharded),
                   params_total=int(grow(two.params_total, three.params_total)),
                   params_active=int(grow(two.params_active, three.params_active)),
                   nodes=int(grow(two.nodes, three.nodes)),
                   op_counts=dict(sorted((k, v) for k, v in ops.items() if v)))
