"""The import layers of llmc, bottom to top (docs/design.md, "The flow").

A module may import modules of its own layer or of lower layers, never of a
higher one, function-local imports included; the peers of the analysis layer
(cost model, simulator, RTL) import none of each other. `tests/test_layering.py`
reads this table and checks every import in llmc/ against it.

A module belongs to the entry with the longest matching prefix. The `llmc`
command is the package `llmc.cli` (every sub-command's argument parsing),
the top layer.
"""

from __future__ import annotations

# (layer name, module prefixes), lowest first.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("llmc.errors", "llmc.outdir", "llmc.numerics", "llmc.hw",
              "llmc.layers")),
    ("ir", ("llmc.ir",)),
    ("frontend", ("llmc.frontend",)),
    ("passes", ("llmc.passes",)),
    ("analysis", ("llmc.costmodel", "llmc.sim", "llmc.rtl")),
    ("backends", ("llmc.backends",)),
    ("api", ("llmc.api", "llmc", "llmc.dse")),  # "llmc" is llmc/__init__.py alone
    ("cli", ("llmc.cli", "llmc.demo",            # backends' sections of the tour:
             "llmc.backends.gpu.demo", "llmc.backends.neuromorphic.demo")),
)

# Prefixes of one layer that are peers: a module under one never imports
# a module under another.
PEERS: frozenset[str] = frozenset({"llmc.costmodel", "llmc.sim", "llmc.rtl"})


def layer_of(module: str) -> tuple[int, str, str] | None:
    """(layer index, layer name, matching prefix) of a dotted llmc module
    name, or None for a module the table does not place."""
    best: tuple[int, str, str] | None = None
    for i, (name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            under = p != "llmc" and module.startswith(p + ".")
            if (module == p or under) and (
                    best is None or len(p) > len(best[2])):
                best = (i, name, p)
    return best
