"""An independent integer implementation of llmc's integer-only graphs.

Written from the op docs and docs/references.md (I-BERT), not from intops.py: every
integer is a Python int (numpy object arrays), so nothing can wrap; nibbles are
unpacked with % and //; square roots use math.isqrt; softmax, attention (with
its window), LayerNorm, GELU and routed experts are plain loops. `run(graph,
inputs)` walks the graph and checks after every node that each value fits its
IR dtype (an i32 must fit in 32 bits).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

A = 0.35815147
B = 0.96963238 / (2 * A)
C = 1 - A * B * B
SIGMOID_BITS = 15
SOFTMAX_K = 62


def _obj(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(object)


def rnd_shift(a: int, s: int) -> int:
    return (a + (1 << (s - 1))) >> s if s > 0 else a


def rnd_div(a: int, b: int) -> int:
    return (2 * a + b) // (2 * b)


def clamp(v: int, dtype_name: str) -> int:
    bits = int(dtype_name[1:])
    top = 2 ** (bits - 1) - 1
    return max(-top, min(top, v))


vshift = np.frompyfunc(rnd_shift, 2, 1)


def iexp(x: int, frac: int) -> int:
    x0 = math.floor(-math.log(2) * 2**frac)
    b = math.floor(B * 2**frac)
    c = math.floor(C / A * 2 ** (2 * frac))
    x = max(x, 30 * x0)
    q = x // x0
    r = x - q * x0
    return ((r + b) ** 2 + c) >> q


def nibbles(packed: np.ndarray) -> np.ndarray:
    """uint8 (N, K/2) in lanes of 16 bytes -> ints (N, K)."""
    signed = lambda v: v - 16 if v >= 8 else v  # noqa: E731
    n, half = packed.shape
    out = np.empty((n, 2 * half), object)
    for lane in range(half // 16):
        for i in range(16):
            byte = packed[:, lane * 16 + i].astype(int)
            out[:, lane * 32 + i] = [signed(int(b) % 16) for b in byte]
            out[:, lane * 32 + 16 + i] = [signed(int(b) // 16) for b in byte]
    return out


def int_linear(x: np.ndarray, w: np.ndarray, gs: np.ndarray | None, group: int) -> np.ndarray:
    wi = nibbles(w) if w.dtype == np.uint8 else _obj(w)
    k = x.shape[-1]
    wi = wi[:, :k]
    if gs is None:
        return np.dot(x, wi.T)
    out = 0
    for j in range(-(-k // group)):
        sl = slice(j * group, (j + 1) * group)
        out = out + np.dot(x[..., sl], wi[:, sl].T) * _obj(gs[:, j])
    return out


def rms_norm(x: np.ndarray, g: np.ndarray, a: dict) -> np.ndarray:
    out = np.empty(x.shape, object)
    flat, res = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])
    for i, row in enumerate(flat):
        ms = sum(v * v for v in row) // len(row) + a["eps"]
        r = max(math.isqrt(ms << (2 * a["rbits"])), 1)
        den = r << a["shift"]
        res[i] = [clamp(rnd_div((v * gg) << a["rbits"], den), a["dtype"].name)
                  for v, gg in zip(row, g, strict=True)]
    return out


def layer_norm(x: np.ndarray, g: np.ndarray, bias: np.ndarray | None, a: dict) -> np.ndarray:
    """I-BERT LayerNorm: the row's mean rounded half up, then rms_norm's steps on
    x - mean, plus the bias."""
    out = np.empty(x.shape, object)
    flat, res = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])
    for i, row in enumerate(flat):
        mean = rnd_div(sum(row), len(row))
        d = [v - mean for v in row]
        ms = sum(v * v for v in d) // len(d) + a["eps"]
        r = max(math.isqrt(ms << (2 * a["rbits"])), 1)
        den = r << a["shift"]
        res[i] = [clamp(rnd_div((v * int(gg)) << a["rbits"], den) +
                        (0 if bias is None else int(bias[j])), a["dtype"].name)
                  for j, (v, gg) in enumerate(zip(d, g, strict=True))]
    return out


def gelu(x: np.ndarray, a: dict) -> np.ndarray:
    """x * phi(x), phi = (1 + erf(x / sqrt 2)) / 2 with 15 fraction bits: I-BERT's
    i-erf sgn(t)[1 + a (min(|t|, -b) + b)^2] (a = -0.2888, b = -1.769), or for the
    tanh form sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) with |x| <= 8."""
    frac = a["frac"]
    one = 1 << (2 * frac)
    tanh = a.get("approximate", "none") == "tanh"

    def phi(xf: int) -> int:
        if tanh:
            c = max(-8 << frac, min(8 << frac, xf))
            cube = rnd_shift(rnd_shift(c * c, frac) * c, frac)
            k1 = round(2 * math.sqrt(2 / math.pi) * 65536)
            k3 = round(2 * math.sqrt(2 / math.pi) * 0.044715 * 65536)
            z = rnd_shift(c * k1 + cube * k3, 16)
            e = iexp(-abs(z), frac)
            e_one = round(one / A)
            return rnd_div((e_one if z >= 0 else e) << SIGMOID_BITS, e_one + e)
        t = rnd_shift(xf * round(65536 / math.sqrt(2)), 16)
        top = math.floor(1.769 * 2**frac)
        mag = one - rnd_shift((min(abs(t), top) - top) ** 2 * round(0.2888 * 65536), 16)
        erf = mag if t >= 0 else -mag
        return rnd_shift(one + erf, 2 * frac + 1 - SIGMOID_BITS)

    def f(v: int) -> int:
        xf = rnd_shift(v * a["in_mult"], a["in_shift"])
        return clamp(rnd_shift(v * phi(xf) * a["out_mult"], a["out_shift"]), a["dtype"].name)

    return np.frompyfunc(f, 1, 1)(x)


def silu(x: np.ndarray, a: dict) -> np.ndarray:
    frac = a["frac"]
    one = round(2 ** (2 * frac) / A)

    def f(v: int) -> int:
        xf = rnd_shift(v * a["in_mult"], a["in_shift"])
        e = iexp(-abs(xf), frac)
        sig = rnd_div((one if xf >= 0 else e) << SIGMOID_BITS, one + e)
        return clamp(rnd_shift(v * sig * a["out_mult"], a["out_shift"]), a["dtype"].name)

    return np.frompyfunc(f, 1, 1)(x)


def attention(q, k, v, mask, a: dict) -> np.ndarray:  # noqa: ANN001
    B, H, Tq, D = q.shape
    G, Tk = k.shape[1], k.shape[2]
    out = np.empty((B, H, Tq, v.shape[3]), object)
    pb = a["prob_bits"]
    for b in range(B):
        for h in range(H):
            g = h // (H // G)
            for i in range(Tq):
                vis = [(not a["causal"] or j <= i + Tk - Tq) and
                       (mask is None or bool(np.broadcast_to(mask, (B, H, Tq, Tk))[b, h, i, j]))
                       for j in range(Tk)]
                if "window" in a:       # keys within `window` of the last visible one
                    last = max(j for j in range(Tk) if vis[j])
                    vis = [vis[j] and (j > last - a["window"] or j < a.get("sinks", 0))
                           for j in range(Tk)]
                xs = {j: rnd_shift(sum(q[b, h, i, d] * k[b, g, j, d] for d in range(D)) *
                                   a["s_mult"], a["s_shift"]) for j in range(Tk) if vis[j]}
                top = max(xs.values())
                e = {j: iexp(x - top, a["frac"]) for j, x in xs.items()}
                factor = (1 << SOFTMAX_K) // max(sum(e.values()), 1)
                p = {j: min((ej * factor) >> (SOFTMAX_K - pb), 2**pb - 1) for j, ej in e.items()}
                for d in range(v.shape[3]):
                    o = sum(pj * v[b, g, j, d] for j, pj in p.items())
                    assert abs(o) < 2**31
                    out[b, h, i, d] = clamp(rnd_shift(o * a["o_mult"], a["o_shift"]),
                                            a["dtype"].name)
    return out


def isoftmax(xs: list[int], frac: int, pb: int) -> list[int]:
    """I-BERT softmax of fixed-point ints: max subtracted, i-exp, factor 2^62 // sum."""
    top = max(xs)
    e = [iexp(v - top, frac) for v in xs]
    factor = (1 << SOFTMAX_K) // max(sum(e), 1)
    return [min((v * factor) >> (SOFTMAX_K - pb), 2**pb - 1) for v in e]


