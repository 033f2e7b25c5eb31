"""RTL regressions as tasks: the generated GEMM cores' cocotb suites, on
every simulator and array shape asked for, run on a sweep engine.

A job is (simulator, dataflow, array shape, GEMM cases); a worker builds the core into
its own temporary directory with llmc.rtl's public API (`core_config`,
`build_gemm`, `run_gemm`), runs the suite (bit-exact against numpy,
cycle-exact against llmc's simulator) and returns a plain verdict per case.
`junit_xml` turns the verdicts into one JUnit XML report (a testsuite per
simulator, a testcase per dataflow, array shape and case) that CI systems read.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from llmc.errors import LlmcError, UsageError


def jobs(simulators: Sequence[str], arrays: Sequence[str], cases: Sequence[tuple[int, ...]],
         dataflows: Sequence[str] = ("os",)) -> list[dict]:
    """One job per simulator, dataflow and array shape, each running every
    case (m, n, k, seed)."""
    from llmc.hw.array import ArraySpec, Dataflow
    from llmc.rtl.config import check_rtl_dataflow
    from llmc.rtl.tools import check_simulator_name

    for s in simulators:
        if check_simulator_name(s) == "auto":
            raise UsageError("name the simulators (icarus, verilator), not auto")
    flows = [check_rtl_dataflow(Dataflow.parse(d)).value for d in dataflows]
    for a in arrays:
        ArraySpec.parse(a)
    if not cases:
        raise UsageError("no GEMM cases given")
    return [{"simulator": s, "dataflow": d, "array": a, "cases": [list(c) for c in cases]}
            for s, d, a in itertools.product(simulators, flows, arrays)]


def regress_chunk(chunk: dict) -> list[dict]:
    """Verdicts of `chunk["jobs"]` (what an engine runs on a worker)."""
    return [run_job(j) for j in chunk["jobs"]]


def run_job(job: dict) -> dict:
    """Build and run one core's suite; a verdict per case, or the job's error."""
    from llmc.hw.array import ArraySpec
    from llmc.rtl import GemmCase, build_gemm, core_config, run_gemm

    t0 = time.perf_counter()
    flow = job["dataflow"]
    out = {"simulator": job["simulator"], "dataflow": flow, "array": job["array"],
           "error": None, "cases": []}
    tmp = tempfile.mkdtemp(prefix="llmc-regress-")
    try:
        cases = [GemmCase(m, n, k, seed=seed) for m, n, k, seed in job["cases"]]
        cfg = core_config(ArraySpec.parse(job["array"], flow), cases)
        run = run_gemm(build_gemm(cfg, job["simulator"], f"{tmp}/build"), cfg, cases,
                       f"{tmp}/run")
        if run.problem:
            out["error"] = run.problem
        for c in run.cases:
            out["cases"].append({
                "name": f"gemm_{c.case.m}x{c.case.n}x{c.case.k}_seed{c.case.seed}",
                "passed": c.passed, "rtl_cycles": c.rtl_cycles,
                "expected_cycles": c.expected_cycles, "wall_s": round(c.wall_s, 3),
                "errors": list(c.errors)})
    except LlmcError as e:
        out["error"] = str(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def passed(verdicts: Sequence[dict]) -> bool:
    return all(v["error"] is None and v["cases"] and all(c["passed"] for c in v["cases"])
               for v in verdicts)


def junit_xml(verdicts: Sequence[dict]) -> str:
    """JUnit XML: a testsuite per simulator, a testcase per dataflow, array shape and case."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for sim in sorted({v["simulator"] for v in verdicts}):
        mine = sorted((v for v in verdicts if v["simulator"] == sim),
                      key=lambda v: (v["dataflow"], v["array"]))
        cases = []
        for v in mine:
            cls = quoteattr(f"llmc.rtl.gemm.{sim}.{v['dataflow']}.{v['array']}")
            if v["error"] is not None and not v["cases"]:
                cases.append(f"    <testcase classname={cls} name=\"build\" "
                             f"time=\"{v['seconds']}\"><error message={quoteattr(v['error'])}/>"
                             "</testcase>")
            for c in v["cases"]:
                body = "" if c["passed"] else \
                    f"<failure message={quoteattr('; '.join(c['errors']) or 'failed')}/>"
                cases.append(f"    <testcase classname={cls} name={quoteattr(c['name'])} "
                             f"time=\"{c['wall_s']}\">{body}</testcase>")
        fails = sum(c.count("<failure") for c in cases)
        errors = sum(c.count("<error") for c in cases)
        lines.append(f"  <testsuite name={quoteattr('rtl-' + sim)} tests=\"{len(cases)}\" "
                     f"failures=\"{fails}\" errors=\"{errors}\">")
        lines += cases
        lines.append("  </testsuite>")
    lines.append("</testsuites>")
    return "\n".join(lines) + "\n"
