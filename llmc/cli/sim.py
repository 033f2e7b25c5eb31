"""`llmc sim …`: simulate a GEMM on a target's systolic array from the command line.

    llmc sim gemm --m 512 --n 1024 --k 1024 [--target npu] [--array 32x32] \
        [--dataflow ws] [--sram KB] [--dram-gbps X] [--json] [--trace out.json]

The hardware is the target's device (llmc.hw: a target name, a device key or
a device-file path; default npu); every hardware flag overrides one of its
figures, and the output names the device and the overrides. The command
writes one file, so `--trace FILE` names it (where `-o` names a directory
in the commands that write several). A GEMM whose folds would need more
memory than `llmc.sim.MAX_SIM_BYTES` is refused before anything is
allocated (`llmc.sim.check_gemm_size`).
"""

from __future__ import annotations

import argparse
from typing import Any

from llmc.cli.common import add_json, add_target, print_json
from llmc.errors import UsageError

DEFAULT_TARGET = "npu"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `sim` command and its `gemm` sub-command."""
    sim = sub.add_parser("sim", help="cycle/energy simulation of GEMMs on an accelerator",
                         description="Cycle and energy simulation (llmc.sim).")
    sim.set_defaults(func=lambda args: _no_subcommand(sim))
    inner = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", parser_class=type(sim))
    g = inner.add_parser("gemm", help="simulate C[M×N] = A[M×K]·B[K×N] on an R×C array",
                         description="Simulate C[MxN] = A[MxK]·B[KxN] on the RxC systolic array "
                                     "of a target's device; hardware flags override its figures.")
    g.add_argument("--m", type=int, required=True, help="rows of A and C")
    g.add_argument("--n", type=int, required=True, help="columns of B and C")
    g.add_argument("--k", type=int, required=True, help="reduction dimension")
    add_target(g, default=DEFAULT_TARGET, why="its array and memories are the hardware")
    hw = g.add_argument_group("overrides of the target's figures")
    hw.add_argument("--array", default=None, metavar="RxC", help="array size, e.g. 128x128")
    hw.add_argument("--dataflow", default=None, help="os | ws | is (output-, weight-, "
                                                     "input-stationary)")
    hw.add_argument("--numeric", default=None, help="int or fp MACs")
    hw.add_argument("--in-bits", type=int, default=None, help="operand bits")
    hw.add_argument("--acc-bits", type=int, default=None, help="accumulator bits")
    hw.add_argument("--sram", type=float, default=None, metavar="KB",
                    help="scratchpad size in KB (1 KB = 1024 B)")
    hw.add_argument("--sram-banks", default=None, metavar="N|auto",
                    help="scratchpad banks ('auto': just enough to feed the array)")
    hw.add_argument("--sram-bank-bits", type=int, default=None, metavar="BITS",
                    help="width of a scratchpad bank")
    hw.add_argument("--sram-ports", type=int, default=None, metavar="N",
                    help="ports per scratchpad bank")
    buf = hw.add_mutually_exclusive_group()
    buf.add_argument("--single-buffer", dest="double_buffered", action="store_false",
                     default=None, help="no ping/pong buffers: DMA does not overlap compute")
    buf.add_argument("--double-buffer", dest="double_buffered", action="store_true",
                     default=None, help="ping/pong buffers: DMA overlaps compute")
    hw.add_argument("--dram-gbps", type=float, default=None, metavar="X",
                    help="DRAM bandwidth in GB/s, 'inf' for unlimited (latency still applies; "
                         "add --dram-latency-ns 0 for an ideal memory)")
    hw.add_argument("--dram-latency-ns", type=float, default=None, metavar="NS",
                    help="DRAM latency in ns")
    hw.add_argument("--clock-ghz", type=float, default=None, metavar="GHZ", help="array clock")
    hw.add_argument("--node", type=int, default=None, metavar="NM",
                    help="technology node for energy (llmc/hw/data/node_scaling.json)")
    g.add_argument("--fold-overlap", action="store_true",
                   help="double-buffered PEs: overlap the next fold's preload with this one")
    g.add_argument("--trace", metavar="FILE", default=None,
                   help="write a Chrome/Perfetto trace JSON to FILE (open in ui.perfetto.dev)")
    add_json(g, "the result")
    g.set_defaults(func=_gemm)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _banks(text: str | None) -> int | None | str:
    """--sram-banks: absent (the device's), "auto" (None: ideal) or a count."""
    if text is None:
        return "device"
    if text.strip().lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--sram-banks must be a positive integer or 'auto', got {text!r}") from None


def hardware(args: argparse.Namespace) -> Any:
    """The target's SimHardware with the command line's overrides."""
    from llmc.sim.hardware import from_device

    over = {"array": args.array, "dataflow": args.dataflow, "numeric": args.numeric,
            "in_bits": args.in_bits, "acc_bits": args.acc_bits, "sram_kb": args.sram,
            "sram_bank_bits": args.sram_bank_bits, "sram_ports": args.sram_ports,
            "double_buffered": args.double_buffered, "dram_gbps": args.dram_gbps,
            "dram_latency_ns": args.dram_latency_ns, "clock_ghz": args.clock_ghz,
            "node_nm": args.node}
    banks = _banks(args.sram_banks)
    if banks != "device":
        over["sram_banks"] = banks
    return from_device(args.target, **over)


def _gemm(args: argparse.Namespace) -> int:
    from llmc.hw import target_label
    from llmc.sim import check_gemm_size, simulate_gemm
    from llmc.sim.trace import utilization_summary

    hw = hardware(args)
    check_gemm_size(args.m, args.n, args.k, hw.array, trace=bool(args.trace))
    res = simulate_gemm(args.m, args.n, args.k, hw, fold_overlap=args.fold_overlap,
                        trace=bool(args.trace), name=f"gemm {args.m}x{args.n}x{args.k}")
    if args.trace:
        try:
            res.write_trace(args.trace)
        except OSError as exc:
            raise UsageError(f"cannot write trace {args.trace}: {exc}") from None
    if args.json:
        out = res.to_dict()
        a = hw.array
        out["hardware"] = {"target": target_label(args.target), "device": hw.device,
                           "overrides": list(hw.overrides),
                           "array": f"{a.rows}x{a.cols}", "dataflow": a.dataflow.value,
                           "array_count": hw.array_count, "mac": hw.mac_dtype,
                           "acc": hw.acc_dtype, "sram_kb": hw.sram.kb,
                           "sram_banks": hw.sram.banks, "dram_gbps": hw.dram.gbps,
                           "dram_latency_ns": hw.dram.latency_ns, "clock_ghz": hw.clock_ghz,
                           "node_nm": hw.node_nm}
        if args.trace:
            out["utilization_by_track"] = utilization_summary(res)
        print_json(out)
        return 0
    _print_text(res, hw, args, target_label(args.target))
    return 0


def _print_text(res: Any, hw: Any, args: argparse.Namespace, label: str) -> None:
    d = res.details
    e = res.energy_breakdown_pj
    print(f"GEMM {args.m}x{args.n}x{args.k} on {hw.describe()}"
          + (f" (target {label})" if label != hw.device else ""))
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
