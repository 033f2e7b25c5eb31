"""The edge NPU backend: integer-only graphs lowered to a documented
instruction set (docs/npu-isa.md), run bit-exactly on an instruction-set
simulator that reports cycles, stalls, utilisation and energy.

Modules: isa (the opcode table, descriptors, programs), binary (program.npu
and its checks), asm (program.s: listing and assembler), layout (where
tensors live), lower (IR -> program), iss (the simulator), ref (plain-Python
reference of every instruction), trace (Perfetto timeline), backend (emit,
run), demo.
"""

from llmc.backends.npu.backend import NpuBackend

BACKEND = NpuBackend()

__all__ = ["BACKEND", "NpuBackend"]
