"""A whole decode step as data: the units of each transformer layer and the
integer glue between them, exactly as the w4a8 integer graph computes it.

One llama layer of the integer graph (llmc.passes.quant), for one token at
position `pos` (x: the layer's input residual, i16 for the embedding, i32
after a layer):

    a   = int_rms_norm(x)                                     : i8 [C]
    q8  = requant(int_linear(a, Wq), mq, sq)                  : i8 [H D]
    k8, v8 likewise (G D);  per head: rot(t) = concat(-t[D/2:], t[:D/2])
    qr  = requant(q8 * cos[pos] + rot(q8) * sin[pos], mq', sq') : i8   (RoPE)
    kr  likewise;  K[:, pos] = kr, V[:, pos] = v8            (the attention buffer)
    o   = int_attention(qr, K, V, j <= pos)                   : i8 [H D]
    r1  = requant(x, m1, s1) + requant(int_linear(o, Wo), mo, so)  : i32
    h   = SwiGLU(int_rms_norm(r1))  (llmc.rtl.hn_ffn)         : i8 [F]
    r2  = requant(r1, m2, s2) + requant(int_linear(h, Wd), md, sd) : i32

and after the last layer the final norm and the LM head (int_linear: the
logits before dequantization). `DecodeSpec.reference` computes it with the
op registry's numpy semantics; llmc.rtl.hn_ctrl turns it into one design
whose controller sequences the units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.errors import UsageError
from llmc.rtl.hn import HnLayer
from llmc.rtl.hn_attn import AttnSpec
from llmc.rtl.hn_ffn import FfnSpec, ffn_reference
from llmc.rtl.hn_norm import NormSpec

I32 = 2**31 - 1


@dataclass(frozen=True)
class Requant:
    """requant: saturate(rshift(x * mult, shift)) to +-(2^(bits-1) - 1); `mult`
    one value (scalar) or one per channel; shift 0 with mult 1 is the identity."""

    mult: tuple[int, ...]
    shift: int
    bits: int

    def __post_init__(self) -> None:
        if not self.mult or min(self.mult) < 0 or max(self.mult) > I32 or \
                not 0 <= self.shift <= 62 or self.bits not in (8, 16, 32):
            raise UsageError(f"unsupported requantization {self}")

    @property
    def top(self) -> int:
        return 2 ** (self.bits - 1) - 1

    def reference(self, x: np.ndarray) -> np.ndarray:
        from llmc.ir import dtypes as dt
        from llmc.ir.ops import get_op

        dtype = {8: dt.i8, 16: dt.i16, 32: dt.i32}[self.bits]
        y = get_op("requant").run([np.asarray(x, np.int64), np.asarray(self.mult, np.int64)],
                                  {"shift": self.shift, "dtype": dtype})
        return np.asarray(y, np.int64)


@dataclass(frozen=True, eq=False)
class Rope:
    """The integer RoPE of q and k: cos/sin tables (S, D) int16 (the rows the
    attention buffer's positions use), each side's requantization to i8."""

    cos: np.ndarray
    sin: np.ndarray
    q_rq: Requant
    k_rq: Requant

    @property
    def dim(self) -> int:
        return int(self.cos.shape[1])

    def rotate(self, x8: np.ndarray, pos: int, rq: Requant) -> np.ndarray:
        """requant(x * cos[pos] + rot(x) * sin[pos]) per head of x8 (heads, D)."""
        x = np.asarray(x8, np.int8).reshape(-1, self.dim)
        half = self.dim // 2
        rot = np.concatenate([-x[:, half:], x[:, :half]], axis=1)      # int8 negation
        t = x.astype(np.int32) * self.cos[pos].astype(np.int32) + \
            rot.astype(np.int32) * self.sin[pos].astype(np.int32)      # int32, as the graph
        return rq.reference(t).reshape(-1)


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """One transformer layer's units and glue (see the module docstring)."""

    name: str
    attn_norm: NormSpec
    q: HnLayer
    k: HnLayer
    v: HnLayer
    q_rq: Requant
    k_rq: Requant
    v_rq: Requant
    rope: Rope
    attn: AttnSpec
    o: HnLayer
    o_rq: Requant
    skip1: Requant
    ffn_norm: NormSpec
    ffn: FfnSpec
    down_rq: Requant
    skip2: Requant

    @property
    def width(self) -> int:
        return self.o.n

    @property
    def weights(self) -> int:
        s = self.ffn
        return sum(la.n * la.k for la in (self.q, self.k, self.v, self.o, s.gate, s.up, s.down))


@dataclass(frozen=True, eq=False)
class DecodeSpec:
    """A decode step: its layers, the input's width in bits (16: the embedding
    row; 32: a residual) and, for a whole model, the final norm and LM head."""

    name: str
    layers: tuple[LayerSpec, ...]
    in_bits: int
    head: tuple[NormSpec, HnLayer] | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise UsageError(f"{self.name}: a decode step needs at least one layer")
        for la in self.layers:
            a = la.attn
            if a.dim & (a.dim - 1) or la.rope.dim != a.dim or \
                    (la.q.n, la.k.n, la.v.n) != (a.heads * a.dim, a.kv_heads * a.dim,
                                                 a.kv_heads * a.dim):
                raise UsageError(f"{la.name}: q/k/v shapes do not match the attention "
                                 f"({a.heads} x {a.dim}, {a.kv_heads} KV heads; the head "
                                 f"size must be a power of two)")

    @property
    def top(self) -> str:
        return "decode_" + "".join(ch if ch.isalnum() else "_" for ch in self.name)

    @property
    def width(self) -> int:
        return self.layers[0].width

    @property
    def out_n(self) -> int:
        return self.head[1].n if self.head else self.width

    @property
    def weights(self) -> int:
        head = self.head[1].n * self.head[1].k if self.head else 0
        return sum(la.weights for la in self.layers) + head

    def reference(self, x: np.ndarray, kcs: list[np.ndarray], vcs: list[np.ndarray],
                  pos: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """(y, each layer's SwiGLU h) for the input row x (C,) and the KV caches
        (per layer, G x S x D) before this token, by the registry's semantics."""
        r = np.asarray(x, np.int64)
        hs = []
        for la, kc, vc in zip(self.layers, kcs, vcs, strict=True):
            a = la.attn_norm.reference(r[None])[0]
            q8 = la.q_rq.reference(la.q.reference(a))
            k8 = la.k_rq.reference(la.k.reference(a))
            v8 = la.v_rq.reference(la.v.reference(a))
            qr = la.rope.rotate(q8, pos, la.rope.q_rq)
            kr = la.rope.rotate(k8, pos, la.rope.k_rq)
            at = la.attn
            o = la.attn.reference(qr.reshape(at.heads, at.dim), kc, vc,
                                  kr.reshape(at.kv_heads, at.dim),
                                  v8.reshape(at.kv_heads, at.dim), pos).reshape(-1)
            r1 = _add32(la.skip1.reference(r), la.o_rq.reference(la.o.reference(o)))
            h, d = ffn_reference(la.ffn, la.ffn_norm.reference(r1[None])[0])
            r = _add32(la.skip2.reference(r1), la.down_rq.reference(d))
            hs.append(h)
        if self.head is None:
            return r, hs
        norm, lm = self.head
        return lm.reference(norm.reference(r[None])[0]), hs


def _add32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int32 addition (wrapping, as the graph's add of two i32 tensors)."""
    return (np.asarray(a, np.int64).astype(np.int32) + np.asarray(b, np.int64).astype(np.int32)
            ).astype(np.int64)
