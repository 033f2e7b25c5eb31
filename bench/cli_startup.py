"""How long `llmc` takes to start: `--version`, `--help` and a small `sim gemm`.

    python -m bench.cli_startup [--runs 9] [--baseline PATH]

Each command runs `--runs` times, each in a fresh process (`python -m
llmc.cli ...` with PYTHONPATH the tree measured: this checkout, and with
`--baseline PATH` another checkout of llmc, e.g. one from before the CLI
imported lazily, measured in the same run for comparison). The table gives
the median and the fastest wall time, and from `python -X importtime` the
modules imported, their total import time, and which heavy packages
(numpy, torch, numba) came in. `python -c pass` is the floor: the
interpreter's own start. Writes bench/results/cli_startup.md and
cli_startup.json; the goal is `--help` and `--version` under 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
COMMANDS = {
    "llmc --version": ["-m", "llmc.cli", "--version"],
    "llmc --help": ["-m", "llmc.cli", "--help"],
    "llmc sim gemm --m 64 --n 64 --k 64": ["-m", "llmc.cli", "sim", "gemm", "--m", "64", "--n",
                                           "64", "--k", "64"],
}
HEAVY = ("numpy", "torch", "numba")
GOAL_S = 0.2


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def wall(args: list[str], tree: Path, runs: int) -> list[float]:
    """Wall seconds of `runs` fresh `python ARGS` processes."""
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, *args], env=_env(tree), cwd=tree, check=True,
                       capture_output=True)
        out.append(time.perf_counter() - t)
    return out


def imports(args: list[str], tree: Path) -> dict:
    """Modules `python -X importtime ARGS` imported, their summed self time
    (s), and which of HEAVY were among them."""
    p = subprocess.run([sys.executable, "-X", "importtime", *args], env=_env(tree), cwd=tree,
                       check=True, capture_output=True, text=True)
    rows = [ln.split("|") for ln in p.stderr.splitlines() if ln.startswith("import time:")]
    rows = [(int(r[0].split(":")[1]), r[2].strip()) for r in rows[1:]]  # skip the header
    names = {name for _, name in rows}
    return {"modules": len(rows), "import_s": sum(us for us, _ in rows) / 1e6,
            "heavy": [h for h in HEAVY if h in names]}


def measure(tree: Path, runs: int) -> list[dict]:
    rows = [{"command": "python -c pass", "median_s": statistics.median(
        t := wall(["-c", "pass"], tree, runs)), "min_s": min(t), "modules": None,
        "import_s": None, "heavy": []}]
    for name, args in COMMANDS.items():
        t = wall(args, tree, runs)
        rows.append({"command": name, "median_s": statistics.median(t), "min_s": min(t),
                     **imports(args, tree)})
    return rows


def _git(tree: Path) -> str:
    p = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True, check=False)
    return p.stdout.strip() or "?"


def markdown(trees: dict[str, dict]) -> str:
    lines = ["# `llmc` start-up time", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}; each figure over fresh processes "
             "(`bench/cli_startup.py`). Goal: `--help` and `--version` under "
             f"{GOAL_S} s.", "",
             "| tree | command | median s | fastest s | modules imported | import s "
             "(-X importtime) | heavy imports |", "|---|---|---:|---:|---:|---:|---|"]
    for label, t in trees.items():
        for r in t["rows"]:
            mods = "" if r["modules"] is None else f"{r['modules']:,}"
            imp = "" if r["import_s"] is None else f"{r['import_s']:.3f}"
            lines.append(f"| {label} ({t['commit']}) | `{r['command']}` | {r['median_s']:.3f} | "
                         f"{r['min_s']:.3f} | {mods} | {imp} | "
                         f"{', '.join(r['heavy']) or '—'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="processes per command (default 9)")
    ap.add_argument("--baseline", type=Path, default=None, metavar="PATH",
                    help="another llmc checkout to measure alongside, for comparison")
    a = ap.parse_args(argv)
    trees = {"this tree": ROOT} | ({"baseline": a.baseline.resolve()} if a.baseline else {})
    data = {label: {"commit": _git(tree), "rows": measure(tree, a.runs)}
            for label, tree in trees.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(
        {"runs": a.runs, "machine": platform.machine(), "cores": os.cpu_count(),
         "python": platform.python_version(), "trees": data}, indent=2, sort_keys=True) + "\n")
    md = markdown(data)
    (RESULTS / "cli_startup.md").write_text(md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
