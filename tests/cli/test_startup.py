"""`llmc --help` and `llmc --version` import no heavy module: building the
parser loads argparse-level modules only, and each command imports what it
needs when it runs (bench/cli_startup.py times it; no test here is timed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "torch", "numba", "rich", "matplotlib", "scipy", "networkx", "pulp",
         "llmc.ir", "llmc.hw", "llmc.api", "llmc.sim", "llmc.rtl", "llmc.passes",
         "llmc.costmodel", "llmc.frontend", "llmc.backends")

PROBE = """
import json, sys
import llmc.cli
try:
    llmc.cli.main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(*argv: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["sim", "gemm", "--help"],
                                  ["compile", "--help"]])
def test_building_the_parser_imports_nothing_heavy(argv: list[str]) -> None:
    loaded = _loaded(*argv)
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"llmc {' '.join(argv)} imported {heavy}"
    assert "llmc.cli.core" in loaded  # the probe did build the parser


def test_python_m_llmc_cli_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "llmc.cli", "--version"], capture_output=True,
                          text=True, timeout=120)
    from llmc import __version__

    assert proc.returncode == 0 and proc.stdout.strip() == f"llmc {__version__}"
