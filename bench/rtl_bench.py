"""RTL simulation speed: simulated cycles per wall second, and build times.

For a 16×16 and a 32×32 output-stationary GEMM core, under Icarus and under
Verilator: build the core (Verilator cold, with its runtime-object cache off,
and warm, with the cache filled), then run one GEMM with the testbench's
per-cycle monitor off, so the simulator runs free between `start` and `done`,
and time that stretch. A and B are loaded and C read back through the
hierarchy (the testbench's backdoor: the port phases would cost max(M·K, K·N)
and M·N more cycles at these sizes). Outputs are still checked and the cycle
count is still compared with `compute_cycles`.

    .venv/bin/python bench/rtl_bench.py        # writes bench/results/rtl.{json,md}

`bench_cores()` compares the output- and weight-stationary standalone cores on
one shape (Verilog lines, lint and yosys time, cells of the core and of the
array alone, cycles, simulated cycles per wall second in each simulator,
operands loaded and C read back through the ports); bench/hnlpu_bench.py puts
it in bench/results/hnlpu.{json,md} (`--gemm-cores`).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmc.hw.array import ArraySpec, compute_cycles  # noqa: E402
from llmc.rtl import GemmCase, build_gemm, core_config, run_gemm  # noqa: E402
from llmc.rtl.tools import find_simulator  # noqa: E402

# (array, GEMM): shapes chosen for ~10k simulated cycles each
POINTS = [
    (ArraySpec(16, 16), GemmCase(128, 128, 128, seed=1)),
    (ArraySpec(32, 32), GemmCase(256, 256, 128, seed=2)),
]
SIMULATORS = ("icarus", "verilator")
RESULTS = ROOT / "bench" / "results"


def bench_point(spec: ArraySpec, case: GemmCase, sim: str, tmp: Path) -> dict:
    """Build (cold, then warm for Verilator) and run one GEMM; timings and checks."""
    cfg = core_config(spec, [case])
    os.environ["LLMC_VERILATOR_CACHE"] = "0"
    cold = build_gemm(cfg, sim, tmp / "cold")
    warm_s = None
    if sim == "verilator":
        del os.environ["LLMC_VERILATOR_CACHE"]
        build_gemm(cfg, sim, tmp / "prime")              # fill the cache if it is empty
        warm_s = build_gemm(cfg, sim, tmp / "warm").seconds
    run = run_gemm(cold, cfg, [case], tmp / "run", monitor=False, backdoor=True)
    r = run.cases[0] if run.cases else None
    return {
        "array": f"{spec.rows}x{spec.cols}",
        "simulator": sim,
        "simulator_version": find_simulator(sim).version,
        "m": case.m, "n": case.n, "k": case.k,
        "passed": run.passed,
        "first_error": run.first_error,
        "compute_cycles": compute_cycles(case.m, case.n, case.k, spec),
        "rtl_cycles": r.rtl_cycles if r else None,
        "sim_cycles": r.sim_cycles if r else None,
        "sim_wall_s": round(r.wall_s, 4) if r else None,
        "cycles_per_s": round(r.sim_cycles / r.wall_s) if r and r.wall_s > 0 else None,
        "pe_cycles_per_s": round(spec.pes * r.sim_cycles / r.wall_s) if r and r.wall_s > 0 else None,
        "build_s": round(cold.seconds, 2),
        "build_warm_s": round(warm_s, 2) if warm_s is not None else None,
        "run_total_s": round(run.sim.seconds, 2),
    }


# OS vs WS: one array and one GEMM (partial tiles in no dimension, so the
# counts compare the dataflows alone); REPEATS cases (seeds) per simulator run
CORE_ARRAY, CORE_CASE, REPEATS = (4, 4), GemmCase(16, 16, 16, seed=3), 4


def bench_cores(tmp: Path) -> list[dict]:
    """One row per dataflow: size, lint, synthesis and simulation of the core."""
    from dataclasses import replace

    from llmc.rtl import generate_core, lint
    from llmc.rtl.synth import synth_array, synth_design

    rows = []
    for df in ("os", "ws"):
        spec = ArraySpec(*CORE_ARRAY, df)
        cases = [replace(CORE_CASE, seed=CORE_CASE.seed + i) for i in range(REPEATS)]
        cfg = core_config(spec, cases)
        design = generate_core(cfg)
        paths = design.write(tmp / df / "lint")
        t0 = time.perf_counter()
        messages = lint(paths, cfg.top)
        lint_s = time.perf_counter() - t0
        core, synth_s = synth_design(design)
        array = synth_array(spec)
        c = CORE_CASE
        row = {"dataflow": df, "array": f"{spec.rows}x{spec.cols}", "m": c.m, "n": c.n, "k": c.k,
               "verilog_lines": sum(text.count("\n") for _, text in design.generated),
               "lint_clean": not messages, "lint_s": round(lint_s, 2), "synth_s": round(synth_s, 2),
               "core_cells": core.cells, "core_flops": core.flops,
               "core_cells_by_type": dict(core.by_type),
               "array_cells": array.cells, "array_flops": array.flops,
               "compute_cycles": compute_cycles(c.m, c.n, c.k, spec),
               "load_cycles": cfg.load_cycles(c.m, c.n, c.k),
               "start_to_done": cfg.start_to_done(compute_cycles(c.m, c.n, c.k, spec)),
               "read_cycles": cfg.read_cycles(c.m, c.n), "sim": {}}
        for sim in SIMULATORS:
            build = build_gemm(cfg, sim, tmp / df / sim)
            run = run_gemm(build, cfg, cases, tmp / df / sim / "run", monitor=False)
            ok = run.passed and all(r.rtl_cycles == row["compute_cycles"]
                                    and r.load_cycles == row["load_cycles"]
                                    and r.read_cycles == row["read_cycles"] for r in run.cases)
            cycles = sum(r.sim_cycles for r in run.cases)
            wall = sum(r.wall_s for r in run.cases)
            row["sim"][sim] = {"passed": ok, "first_error": run.first_error,
                               "build_s": round(build.seconds, 2),
                               "start_to_done_cycles": cycles, "wall_s": round(wall, 4),
                               "cycles_per_s": round(cycles / wall) if wall > 0 else None}
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("dataflow", "core_cells", "array_cells",
                                              "compute_cycles", "synth_s")}), flush=True)
    return rows


def machine() -> dict:
    """Where the numbers come from (the load average matters on a shared box)."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_avg_1m_start": round(os.getloadavg()[0], 2)}


