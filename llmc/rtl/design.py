"""`Design`: a generated top module, its generated files and the blocks it uses."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from llmc.rtl.blocks import block_path


@dataclass(frozen=True)
class Design:
    """A complete Verilog design ready to lint, simulate or synthesise.

    `generated` holds (file name, text) pairs, each file one module named like
    the file; `blocks` names the hand-written modules (llmc/rtl/verilog) it
    instantiates. Sources are listed blocks first, the top module last.
    """

    top: str
    generated: tuple[tuple[str, str], ...]
    blocks: tuple[str, ...]

    def write(self, directory: str | Path) -> list[Path]:
        """Write every source into `directory` (created); return them in compile order."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.blocks:
            dst = out / f"{name}.v"
            shutil.copyfile(block_path(name), dst)
            paths.append(dst)
        for fname, text in self.generated:
            dst = out / fname
            dst.write_text(text)
            paths.append(dst)
        return paths

    def text(self, fname: str) -> str:
        """The text of the generated file `fname`."""
        for name, text in self.generated:
            if name == fname:
                return text
        raise KeyError(fname)
