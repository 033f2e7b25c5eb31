"""Train the small event-based LMs that ship with llmc: egru-tiny and spikegpt-tiny.

    python -m llmc.frontend.zoo.train_event --model egru-tiny
    python -m llmc.frontend.zoo.train_event --model spikegpt-tiny

Same corpus, tokenizer and split as llmc-tiny (llmc.frontend.zoo.data:
byte-level pydoc_data.topics). The exact command behind each shipped model
is its card's recipe.reproduce (egru-tiny: --steps 800 --lr 0.004, about an
hour on a contended 2-core machine; spikegpt-tiny: --steps 800, six minutes;
the default 300 steps take a few minutes). Recipe (every field a flag):
  * random windows of seq_len + 1 bytes, each run from the zero state
    (the recurrent state is not carried between windows);
  * AdamW (betas 0.9/0.95), weight decay on 2-D weights, linear warmup then
    a cosine decay to min_lr_frac of the peak over all steps;
  * gradients through the Heaviside event/spike function by its surrogate
    (event_lm.heaviside: fast-sigmoid pseudo-derivative); grad-norm clip 1.0;
  * fp32, torch.set_num_threads(threads); deterministic given --seed.
The shipped weights are fp16; the model card (<model>.json beside them)
holds the held-out perplexity and event rates measured on them reloaded to
fp32, over all non-overlapping held-out windows of EVAL_SEQ_LEN bytes, each
from the zero state.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from llmc.frontend.zoo import data
from llmc.frontend.zoo.event_lm import EventLM, build_event_model, get_event_config

EVAL_SEQ_LEN = 256


@dataclass(frozen=True)
class Recipe:
    model: str = "egru-tiny"
    seed: int = 0
    threads: int = 1
    steps: int = 300
    batch: int = 32
    seq_len: int = 64
    lr: float = 3e-3
    min_lr_frac: float = 0.1
    warmup: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0


def lr_at(step: int, r: Recipe) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    t = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * (r.min_lr_frac + (1 - r.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def loss_on(model: EventLM, rows: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    logits, _, events = model(rows[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten()), events


@torch.no_grad()
def evaluate(model: EventLM, windows: np.ndarray, batch: int = 64) -> dict[str, object]:
    """Mean loss (nats/byte), perplexity per byte and each layer's event rate
    (fraction of unit-steps that emitted an event) over `windows` (n, T + 1)."""
    total, count = 0.0, 0
    ev_sum = np.zeros(len(model.layers))
    for i in range(0, len(windows), batch):
        rows = torch.from_numpy(windows[i:i + batch])
        loss, events = loss_on(model, rows)
        total += loss.item() * rows[:, 1:].numel()
        count += rows[:, 1:].numel()
        ev_sum += [float((e != 0).float().mean()) * rows[:, 1:].numel() for e in events]
    loss = total / count
    return {"loss_nats_per_byte": round(loss, 6), "ppl_per_byte": round(math.exp(loss), 6),
            "bits_per_byte": round(loss / math.log(2), 6),
            "event_rate_per_layer": [round(x / count, 6) for x in ev_sum]}


def train(r: Recipe) -> tuple[EventLM, dict[str, object]]:
    torch.manual_seed(r.seed)
    torch.set_num_threads(r.threads)
    train_bytes, heldout_bytes = data.corpus_splits()
    model = build_event_model(get_event_config(r.model), seed=r.seed).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": r.weight_decay},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=r.lr, betas=(0.9, 0.95))
    t0 = time.time()
    for step in range(r.steps):
        rows = torch.from_numpy(data.batches(train_bytes, r.seq_len, r.batch,
                                             seed=r.seed * 1_000_003 + step))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, r)
        loss, _ = loss_on(model, rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        opt.step()
        if step % 25 == 0 or step == r.steps - 1:
            print(f"step {step:4d}  train {loss.item():.4f}  {time.time() - t0:6.1f}s",
                  flush=True)
    return model.eval(), {"wall_time_s": round(time.time() - t0, 1)}


def save_weights(model: EventLM, path: Path) -> None:
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"model": model.cfg.name, "dtype": "float16"})


def model_card(model_name: str, weights: Path, r: Recipe, log: dict[str, object]
               ) -> dict[str, object]:
    from safetensors.torch import load_file

    model = build_event_model(get_event_config(model_name))
    model.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    model.eval()
    _, heldout = data.corpus_splits()
    windows = data.eval_windows(heldout, EVAL_SEQ_LEN)
    return {
        "config": model_name, "config_fields": model.cfg.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights": {"file": weights.name, "dtype": "float16", "bytes": weights.stat().st_size},
        "corpus": {"source": "pydoc_data.topics (CPython documentation), as llmc-tiny",
                   "python": platform.python_version(), "sha256": data.corpus_sha256()},
        "recipe": {**asdict(r), "reproduce": "python -m llmc.frontend.zoo.train_event "
                   + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in asdict(r).items()),
                   **log, "machine": "2-core CPU", "torch": torch.__version__},
        "heldout_eval": {"seq_len": EVAL_SEQ_LEN, "windows": len(windows),
                         "weights": "fp16 as shipped, reloaded to fp32, fp32 math, "
                                    "each window from the zero state",
                         **evaluate(model, windows)},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "weights")
    for name, default in asdict(Recipe()).items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = p.parse_args(argv)
    r = replace(Recipe(), **{k: getattr(args, k) for k in asdict(Recipe())})
    model, log = train(r)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{r.model}.safetensors"
    save_weights(model, path)
    card = model_card(r.model, path, r, log)
    (args.out / f"{r.model}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card["heldout_eval"]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
