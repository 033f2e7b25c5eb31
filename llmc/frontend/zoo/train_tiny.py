"""Train llmc-tiny, the small real model that ships with llmc.

    python -m llmc.frontend.zoo.train_tiny --out llmc/frontend/zoo/weights

The shipped weights came from `--minutes 30`, which on a contended 2-core
CPU chose 666 steps (533 stable + 133 cooldown, 2.7 M tokens, 6.3 epochs);
those are now the defaults, so the command above repeats that run.

Recipe (the defaults below; every choice is a flag):
  * data: byte-level `pydoc_data.topics` (see `llmc.frontend.zoo.data`), random
    windows of seq_len 256 + 1, batch 16 (4,096 target tokens a step);
  * model: `get_config("llmc-tiny")` built by `build_model(seed=0)`, no dropout;
  * AdamW (betas 0.9/0.95, eps 1e-8), weight decay on 2-D weights only
    (embeddings and linears; RMSNorm gains are not decayed);
  * LR: linear warmup, constant peak, then a cosine cooldown to `min_lr_frac`
    of the peak over the last `decay_steps` steps (warmup-stable-decay, as in
    Hu et al. 2024, MiniCPM, and Hägele et al. 2024, arXiv 2405.18392). The
    stable phase does not depend on the total step count, which is what lets
    `--minutes` pick the step count at run time without changing the run:
    with a wall-clock budget the cooldown starts after (1 - decay_frac) of
    the budget and lasts decay_frac of the steps; the card records the
    resulting `steps` / `decay_steps`, and rerunning with those two flags
    (and --minutes 0) repeats the run exactly;
  * grad-norm clip 1.0; forward/backward under CPU bf16 autocast with fp32
    master weights and fp32 loss (about 2x faster than fp32 on AVX512-BF16);
  * held-out loss on all non-overlapping seq_len windows every `eval_every`
    steps; the checkpoint with the best held-out loss is the one written.

The shipped weights are fp16; the model card's numbers are measured on them,
reloaded into fp32, with fp32 math (`evaluate(..., autocast=False)`).
Deterministic given --seed and --threads (torch.manual_seed,
torch.set_num_threads; batches come from numpy seeded per step).
"""

from __future__ import annotations

import argparse
import copy
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
from safetensors.torch import load_file, save_file

from llmc.frontend.zoo import data
from llmc.frontend.zoo.config import get_config
from llmc.frontend.zoo.decoder import Decoder, build_model

MODEL = "llmc-tiny"
WEIGHTS = "llmc-tiny.safetensors"
CARD = "llmc-tiny.json"
EVAL_SEQ_LEN = 256  # the model card's perplexity is measured at this length
FIRST_N = 16        # the test re-measures perplexity on the first 16 held-out windows


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    threads: int = 2
    steps: int = 666           # what `--minutes 30` chose for the shipped weights
    decay_steps: int = 133
    minutes: float = 0.0       # > 0: wall-clock budget that picks steps/decay_steps
    decay_frac: float = 0.2    # budget mode: the cooldown's share of all steps
    batch: int = 16
    seq_len: int = 256
    lr: float = 2e-3
    min_lr_frac: float = 0.05
    warmup: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    bf16: bool = True


