"""llmc: an ahead-of-time compiler and hardware simulator for LLM accelerators."""

from llmc.errors import LlmcError

__version__ = "0.1.0"

__all__ = ["LlmcError", "__version__"]
