"""The neuron cores in Verilog (lif_core.v, egru_core.v) and their cocotb run.

    run_core("lif", "icarus", build_dir)  -> llmc.rtl.runner.SimRun
    lint_core("egru")                      -> Verilator -Wall messages ([] = clean)

Both reuse llmc.rtl's runner and lint helpers; the testbench (tb_neuron.py)
checks the core bit-exactly against llmc/backends/neuromorphic/fixed.py.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
CORES = ("lif", "egru")


def source(core: str) -> Path:
    return HERE / f"{core}_core.v"


def lint_core(core: str) -> list[str]:
    from llmc.rtl.lint import lint

    return lint([source(core)], f"{core}_core")


def run_core(core: str, simulator: str, build_dir: str | Path, cases: int = 200,
             seed: int = 0, vectors: list[dict[str, int]] | None = None
             ):  # noqa: ANN201 - a llmc.rtl.runner.SimRun
    """Build the core and run its testbench: `cases` seeded random operand
    sets, after `vectors` (operands the fixed-point simulator recorded)."""
    import json

    from llmc.rtl.runner import run_cocotb

    env = {"NEURON_CORE": core, "NEURON_CASES": str(cases), "NEURON_SEED": str(seed)}
    if vectors:
        path = Path(build_dir).resolve() / "vectors.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(vectors))
        env["NEURON_VECTORS"] = str(path)
    return run_cocotb([source(core)], f"{core}_core", "llmc.backends.neuromorphic.rtl.tb_neuron",
                      simulator, build_dir, extra_env=env)
