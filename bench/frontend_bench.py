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


def measure_dir(name: str, variant: str, root: Path, **overrides: Any) -> dict[str, Any]:
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
    return {**row, "traced": "yes", "ops_prefill": _ops(prefill.graph),
            "ops_decode": _ops(decode.graph),
            "windows": windows,
            "prefill_rel_err": rel_err(out[0], hf_prefill(hf, prompt)),
            "decode_rel_err": max(rel_err(a, b) for a, b in zip(ours, theirs, strict=True)),
            "trace_prefill_s": round(t1 - t0, 3), "trace_decode_s": round(t2 - t1, 3)}


def measure_factory(family: str) -> dict[str, Any]:
    """The export path: `<family>.py:factory` traced as any nn.Module."""
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
    return {"status": "yes", "ops": _ops(traced.graph), "rel_err": rel_err(out[0], ref[0]),
            "trace_s": round(dt, 3)}


def main() -> None:
    import torch
    import transformers

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in VARIANTS:
            rows.append(measure_dir(name, name, Path(tmp)))
        for name, (variant, fields) in REFUSED.items():
            rows.append(measure_dir(name, variant, Path(tmp), **fields))
    factories = {}
    for fam in dict.fromkeys(VARIANTS[n][0] for n in VARIANTS):
        factories[fam] = measure_factory(fam)
    for r in rows:
        r["factory"] = factories.get(r["family"], {"status": "not built"})
    report = {
        "rows": rows,
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


def _factory_cell(f: dict[str, Any]) -> str:
    if f["status"] == "yes":
        return f"yes, {f['ops']} ops, {f['rel_err']:.1e}, {f['trace_s']:.2f} s"
    if f["status"] == "refused":
        return f"refused: {f['reason']}"
    return f["status"]


def render(r: dict[str, Any]) -> str:
    s = r["setup"]
    lines = [
        "# Hugging Face checkpoints: traced by llmc vs transformers", "",
        f"Written by `python -m bench.frontend_bench`. Each checkpoint is a tiny transformers "
        f"model ({s['model']}) saved with `save_pretrained`. llmc traces the directory and runs "
        f"its prefill graph ({s['prompt_tokens']} tokens) and {s['decode_steps']} steps of its "
        f"decode graph (fixed {s['prompt_tokens'] + s['decode_steps']}-slot KV cache) in the "
        f"reference interpreter; errors are relative (‖llmc − transformers‖ / ‖transformers‖, "
        f"decode: the worst step) against transformers {s['transformers']} with its own "
        f"cache (torch {s['torch']}, Python {s['python']}, {s['machine']}). Trace seconds are "
        "torch.export + conversion + verification of one graph. `factory`: the export path "
        "(`tests/frontend/hf_factories/<family>.py:factory`, its graph vs its module in eager).",
        "",
        "| checkpoint | model_type | traced | windows | IR ops prefill / decode | "
        "prefill err | decode err | trace s prefill / decode | factory |",
        "|---|---|---|---|---:|---:|---:|---:|---|"]
    for row in r["rows"]:
        fac = _factory_cell(row["factory"])
        if row["traced"] != "yes":
            lines.append(f"| {row['checkpoint']} | {row['model_type']} | refused: "
                         f"{row['reason']} | | | | | | {fac} |")
            continue
        win = ", ".join(map(str, row["windows"])) or "-"
        lines.append(f"| {row['checkpoint']} | {row['model_type']} | yes | {win} | "
                     f"{row['ops_prefill']} / {row['ops_decode']} | "
                     f"{row['prefill_rel_err']:.1e} | {row['decode_rel_err']:.1e} | "
                     f"{row['trace_prefill_s']:.2f} / {row['trace_decode_s']:.2f} | {fac} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
