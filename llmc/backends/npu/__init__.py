"""The edge NPU backend: integer-only graphs lowered to a documented
instruction set (docs/npu-isa.md), run bit-exactly on an instruction-set
simulator that reports cycles, stalls, utilisation and energy.

Modules: isa (the opcode table, descriptors, programs), binary (program.npu
and its checks), asm (program.s: listing and assembler), layout (where
tensors live), fit (row tiles and the arena bound of a phase that does not
fit the scratchpad), lower (IR -> program; lower_linear and lower_attention
render int_linear and int_attention, spills the plan's spills), iss (the
simulator), ref (plain-Python reference of every instruction), trace
(Perfetto timeline), backend (fit, emit, run), demo.
"""

from llmc.backends.npu.backend import NpuBackend

BACKEND = NpuBackend()

__all__ = ["BACKEND", "NpuBackend"]
