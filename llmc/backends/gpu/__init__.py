"""The gpu backend (targets a100, h100, h200): generated Triton kernels, one
CUDA C++ GEMV, and a runtime that runs them on an NVIDIA GPU or, without
one, under Triton's interpreter (see backend.py)."""

from llmc.backends.gpu.backend import GpuBackend

BACKEND = GpuBackend()

__all__ = ["BACKEND", "GpuBackend"]
