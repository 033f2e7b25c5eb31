"""What the sub-commands share: the flags of one vocabulary, JSON on stdout,
sizes, a progress bar.

The vocabulary, the same in every command that has the idea:

- `-o/--out DIR`   the directory a command writes (never a token count);
- `--json`         the command's result as one JSON object on stdout, and
                   nothing else on stdout;
- `--target T`     a target name, a device key or a device-file path (as
                   `llmc.hw.database.get_device` reads it); `--target T1,T2`
                   where a command takes several; hardware flags override
                   the target's figures;
- `--seq-len N`    the prompt (sequence) length; `--context N` the KV length
                   a decode step reads; `--gen-tokens N` tokens generated;
- `--batch N`      sequences per step.

The parser is built from these helpers on every `llmc` call, so this module
imports only the standard library and `llmc.errors`: a command imports what
it needs inside its own function, when it runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llmc.errors import UsageError

TARGET_HELP = "a target (a100, h100, npu, ...: llmc targets), a device key (llmc devices) " \
              "or a device file"


def add_out(p: argparse.ArgumentParser, what: str, *, required: bool = False,
            default: str | None = None) -> None:
    """`-o/--out DIR`: the directory the command writes `what` into."""
    p.add_argument("-o", "--out", metavar="DIR", required=required, default=default,
                   help=f"directory to write {what} into"
                        + (f" (default {default})" if default else ""))


def add_json(p: argparse.ArgumentParser, what: str) -> None:
    """`--json`: print `what` as one JSON object, and nothing else, on stdout."""
    p.add_argument("--json", action="store_true",
                   help=f"print {what} as one JSON object on stdout (nothing else)")


def add_target(p: argparse.ArgumentParser, *, required: bool = False, default: str | None = None,
               many: bool = False, why: str = "") -> None:
    """`--target/-t`: one target (or, with `many`, a comma-separated list)."""
    metavar = "T1,T2,..." if many else "TARGET"
    text = ("comma-separated targets: each " if many else "") + TARGET_HELP
    p.add_argument("--target", "-t", metavar=metavar, required=required, default=default,
                   help=text + (f"; {why}" if why else "")
                   + (f" (default {default})" if default else ""))


def add_seq_len(p: argparse.ArgumentParser, default: int | None, what: str) -> None:
    p.add_argument("--seq-len", type=int, default=default, metavar="N", help=what)


def add_batch(p: argparse.ArgumentParser, default: int = 1, what: str = "sequences per step"
              ) -> None:
    p.add_argument("--batch", type=int, default=default, metavar="N",
                   help=f"{what} (default {default})")


def add_gen_tokens(p: argparse.ArgumentParser, default: int, *aliases: str) -> None:
    p.add_argument("--gen-tokens", *aliases, dest="gen_tokens", type=int, default=default,
                   metavar="N", help=f"tokens to generate (default {default})")


def add_trace_shape(p: argparse.ArgumentParser, weights: tuple[str, ...] | None = None) -> None:
    """The shape of a traced phase: --phase, --seq-len, --batch (and --weights)."""
    p.add_argument("--phase", choices=("prefill", "decode"), default="prefill")
    add_seq_len(p, None, "prompt length (prefill) / KV-cache length (decode); "
                         "default min(128, the model's context)")
    add_batch(p)
    if weights:
        p.add_argument("--weights", choices=weights, default="auto",
                       help="auto: real weights when available, else shape-only")


def print_json(obj: Any) -> None:
    """`obj` as JSON on stdout: sorted keys, infinities as the string "inf"."""
    sys.stdout.write(json.dumps(_finite(obj), indent=2, sort_keys=True, default=str) + "\n")


def _finite(x: Any) -> Any:
    """JSON has no infinity or NaN: write them as strings."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def names(text: str, flag: str) -> list[str]:
    """Comma-separated names, none empty."""
    out = [x.strip() for x in text.split(",")]
    if not all(out):
        raise UsageError(f"{flag} {text!r}: empty name")
    return out


def ints(text: str, flag: str) -> list[int]:
    """Comma-separated integers."""
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated integers, got {text!r}") from None


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
          "gib": 2**30}


def parse_size(text: str, what: str = "--arena") -> int:
    """Bytes from "1048576", "64MiB", "1.5 GB" (KiB/MiB/GiB are powers of 2)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise UsageError(f"{what}: cannot read {text!r} as a size (bytes, or a number with "
                         "KB, MB, GB, KiB, MiB or GiB)")
    n = float(m.group(1)) * _UNITS[unit]
    if n != int(n) or n <= 0:
        raise UsageError(f"{what}: {text!r} is not a positive whole number of bytes")
    return int(n)


def fmt_bin(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n:,.0f} B"


@contextmanager
def progress(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr (none when stderr is not a terminal); yields step(label)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    out = console(stderr=True)
    if not out.is_terminal:  # a log or a pipe gets no bar (and no stray newline)
        yield lambda label: None
        return
    with Progress(TextColumn("{task.description:<20}"), BarColumn(), TimeElapsedColumn(),
                  transient=True, console=out) as bar:
        task = bar.add_task("", total=total)
        started = [False]

        def step(label: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=label)

        yield step
        bar.update(task, completed=total)


def console(stderr: bool = False):  # noqa: ANN201 - rich.console.Console, imported lazily
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)
