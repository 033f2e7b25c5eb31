"""Model configurations: the published shapes of the decoders llmc knows.

A `ModelConfig` is all the frontend needs to build a model; the shapes below
are those of each model's released `config.json` (sources cited per entry).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from llmc.errors import ModelError

FAMILIES = ("gpt2", "llama", "moe")
ACTIVATIONS = ("silu", "gelu_tanh", "gelu")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only transformer.

    family: "gpt2" (learned positions, LayerNorm, GELU MLP, biases),
    "llama" (RoPE, RMSNorm, gated MLP, grouped-query attention) or
    "moe" (llama attention, top-k routed SwiGLU experts).

    Variants within a family (the defaults are Llama's / GPT-2's):
    act: the MLP's activation, "silu" (SwiGLU), "gelu_tanh" (GeGLU in a gated
    MLP, Gemma; GPT-2's MLP) or "gelu" (erf GELU); "" picks the family's.
    o_bias: a bias on the attention's output projection; None: attn_bias or
    mlp_bias (Llama's attention_bias, GPT-2); Qwen2 has q/k/v bias only.
    qk_norm: RMSNorm over each head of q and k before RoPE (Qwen3).
    embed_scale: the embeddings are multiplied by it (Gemma: sqrt(hidden)).
    layer_windows: per layer, a sliding attention window of that many keys
    (each query sees itself and the window - 1 keys before it), 0 for full
    causal attention; () for all full (Mistral: the same window everywhere).
    rope_scaling: (("rope_type", t), (param, value), ...) for t "linear" or
    "llama3" (frequency rescaling, see layers.rope_tables); () for none.
    moe_norm_topk: routed gates are the softmax over the top-k logits
    (Mixtral; Qwen3-MoE norm_topk_prob=True); False: the softmax over all
    experts' logits, taken at the top k (Qwen3-MoE's default).
    """

    name: str
    family: str
    vocab_size: int
    hidden: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_hidden: int  # per expert for "moe"
    max_seq_len: int
    head_dim: int = 0  # 0: hidden // n_heads
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_embeddings: bool = False
    attn_bias: bool = False
    mlp_bias: bool = False
    n_experts: int = 0
    top_k: int = 0
    act: str = ""
    o_bias: bool | None = None
    qk_norm: bool = False
    embed_scale: float = 1.0
    layer_windows: tuple[int, ...] = ()
    rope_scaling: tuple[tuple[str, object], ...] = ()
    moe_norm_topk: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ModelError(f"config {self.name!r}: unknown family {self.family!r}; "
                             f"expected one of {', '.join(FAMILIES)}")
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden // max(self.n_heads, 1))
        if not self.act:
            object.__setattr__(self, "act", "gelu_tanh" if self.family == "gpt2" else "silu")
        if self.o_bias is None:
            object.__setattr__(self, "o_bias", self.attn_bias or self.mlp_bias)
        object.__setattr__(self, "layer_windows", tuple(self.layer_windows))
        object.__setattr__(self, "rope_scaling", tuple(tuple(p) for p in self.rope_scaling))
        self._check_variants()
        for field in ("vocab_size", "hidden", "n_layers", "n_heads", "n_kv_heads",
                      "ffn_hidden", "max_seq_len", "head_dim"):
            if getattr(self, field) <= 0:
                raise ModelError(f"config {self.name!r}: {field} must be positive, "
                                 f"got {getattr(self, field)}")
        if self.n_heads % self.n_kv_heads:
            raise ModelError(f"config {self.name!r}: n_heads={self.n_heads} is not a "
                             f"multiple of n_kv_heads={self.n_kv_heads}")
        if self.family == "moe" and not (0 < self.top_k <= self.n_experts):
            raise ModelError(f"config {self.name!r}: MoE needs 0 < top_k <= n_experts, "
                             f"got top_k={self.top_k}, n_experts={self.n_experts}")

    def _check_variants(self) -> None:
        if self.act not in ACTIVATIONS or (self.family == "moe" and self.act != "silu"):
            raise ModelError(f"config {self.name!r}: act {self.act!r} is not one of "
                             f"{', '.join(ACTIVATIONS)} (MoE experts: silu)")
        if self.layer_windows and (len(self.layer_windows) != self.n_layers
                                   or min(self.layer_windows) < 0):
            raise ModelError(f"config {self.name!r}: layer_windows needs {self.n_layers} "
                             f"non-negative windows, got {self.layer_windows}")
        if self.family == "gpt2" and (self.qk_norm or any(self.layer_windows)):
            raise ModelError(f"config {self.name!r}: qk_norm and windows need a RoPE family")

    def window(self, layer: int) -> int:
        """The attention window of `layer` in keys; 0: full causal attention."""
        return self.layer_windows[layer] if self.layer_windows else 0

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    def replace(self, **changes: object) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _llama(name: str, source: str, **kw: object) -> ModelConfig:
    return ModelConfig(name=name, family="llama", source=source, **kw)  # type: ignore[arg-type]