def lr_at(step: int, r: Recipe) -> float:
    """Linear warmup over r.warmup steps, constant r.lr, then over the last
    r.decay_steps steps a cosine from r.lr down to r.lr * r.min_lr_frac."""
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    t = (step - (r.steps - r.decay_steps)) / max(1, r.decay_steps)
    if t <= 0:
        return r.lr
    return r.lr * (r.min_lr_frac + (1 - r.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def start_cooldown(step: int, r: Recipe) -> Recipe:
    """Budget mode: end the stable phase at `step`; the cooldown is decay_frac of all steps."""
    decay = max(1, round(step * r.decay_frac / (1 - r.decay_frac)))
    return replace(r, steps=step + decay, decay_steps=decay, minutes=0.0)


def make_optimizer(model: Decoder, r: Recipe) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": r.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=r.lr, betas=(r.beta1, r.beta2), eps=1e-8)


def loss_on(model: Decoder, rows: torch.Tensor) -> torch.Tensor:
    """Mean next-byte cross-entropy (nats) of rows (B, T+1): inputs row[:-1], targets row[1:]."""
    logits = model(rows[:, :-1])[0]                                   # (B, T, 256)
    return F.cross_entropy(logits.float().flatten(0, 1), rows[:, 1:].flatten())


@torch.no_grad()
def evaluate(model: Decoder, windows: np.ndarray, batch: int = 16,
             autocast: bool = False) -> float:
    """Mean loss in nats per byte over all targets of `windows` (n, T+1)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        rows = torch.from_numpy(windows[i:i + batch])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            total += loss_on(model, rows).item() * rows[:, 1:].numel()
        count += rows[:, 1:].numel()
    model.train(was_training)
    return total / count


def metrics(loss: float) -> dict[str, float]:
    """Loss (nats/byte) -> perplexity per byte and bits per byte."""
    return {"loss_nats_per_byte": loss, "ppl_per_byte": math.exp(loss),
            "bits_per_byte": loss / math.log(2)}


@torch.no_grad()
def generate(model: Decoder, prompt: str, n_bytes: int) -> str:
    """Greedy continuation (recomputes the whole prefix each byte; fine at this size)."""
    model.eval()
    ids = torch.from_numpy(data.encode(prompt))[None]                 # (1, T)
    for _ in range(n_bytes):
        ctx = ids[:, -model.cfg.max_seq_len:]
        nxt = model(ctx)[0][:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    return data.decode(ids[0].numpy())


def save_weights(model: Decoder, path: Path) -> None:
    """fp16 safetensors with the Decoder's state_dict names (rope buffers are not persistent)."""
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"model": MODEL, "dtype": "float16"})


def load_tiny(path: Path | str) -> Decoder:
    """The shipped fp16 weights, loaded strictly into an fp32 Decoder."""
    model = build_model(get_config(MODEL))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def train(r: Recipe) -> tuple[Decoder, Recipe, dict[str, object]]:
    """Run the recipe; returns the best-held-out model (fp32), the recipe as run
    (budget mode fills in steps/decay_steps) and a training log."""
    torch.manual_seed(r.seed)
    torch.set_num_threads(r.threads)
    train_bytes, heldout_bytes = data.corpus_splits()
    heldout = data.eval_windows(heldout_bytes, r.seq_len)
    model = build_model(get_config(MODEL), seed=r.seed).train()
    opt = make_optimizer(model, r)
    budget_s = r.minutes * 60
    if budget_s:  # stable phase until the cooldown is started by the clock
        r = replace(r, steps=10**9, decay_steps=0)
    best = {"loss": float("inf"), "step": -1, "state": None}
    history: list[dict[str, float]] = []
    t0 = time.time()
    step = 0
    while True:
        if budget_s and r.minutes and time.time() - t0 >= budget_s * (1 - r.decay_frac):
            r = start_cooldown(step, r)
            print(f"step {step:5d}  cooldown starts: {r.decay_steps} steps of {r.steps}",
                  flush=True)
        if step % r.eval_every == 0 or step == r.steps:
            ho = evaluate(model, heldout, autocast=r.bf16)
            history.append({"step": step, "heldout_loss": round(ho, 5)})
            if ho < best["loss"]:
                best = {"loss": ho, "step": step, "state": copy.deepcopy(model.state_dict())}
            print(f"step {step:5d}  heldout {ho:.4f} nats/byte ({ho / math.log(2):.3f} bpb)"
                  f"  best {best['loss']:.4f}@{best['step']}  {time.time() - t0:7.1f}s",
                  flush=True)
        if step == r.steps:
            break
        rows = torch.from_numpy(data.batches(train_bytes, r.seq_len, r.batch,
                                             seed=r.seed * 1_000_003 + step))  # (B, T+1)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, r)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=r.bf16):
            loss = loss_on(model, rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        opt.step()
        if step % 20 == 0:
            print(f"step {step:5d}  train {loss.item():.4f}  lr {lr_at(step, r):.2e}"
                  f"  gnorm {gnorm:.2f}  {time.time() - t0:7.1f}s", flush=True)
        step += 1
    model.load_state_dict(best["state"])
    log = {"wall_time_s": round(time.time() - t0, 1), "best_step": best["step"],
           "best_heldout_loss_bf16": round(best["loss"], 5), "history": history}
    return model.eval(), r, log


def reproduce_command(r: Recipe) -> str:
    """The command that repeats run `r`: steps, seed and threads always, other fields if changed."""
    default = Recipe()
    flags = [(k, v) for k, v in asdict(r).items()
             if k in ("steps", "decay_steps", "seed", "threads") or v != getattr(default, k)]
    return "python -m llmc.frontend.zoo.train_tiny " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in flags)


