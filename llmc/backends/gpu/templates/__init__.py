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

A Triton helper that several templates call lives once, in a fragment
(a file named with a leading underscore, never an artifact's file itself);
a template imports it (`from llmc.backends.gpu.templates._kv_tile import
...`), and `template` replaces that import line by the fragment's code from
its first `@triton.jit` on, so each generated file stays self-contained.
"""

from importlib.resources import files

FRAGMENT = f"from {__package__}._"     # a template's import of a fragment


def _source(name: str) -> str:
    return files(__package__).joinpath(f"{name}.py").read_text()


def template(kind: str) -> str:
    """The source text of templates/<kind>.py, each import of a fragment
    replaced by the fragment's code."""
    out = []
    for line in _source(kind).splitlines(keepends=True):
        if line.startswith(FRAGMENT):
            frag = _source(line[len("from ") + len(__package__) + 1:].split()[0])
            out.append("\n" + frag[frag.index("@triton.jit"):])
        else:
            out.append(line)
    return "".join(out)
