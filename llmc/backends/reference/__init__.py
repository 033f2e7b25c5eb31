"""The reference backend: the optimised IR as text and its weights, run on
the IR interpreter (the golden model). Targets whose own backend is not
built yet compile and run on it."""

from llmc.backends.reference.backend import ReferenceBackend

BACKEND = ReferenceBackend()

__all__ = ["BACKEND", "ReferenceBackend"]
