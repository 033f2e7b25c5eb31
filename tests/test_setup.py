"""The README's set-up: what `make demo`, `make test` and `make bench` run
exists, the system packages are installed the same way by make and CI, and
the tour's output directory stays out of git."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _recipe(target: str) -> str:
    text = (ROOT / "Makefile").read_text()
    m = re.search(rf"^{target}:(.*)\n((?:.+\n)*)", text, re.M)  # up to a blank line
    assert m, f"no {target} target in the Makefile"
    return m.group(1) + "\n" + m.group(2)


def test_make_bench_runs_a_module_that_exists() -> None:
    modules = re.findall(r"-m (bench\.\w+)", _recipe("bench"))
    assert modules, "make bench runs no bench module"
    for mod in modules:
        assert importlib.util.find_spec(mod) is not None, f"make bench runs {mod}, which is missing"


def test_every_bench_listed_by_run_all_exists() -> None:
    from bench.run_all import benches

    for b in benches():
        assert importlib.util.find_spec(b.args[0]) is not None, b


def test_demo_and_test_install_system_packages_like_ci() -> None:
    for target in ("demo", "test"):
        assert "sysdeps" in _recipe(target).split("\n")[0], f"make {target} skips sysdeps"
    assert "bash .ci/sysdeps" in _recipe("sysdeps")
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must run make test"


def test_demo_output_is_ignored_by_git() -> None:
    r = subprocess.run(["git", "check-ignore", "-q", "llmc-demo/report.json"], cwd=ROOT,
                       check=False)
    assert r.returncode == 0, "llmc demo's default output llmc-demo/ is not in .gitignore"
