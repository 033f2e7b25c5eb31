"""Event-based language models: EGRU (Subramoney et al., ICLR 2023) and a
spiking LIF LM in the spirit of SpikeGPT (binary spikes, recurrent state).

Both are byte-level (or word-level for the paper's `egru-lm`) recurrent LMs:
embedding -> recurrent event layers -> linear readout, one token a step.
The PyTorch modules here are what is trained (surrogate gradients through
the Heaviside step) and the dense reference the event simulator is checked
against; `to_graph` writes the same network as llmc IR with the
`egru_layer` / `lif_layer` ops (llmc/ir/ops/events.py, whose numpy is the
golden semantics; the modules follow it step for step).

    EVENT_CONFIGS          name -> EventConfig (egru-lm, egru-tiny, spikegpt-tiny)
    build_event_model(cfg) the torch module (random weights, seeded)
    load_event_model(name, weights)   shipped weights when present
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llmc.errors import ModelError, UsageError
from llmc.ir import Graph, dtypes
from llmc.ir.graph import Builder
from llmc.ir.types import TensorType

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class EventConfig:
    """An event-based LM's shape. kind: "egru" or "lif"; hidden: units per
    recurrent layer; threshold: the event threshold; beta: the LIF leak;
    density: kept fraction of the recurrent layers' weights (1.0: dense);
    readout_on_chip: whether a neuromorphic mapping places the readout
    (vocab x last hidden) on chip or leaves it to the host."""

    name: str
    kind: str
    vocab_size: int
    embed: int
    hidden: tuple[int, ...]
    threshold: float
    beta: float = 0.0
    density: float = 1.0
    readout_on_chip: bool = True
    max_seq_len: int = 1 << 16   # recurrent: no context limit but the state
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def n_layers(self) -> int:
        return len(self.hidden)

    def layer_inputs(self) -> list[int]:
        return [self.embed, *self.hidden[:-1]]


EVENT_CONFIGS: dict[str, EventConfig] = {c.name: c for c in [
    # Nazeer et al. 2024 (docs/references.md): 3 EGRU layers 1350/1350/750, embedding 750,
    # WikiText-2 (vocabulary 33,278), 95% of the weights pruned; the readout is left to the host.
    EventConfig("egru-lm", "egru", 33278, 750, (1350, 1350, 750), threshold=0.1, density=0.05,
                readout_on_chip=False,
                source="Nazeer et al. 2024 / Subramoney et al. 2023 (shapes; random weights)"),
    EventConfig("egru-tiny", "egru", 256, 64, (256, 256), threshold=0.1,
                source="trained by llmc on pydoc_data.topics (byte level), "
                       "llmc/frontend/zoo/train_event.py"),
    EventConfig("spikegpt-tiny", "lif", 256, 64, (384, 384), threshold=1.0, beta=0.9,
                source="trained by llmc on pydoc_data.topics (byte level), "
                       "llmc/frontend/zoo/train_event.py"),
]}


def get_event_config(name: str) -> EventConfig:
    try:
        return EVENT_CONFIGS[name]
    except KeyError:
        raise ModelError(f"unknown event model {name!r} (known: {', '.join(EVENT_CONFIGS)})") \
            from None


# ---- surrogate gradient ---------------------------------------------------------


class _Heaviside(torch.autograd.Function):
    """H(x) = x > 0 forward; a fast-sigmoid pseudo-derivative backward
    (Zenke & Ganguli 2018): dH/dx ~ 1 / (1 + 10 |x|)^2."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        (x,) = ctx.saved_tensors
        return grad / (1 + 10 * x.abs()) ** 2


heaviside = _Heaviside.apply


# ---- layers ------------------------------------------------------------------------


