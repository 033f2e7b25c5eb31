"""One exception family for everything a user can get wrong.

The CLI turns any `LlmcError` into one line on stderr and exit code 2; any
other exception reaching the user is a bug.
"""

from __future__ import annotations


class LlmcError(Exception):
    """Base of every error llmc reports to a user: what, where, what to do."""


class UsageError(LlmcError):
    """Bad command-line or API arguments (unknown target, bad sizes, ...)."""


class ModelError(LlmcError):
    """A model that cannot be found, loaded or built."""


class UnsupportedOpError(LlmcError):
    """The frontend met operators it has no mapping for (all are listed)."""


class IRError(LlmcError):
    """An IR graph that breaks an invariant, or text that does not parse."""


class NumericsError(LlmcError):
    """Two numerical results that should agree do not."""


class ToolMissingError(LlmcError):
    """An external tool (an HDL simulator, a solver) is not installed."""
