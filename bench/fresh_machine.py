"""The README's two commands on a fresh clone of a machine without Icarus.

    python -m bench.fresh_machine --remove-icarus [--verilator-only]

Twice: remove Icarus Verilog (`apt-get remove -y iverilog`, as root or with
sudo), clone this repository's committed HEAD into a new temporary directory
(so no .venv, no build output, nothing untracked comes along), and run there
— in the first clone `make .venv/.installed` (the install alone), `make demo`
(installs Icarus, then the tour, cold) and `make demo` again (the tour, warm);
in the second `bash .ci/run` (CI's entry point: `make test`) — recording
each command's exit code, wall time and last lines. With
`--verilator-only`, also runs `make test RTL_SIMS=verilator` in a third clone
with Icarus removed (the path for machines without apt). Writes
bench/results/fresh_machine.md: the transcript.

Without `--remove-icarus` nothing is removed (the run then only shows a fresh
clone and a new .venv).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _sh(cmd: str, cwd: Path, log: list[str], env: dict[str, str] | None = None,
        tail: int = 6) -> tuple[int, float]:
    t = time.perf_counter()
    p = subprocess.run(["bash", "-c", cmd], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True,
                       env={**os.environ, **(env or {})}, check=False)
    dt = time.perf_counter() - t
    out = p.stdout.rstrip().splitlines()  # stdout and stderr in the order written
    log += [f"$ {cmd}    # exit {p.returncode}, {dt:,.1f} s", *out[-tail:], ""]
    print(log[-len(out[-tail:]) - 2], flush=True)
    return p.returncode, dt


def _sudo() -> str:
    return "" if os.geteuid() == 0 else "sudo -n "


def _without_icarus(remove: bool, log: list[str], here: Path) -> None:
    if remove and shutil.which("iverilog"):
        _sh(f"{_sudo()}apt-get remove -y -qq iverilog", here, log, tail=1)
    _sh("command -v iverilog || echo 'iverilog: not installed'", here, log, tail=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--remove-icarus", action="store_true",
                    help="apt-get remove iverilog before each command (needs root or sudo)")
    ap.add_argument("--verilator-only", action="store_true",
                    help="also run make test RTL_SIMS=verilator without Icarus")
    a = ap.parse_args(argv)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True, check=True).stdout.strip()
    # one fresh clone per list; `make demo` runs twice (the second, warm, times the
    # tour alone), the first clone's install step is timed on its own
    runs = [["make .venv/.installed", "make demo", "make demo"], ["bash .ci/run"]]
    if a.verilator_only:
        runs.append(["make test RTL_SIMS=verilator"])
    log: list[str] = []
    results = []
    with tempfile.TemporaryDirectory(prefix="llmc-fresh-") as tmp:
        for i, cmds in enumerate(runs):
            clone = Path(tmp) / f"clone{i}"
            _without_icarus(a.remove_icarus, log, Path(tmp))
            _sh(f"git clone -q {ROOT} {clone} && git -C {clone} log --oneline -1", Path(tmp),
                log, tail=1)
            for cmd in cmds:
                rc, dt = _sh(cmd, clone, log, None, tail=14)
                results.append((f"{cmd}  (clone {i})", rc, dt))
    lines = [
        "# Fresh machine: the README's commands on a new clone without Icarus", "",
        f"Commit {head}; {os.cpu_count()}-core {platform.machine()} "
        f"({platform.system()} {platform.release()}), Python {platform.python_version()}. "
        "Written by `python -m bench.fresh_machine"
        + (" --remove-icarus" if a.remove_icarus else "")
        + (" --verilator-only" if a.verilator_only else "") + "`: each clone is fresh (a new "
        ".venv)" + (", made after `apt-get remove -y iverilog`" if a.remove_icarus else "")
        + "; its commands ran in the order listed. The second `make demo` times the tour "
        "alone (warm); `bash .ci/run` includes its install and apt steps.", "",
        "| command | exit | wall s |", "|---|---:|---:|",
        *[f"| `{cmd}` | {rc} | {dt:,.0f} |" for cmd, rc, dt in results],
        "", "## Transcript (last lines of each command)", "", "```", *log, "```", ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fresh_machine.md").write_text("\n".join(lines))
    return 0 if all(rc == 0 for _, rc, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
