"""llmc.costmodel: hardware database, roofline, energy and long-context reports.

How fast, how much memory, how much energy, and why, before anyone buys or
builds hardware:

- `get_device(name)` / `list_devices()` / `load_device_file(path)`: devices as
  data (llmc/hw/devices/*.toml, every figure with its source; a user
  adds one as a file, see `database`).
- `build_report(prefill_graph, decode_graph, config, target, ...)`: both
  phases' roofline per op, energy, memory and the long-context analysis;
  `Report.to_json()`, `.to_markdown()`, `.to_html()`, `.files()`, `.write(dir)`.
- `analyze(config, device, precision)`: Fu 2024's four bounds over context
  length; `formulas`: the closed forms behind it.
- `synth_workload(config, phase, ...)`: a zoo model's ops from its config,
  without torch.export; `from_graph(graph, ...)`: the ops of any graph.
"""

from llmc.costmodel import formulas
from llmc.costmodel.longctx import LongContext, Point, analyze
from llmc.costmodel.precision import Precision, parse_quant
from llmc.costmodel.report import Report, build_report
from llmc.costmodel.roofline import OpTiming, PhaseResult, run_phase, time_op
from llmc.costmodel.synth import synth_graph, synth_workload
from llmc.costmodel.workload import OpRecord, Workload, from_graph
from llmc.hw.database import get_device, list_devices, load_device_file
from llmc.hw.device import ComputeUnit, Device, Figure, Link, MemoryLevel

__all__ = [
    "ComputeUnit", "Device", "Figure", "Link", "LongContext", "MemoryLevel", "OpRecord",
    "OpTiming", "PhaseResult", "Point", "Precision", "Report", "Workload", "analyze",
    "build_report", "formulas", "from_graph", "get_device", "list_devices", "load_device_file",
    "parse_quant", "run_phase", "synth_graph", "synth_workload", "time_op",
]
