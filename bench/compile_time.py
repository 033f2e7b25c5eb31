"""Compile-time benchmark: llmc's own stages vs torch.export, at two depths.

Runs llama-2-7b (32 layers) and the same config at 64 layers, shape-only,
prefill at 2K, and writes bench/results/compile_time.{md,json}. llmc's
stages (ATen -> IR conversion, verification, the pipeline, cost summary)
must grow linearly with depth and cost less than torch.export itself.

    python -m bench.compile_time
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from llmc import api
from llmc.frontend.loader import LoadedModel
from llmc.frontend.zoo.config import get_config
from llmc.frontend.zoo.decoder import build_model
from llmc.hw.targets import get_target
from llmc.passes.manager import run_pipeline

RESULTS = Path(__file__).parent / "results"


def measure(layers: int, repeats: int = 2) -> dict:
    cfg = get_config("llama-2-7b").replace(n_layers=layers, name=f"llama-2-7b-x{layers}")
    best: dict[str, float] = {}
    for _ in range(repeats):
        loaded = LoadedModel(cfg.name, build_model(cfg, "meta"), cfg, "bench")
        traced = api.trace(loaded, "prefill", batch=1, seq_len=2048)
        t0 = time.perf_counter()
        tgt = get_target("a100")
        graph = run_pipeline(traced.graph, tgt.pipeline + tgt.schedule)  # as compile runs them
        t1 = time.perf_counter()
        api.summarize(graph)
        t2 = time.perf_counter()
        row = dict(traced.timings, passes_s=t1 - t0, cost_s=t2 - t1)
        for k, v in row.items():
            best[k] = min(best.get(k, float("inf")), v)
    llmc_s = best["convert_s"] + best["verify_s"] + best["passes_s"] + best["cost_s"]
    return {"model": cfg.name, "layers": layers, "nodes": len(graph.nodes),
            **{k: round(v, 4) for k, v in best.items()}, "llmc_s": round(llmc_s, 4)}


def main() -> None:
    rows = [measure(32), measure(64)]
    a, b = rows
    summary = {
        "llmc_growth_2x_depth": round(b["llmc_s"] / a["llmc_s"], 3),
        "export_growth_2x_depth": round(b["export_s"] / a["export_s"], 3),
        "llmc_over_export": [round(r["llmc_s"] / r["export_s"], 3) for r in rows],
        "machine": f"{platform.machine()} {platform.processor() or ''} 2-core CPU".strip(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compile_time.json").write_text(
        json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")
    cols = ["model", "layers", "nodes", "export_s", "convert_s", "verify_s", "passes_s",
            "cost_s", "llmc_s"]
    md = ["# Compile time: llmc stages vs torch.export (shape-only, prefill 2K)", "",
          "Best of 2 runs, seconds, on " + summary["machine"] + ". "
          "`llmc_s` = convert + verify + passes + cost.", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    md += ["", f"Doubling depth multiplies llmc's time by {summary['llmc_growth_2x_depth']} "
           f"and torch.export's by {summary['export_growth_2x_depth']}; llmc's stages cost "
           f"{summary['llmc_over_export'][0]:.0%} / {summary['llmc_over_export'][1]:.0%} "
           "of torch.export's time."]
    (RESULTS / "compile_time.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
