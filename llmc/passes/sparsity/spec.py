"""The `--sparsity` spec.

    0.5              unstructured magnitude pruning, 50 % of each weight zero
    0.5:wanda        ... chosen by |w| * ||x_j|| on calibration data (Wanda)
    0.5:sparsegpt    ... one-shot error-compensated (SparseGPT)
    2:4              2:4 structured (2 of every 4 input weights kept), magnitude
    2:4:wanda        2:4 by Wanda's score
    2:4:sparsegpt    2:4, error-compensated (SparseGPT)
    act:0.6          FFN activation sparsity: channel-wise thresholds calibrated
                     so that 60 % of the down projection's input channels are zero

Weights pruned: every `linear` with a weight param, except an output head
(a linear whose result is a graph output) and weights tied to an embedding,
as SparseGPT and Wanda prune the transformer blocks only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmc.errors import UsageError

METHODS = ("magnitude", "wanda", "sparsegpt")
USAGE = ("--sparsity takes RATIO[:METHOD] (e.g. 0.5, 0.5:sparsegpt), 2:4[:METHOD] "
         "(e.g. 2:4:sparsegpt) or act:RATIO (e.g. act:0.6); METHOD is one of "
         + ", ".join(METHODS))


@dataclass(frozen=True)
class SparsitySpec:
    """kind "weight" (pattern "2:4" or "unstructured", ratio = zero fraction)
    or "act" (ratio = target fraction of zeroed FFN channels)."""

    kind: str
    pattern: str
    ratio: float
    method: str

    def __str__(self) -> str:
        if self.kind == "act":
            return f"act:{self.ratio:g}"
        head = "2:4" if self.pattern == "2:4" else f"{self.ratio:g}"
        return head if self.method == "magnitude" else f"{head}:{self.method}"

    @property
    def needs_calibration(self) -> bool:
        return self.kind == "act" or self.method != "magnitude"


_NM = re.compile(r"(\d+):(\d+)(?::(\w+))?")
_RATIO = re.compile(r"(?:unstructured:)?([-+0-9.eE]+)(?::(\w+))?")
_ACT = re.compile(r"act:([-+0-9.eE]+)")


def _ratio(text: str, what: str) -> float:
    try:
        r = float(text)
    except ValueError:
        raise UsageError(f"--sparsity: {what} {text!r} is not a number. {USAGE}") from None
    if not 0 < r < 1:
        raise UsageError(f"--sparsity: {what} must be strictly between 0 and 1, got {text}")
    return r


def _method(name: str | None) -> str:
    name = name or "magnitude"
    if name not in METHODS:
        raise UsageError(f"--sparsity: unknown method {name!r} (known: {', '.join(METHODS)})")
    return name


def parse_sparsity_spec(spec: str) -> SparsitySpec:
    """Parse a --sparsity spec; UsageError on anything malformed."""
    text = spec.strip()
    if m := _ACT.fullmatch(text):
        return SparsitySpec("act", "act", _ratio(m[1], "activation sparsity"), "chess")
    if m := _NM.fullmatch(text):
        if (m[1], m[2]) != ("2", "4"):
            raise UsageError(f"--sparsity: only the 2:4 pattern is supported (what sparse "
                             f"tensor cores run), got {m[1]}:{m[2]}")
        return SparsitySpec("weight", "2:4", 0.5, _method(m[3]))
    if m := _RATIO.fullmatch(text):
        return SparsitySpec("weight", "unstructured", _ratio(m[1], "the ratio"), _method(m[2]))
    raise UsageError(f"--sparsity: cannot read {spec!r}. {USAGE}")
