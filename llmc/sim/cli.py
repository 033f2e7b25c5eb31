"""`llmc sim …`: simulate a GEMM on a systolic array from the command line.

    llmc sim gemm --m 512 --n 1024 --k 1024 --array 32x32 --dataflow ws \
        [--sram KB] [--dram-gbps X] [--json] [--trace out.json]
"""

from __future__ import annotations

import argparse
import json

from llmc.errors import UsageError
from llmc.sim.gemm import simulate_gemm
from llmc.sim.hardware import DramSpec, SimHardware, SramSpec
from llmc.sim.systolic import ArraySpec, Dataflow
from llmc.sim.trace import utilization_summary


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `sim` command and its `gemm` sub-command."""
    sim = sub.add_parser("sim", help="cycle/energy simulation of GEMMs on an accelerator",
                         description="Cycle and energy simulation (llmc.sim).")
    sim.set_defaults(func=lambda args: _no_subcommand(sim))
    inner = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", parser_class=type(sim))
    g = inner.add_parser("gemm", help="simulate C[M×N] = A[M×K]·B[K×N] on an R×C array",
                         description="Simulate C[MxN] = A[MxK]·B[KxN] on an RxC systolic array.")
    g.add_argument("--m", type=int, required=True, help="rows of A and C")
    g.add_argument("--n", type=int, required=True, help="columns of B and C")
    g.add_argument("--k", type=int, required=True, help="reduction dimension")
    g.add_argument("--array", default="128x128", help="array size RxC (default 128x128)")
    g.add_argument("--dataflow", default="os",
                   help="os | ws | is (output-, weight-, input-stationary; default os)")
    g.add_argument("--sram", type=float, default=None, metavar="KB",
                   help=f"scratchpad size in KB (default {SramSpec().kb:g})")
    g.add_argument("--sram-banks", type=int, default=None,
                   help="scratchpad banks (default: enough to feed the array)")
    g.add_argument("--single-buffer", action="store_true",
                   help="no ping/pong buffers: DMA does not overlap compute")
    g.add_argument("--dram-gbps", type=float, default=None, metavar="X",
                   help=f"DRAM bandwidth in GB/s, 'inf' for unlimited (latency still applies; "
                        f"add --dram-latency-ns 0 for an ideal memory; default {DramSpec().gbps:g})")
    g.add_argument("--dram-latency-ns", type=float, default=None,
                   help=f"DRAM latency in ns (default {DramSpec().latency_ns:g})")
    g.add_argument("--clock-ghz", type=float, default=1.0, help="array clock (default 1)")
    g.add_argument("--node", type=int, default=7, metavar="NM",
                   help="technology node for energy: 45, 7 or 5 (default 7)")
    g.add_argument("--numeric", default="int", help="int or fp MACs (default int)")
    g.add_argument("--in-bits", type=int, default=8, help="operand bits (default 8)")
    g.add_argument("--acc-bits", type=int, default=32, help="accumulator bits (default 32)")
    g.add_argument("--fold-overlap", action="store_true",
                   help="double-buffered PEs: overlap the next fold's preload with this one")
    g.add_argument("--trace", metavar="PATH", default=None,
                   help="write a Chrome/Perfetto trace JSON (open in ui.perfetto.dev)")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.set_defaults(func=_gemm)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _hardware(args: argparse.Namespace) -> SimHardware:
    spec = ArraySpec.parse(args.array, Dataflow.parse(args.dataflow),
                           in_bits=args.in_bits, acc_bits=args.acc_bits)
    base = SramSpec()
    sram = SramSpec(kb=base.kb if args.sram is None else args.sram, banks=args.sram_banks,
                    double_buffered=not args.single_buffer)
    dram = DramSpec(gbps=DramSpec().gbps if args.dram_gbps is None else args.dram_gbps,
                    latency_ns=DramSpec().latency_ns if args.dram_latency_ns is None
                    else args.dram_latency_ns)
    return SimHardware(array=spec, sram=sram, dram=dram, clock_ghz=args.clock_ghz,
                       node_nm=args.node, numeric=args.numeric)


def _gemm(args: argparse.Namespace) -> int:
    hw = _hardware(args)
    res = simulate_gemm(args.m, args.n, args.k, hw, fold_overlap=args.fold_overlap,
                        trace=bool(args.trace), name=f"gemm {args.m}x{args.n}x{args.k}")
    if args.trace:
        try:
            res.write_trace(args.trace)
        except OSError as exc:
            raise UsageError(f"cannot write trace {args.trace}: {exc}") from None
    if args.json:
        out = res.to_dict()
        out["hardware"] = {"array": args.array, "dataflow": hw.array.dataflow.value,
                           "sram_kb": hw.sram.kb, "dram_gbps": _finite(hw.dram.gbps),
                           "dram_latency_ns": hw.dram.latency_ns, "clock_ghz": hw.clock_ghz,
                           "node_nm": hw.node_nm}
        if args.trace:
            out["utilization_by_track"] = utilization_summary(res)
        print(json.dumps(out, indent=2, default=_json_default))
        return 0
    _print_text(res, hw, args)
    return 0


def _finite(x: float) -> float | str:
    """JSON has no infinity: write it as the string "inf"."""
    return "inf" if x == float("inf") else x


def _json_default(x: object) -> object:
    return str(x)


def _print_text(res, hw: SimHardware, args: argparse.Namespace) -> None:
    d = res.details
    e = res.energy_breakdown_pj
    print(f"GEMM {args.m}x{args.n}x{args.k} on a {d['array']} {d['dataflow']} array "
          f"@ {hw.clock_ghz:g} GHz, {hw.node_nm} nm")
    print(f"  folds        {d['folds']} ({d['rows_folds']}x{d['cols_folds']}, {d['loop_order']})")
    print(f"  cycles       {res.cycles:,}  ({res.time_s * 1e6:,.3f} us)")
    print(f"  compute      {res.compute_cycles:,}  (stall-free; ideal {d['ideal_cycles']:,})")
    print(f"  stalls       {res.stall_cycles:,}  (dram {res.dram_stall_cycles:,}, "
          f"sram {res.sram_stall_cycles:,})")
    print(f"  utilization  {res.utilization:.1%}")
    print(f"  rooflines    compute {res.compute_roofline_cycles:,.0f}, "
          f"memory {res.memory_roofline_cycles:,.0f} cycles")
    print(f"  dram         read {res.actions.dram_read_bytes:,.0f} B, "
          f"write {res.actions.dram_write_bytes:,.0f} B")
    parts = ", ".join(f"{k} {v:,.0f}" for k, v in e.items() if v)
    print(f"  energy       {res.energy_pj:,.0f} pJ  ({parts})")
    if args.trace:
        print(f"  trace        {args.trace}")
