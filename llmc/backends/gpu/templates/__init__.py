"""The Triton kernel templates the gpu backend copies into an artifact.

Each file here is a plain Triton module, readable on its own; `emit` writes
the ones an artifact uses under `kernels/` with a header naming the target
and the graph's steps that call them (the GEMM kernels are generated per
epilogue instead: llmc/backends/gpu/gemm.py). Kernels are specialised at
launch by `tl.constexpr` arguments (tile sizes, flags) that the program in
the artifact records.

Under Triton's interpreter (TRITON_INTERPRET=1, no GPU) `tl.dot` of bf16
operands is wrong in triton 3.x, so every kernel that multiplies takes
`DOT_F32`: cast the operands to float32 first (exact for bf16 products).
"""

from importlib.resources import files


def template(kind: str) -> str:
    """The source text of templates/<kind>.py."""
    return files(__package__).joinpath(f"{kind}.py").read_text()
