"""Recurrent state and events: the ops of event-based (spiking) language models.

Each op runs a whole layer over T time steps (one token a step) from an
initial state, and returns the layer's event outputs (B, T, H) and its final
state, so a prefill is the op at T = prompt length and a decode step the same
op at T = 1 fed the state the previous call returned.

`egru_layer` (EGRU, Subramoney et al., ICLR 2023; docs/references.md):

    u = sigmoid(W_u x + R_u y + b_u)
    r = sigmoid(W_r x + R_r y + b_r)
    z = tanh(W_z x + r * (R_z y + b_hz) + b_z)
    c = u * c + (1 - u) * z
    e = H(c - threshold)            the events of this step
    y = c * e                       the event output: only events are fed back
    c = c - threshold * e           reset by subtraction

  inputs x (B, T, I), c0 (B, H), y0 (B, H), w (3H, I) rows [u; r; z],
  r (3H, H) rows [u; r; z], b (4H,) = [b_u; b_r; b_z; b_hz];
  outputs y (B, T, H), c_T (B, H), y_T (B, H).

`lif_layer` (leaky integrate-and-fire with binary spikes and recurrent
synapses; the discrete LIF of snnTorch's RLeaky with reset to zero, which is
what a NIR LIF node imports as):

    v = beta * v + W x + b + R s      (s: the previous step's spikes)
    s = H(v - threshold)              strict: v > threshold
    v = v * (1 - s)                   reset to zero

  inputs x (B, T, I), v0 (B, H), s0 (B, H), w (H, I), r (H, H), b (H,);
  outputs s (B, T, H), v_T (B, H), s_T (B, H).

`delta_linear` (delta networks, Neil et al. 2017; "Training for temporal
sparsity in deep neural networks", Gao et al.): a linear layer whose input
channels send an event only when they changed by more than `threshold` since
the value they last sent; the output is W x_hat + b with x_hat the sent
values, so the product is updated by the events alone:

    d = x_t - x_hat;  m = |d| > threshold;  x_hat += d * m;  y_t = W x_hat + b

  inputs x (B, T, I), w (N, I)[, b (N,)]; output y (B, T, N); x_hat starts at 0.

Costs: the dense work times the op's `event_rate` attribute (the expected
fraction of inputs that are events, measured by the pass or the model that
set it; 1.0 when absent) and its `density` (the kept fraction of pruned
weights; 1.0 when absent). Matrix products (`gemms`): one (B, out, in)
product per step, as a dense array would run it.
"""

from __future__ import annotations

import numpy as np

from llmc.errors import IRError
from llmc.ir.ops.registry import Cost, Gemm, define, io_bytes


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _state_types(types, gates: int, name: str):  # noqa: ANN001, ANN202
    x, s0, e0, w, r, b = types
    h = s0.shape[-1]
    bias = (gates + 1) * h if gates == 3 else h
    if x.rank != 3 or w.shape != (gates * h, x.shape[-1]) or r.shape != (gates * h, h) \
            or b.shape != (bias,) or s0.shape != (x.shape[0], h) or e0.shape != s0.shape:
        raise IRError(f"{name}: x {x}, states {s0} {e0}, w {w}, r {r}, b {b} do not match "
                      f"(w ({gates}H, I), r ({gates}H, H), b ({bias},), states (B, H))")
    return (x.with_shape((x.shape[0], x.shape[1], h)), s0, s0)