class EGRULayer(nn.Module):
    """One EGRU layer (the egru_layer op's equations, step by step)."""

    def __init__(self, n_in: int, h: int, threshold: float) -> None:
        super().__init__()
        self.h, self.threshold = h, threshold
        k = 1 / np.sqrt(h)
        self.w = nn.Parameter(torch.empty(3 * h, n_in).uniform_(-k, k))
        self.r = nn.Parameter(torch.empty(3 * h, h).uniform_(-k, k))
        self.b = nn.Parameter(torch.zeros(4 * h))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """x (B, T, I), (c, y) (B, H) -> (y (B, T, H), (c_T, y_T), events (B, T, H))."""
        h, th = self.h, self.threshold
        c, y = state
        gx = x @ self.w.T                                            # (B, T, 3H)
        ys, es = [], []
        for t in range(x.shape[1]):
            gr = y @ self.r.T
            u = torch.sigmoid(gx[:, t, :h] + gr[:, :h] + self.b[:h])
            rr = torch.sigmoid(gx[:, t, h:2 * h] + gr[:, h:2 * h] + self.b[h:2 * h])
            z = torch.tanh(gx[:, t, 2 * h:] + rr * (gr[:, 2 * h:] + self.b[3 * h:])
                           + self.b[2 * h:3 * h])
            c = u * c + (1 - u) * z
            e = heaviside(c - th)
            y = c * e
            c = c - th * e.detach()
            ys.append(y)
            es.append(e)
        return torch.stack(ys, 1), (c, y), torch.stack(es, 1)


class LIFLayer(nn.Module):
    """One LIF layer with recurrent synapses (the lif_layer op's equations)."""

    def __init__(self, n_in: int, h: int, threshold: float, beta: float) -> None:
        super().__init__()
        self.h, self.threshold, self.beta = h, threshold, beta
        k = 1 / np.sqrt(n_in)
        self.w = nn.Parameter(torch.empty(h, n_in).uniform_(-k, k) * 4)
        self.r = nn.Parameter(torch.empty(h, h).uniform_(-1, 1) / np.sqrt(h))
        self.b = nn.Parameter(torch.zeros(h))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        v, s = state
        gx = x @ self.w.T + self.b                                   # (B, T, H)
        ss = []
        for t in range(x.shape[1]):
            v = self.beta * v + gx[:, t] + s @ self.r.T
            s = heaviside(v - self.threshold)
            v = v * (1 - s.detach())
            ss.append(s)
        out = torch.stack(ss, 1)
        return out, (v, s), out


