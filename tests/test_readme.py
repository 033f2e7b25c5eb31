"""README.md's examples are what llmc prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from llmc.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def ir_example() -> tuple[list[str], list[str]]:
    """(the `llmc show ... --ir` command the Architecture section names for its
    IR example, the example's lines)."""
    arch = _section(README.read_text(), "Architecture")
    m = re.search(r"`llmc (show [^`]*--ir[^`]*)`.*?```\n(.*?)```", arch, re.S)
    assert m, "the IR example in README.md's Architecture section names its `llmc show` command"
    return shlex.split(m.group(1)), [line for line in m.group(2).splitlines() if line.strip()]


def test_readme_ir_example_is_printed_verbatim(capsys: pytest.CaptureFixture) -> None:
    argv, lines = ir_example()
    assert lines and all(line.startswith("%") for line in lines)
    assert main(argv) == 0
    printed = {line.strip() for line in capsys.readouterr().out.splitlines()}
    missing = [line for line in lines if line not in printed]
    assert not missing, f"`llmc {' '.join(argv)}` does not print: {missing}"


def readme_commands() -> list[list[str]]:
    """Every `llmc ...` command of README.md's sh blocks, as argv (continued
    lines joined; env prefixes, pipes, redirections and comments dropped)."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].split("2>&1")[0].split("|")[0].split("&&")[0]
            words = shlex.split(line)
            for i, w in enumerate(words):
                if w == "llmc" or w.endswith("/llmc"):
                    out.append(words[i + 1:])
                    break
    return out


def test_readme_commands_parse() -> None:
    """The README's commands use flags the CLI has (a renamed flag fails here)."""
    from llmc.cli import build_parser

    cmds = readme_commands()
    assert len(cmds) > 20
    parser = build_parser()
    for argv in cmds:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"README command `llmc {' '.join(argv)}` does not parse ({exc})")
