"""Frontend bench: Hugging Face checkpoints of each family, traced by llmc and
checked against transformers.

For each family (and each setting within a family that changes the
computation, tests/frontend/hf_dirs.py VARIANTS) a tiny seeded transformers
model (2 layers, hidden 64, vocab 128, float32) is saved with
`save_pretrained`; llmc traces the directory (prefill, 16 tokens; decode with
a 24-slot KV cache) and runs both graphs in the reference interpreter:
prefill logits and 8 KV-cached decode steps against transformers with its own
cache (relative error, the max over the steps). A few checkpoints transformers
writes but llmc does not implement show the refusal. The `factory` column
traces `tests/frontend/hf_factories/<family>.py:factory` (the export path of
an arbitrary nn.Module) when that file exists and compares its graph with its
module run in eager; "not built" otherwise.

Every traced checkpoint and class is then compiled as a user would (`llmc
compile X --target a100`, in float, with `--quant w8a8-int` and with `--quant
w4a16`, default calibration); a quantized compile's prefill graph is run on the
prompt and its logits compared with the float graph's (relative error, and
top-1 agreement over the prompt's positions). A compile that fails shows its
one-line reason.

    python -m bench.frontend_bench      # writes bench/results/frontend.{md,json}
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from llmc import api
from llmc.errors import LlmcError
from tests.frontend.hf_dirs import (
    DECODE_STEPS,
    PROMPT,
    VARIANTS,
    hf_decode,
    hf_prefill,
    llmc_decode,
    prompt_tokens,
    rel_err,
    save_tiny,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FACTORIES = ROOT / "tests" / "frontend" / "hf_factories"

# Checkpoints transformers writes that llmc refuses: name -> (variant, config fields).
REFUSED: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-rope-yarn": ("llama", {"rope_parameters": {
        "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
        "original_max_position_embeddings": 16}}),
    "qwen3_moe-dense-layer": ("qwen3_moe", {"mlp_only_layers": [1]}),
    "gemma-bidirectional": ("gemma", {"use_bidirectional_attention": True}),
    "phi3-partial-rope": ("phi3", {"rope_parameters": {
        "rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}}),
}


def _ops(graph: Any) -> int:
    return sum(n.op not in ("param", "input", "const") for n in graph.nodes)


QUANTS = (None, "w8a8-int", "w4a16")


def measure_compiles(model: str, ref: Any, tokens: Any, seq_len: int | None) -> dict[str, Any]:
    """`llmc compile model --target a100` in float and under each of QUANTS[1:]:
    ok (with the quantized prefill's logits on `tokens` against `ref`: relative
    error, top-1 agreement) or the one-line reason it was refused."""
    import numpy as np

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for quant in QUANTS:
            name = quant or "float"
            t0 = time.perf_counter()
            try:
                c = api.compile(model, "a100", Path(tmp) / name, seq_len=seq_len, quant=quant)
            except LlmcError as exc:
                out[name] = {"status": "refused", "reason": str(exc)}
                continue
            cell: dict[str, Any] = {"status": "ok",
                                    "compile_s": round(time.perf_counter() - t0, 2)}
            if quant:
                got = api.interpret(c.graphs["prefill"], [tokens])[0]
                cell["rel_err"] = rel_err(got, ref)
                cell["top1"] = float(np.mean(np.asarray(got).argmax(-1) ==
                                             np.asarray(ref).argmax(-1)))
            out[name] = cell
    return out


def _raw_ops(spec: str) -> int:
    """IR ops of a factory as converted, before FACTORY_RAISES."""
    saved = api.FACTORY_RAISES
    api.FACTORY_RAISES = ()
    try:
        return _ops(api.trace(spec).graph)
    finally:
        api.FACTORY_RAISES = saved


def measure_dir(name: str, variant: str, root: Path, compiles: bool = False,
                **overrides: Any) -> dict[str, Any]:
    path, hf = save_tiny(variant, root, name=name, **overrides)
    family = VARIANTS[variant][0]
    row: dict[str, Any] = {"checkpoint": name, "model_type": hf.config.model_type,
                           "family": family}
    prompt = prompt_tokens()
    steps = prompt_tokens(seed=1, n=DECODE_STEPS)[0].tolist()
    try:
        t0 = time.perf_counter()
        prefill = api.trace(str(path), "prefill", seq_len=PROMPT)
        t1 = time.perf_counter()
        decode = api.trace(str(path), "decode", seq_len=PROMPT + 1,
                           cache_len=PROMPT + DECODE_STEPS)
        t2 = time.perf_counter()
    except LlmcError as exc:
        return {**row, "traced": "refused", "reason": str(exc).split(": ", 1)[-1]}
    out = api.interpret(prefill.graph, [prompt.numpy()])
    ours = llmc_decode(decode.graph, out, steps)
    theirs = hf_decode(hf, prompt, steps)
    windows = sorted({n.attrs["window"] for n in prefill.graph.nodes
                      if n.op == "attention" and "window" in n.attrs})
    if compiles:
        row["compile"] = measure_compiles(str(path), out[0], prompt.numpy(), PROMPT)
    return {**row, "traced": "yes", "ops_prefill": _ops(prefill.graph),
            "ops_decode": _ops(decode.graph),
            "windows": windows,
            "prefill_rel_err": rel_err(out[0], hf_prefill(hf, prompt)),
            "decode_rel_err": max(rel_err(a, b) for a, b in zip(ours, theirs, strict=True)),
            "trace_prefill_s": round(t1 - t0, 3), "trace_decode_s": round(t2 - t1, 3)}


def measure_factory(family: str, compiles: bool = False) -> dict[str, Any]:
    """The export path: `<family>.py:factory` traced as any nn.Module (IR ops as
    converted and after FACTORY_RAISES), and with `compiles`, compiled."""
    f = FACTORIES / f"{family}.py"
    if not f.exists():
        return {"status": "not built"}
    spec = f"{f}:factory"
    try:
        t0 = time.perf_counter()
        traced = api.trace(spec)
        dt = time.perf_counter() - t0
        out = api.interpret(traced.graph, traced.inputs)
    except LlmcError as exc:
        return {"status": "refused", "reason": str(exc)}
    ref = api.torch_reference(traced)
    row = {"status": "yes", "ops": _ops(traced.graph), "ops_raw": _raw_ops(spec),
           "rel_err": rel_err(out[0], ref[0]), "trace_s": round(dt, 3)}
    if compiles:
        row["compile"] = measure_compiles(spec, out[0], traced.inputs[0], None)
    return row


def main() -> None:
    import torch
    import transformers

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in VARIANTS:
            rows.append(measure_dir(name, name, Path(tmp), compiles=True))
            print(name, flush=True)
        for name, (variant, fields) in REFUSED.items():
            rows.append(measure_dir(name, variant, Path(tmp), **fields))
    factories = {}
    for fam in dict.fromkeys(VARIANTS[n][0] for n in VARIANTS):
        factories[fam] = measure_factory(fam, compiles=True)
        print(fam, "factory", flush=True)
    report = {
        "rows": rows, "factories": factories,
        "setup": {"prompt_tokens": PROMPT, "decode_steps": DECODE_STEPS,
                  "model": "2 layers, hidden 64, 4 heads (2 KV), head_dim 16, vocab 128, "
                           "float32, seeded random weights",
                  "transformers": transformers.__version__, "torch": torch.__version__,
                  "python": platform.python_version(),
                  "machine": f"{platform.machine()} 2-core CPU"},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "frontend.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "frontend.md").write_text(render(report))
    print(render(report))


def _compile_cell(c: dict[str, Any] | None, name: str) -> str:
    """float: ok; a quantized compile: its logits' relative error / top-1 agreement."""
    if c is None:
        return ""
    cell = c[name]
    if cell["status"] != "ok":
        return f"refused: {cell['reason']}"
    if "rel_err" not in cell:
        return "ok"
    return f"ok, {cell['rel_err']:.3f} / {cell['top1']:.2f}"