def egru_step(x: np.ndarray, c: np.ndarray, y: np.ndarray, w: np.ndarray, r: np.ndarray,
              b: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One EGRU step: x (B, I), c and y (B, H) -> (y, c, events), see the module doc."""
    h = c.shape[-1]
    gx = x @ w.T                                                     # (B, 3H)
    gr = y @ r.T                                                     # (B, 3H)
    u = _sigmoid(gx[:, :h] + gr[:, :h] + b[:h])
    rr = _sigmoid(gx[:, h:2 * h] + gr[:, h:2 * h] + b[h:2 * h])
    z = np.tanh(gx[:, 2 * h:] + rr * (gr[:, 2 * h:] + b[3 * h:]) + b[2 * h:3 * h])
    c = u * c + (1 - u) * z
    e = (c > threshold).astype(c.dtype)
    y = c * e
    return y, c - threshold * e, e


def _egru(xs, attrs):  # noqa: ANN001, ANN202
    x, c, y, w, r, b = xs
    th = np.asarray(attrs["threshold"], x.dtype)
    out = np.empty(x.shape[:2] + c.shape[1:], x.dtype)
    for t in range(x.shape[1]):
        y, c, _ = egru_step(x[:, t], c, y, w, r, b, th)
        out[:, t] = y
    return out, c, y


def lif_step(x: np.ndarray, v: np.ndarray, s: np.ndarray, w: np.ndarray, r: np.ndarray,
             b: np.ndarray, beta: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One LIF step: x (B, I), v and s (B, H) -> (spikes, v), see the module doc."""
    v = beta * v + x @ w.T + b + s @ r.T
    s = (v > threshold).astype(v.dtype)
    return s, v * (1 - s)


def _lif(xs, attrs):  # noqa: ANN001, ANN202
    x, v, s, w, r, b = xs
    beta, th = np.asarray(attrs["beta"], x.dtype), np.asarray(attrs["threshold"], x.dtype)
    out = np.empty(x.shape[:2] + v.shape[1:], x.dtype)
    for t in range(x.shape[1]):
        s, v = lif_step(x[:, t], v, s, w, r, b, beta, th)
        out[:, t] = s
    return out, v, s


def _scaled(node) -> tuple[float, float]:  # noqa: ANN001
    return node.attrs.get("event_rate", 1.0), node.attrs.get("density", 1.0)


def _recurrent_cost(gates: int, per_unit: float):  # noqa: ANN202
    """Cost of a recurrent layer: the synaptic multiply-adds of the events
    (input and fed-back), scaled by event rate and weight density, plus
    `per_unit` operations per unit and step (gates, state update, compare)."""

    def cost(node) -> Cost:  # noqa: ANN001
        b, t, i = node.inputs[0].type.shape
        h = node.inputs[1].type.shape[-1]
        rate, density = _scaled(node)
        macs = b * t * gates * h * (i + h) * rate * density
        r, w = io_bytes(node)
        weights = node.inputs[3].type.nbytes + node.inputs[4].type.nbytes
        return Cost(2 * macs + per_unit * b * t * h, int(r - weights * (1 - density)), w)

    return cost


def _recurrent_gemms(gates: int):  # noqa: ANN202
    def gemms(node) -> tuple[Gemm, ...]:  # noqa: ANN001
        b, t, i = node.inputs[0].type.shape
        h = node.inputs[1].type.shape[-1]
        return (Gemm(b, gates * h, i, t, ".in"), Gemm(b, gates * h, h, t, ".rec"))

    return gemms


define("egru_layer", infer=lambda t, a: _state_types(t, 3, "egru_layer"), run=_egru,
       cost=_recurrent_cost(3, 20), arity=(6, 6), kind="linalg",
       gemms=_recurrent_gemms(3), attrs=("threshold",),
       optional_attrs=("event_rate", "density"),
       doc="EGRU layer over T steps: (x (B,T,I), c0, y0 (B,H), w (3H,I), r (3H,H), b (4H,)) "
           "-> (y events (B,T,H), c_T, y_T); event y = c * H(c - threshold), reset by "
           "subtraction; event_rate / density scale the cost")

define("lif_layer", infer=lambda t, a: _state_types(t, 1, "lif_layer"), run=_lif,
       cost=_recurrent_cost(1, 4), arity=(6, 6), kind="linalg",
       gemms=_recurrent_gemms(1), attrs=("beta", "threshold"),
       optional_attrs=("event_rate", "density"),
       doc="LIF layer with recurrent synapses over T steps: (x (B,T,I), v0, s0 (B,H), "
           "w (H,I), r (H,H), b (H,)) -> (spikes (B,T,H), v_T, s_T); v = beta v + Wx + b + "
           "Rs, spike v > threshold, reset to zero")


def _delta_type(types, attrs):  # noqa: ANN001, ANN202
    x, w = types[0], types[1]
    if x.rank != 3 or w.rank != 2 or x.shape[-1] != w.shape[1]:
        raise IRError(f"delta_linear: x {x} (B, T, I) and weight {w} (out, in) do not match")
    if len(types) > 2 and types[2].shape != (w.shape[0],):
        raise IRError(f"delta_linear: bias {types[2]} must have shape [{w.shape[0]}]")
    if attrs["threshold"] < 0:
        raise IRError(f"delta_linear: threshold {attrs['threshold']} is negative")
    return (x.with_shape(x.shape[:-1] + (w.shape[0],)),)


def delta_events(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(x_hat (B, T, I): the values the inputs last sent, events (B, T, I) bool)."""
    sent = np.zeros_like(x[:, 0])
    hat = np.empty_like(x)
    ev = np.empty(x.shape, bool)
    for t in range(x.shape[1]):
        d = x[:, t] - sent
        m = np.abs(d) > threshold
        sent = np.where(m, x[:, t], sent)
        hat[:, t], ev[:, t] = sent, m
    return hat, ev


def _delta_linear(xs, attrs):  # noqa: ANN001, ANN202
    hat, _ = delta_events(xs[0], attrs["threshold"])
    y = hat @ xs[1].T
    return y + xs[2] if len(xs) > 2 else y


def _delta_cost(node) -> Cost:  # noqa: ANN001
    b, t, i = node.inputs[0].type.shape
    n = node.type.shape[-1]
    rate = node.attrs.get("event_rate", 1.0)
    return Cost(2 * b * t * i * n * rate + b * t * i * 2, *io_bytes(node))


define("delta_linear", infer=_delta_type, run=_delta_linear, cost=_delta_cost, arity=(2, 3),
       kind="linalg", attrs=("threshold",), optional_attrs=("event_rate",),
       gemms=lambda n: (Gemm(n.inputs[0].type.shape[0], n.type.shape[-1],
                             n.inputs[0].type.shape[-1], n.inputs[0].type.shape[1]),),
       doc="linear over time with delta events: inputs that changed by more than threshold "
           "since they last sent update x_hat; y_t = x_hat_t @ w.T + b; event_rate (the "
           "measured fraction of inputs sending) scales the cost")
