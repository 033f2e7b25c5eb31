"""The neuromorphic backend: event-based LMs (EGRU, LIF) mapped onto SpiNNaker 2
PEs, simulated event by event, exported to NIR (see backend.py)."""

from llmc.backends.neuromorphic.backend import NeuromorphicBackend

BACKEND = NeuromorphicBackend()

__all__ = ["BACKEND", "NeuromorphicBackend"]
