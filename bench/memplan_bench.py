"""Memory-planner benchmark over transformer-shaped activation buffers.

For each model (gpt2, llama-2-7b, mistral-7b, yi-34b, gpt-oss-120b), phase
(prefill of 2K tokens; decode of 1 token against a 2K context) and
activation width (fp16/bf16 = 2 bytes, int8 = 1 byte) this builds the
activation buffers of one forward pass from a small description of a decoder
layer's intermediates in execution order, derives lifetimes from the last
consumer of each buffer, and plans them with greedy-by-size, best-fit and
the MEMO decomposition (per-layer MIP, reused, then the model).

The buffers come through ``problem_from_intervals(rows)`` with rows
``(name, size, start, end, block)``, so IR liveness can replace the
description below without touching the rest.

Run: ``.venv/bin/python -m bench.memplan_bench`` (writes bench/results/memplan.md
and memplan.json, and the synthetic rows to memplan_synthetic.md/.json);
``--out DIR`` writes elsewhere, ``--no-synthetic`` leaves the synthetic files alone;
``--hard`` runs only the hard instances of ``bench/memplan_hard.py`` (greedy,
best-fit, CBC and CP-SAT; memplan_hard.md/.json); ``--scratchpad`` only the
scratchpad rows of ``bench/memplan_scratchpad.py`` (llmc-tiny below its lower
bound, row-tiled and spilled; memplan_scratchpad.json and its section of
memplan.md, which a full run keeps).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import os
import platform
import random
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmc.passes.memplan import (  # noqa: E402
    Problem,
    SolverTimeoutWarning,
    best_fit,
    check_plan,
    greedy_by_size,
    lower_bound,
    plan_blocks,
    problem_from_intervals,
    solve_mip,
)

RESULTS = Path(__file__).resolve().parent / "results"
TIME_LIMIT_S = 30.0
CONTEXT = 2048
# the keys every JSON row has (the columns); rows carry more
COLUMNS = ("model", "phase", "quant", "lower_bound_bytes", "greedy_bytes", "bestfit_bytes",
           "mip_bytes", "mip_ratio", "solve_s")


@dataclass(frozen=True)
class Shape:
    """A decoder-only transformer's sizes (from each model's config.json)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    arch: str  # "gpt2" (LayerNorm, fused QKV, GELU MLP) | "llama" (RMSNorm, RoPE, SwiGLU) | "moe"
    head_dim: int = 0
    experts: int = 0
    top_k: int = 0

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden // self.heads


