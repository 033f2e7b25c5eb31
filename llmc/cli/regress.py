"""`llmc rtl regress`: the generated GEMM cores' cocotb suites on every
simulator and array shape asked for, as tasks on a sweep engine (a local
process pool, or Ray with `--engine ray`), with a JUnit XML report.

    llmc rtl regress --arrays 2x2,4x4 --dataflows os,ws --simulators icarus,verilator -o out/
                     [--engine ray]

Writes DIR/junit.xml and DIR/regress.json (atomically); exit 0 when every
case passes, 1 otherwise.
"""

from __future__ import annotations

import argparse

from llmc.cli.common import add_out, names

MARKER = "regress.json"


def register_regress(rsub: argparse._SubParsersAction) -> None:
    """Add `regress` to `llmc rtl`'s sub-commands."""
    r = rsub.add_parser("regress", help="run the generated cores' cocotb suites on many "
                                        "shapes and simulators, locally or on Ray; JUnit XML")
    r.add_argument("--simulators", default="icarus,verilator", metavar="S1,S2",
                   help="simulators (default icarus,verilator)")
    r.add_argument("--arrays", default="2x2,4x4", metavar="RxC,...",
                   help="array shapes (default 2x2,4x4)")
    r.add_argument("--dataflows", default="os,ws", metavar="os,ws",
                   help="output- and/or weight-stationary cores (default os,ws)")
    r.add_argument("--cases", default="6x5x7,4x4x4", metavar="MxNxK,...",
                   help="GEMMs each core runs (default 6x5x7,4x4x4)")
    r.add_argument("--seed", type=int, default=0, help="seed of the first case's operands")
    r.add_argument("--engine", choices=("local", "ray"), default="local")
    r.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="the Ray cluster to use (default: start a local one)")
    r.add_argument("-j", "--jobs", type=int, default=None,
                   help="worker processes (default: one per core)")
    add_out(r, "junit.xml and regress.json", required=True)
    r.set_defaults(func=_regress)


def _cases(text: str, seed: int) -> list[tuple[int, int, int, int]]:
    from llmc.errors import UsageError

    out = []
    for i, c in enumerate(names(text, "--cases")):
        parts = c.lower().split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise UsageError(f"--cases: {c!r} is not MxNxK (e.g. 6x5x7)")
        out.append((*(int(p) for p in parts), seed + i))
    return out


def _regress(a: argparse.Namespace) -> int:
    import json

    from llmc.dse.engines import make_engine
    from llmc.dse.regress import jobs as make_jobs
    from llmc.dse.regress import junit_xml, passed, regress_chunk
    from llmc.outdir import check_dest, write_dir

    check_dest(a.out, MARKER)
    todo = make_jobs(names(a.simulators, "--simulators"), names(a.arrays, "--arrays"),
                     _cases(a.cases, a.seed), names(a.dataflows, "--dataflows"))
    engine = make_engine(a.engine, a.address, a.jobs)
    try:
        verdicts = [v for rows in engine.run([{"jobs": [j]} for j in todo], regress_chunk)
                    for v in rows]
    finally:
        engine.close()
    verdicts.sort(key=lambda v: (v["simulator"], v["dataflow"], v["array"]))
    ok = passed(verdicts)
    write_dir(a.out, {"junit.xml": junit_xml(verdicts),
                      MARKER: json.dumps({"passed": ok, "jobs": verdicts}, indent=2,
                                         sort_keys=True) + "\n"}, marker=MARKER)
    n = sum(len(v["cases"]) for v in verdicts)
    bad = [f"{v['simulator']} {v['dataflow']} {v['array']}" for v in verdicts
           if v["error"] or not all(c["passed"] for c in v["cases"])]
    print(f"rtl regress on {engine.name}: {len(verdicts)} cores, {n} cases: "
          + ("all passed" if ok else f"FAILED: {', '.join(bad)}"))
    print(f"wrote junit.xml, {MARKER} to {a.out}/")
    return 0 if ok else 1