def render(r: dict[str, Any]) -> str:
    s = r["setup"]
    lines = [
        "# Hugging Face checkpoints and classes: traced and compiled by llmc", "",
        f"Written by `python -m bench.frontend_bench`. Each checkpoint is a tiny transformers "
        f"model ({s['model']}) saved with `save_pretrained`. llmc traces the directory and runs "
        f"its prefill graph ({s['prompt_tokens']} tokens) and {s['decode_steps']} steps of its "
        f"decode graph (fixed {s['prompt_tokens'] + s['decode_steps']}-slot KV cache) in the "
        f"reference interpreter; errors are relative (‖llmc − transformers‖ / ‖transformers‖, "
        f"decode: the worst step) against transformers {s['transformers']} with its own "
        f"cache (torch {s['torch']}, Python {s['python']}, {s['machine']}). Trace seconds are "
        "torch.export + conversion + verification of one graph.", "",
        "Compile columns: `llmc compile X --target a100` (reference backend) in float, with "
        "`--quant w8a8-int` (integer-only: int8 weights and activations, integer norms, "
        "GELU/SiLU, softmax) and with `--quant w4a16`, each with llmc's default calibration "
        "(16 seeded random windows). For a quantized compile the cell gives its prefill "
        "logits on the prompt against the float graph's: relative error / top-1 agreement "
        "over the prompt's positions. These are random-weight models whose logits are "
        "nearly tied, so top-1 is the harsher figure.", "",
        "## Checkpoint directories", "",
        "| checkpoint | model_type | traced | windows | IR ops prefill / decode | "
        "prefill err | decode err | trace s prefill / decode | compile a100 | w8a8-int | "
        "w4a16 |",
        "|---|---|---|---|---:|---:|---:|---:|---|---|---|"]
    for row in r["rows"]:
        c = row.get("compile")
        comp = " | ".join(_compile_cell(c, n) for n in ("float", "w8a8-int", "w4a16"))
        if row["traced"] != "yes":
            lines.append(f"| {row['checkpoint']} | {row['model_type']} | refused: "
                         f"{row['reason']} | | | | | | | | |")
            continue
        win = ", ".join(map(str, row["windows"])) or "-"
        lines.append(f"| {row['checkpoint']} | {row['model_type']} | yes | {win} | "
                     f"{row['ops_prefill']} / {row['ops_decode']} | "
                     f"{row['prefill_rel_err']:.1e} | {row['decode_rel_err']:.1e} | "
                     f"{row['trace_prefill_s']:.2f} / {row['trace_decode_s']:.2f} | {comp} |")
    lines += [
        "", "## Classes through `file.py:factory`", "",
        "`tests/frontend/hf_factories/<family>.py:factory`: the transformers class (random "
        "weights, its own tiny config) traced as any nn.Module at its example's shape "
        "(batch 2 x 12 tokens) and compared with the module in eager. IR ops: as converted "
        "from core ATen → after the raise passes (simplify, fold-constants, raise-norm, "
        "raise-act, raise-linear, raise-attention), which turn transformers' hand-written "
        "norms, activations, Conv1D, repeat_kv, masks and RoPE tables into llmc's ops. "
        "Quantized cells: logits on the example ids against the float graph's.", "",
        "| class | traced | IR ops converted → raised | err vs eager | trace s | "
        "compile a100 | w8a8-int | w4a16 |",
        "|---|---|---:|---:|---:|---|---|---|"]
    for fam, f in r["factories"].items():
        if f["status"] != "yes":
            reason = f.get("reason", f["status"])
            lines.append(f"| {fam} | {reason} | | | | | | |")
            continue
        c = f.get("compile")
        comp = " | ".join(_compile_cell(c, n) for n in ("float", "w8a8-int", "w4a16"))
        lines.append(f"| {fam} | yes | {f['ops_raw']} → {f['ops']} | {f['rel_err']:.1e} | "
                     f"{f['trace_s']:.2f} | {comp} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
