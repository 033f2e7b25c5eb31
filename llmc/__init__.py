"""llmc: an ahead-of-time compiler and hardware simulator for LLM accelerators.

The public API: `load_model`, `trace`, `interpret`, `compile`, `run`, `summarize`
and `quantize` (see llmc.api).
"""

from llmc.errors import LlmcError

__version__ = "0.1.0"

_API = ("load_model", "trace", "interpret", "compile", "run", "summarize", "quantize")


def __getattr__(name: str):  # noqa: ANN202 - lazy, so `import llmc` stays light
    if name in _API:
        from llmc import api

        return getattr(api, name)
    raise AttributeError(f"module 'llmc' has no attribute {name!r}")


__all__ = ["LlmcError", "__version__", *_API]
