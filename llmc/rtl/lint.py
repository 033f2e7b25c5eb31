"""`verilator --lint-only -Wall` on a design: every generated design must be clean."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from llmc.errors import LlmcError
from llmc.rtl.tools import find_verilator, tool_env

_MESSAGE = re.compile(r"^%(Warning|Error)")


class LintError(LlmcError):
    """A design with Verilator lint warnings or errors."""


def lint(sources: Sequence[str | Path], top: str) -> list[str]:
    """The `%Warning`/`%Error` lines of `verilator --lint-only -Wall` (empty: clean)."""
    tool = find_verilator()
    cmd = [str(tool.executable), "--lint-only", "-Wall", "--top-module", top]
    cmd += [str(Path(s).resolve()) for s in sources]
    with tool_env(tool.env):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    messages = [ln for ln in (out.stdout + out.stderr).splitlines() if _MESSAGE.match(ln)]
    if out.returncode != 0 and not messages:
        messages = [f"%Error: verilator exited with {out.returncode}: {out.stderr.strip()}"]
    return [m for m in messages if not m.startswith("%Error: Exiting due to")]


def check_lint(sources: Sequence[str | Path], top: str) -> None:
    """LintError listing every message unless the design lints clean."""
    messages = lint(sources, top)
    if messages:
        shown = "\n".join(messages[:20])
        raise LintError(f"{top}: {len(messages)} Verilator lint message(s):\n{shown}")