MODELS = (
    Shape("gpt2", 12, 768, 12, 12, 3072, 50257, "gpt2"),
    Shape("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, "llama"),
    Shape("mistral-7b", 32, 4096, 32, 8, 14336, 32000, "llama"),
    Shape("yi-34b", 60, 7168, 56, 8, 20480, 64000, "llama"),
    Shape("gpt-oss-120b", 36, 2880, 64, 8, 2880, 201088, "moe", head_dim=64, experts=128,
          top_k=4),
)

# An op: (output name, output bytes, input names). Views (splits, reshapes) are
# not ops: they alias their input and are folded into its consumers.
Op = tuple[str, int, tuple[str, ...]]


def _norm(p: str, x: str, t: int, h: int, a: int, layer: bool) -> list[Op]:
    """RMSNorm / LayerNorm as an exported graph runs it: upcast to fp32, the
    per-row statistic, scale, downcast, times the weight."""
    ops: list[Op] = [(p + "f32", t * h * 4, (x,))]
    if layer:  # LayerNorm: x - mean first
        ops += [(p + "mean", t * 4, (p + "f32",)),
                (p + "centered", t * h * 4, (p + "f32", p + "mean"))]
        src = p + "centered"
    else:
        src = p + "f32"
    ops += [(p + "sq", t * h * 4, (src,)), (p + "var", t * 4, (p + "sq",)),
            (p + "rstd", t * 4, (p + "var",)), (p + "scaled", t * h * 4, (src, p + "rstd")),
            (p + "cast", t * h * a, (p + "scaled",)), (p, t * h * a, (p + "cast",))]
    return ops


def _rope(p: str, x: str, n: int) -> list[Op]:
    """x * cos + rotate_half(x) * sin, with rotate_half = cat(-x2, x1)."""
    return [(p + "cos", n, (x,)), (p + "neg", n // 2, (x,)), (p + "rot", n, (x, p + "neg")),
            (p + "sin", n, (p + "rot",)), (p, n, (p + "cos", p + "sin"))]


def layer_ops(m: Shape, i: int, x: str, t: int, ctx: int, a: int, decode: bool) -> list[Op]:
    """One decoder layer's intermediates in execution order, output last.

    Norms and softmax run in fp32 (4 bytes) whatever the activation width, as
    in the models' reference code.
    """
    p = f"l{i}."
    qd, kvd, gpt2 = m.heads * m.hd, m.kv_heads * m.hd, m.arch == "gpt2"
    ops: list[Op] = _norm(p + "norm1", x, t, m.hidden, a, layer=gpt2)
    n1 = p + "norm1"
    if gpt2:
        ops += [(p + "qkv", t * 3 * qd * a, (n1,))]
        q = k = v = p + "qkv"
    else:
        ops += [(p + "q", t * qd * a, (n1,)), (p + "k", t * kvd * a, (n1,)),
                (p + "v", t * kvd * a, (n1,))]
        ops += _rope(p + "q_rope", p + "q", t * qd * a) + _rope(p + "k_rope", p + "k", t * kvd * a)
        q, k, v = p + "q_rope", p + "k_rope", p + "v"
    if decode:  # torch.cat(past, new) as an exported graph does; the cache itself is state
        ops += [(p + "k_all", ctx * kvd * a, (k,)), (p + "v_all", ctx * kvd * a, (v,))]
        k, v = p + "k_all", p + "v_all"
    s = m.heads * t * ctx
    ops += [
        (p + "scores", s * a, (q, k)),
        (p + "masked", s * a, (p + "scores",)),
        (p + "softmax_f32", s * 4, (p + "masked",)),
        (p + "probs", s * a, (p + "softmax_f32",)),
        (p + "attn", t * qd * a, (p + "probs", v)),
        (p + "o_proj", t * m.hidden * a, (p + "attn",)),
        (p + "resid1", t * m.hidden * a, (x, p + "o_proj")),
    ]
    ops += _norm(p + "norm2", p + "resid1", t, m.hidden, a, layer=gpt2)
    n2 = p + "norm2"
    if gpt2:
        ops += [(p + "fc", t * m.ffn * a, (n2,)), (p + "gelu", t * m.ffn * a, (p + "fc",)),
                (p + "down", t * m.hidden * a, (p + "gelu",))]
        mlp = p + "down"
    elif m.arch == "llama":
        ops += [(p + "gate", t * m.ffn * a, (n2,)), (p + "up", t * m.ffn * a, (n2,)),
                (p + "silu", t * m.ffn * a, (p + "gate",)),
                (p + "act", t * m.ffn * a, (p + "silu", p + "up")),
                (p + "down", t * m.hidden * a, (p + "act",))]
        mlp = p + "down"
    else:  # MoE with sorted-token grouped GEMMs (each token visits top_k experts)
        tk = t * m.top_k
        ops += [(p + "router", t * m.experts * a, (n2,)),
                (p + "topk_w", t * m.top_k * a, (p + "router",)),
                (p + "topk_idx", t * m.top_k * 4, (p + "router",)),
                (p + "dispatch", tk * m.hidden * a, (n2, p + "topk_idx")),
                (p + "gate_up", tk * 2 * m.ffn * a, (p + "dispatch",)),
                (p + "act", tk * m.ffn * a, (p + "gate_up",)),
                (p + "expert_out", tk * m.hidden * a, (p + "act",)),
                (p + "combine", t * m.hidden * a, (p + "expert_out", p + "topk_w",
                                                    p + "topk_idx"))]
        mlp = p + "combine"
    ops += [(p + "out", t * m.hidden * a, (p + "resid1", mlp))]
    return ops


def model_ops(m: Shape, phase: str, a: int) -> tuple[list[Op], dict[str, int]]:
    """All ops of one forward pass and the layer index of each op (absent: none)."""
    decode = phase == "decode"
    t, ctx = (1, CONTEXT) if decode else (CONTEXT, CONTEXT)
    ops: list[Op] = [("ids", t * 4, ())]
    if m.arch == "gpt2":
        ops += [("tok_emb", t * m.hidden * a, ("ids",)), ("pos_emb", t * m.hidden * a, ()),
                ("embed", t * m.hidden * a, ("tok_emb", "pos_emb"))]
    else:
        ops += [("embed", t * m.hidden * a, ("ids",))]
    layer_of: dict[str, int] = {}
    x = "embed"
    for i in range(m.layers):
        lo = layer_ops(m, i, x, t, ctx, a, decode)
        layer_of.update({name: i for name, _, _ in lo})
        ops += lo
        x = lo[-1][0]
    # logits of the last position only, as generate() and serving engines ask for
    ops += _norm("norm_f", x, t, m.hidden, a, layer=m.arch == "gpt2")
    ops += [("logits", m.vocab * a, ("norm_f",))]
    return ops, layer_of


def intervals(ops: list[Op], layer_of: dict[str, int], outputs: tuple[str, ...] = ("logits",)
              ) -> list[tuple[str, int, int, int, int | None]]:
    """(name, size, start, end, block) rows: live from the producing op to the last
    consumer; tagged with a layer when produced and consumed inside it."""
    step = {name: s for s, (name, _, _) in enumerate(ops)}
    last = dict(step)
    users: dict[str, set[int | None]] = {name: set() for name in step}
    for s, (name, _, ins) in enumerate(ops):
        for x in ins:
            last[x] = max(last[x], s)
            users[x].add(layer_of.get(name))
    for name in outputs:
        last[name] = len(ops) - 1
    rows = []
    for name, size, _ in ops:
        blk = layer_of.get(name)
        inside = blk is not None and users[name] <= {blk}
        rows.append((name, size, step[name], last[name], blk if inside else None))
    return rows


def synthetic_intervals(seed: int, layers: int, n: int = 12
                        ) -> list[tuple[str, int, int, int, int | None]]:
    """A stack of identical random layers chained by a residual buffer.

    Each layer has ``n`` buffers with random sizes (1 to 16 MiB) and
    lifetimes inside an 11-step window; the residual from the previous layer
    is read at the layer's sixth step and the layer's output born at its last.
    Greedy planners miss the lower bound on these, unlike on the transformer
    rows, so they show the MIP and the decomposition at work.
    """
    r = random.Random(seed)
    tpl = []
    for _ in range(n):
        a = r.randint(0, 9)
        tpl.append((r.choice([1, 2, 3, 4, 6, 8, 12, 16]) << 20, a, min(10, a + r.randint(0, 4))))
    rows: list[tuple[str, int, int, int, int | None]] = []
    end: dict[str, int] = {"embed": 1}
    step, prev = 1, "embed"
    for k in range(layers):
        rows += [(f"l{k}.t{j}", size, step + a, step + e, k) for j, (size, a, e) in enumerate(tpl)]
        end[prev] = step + 5
        prev = f"l{k}.out"
        end[prev] = step + 10
        step += 11
    end[prev] = step
    rows.append(("embed", 2 << 20, 0, end["embed"], None))
    rows += [(f"l{k}.out", 2 << 20, 11 * k + 11, end[f"l{k}.out"], None) for k in range(layers)]
    return rows


SYNTHETIC = (("synthetic-s20", 20, 12), ("synthetic-s20", 20, 60), ("synthetic-s6", 6, 60))


def plan_row(problem: Problem, time_limit_s: float = TIME_LIMIT_S) -> dict:
    """Plan one problem with every method; the numeric columns of a row."""
    lb = lower_bound(problem)
    greedy, bestfit = greedy_by_size(problem), best_fit(problem)
    memo = plan_blocks(problem, time_limit_s=time_limit_s)
    for p in (greedy, bestfit, memo):
        check_plan(problem, p)
    return {
        "lower_bound_bytes": lb, "greedy_bytes": greedy.arena_bytes,
        "bestfit_bytes": bestfit.arena_bytes, "mip_bytes": memo.arena_bytes,
        "mip_ratio": round(memo.arena_bytes / lb, 4), "solve_s": round(memo.solve_s, 3),
        "buffers": len(problem.buffers), "status": memo.status,
        "classes": memo.info.get("classes"), "plan_source": memo.info.get("source"),
        "greedy_ratio": round(greedy.arena_bytes / lb, 4),
    }


def run_row(m: Shape, phase: str, quant: str, time_limit_s: float = TIME_LIMIT_S) -> dict:
    ops, layer_of = model_ops(m, phase, 1 if quant == "int8" else 2)
    problem = problem_from_intervals(intervals(ops, layer_of))
    return {"model": m.name, "phase": phase, "quant": quant, "layers": m.layers,
            "synthetic": False, **plan_row(problem, time_limit_s)}


@functools.cache
def _ir_liveness(model: str, phase: str, fused: bool = False):  # noqa: ANN202
    """Liveness of the model's real IR graph (shape-only trace, 2K tokens, or
    the model's whole context when shorter: GPT-2's is 1024), op by op or
    after the fuse pass (values inside a kernel need no buffer)."""
    from llmc import api
    from llmc.frontend.zoo.config import get_config
    from llmc.passes.fusion import fuse
    from llmc.passes.memplan.liveness import liveness

    seq = min(2048, get_config(model).max_seq_len)
    graph = api.trace(model, phase, batch=1, seq_len=seq, weights="meta").graph
    return liveness(fuse(graph) if fused else graph)


def _ir_problem(name: str, phase: str, quant: str, fused: bool = False) -> Problem:
    """The traced graph is float32; float activations are re-sized to the
    deployment's activation width (fp16: 2 bytes, int8: 1 byte); integer
    tensors keep their size."""
    live = _ir_liveness(name, phase, fused)
    width = 1 if quant == "int8" else 2
    bufs = []
    for b in live.problem.buffers:
        dtype = live.values[b.name].type.dtype
        size = b.size * width // 4 if dtype.kind == "float" and dtype.bits == 32 else b.size
        bufs.append((b.name, size, b.start, b.end, b.block))
    return problem_from_intervals(bufs)


def run_ir_row(name: str, phase: str, quant: str, time_limit_s: float = TIME_LIMIT_S) -> dict:
    """A row whose buffers come from llmc's own IR liveness, op by op; the
    fused_* columns plan the same graph after the fuse pass."""
    row = {"model": name, "phase": phase, "quant": quant, "source": "ir",
           "synthetic": False, **plan_row(_ir_problem(name, phase, quant), time_limit_s)}
    fused = _ir_problem(name, phase, quant, fused=True)
    memo = plan_blocks(fused, time_limit_s=time_limit_s)
    check_plan(fused, memo)
    row.update(fused_buffers=len(fused.buffers), fused_lower_bound_bytes=lower_bound(fused),
               fused_mip_bytes=memo.arena_bytes, fused_solve_s=round(memo.solve_s, 3))
    return row


def run_synthetic(name: str, seed: int, layers: int) -> dict:
    """A synthetic row, plus the MIP on the flat problem (no decomposition) to compare."""
    problem = problem_from_intervals(synthetic_intervals(seed, layers))
    row = {"model": f"{name} x{layers}", "phase": "-", "quant": "-", "layers": layers,
           "synthetic": True, **plan_row(problem)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        flat = solve_mip(problem, time_limit_s=TIME_LIMIT_S)
    check_plan(problem, flat)
    row.update(flat_mip_bytes=flat.arena_bytes, flat_mip_s=round(flat.solve_s, 3),
               flat_mip_ratio=round(flat.arena_bytes / row["lower_bound_bytes"], 4),
               flat_mip_status=flat.status)
    return row


SOURCE_TEXT = {
    "ir": "Activation buffers of one forward pass, from the liveness of llmc's own traced "
          "IR (`llmc.passes.memplan.liveness`; prefill: 2K tokens, all logits; decode: 1 "
          "token writing a 2K-slot KV cache; GPT-2 at its 1K context). The KV cache (a decode graph's "
          "input, the K/V a prefill graph returns) is planned with the weights, not in this arena. "
          "Views alias their base tensor. Quant `fp16` = float activations at 2 bytes, "
          "`int8` = 1 byte (integer tensors keep their size).",
    "layer-description": "Activation buffers of one forward pass (prefill: 2K tokens, logits "
          "of the last position; decode: 1 token against a 2K KV context, the concatenated "
          "K/V materialised, the cache itself not counted), from the per-layer description "
          "in the bench. Quant `fp16` = 2-byte activations, `int8` = 1-byte (norm and "
          "softmax intermediates stay fp32 in both).",
}


def _mib(n: int) -> str:
    return f"{n / 2**20:,.2f}"


def _stamp(rows: list[dict]) -> tuple[str, str, list[dict]]:
    machine = f"{os.cpu_count()}-core CPU ({platform.machine()}, {platform.system()})"
    date = _dt.date.today().isoformat()
    return machine, date, [{**r, "machine": machine, "date": date,
                            "time_limit_s": TIME_LIMIT_S} for r in rows]


def write_results(rows: list[dict], out: Path = RESULTS, source: str = "ir") -> None:
    """Model rows to memplan.{md,json}, synthetic rows to memplan_synthetic.{md,json}:
    a run that skips one kind leaves the other's files alone."""
    out.mkdir(parents=True, exist_ok=True)
    real = [r for r in rows if not r["synthetic"]]
    synth = [r for r in rows if r["synthetic"]]
    if real:
        _write_models(real, out, source)
    if synth:
        _write_synthetic(synth, out)


def _write_models(rows: list[dict], out: Path, source: str) -> None:
    machine, date, stamped = _stamp(rows)
    (out / "memplan.json").write_text(json.dumps(stamped, indent=2, sort_keys=True) + "\n")
    for r in rows:
        assert all(c in r for c in COLUMNS), f"row lacks {set(COLUMNS) - set(r)}"
    header = ["| model | phase | quant | buffers | lower bound | greedy | best-fit | MIP | "
              "MIP ratio | solve s | plan from | fused: buffers | lower bound | MIP |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    lines = [
        "# Memory planner benchmark",
        "",
        f"Machine: {machine}, Python {platform.python_version()}, CP-SAT (OR-Tools), one "
        f"worker. Date: {date}. Produced by `bench/memplan_bench.py`; the synthetic stress "
        "rows are in memplan_synthetic.md, the hard instances in memplan_hard.md.",
        "",
        SOURCE_TEXT[source] + " Sizes in MiB (bytes in "
        "memplan.json); the MIP column is `plan_blocks`, the MEMO decomposition (one exact "
        "solve, by CP-SAT, per distinct layer, reused, then the model as rigid layer groups "
        "plus the "
        "remaining buffers), which returns the lowest valid plan among its own and the "
        "flat greedy-by-size and best-fit plans (`plan from` says which); when a flat "
        "greedy plan already meets the lower bound, the model-level step is one greedy "
        "pass instead of a solve, as nothing can beat it. Ratio = MIP / lower bound; "
        "solve_s is the wall time of `plan_blocks`. The `fused` columns plan the same "
        "graph after the `fuse` pass, as `llmc compile` does: a value that stays inside "
        "its kernel needs no buffer.",
        "",
        *header,
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['phase']} | {r['quant']} | {r['buffers']:,} | "
            f"{_mib(r['lower_bound_bytes'])} | {_mib(r['greedy_bytes'])} | "
            f"{_mib(r['bestfit_bytes'])} | {_mib(r['mip_bytes'])} "
            f"| {r['mip_ratio']:.4f} | {r['solve_s']:.2f} | {r['plan_source']} "
            + (f"| {r['fused_buffers']:,} | {_mib(r['fused_lower_bound_bytes'])} | "
               f"{_mib(r['fused_mip_bytes'])} |" if "fused_buffers" in r else "| | | |"))
    worst = max(r["mip_ratio"] for r in rows)
    slowest = max(r["solve_s"] for r in rows)
    lines += ["", f"Model rows: worst MIP ratio {worst:.4f} (goal <= 1.01), slowest "
              f"{slowest:.2f} s (goal <= {TIME_LIMIT_S:.0f} s); MIP never above greedy: "
              f"{all(r['mip_bytes'] <= r['greedy_bytes'] for r in rows)}. On the model rows "
              "greedy-by-size already meets the lower bound: the layers are near-chains (attention "
              "is one fused op) whose peak is the MLP's intermediates, reached alike in every "
              "layer, or the logits.", ""]
    fused = [r for r in rows if "fused_buffers" in r]
    if fused:
        fworst = max(r["fused_mip_bytes"] / r["fused_lower_bound_bytes"] for r in fused)
        saved = [1 - r["fused_lower_bound_bytes"] / r["lower_bound_bytes"] for r in fused]
        lines += [f"Fused graphs: worst MIP ratio {fworst:.4f}, slowest "
                  f"{max(r['fused_solve_s'] for r in fused):.2f} s; fusion lowers the lower "
                  f"bound by {100 * min(saved):.1f}% to {100 * max(saved):.1f}%.", ""]
    from bench.memplan_scratchpad import with_section

    (out / "memplan.md").write_text(with_section("\n".join(lines), out))


def _write_synthetic(rows: list[dict], out: Path) -> None:
    machine, date, stamped = _stamp(rows)
    (out / "memplan_synthetic.json").write_text(
        json.dumps(stamped, indent=2, sort_keys=True) + "\n")
    lines = [
        "# Memory planner benchmark: synthetic stress rows", "",
        f"Machine: {machine}, Python {platform.python_version()}; CP-SAT (OR-Tools, one "
        "worker) inside the decomposition, CBC via PuLP (one thread) for the flat MIP. "
        f"Date: {date}. Produced by `bench/memplan_bench.py` (the model rows are in "
        "memplan.md, the hard instances in memplan_hard.md).", "",
        "Identical random layers chained by a residual (`synthetic_intervals` in the bench), "
        "where greedy misses the bound. The last columns run the CBC MIP on the flat "
        f"problem, {TIME_LIMIT_S:.0f} s limit, without the per-layer decomposition "
        "(memplan_hard.md runs CP-SAT on it). Sizes in MiB.", "",
        "| problem | buffers | lower bound | greedy | best-fit | MIP (MEMO) | MIP ratio | "
        "solve s | flat MIP | flat ratio | flat s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['buffers']} | {_mib(r['lower_bound_bytes'])} | "
            f"{_mib(r['greedy_bytes'])} | {_mib(r['bestfit_bytes'])} | "
            f"{_mib(r['mip_bytes'])} | {r['mip_ratio']:.4f} | {r['solve_s']:.2f} | "
            f"{_mib(r['flat_mip_bytes'])} | {r['flat_mip_ratio']:.4f} | "
            f"{r['flat_mip_s']:.1f} |")
    lines += ["", f"Slowest decomposed solve {max(r['solve_s'] for r in rows):.2f} s; MIP "
              f"never above greedy: {all(r['mip_bytes'] <= r['greedy_bytes'] for r in rows)}.",
              ""]
    (out / "memplan_synthetic.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=[m.name for m in MODELS])
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--source", choices=("ir", "layer-description"), default="ir",
                    help="buffers from llmc's traced IR (default) or the bench's own "
                         "per-layer description")
    ap.add_argument("--no-synthetic", dest="synthetic", action="store_false",
                    help="skip the synthetic stress rows (memplan_synthetic.* stay as they are)")
    ap.add_argument("--out", default=str(RESULTS),
                    help="directory for the tables (default bench/results)")
    ap.add_argument("--hard", action="store_true",
                    help="only the hard instances (bench/memplan_hard.py): greedy, best-fit, "
                         "CBC and CP-SAT, and MEMO vs CP-SAT; writes memplan_hard.md/.json")
    ap.add_argument("--scratchpad", action="store_true",
                    help="only the scratchpad rows (bench/memplan_scratchpad.py): llmc-tiny "
                         "below its lower bound, row-tiled and spilled; writes "
                         "memplan_scratchpad.json and its section of memplan.md")
    args = ap.parse_args(argv)
    if args.hard:
        from bench import memplan_hard

        return memplan_hard.main(Path(args.out))
    if args.scratchpad:
        from bench import memplan_scratchpad

        return memplan_scratchpad.main(Path(args.out))
    rows = []
    for m in MODELS:
        if m.name not in args.models:
            continue
        for phase in ("prefill", "decode"):
            for quant in ("fp16", "int8"):
                t = time.perf_counter()
                r = (run_ir_row(m.name, phase, quant) if args.source == "ir"
                     else run_row(m, phase, quant))
                rows.append(r)
                print(f"{m.name:14s} {phase:8s} {quant:5s} ratio {r['mip_ratio']:.4f} "
                      f"greedy {r['greedy_ratio']:.4f} solve {r['solve_s']:.2f}s "
                      f"({time.perf_counter() - t:.2f}s total)", flush=True)
    if args.synthetic:
        for name, seed, layers in SYNTHETIC:
            r = run_synthetic(name, seed, layers)
            rows.append(r)
            print(f"{r['model']:22s} ratio {r['mip_ratio']:.4f} greedy {r['greedy_ratio']:.4f} "
                  f"solve {r['solve_s']:.2f}s", flush=True)
    if not args.no_write:
        write_results(rows, Path(args.out), source=args.source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