def model_card(weights: Path, r: Recipe, log: dict[str, object],
               budget_minutes: float = 0.0) -> dict[str, object]:
    """Measure the shipped fp16 weights (reloaded to fp32, fp32 math) and describe them."""
    cfg = get_config(MODEL)
    model = load_tiny(weights)
    train_bytes, heldout_bytes = data.corpus_splits()
    windows = data.eval_windows(heldout_bytes, EVAL_SEQ_LEN)
    full = metrics(evaluate(model, windows))
    first = metrics(evaluate(model, windows[:FIRST_N]))
    tokens_per_step = r.batch * r.seq_len
    return {
        "config": MODEL,
        "config_fields": cfg.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights": {"file": WEIGHTS, "dtype": "float16", "bytes": weights.stat().st_size},
        "corpus": {"source": "pydoc_data.topics (CPython documentation)",
                   "python": platform.python_version(), "sha256": data.corpus_sha256(),
                   "split": f"sorted topic names; every {data.HELDOUT_EVERY}th "
                            "(positions 0, 10, ...) held out, minus held-out paragraphs "
                            "that occur in train",
                   "tokenizer": "UTF-8 bytes (vocab 256)",
                   "train_bytes": len(train_bytes), "heldout_bytes": len(heldout_bytes),
                   "heldout_topics": data.split_topics()[1]},
        "recipe": {**asdict(r), "optimizer": "AdamW", "schedule": "linear warmup, constant, cosine cooldown",
                   "budget_minutes": budget_minutes,
                   "reproduce": reproduce_command(r),
                   "tokens_per_step": tokens_per_step,
                   "tokens_seen": tokens_per_step * r.steps,
                   "epochs": round(tokens_per_step * r.steps / len(train_bytes), 2),
                   "best_step": log["best_step"], "wall_time_s": log["wall_time_s"],
                   "machine": "2-core CPU", "torch": torch.__version__},
        "heldout_eval": {"seq_len": EVAL_SEQ_LEN, "windows": len(windows),
                         "target_bytes": int(windows[:, 1:].size),
                         "weights": "fp16 as shipped, reloaded to fp32, fp32 math",
                         **{k: round(v, 6) for k, v in full.items()}},
        "heldout_ppl_first16": round(first["ppl_per_byte"], 6),
        "heldout_loss_first16": round(first["loss_nats_per_byte"], 6),
        "sample": {"prompt": "The ", "decoding": "greedy", "bytes": 200,
                   "text": generate(model, "The ", 200)},
        "history": log["history"],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "weights")
    for name, default in asdict(Recipe()).items():
        kind = (lambda s: s.lower() in ("1", "true", "yes")) if isinstance(default, bool) \
            else type(default)
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    args = p.parse_args(argv)
    r = Recipe(**{k: getattr(args, k) for k in asdict(Recipe())})
    print(f"recipe: {r}", flush=True)
    model, r, log = train(r)
    args.out.mkdir(parents=True, exist_ok=True)
    save_weights(model, args.out / WEIGHTS)
    card = model_card(args.out / WEIGHTS, r, log, budget_minutes=args.minutes)
    (args.out / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    ev = card["heldout_eval"]
    print(f"held-out (fp16 weights, fp32 eval): {ev['loss_nats_per_byte']:.4f} nats/byte, "
          f"ppl {ev['ppl_per_byte']:.4f}, {ev['bits_per_byte']:.4f} bpb", flush=True)
    print(f"sample: {card['sample']['text']!r}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