def _gpt2(name: str, hidden: int, n_layers: int, n_heads: int) -> ModelConfig:
    return ModelConfig(name=name, family="gpt2", vocab_size=50257, hidden=hidden,
                       n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                       ffn_hidden=4 * hidden, max_seq_len=1024, tie_embeddings=True,
                       attn_bias=True, mlp_bias=True,
                       source="Radford et al. 2019; openai-community config.json")


CONFIGS: dict[str, ModelConfig] = {c.name: c for c in [
    _gpt2("gpt2", 768, 12, 12),
    _gpt2("gpt2-medium", 1024, 24, 16),
    _gpt2("gpt2-large", 1280, 36, 20),
    _gpt2("gpt2-xl", 1600, 48, 25),
    _llama("tinyllama-1.1b", "TinyLlama-1.1B config.json", vocab_size=32000, hidden=2048,
           n_layers=22, n_heads=32, n_kv_heads=4, ffn_hidden=5632, max_seq_len=2048),
    _llama("llama-2-7b", "Touvron et al. 2023, Llama-2-7b config.json", vocab_size=32000,
           hidden=4096, n_layers=32, n_heads=32, n_kv_heads=32, ffn_hidden=11008,
           max_seq_len=4096),
    _llama("llama-2-13b", "Touvron et al. 2023, Llama-2-13b config.json", vocab_size=32000,
           hidden=5120, n_layers=40, n_heads=40, n_kv_heads=40, ffn_hidden=13824,
           max_seq_len=4096),
    _llama("llama-3-8b", "Meta-Llama-3-8B config.json", vocab_size=128256, hidden=4096,
           n_layers=32, n_heads=32, n_kv_heads=8, ffn_hidden=14336, max_seq_len=8192,
           rope_theta=500000.0),
    _llama("mistral-7b", "Mistral-7B-v0.1 config.json (sliding window not modelled)",
           vocab_size=32000, hidden=4096, n_layers=32, n_heads=32, n_kv_heads=8,
           ffn_hidden=14336, max_seq_len=32768),
    _llama("qwen2-7b", "Qwen2-7B config.json", vocab_size=152064, hidden=3584, n_layers=28,
           n_heads=28, n_kv_heads=4, ffn_hidden=18944, max_seq_len=32768, norm_eps=1e-6,
           rope_theta=1e6, attn_bias=True),
    _llama("yi-34b", "Yi-34B config.json; Fu 2024 (arXiv 2405.08944) running example",
           vocab_size=64000, hidden=7168, n_layers=60, n_heads=56, n_kv_heads=8,
           ffn_hidden=20480, max_seq_len=4096, rope_theta=5e6),
    ModelConfig(name="mixtral-8x7b", family="moe", vocab_size=32000, hidden=4096,
                n_layers=32, n_heads=32, n_kv_heads=8, ffn_hidden=14336,
                max_seq_len=32768, rope_theta=1e6, n_experts=8, top_k=2,
                source="Mixtral-8x7B-v0.1 config.json"),
    ModelConfig(name="gpt-oss-120b", family="moe", vocab_size=201088, hidden=2880,
                n_layers=36, n_heads=64, n_kv_heads=8, head_dim=64, ffn_hidden=2880,
                max_seq_len=131072, rope_theta=150000.0, attn_bias=True, n_experts=128,
                top_k=4,
                source="gpt-oss-120b config.json (OpenAI 2025); attention sinks, "
                       "alternating sliding windows and clamped SwiGLU not modelled"),
    # Small configs for tests and examples (random weights).
    ModelConfig(name="gpt2-tiny", family="gpt2", vocab_size=128, hidden=64, n_layers=2,
                n_heads=4, n_kv_heads=4, ffn_hidden=256, max_seq_len=64,
                tie_embeddings=True, attn_bias=True, mlp_bias=True, source="test config"),
    _llama("llama-tiny", "test config (GQA 4:2)", vocab_size=128, hidden=64, n_layers=2,
           n_heads=4, n_kv_heads=2, ffn_hidden=160, max_seq_len=64),
    ModelConfig(name="moe-tiny", family="moe", vocab_size=128, hidden=64, n_layers=2,
                n_heads=4, n_kv_heads=2, ffn_hidden=96, max_seq_len=64, n_experts=4,
                top_k=2, source="test config"),
    # The model llmc trains and ships (see llmc/frontend/zoo/train_tiny.py).
    _llama("llmc-tiny", "trained by llmc on pydoc_data.topics (byte level)", vocab_size=256,
           hidden=256, n_layers=6, n_heads=8, n_kv_heads=2, ffn_hidden=576,
           max_seq_len=512),
]}


def get_config(name: str) -> ModelConfig:
    """Look a config up by name; unknown names suggest the closest ones."""
    try:
        return CONFIGS[name]
    except KeyError:
        close = difflib.get_close_matches(name, CONFIGS, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}{hint} (`llmc models` lists them)") from None
