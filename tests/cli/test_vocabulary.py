"""One vocabulary across the commands, read off the parser itself: `-o/--out`
is a directory, `--json` is on every reporting command, `--target` wherever
hardware matters, `--seq-len` is the prompt length and `--gen-tokens` the
tokens generated; `--output`, `--targets` and a numeric `--prompt` exist
nowhere."""

from __future__ import annotations

import argparse

import pytest

from llmc.cli import build_parser

WRITERS = {"compile", "report", "plan", "sweep", "rtl gemm", "demo"}
REPORTERS = {"compile", "run", "report", "plan", "eval", "sweep", "partition", "show",
             "devices", "targets", "models", "sim gemm", "rtl gemm"}
HARDWARE = {"compile", "report", "partition", "sweep", "sim gemm", "rtl gemm", "rtl synth", "run"}
GENERATE = {"report", "sweep", "run"}
SEQ_LEN = {"compile", "show", "report", "sweep", "plan", "partition", "eval"}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
              ) -> dict[str, argparse.ArgumentParser]:
    """Every leaf command ("compile", "sim gemm", ...) and its parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {" ".join(prefix): parser}
    out: dict[str, argparse.ArgumentParser] = {}
    for action in subs:
        for name, child in action.choices.items():
            out.update(_commands(child, (*prefix, name)))
    return out


COMMANDS = _commands(build_parser())


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_the_walk_finds_every_command() -> None:
    assert WRITERS | REPORTERS | HARDWARE | GENERATE | SEQ_LEN <= set(COMMANDS)
    assert {"sim", "rtl"}.isdisjoint(COMMANDS)  # groups, not commands


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_command_uses_the_old_words(name: str) -> None:
    p = COMMANDS[name]
    flags = {f for a in p._actions for f in a.option_strings}
    assert "--output" not in flags, f"llmc {name}: -o/--out is the directory, --gen-tokens " \
                                    "the tokens generated"
    assert "--targets" not in flags, f"llmc {name}: --target T1,T2 takes a list"
    prompt = _option(p, "--prompt")
    assert prompt is None or (name == "run" and prompt.type is None), \
        f"llmc {name}: a prompt length is --seq-len"
    out = _option(p, "-o")
    assert out is None or (out.option_strings == ["-o", "--out"] and out.dest == "out"), \
        f"llmc {name}: -o is -o/--out"


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_writers_take_out_dir(name: str) -> None:
    out = _option(COMMANDS[name], "--out")
    assert out is not None and out.dest == "out" and out.metavar == "DIR"


@pytest.mark.parametrize("name", sorted(REPORTERS))
def test_reporters_take_json(name: str) -> None:
    flag = _option(COMMANDS[name], "--json")
    assert isinstance(flag, argparse._StoreTrueAction), f"llmc {name} lacks --json"


@pytest.mark.parametrize("name", sorted(HARDWARE))
def test_hardware_commands_take_target(name: str) -> None:
    flag = _option(COMMANDS[name], "--target")
    assert flag is not None and flag.dest == "target", f"llmc {name} lacks --target"
    assert "-t" in flag.option_strings


@pytest.mark.parametrize("name", sorted(GENERATE))
def test_generated_tokens_are_gen_tokens(name: str) -> None:
    flag = _option(COMMANDS[name], "--gen-tokens")
    assert flag is not None and flag.dest == "gen_tokens" and flag.type is int
    if name == "run":
        assert _option(COMMANDS[name], "--max-new-tokens") is flag  # kept as an alias


@pytest.mark.parametrize("name", sorted(SEQ_LEN))
def test_prompt_length_is_seq_len(name: str) -> None:
    flag = _option(COMMANDS[name], "--seq-len")
    assert flag is not None and flag.dest == "seq_len" and flag.type is int


def test_report_keeps_context_and_compare() -> None:
    assert _option(COMMANDS["report"], "--context").type is int
    assert _option(COMMANDS["report"], "--compare") is not None


@pytest.mark.parametrize("name, flags", [
    ("sim gemm", ["--array", "--dataflow", "--sram", "--dram-gbps", "--clock-ghz", "--node"]),
    ("rtl gemm", ["--array", "--dataflow", "--in-bits", "--acc-bits"]),
])
def test_hardware_flags_override_the_target(name: str, flags: list[str]) -> None:
    for f in flags:
        assert _option(COMMANDS[name], f).default is None, f"{name} {f}: an override defaults " \
                                                           "to the target's figure"


def test_sweep_takes_a_target_list() -> None:
    args = build_parser().parse_args(["sweep", "--models", "gpt2", "--target", "a100,h100"])
    assert args.target == "a100,h100"


def test_names_written_out_match_their_sources() -> None:
    """Lists the parser spells out so that building it imports nothing heavy."""
    from llmc.cli import plan, rtl
    from llmc.passes.memplan.planner import METHODS
    from llmc.rtl.tools import SIMULATORS

    assert plan.METHODS == METHODS
    assert rtl.SIMULATORS == SIMULATORS
    assert _option(COMMANDS["rtl gemm"], "--simulator").default == "auto"
