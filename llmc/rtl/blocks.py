"""The hand-written, parameterised Verilog building blocks shipped with llmc.

They live as `.v` files in `llmc/rtl/verilog/` (one module per file, named
after the module) and are linted and tested like generated code:

| block          | what it is                                                  |
|----------------|-------------------------------------------------------------|
| llmc_mac_os    | output-stationary PE: int MAC into the sum it keeps         |
| llmc_mac_ws    | weight-stationary PE: stationary weight, partial sum down   |
| llmc_skew      | DEPTH-stage delay line that skews operands into the array   |
| llmc_drain     | column output drain: parallel-load the sums, shift them out |
| llmc_popcount  | number of ones among N inputs (a Hardwired Neuron's group)  |
| llmc_hn_neuron | a Hardwired Neuron's bit-plane sum, its codes as parameters |
"""

from __future__ import annotations

from pathlib import Path

from llmc.errors import UsageError

BLOCKS_DIR = Path(__file__).resolve().parent / "verilog"


def block_names() -> list[str]:
    """Names of the hand-written blocks, sorted."""
    return sorted(p.stem for p in BLOCKS_DIR.glob("*.v"))


def block_path(name: str) -> Path:
    """Path of the block `name` (a module name such as "llmc_mac_os")."""
    path = BLOCKS_DIR / f"{name}.v"
    if not path.is_file():
        known = ", ".join(block_names())
        raise UsageError(f"no hand-written Verilog block {name!r}; known blocks: {known}")
    return path