def moe(xs: list[np.ndarray], a: dict) -> np.ndarray:
    """int_moe_ffn, token by token, from its doc (see llmc/ir/ops/intmoe.py's docstring)."""
    x, router, wg, wu, wd, rq_e, rq_g, rq_u, rq_d = xs[:9]
    gs = xs[9:] if len(xs) > 9 else [None] * 3
    group, frac, pb, k = a.get("group", 0), a["frac"], a["prob_bits"], a["top_k"]
    N, d = x.shape
    E = router.shape[0]

    def rq(v: int, m: int, shift: str, dtype: str) -> int:
        return clamp(rnd_shift(v * int(m), a[shift]), dtype)

    def matvec(row: list[int], w: np.ndarray, g: np.ndarray | None, e: int) -> list[int]:
        acc = int_linear(np.array([row], object), w[e], None if g is None else g[e], group)[0]
        assert all(abs(int(v)) < 2**31 for v in acc)
        return [int(v) for v in acc]

    out = np.zeros((N, d), object)
    for n in range(N):
        row = [int(v) for v in x[n]]
        acc = matvec(row, router[None], None, 0)
        logits = [rnd_shift(acc[e] * int(rq_e[e][0]), a["router_shift"]) for e in range(E)]
        chosen = sorted(range(E), key=lambda e: (-logits[e], e))[:k]
        if a["norm_topk"]:
            gates = isoftmax([logits[e] for e in chosen], frac, pb)
        else:
            probs = isoftmax(logits, frac, pb)
            gates = [probs[e] for e in chosen]
        for e, gate in zip(chosen, gates, strict=True):
            g = [rq(v, m, "gate_shift", "i16") for v, m in zip(matvec(row, wg, gs[0], e), rq_g[e],
                                                               strict=True)]
            u = [rq(v, m, "up_shift", "i16") for v, m in zip(matvec(row, wu, gs[1], e), rq_u[e],
                                                             strict=True)]
            silu_attrs = {"frac": frac, "in_mult": int(rq_e[e][1]), "in_shift": a["silu_in_shift"],
                          "out_mult": int(rq_e[e][2]), "out_shift": a["silu_out_shift"],
                          "dtype": SimpleNamespace(name="i16")}
            s = silu(np.array(g, object), silu_attrs)
            p = [rq(int(sv) * uv, rq_e[e][3], "prod_shift", "i8") for sv, uv in zip(s, u,
                                                                                  strict=True)]
            y = [rq(v, m, "down_shift", "i32") for v, m in zip(matvec(p, wd, gs[2], e), rq_d[e],
                                                               strict=True)]
            for j in range(d):
                out[n, j] += rnd_shift(y[j] * gate, pb)
    return np.frompyfunc(lambda v: clamp(v, "i32"), 1, 1)(out)


