"""The HNLPU backend: hardwired-weight Verilog of a model's decode step
(Metal-Embedding Hardwired Neurons, llmc.rtl.hn), its cocotb testbench run
under Icarus or Verilator, and the system model of a Hardwired-Neurons LPU
(Liu et al. 2025): area, power, energy per token, throughput and NRE."""

from llmc.backends.hnlpu.backend import HnlpuBackend

BACKEND = HnlpuBackend()

__all__ = ["BACKEND", "HnlpuBackend"]
