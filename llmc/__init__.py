"""llmc: an ahead-of-time compiler and hardware simulator for LLM accelerators.

The public API: `load_model`, `trace`, `interpret`, `compile`, `run` (see
llmc.api) and `quantize` (llmc.passes.quant).
"""

from llmc.errors import LlmcError

__version__ = "0.1.0"

_API = ("load_model", "trace", "interpret", "compile", "run", "summarize", "quantize")


def __getattr__(name: str):  # noqa: ANN202 - lazy, so `import llmc` stays light
    if name in _API:
        from llmc import api
        from llmc.frontend.loader import load_model

        if name == "quantize":
            from llmc.passes.quant import quantize

            return quantize
        return load_model if name == "load_model" else getattr(api, name)
    raise AttributeError(f"module 'llmc' has no attribute {name!r}")


__all__ = ["LlmcError", "__version__", *_API]
