"""The NPU's instruction timeline as Chrome/Perfetto trace-event JSON.

One process per phase, one track per unit (array, vector, dma); each event
is one executed instruction, named by its mnemonic, with the comment the
lowering gave it (op and layer) in its args. Open the file in
https://ui.perfetto.dev or chrome://tracing. Times are microseconds at the
NPU's clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from llmc.backends.npu.iss import Stats

TRACKS = {1: "array", 2: "vector", 3: "dma"}
MAX_EVENTS = 50_000  # per phase; a longer run keeps its first events and says so


def trace_json(runs: Mapping[str, Stats]) -> str:
    """The trace of the runs by phase name (each Stats run with trace=True)."""
    events: list[dict] = []
    for pid, (phase, stats) in enumerate(runs.items(), 1):
        events.append({"name": "process_name", "ph": "M", "pid": pid,
                       "args": {"name": f"npu {phase}"}})
        for tid, name in TRACKS.items():
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"name": name}})
        kept = stats.events[:MAX_EVENTS]
        events += [dict(e, pid=pid) for e in kept]
        if len(stats.events) > len(kept):
            events.append({"name": f"{len(stats.events) - len(kept)} more instructions not "
                                   "shown", "ph": "i", "pid": pid, "tid": 1, "s": "p",
                           "ts": kept[-1]["ts"] + kept[-1]["dur"]})
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}, indent=None,
                      separators=(",", ":")) + "\n"