class EventLM(nn.Module):
    """embedding -> event layers -> readout. forward(tokens (B, T), states)
    -> (logits (B, T, V), states, events per layer)."""

    def __init__(self, cfg: EventConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        layers: list[nn.Module] = []
        for n_in, h in zip(cfg.layer_inputs(), cfg.hidden, strict=True):
            layers.append(EGRULayer(n_in, h, cfg.threshold) if cfg.kind == "egru"
                          else LIFLayer(n_in, h, cfg.threshold, cfg.beta))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(cfg.hidden[-1], cfg.vocab_size)

    def zero_state(self, batch: int, dtype: torch.dtype = torch.float32
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(batch, h, dtype=dtype), torch.zeros(batch, h, dtype=dtype))
                for h in self.cfg.hidden]

    def forward(self, tokens: torch.Tensor, states: list | None = None
                ) -> tuple[torch.Tensor, list, list[torch.Tensor]]:
        x = self.embed(tokens)
        states = states if states is not None else self.zero_state(tokens.shape[0], x.dtype)
        new, events = [], []
        for layer, st in zip(self.layers, states, strict=True):
            x, st, ev = layer(x, st)
            new.append(st)
            events.append(ev)
        return self.head(x), new, events

    # ---- llmc IR ----

    def to_graph(self, phase: str, batch: int, seq_len: int) -> Graph:
        """The network as llmc IR: inputs tokens (B, T) and each layer's
        state pair; outputs logits (B, T, V) then each layer's final state
        pair. A decode graph is the same at T = 1."""
        cfg = self.cfg
        t = seq_len if phase == "prefill" else 1
        meta = any(p.device.type == "meta" for p in self.parameters())
        g = Graph(f"{cfg.name}_{phase}")
        bld = Builder(g)
        f32 = dtypes.f32

        def param(name: str, p: torch.Tensor) -> object:
            value = None if meta else p.detach().float().numpy().copy()
            return bld.param(name, TensorType(tuple(p.shape), f32), value)

        tokens = bld.input("tokens", TensorType((batch, t), dtypes.i64))
        states = [(bld.input(f"state{i}_{a}", TensorType((batch, h), f32)),
                   bld.input(f"state{i}_{b}", TensorType((batch, h), f32)))
                  for i, h in enumerate(cfg.hidden)
                  for a, b in [("c", "y") if cfg.kind == "egru" else ("v", "s")]]
        x = bld.op("embedding", param("embed.weight", self.embed.weight), tokens, name="embed")
        finals = []
        for i, (layer, (s0, e0)) in enumerate(zip(self.layers, states, strict=True)):
            attrs: dict[str, object] = {"threshold": float(cfg.threshold)}
            if cfg.kind == "lif":
                attrs["beta"] = float(cfg.beta)
            if cfg.density < 1.0:
                attrs["density"] = float(cfg.density)
            node = bld.add(f"{cfg.kind}_layer",
                           [x, s0, e0, param(f"layers.{i}.w", layer.w),
                            param(f"layers.{i}.r", layer.r), param(f"layers.{i}.b", layer.b)],
                           attrs, name=f"layer{i}", loc=f"layers.{i}")
            x = node.out(0)
            finals += [node.out(1), node.out(2)]
        logits = bld.op("linear", x, param("head.weight", self.head.weight),
                        param("head.bias", self.head.bias), name="logits")
        g.outputs = [logits, *finals]
        return g

    def example_inputs(self, phase: str, batch: int, seq_len: int) -> tuple[np.ndarray, ...]:
        t = seq_len if phase == "prefill" else 1
        states = [s.numpy() for pair in self.zero_state(batch) for s in pair]
        return (np.zeros((batch, t), np.int64), *states)


def prune_(model: EventLM, density: float, seed: int = 0) -> None:
    """Keep `density` of each recurrent layer's w and r (largest magnitude;
    random weights' ties broken by a seeded jitter), zeroing the rest."""
    gen = np.random.default_rng(seed)
    with torch.no_grad():
        for layer in model.layers:
            for p in (layer.w, layer.r):
                a = p.detach().abs().numpy() + gen.random(p.shape) * 1e-12
                k = int(round(density * a.size))
                cut = np.partition(a.ravel(), a.size - k)[a.size - k] if k else np.inf
                p.mul_(torch.from_numpy((a >= cut).astype(np.float32)))


def build_event_model(cfg: EventConfig, device: str = "cpu", seed: int = 0) -> EventLM:
    """The model of `cfg` with seeded random weights (pruned to cfg.density),
    or on the meta device (shape only)."""
    if device == "meta":
        with torch.device("meta"):
            return EventLM(cfg).eval()
    torch.manual_seed(seed)
    model = EventLM(cfg).eval()
    if cfg.density < 1.0:
        prune_(model, cfg.density, seed)
    return model


def load_event_model(name: str, weights: str = "auto") -> tuple[EventLM, str]:
    """(module, source) of a zoo event model: shipped weights with "auto"
    when they exist, else meta (shape only) or seeded random ones."""
    cfg = get_event_config(name)
    shipped = WEIGHTS_DIR / f"{name}.safetensors"
    if weights == "auto" and shipped.exists():
        from safetensors.torch import load_file

        model = build_event_model(cfg, "cpu")
        model.load_state_dict({k: v.float() for k, v in load_file(str(shipped)).items()})
        return model.eval(), str(shipped)
    if weights not in ("auto", "meta", "random"):
        raise UsageError(f"weights must be auto, meta or random, got {weights!r}")
    device = "cpu" if weights == "random" else "meta"
    return build_event_model(cfg, device), f"zoo ({device} weights)"