def _fits(x: np.ndarray, dtype_name: str, where: str) -> None:
    if dtype_name in ("i8", "i16", "i32", "i64", "u8"):
        bits = int(dtype_name[1:])
        lo, hi = (0, 2**bits - 1) if dtype_name == "u8" else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        vals = [int(v) for v in np.asarray(x).reshape(-1)]
        assert all(lo <= v <= hi for v in vals), f"{where}: value outside {dtype_name}"


def run(graph, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:  # noqa: ANN001
    env: dict = {}
    for n in graph.nodes:
        a = dict(n.attrs)
        xs = [env[(v.node.name, v.index)] for v in n.inputs]
        op = n.op
        if op == "input":
            y = _obj(inputs[n.name])
        elif op == "param":
            p = graph.params[a["name"]]
            y = p if p.dtype in (np.float32, np.uint8) else _obj(p)
        elif op == "embedding":
            y = xs[0][np.asarray(xs[1], np.int64)]
        elif op == "int_rms_norm":
            y = rms_norm(xs[0], xs[1], a)
        elif op == "int_linear":
            y = int_linear(xs[0], xs[1], xs[2] if len(xs) > 2 else None, a.get("group", 0))
            assert all(abs(int(v)) < 2**31 for v in np.asarray(y).reshape(-1))
        elif op == "requant":
            m = xs[1] if len(xs) > 1 else a["mult"]
            name = a["dtype"].name
            y = np.frompyfunc(lambda v, name=name: clamp(v, name), 1, 1)(
                vshift(xs[0] * m, a["shift"]))
        elif op == "int_silu":
            y = silu(xs[0], a)
        elif op == "int_gelu":
            y = gelu(xs[0], a)
        elif op == "int_layer_norm":
            y = layer_norm(xs[0], xs[1], xs[2] if len(xs) > 2 else None, a)
        elif op == "int_attention":
            y = attention(*xs[:3], xs[3] if len(xs) > 3 else None, a)
        elif op == "int_moe_ffn":
            y = moe(xs, a)
        elif op == "dequantize_int":
            y = np.asarray(xs[0], np.float64).astype(np.float32) * xs[1]
        elif op in ("mul", "add"):
            y = xs[0] * xs[1] if op == "mul" else xs[0] + xs[1]
        elif op == "neg":
            y = -xs[0]
        elif op == "cast":
            y = xs[0]
        elif op == "reshape":
            y = xs[0].reshape(a["shape"])
        elif op == "permute":
            y = np.transpose(xs[0], a["perm"])
        elif op == "expand":
            y = np.broadcast_to(xs[0], a["shape"])
        elif op == "slice":
            idx = [slice(None)] * xs[0].ndim
            idx[a["dim"]] = slice(a["start"], a["end"], a["step"])
            y = xs[0][tuple(idx)]
        elif op == "concat":
            y = np.concatenate(xs, axis=a["dim"])
        elif op == "arange":
            y = _obj(np.arange(a["start"], a["end"], a["step"]))
        elif op == "le":
            y = np.asarray(xs[0] <= xs[1], bool)
        elif op == "index_copy":
            y = xs[0].copy()
            np.moveaxis(y, a["dim"], 0)[np.asarray(xs[1], np.int64)] = np.moveaxis(xs[2], a["dim"], 0)
        else:
            raise NotImplementedError(op)
        _fits(y, n.type.dtype.name, f"%{n.name} = {op}")
        env[(n.name, 0)] = y
    return [np.asarray(env[(v.node.name, v.index)]) for v in graph.outputs]
