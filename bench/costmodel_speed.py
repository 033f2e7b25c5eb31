"""How long `llmc report` takes: a 7B model's report and a 1M-token sweep.

    python3 bench/costmodel_speed.py [--repeat 3]

Runs the CLI in fresh processes (the way a user does) and records wall and
CPU seconds (median of --repeat runs); writes bench/results/costmodel_speed.{md,json}.
Targets (issue): the llama-2-7b report on a100 under 5 s, a 1M-context sweep
under 20 s, on the reference 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "llama-2-7b on a100 (stdout summary)": ["llama-2-7b", "--target", "a100"],
    "llama-2-7b on a100, full report with plots (-o)": ["llama-2-7b", "--target", "a100", "-o",
                                                        "{tmp}/r1"],
    "yi-34b on a100 at 1M context, sweep 4K-1M with plots (-o)": [
        "yi-34b", "--target", "a100", "--seq-len", "1048576", "--context", "1048576",
        "--gen-tokens", "1", "-o", "{tmp}/r2"],
    "compare a100,h100,npu (-o)": ["llama-2-7b", "--compare", "a100,h100,npu", "-o", "{tmp}/r3"],
}


def once(args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one `llmc report` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmc.cli", "report", *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ,
                                                               "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"llmc report {' '.join(args)} failed:\n{proc.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in CASES.items():
            runs = [once([x.format(tmp=tmp) for x in args]) for _ in range(a.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rows.append({"case": name, "command": "llmc report " + " ".join(args),
                         "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "wall_s_runs": [round(r[0], 2) for r in runs]})
            print(f"{name:<62} wall {wall:5.2f} s  cpu {cpu:5.2f} s", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}",
           "python": platform.python_version(), "repeat": a.repeat, "rows": rows}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "costmodel_speed.json").write_text(json.dumps(res, indent=2) + "\n")
    md = ["# `llmc report` speed", "",
          f"{res['machine']} (1-minute load average when the run ended; the reference "
          f"machine is shared, so wall time includes waiting for a core), Python "
          f"{res['python']}, median of {a.repeat} fresh processes.", "",
          "| case | wall s | CPU s | runs (wall s) |", "|---|---:|---:|---|"]
    md += [f"| {r['case']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
           f"{', '.join(f'{x:.2f}' for x in r['wall_s_runs'])} |" for r in rows]
    (out / "costmodel_speed.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
