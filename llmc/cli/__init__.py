"""The `llmc` command: parses arguments, calls the API, prints.

Each module listed in `_COMMAND_MODULES` adds its sub-commands through a
`register(sub)` function; this file only dispatches and turns `LlmcError`
into one line on stderr with exit code 2. Building the parser imports
argparse-level modules only (the command modules, `llmc.cli.common`,
`llmc.errors`); numpy, torch, numba and the op registry are imported by a
command's function when it runs, so `llmc --help` and `llmc --version` stay
fast. The flags share one vocabulary (`llmc.cli.common`).
"""

from __future__ import annotations

import argparse
import sys

from llmc.cli import core, plan, report, rtl, sim
from llmc.errors import LlmcError

# Modules that add sub-commands, in the order `llmc --help` lists them.
_COMMAND_MODULES = (
    core,      # compile, run, models, targets, show, demo
    report,    # report, devices, sweep
    plan,      # eval, plan, partition
    sim,       # sim gemm
    rtl,       # rtl gemm, rtl synth
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"llmc: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llmc", description="An ahead-of-time compiler and hardware "
                     "simulator for LLM accelerators.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in _COMMAND_MODULES:
        module.register(sub)
    return parser


def _version() -> str:
    from llmc import __version__

    return f"llmc {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LlmcError as exc:
        sys.stderr.write(f"llmc: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("llmc: interrupted\n")
        return 130