def write_md(data: dict, path: Path) -> None:
    m = data["machine"]
    lines = [
        "# RTL simulation benchmark",
        "",
        "`bench/rtl_bench.py`: one GEMM per (array, simulator) on the generated",
        "output-stationary int8 core, testbench monitor off (the simulator runs free from",
        "`start` to `done`); outputs checked against numpy, cycles against `compute_cycles`.",
        "A and B are loaded and C read back through the testbench's backdoor (the hierarchy),",
        "not the core's ports, which would add max(M·K, K·N) + M·N cycles to each run.",
        "Build = generate + compile from scratch (Verilator: runtime-object cache off);",
        "warm = Verilator with llmc's runtime-object cache filled (only the design compiles).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
        f"1-minute load average {m['load_avg_1m_start']} at start, {m['load_avg_1m_end']} at end "
        "(shared machine: other jobs ran alongside, so these are lower bounds).",
        "",
        "Cycles/s counts every simulated clock from `start` to `done` (compute cycles",
        "+ R + 3); PE-cycles/s multiplies by R·C.",
        "",
        "| array | simulator | GEMM (M,N,K) | compute cycles (RTL = llmc sim?) | start→done cycles "
        "| sim wall s | cycles/s | PE-cycles/s | build s | warm build s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        ok = "yes" if r["passed"] and r["rtl_cycles"] == r["compute_cycles"] else "NO"
        warm = "–" if r["build_warm_s"] is None else f"{r['build_warm_s']:.1f}"
        lines.append(
            f"| {r['array']} | {r['simulator']} | ({r['m']},{r['n']},{r['k']}) "
            f"| {r['rtl_cycles']} ({ok}) | {r['sim_cycles']} | {r['sim_wall_s']:.3g} "
            f"| {r['cycles_per_s']:,} | {r['pe_cycles_per_s']:,} | {r['build_s']:.1f} | {warm} |"
        )
    lines += ["", "Versions: " + "; ".join(sorted({f"{r['simulator_version']}" for r in data["results"]})), ""]
    path.write_text("\n".join(lines))


def main() -> int:
    if "--md-only" in sys.argv:  # re-render rtl.md from an existing rtl.json
        write_md(json.loads((RESULTS / "rtl.json").read_text()), RESULTS / "rtl.md")
        return 0
    data = {"machine": machine(), "results": []}
    with tempfile.TemporaryDirectory(prefix="llmc-rtl-bench-") as tmp:
        for spec, case in POINTS:
            for sim in SIMULATORS:
                t0 = time.perf_counter()
                row = bench_point(spec, case, sim, Path(tmp) / f"{sim}_{spec.rows}x{spec.cols}")
                print(f"{row['array']:>6} {sim:<9} {row['cycles_per_s']:>10,} cycles/s  "
                      f"build {row['build_s']:.1f} s  passed={row['passed']}  "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
                data["results"].append(row)
    data["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rtl.json").write_text(json.dumps(data, indent=1) + "\n")
    write_md(data, RESULTS / "rtl.md")
    return 0 if all(r["passed"] for r in data["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
