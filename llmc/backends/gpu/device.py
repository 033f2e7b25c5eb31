"""Where the gpu backend's kernels run: a CUDA device, or Triton's interpreter.

`triton_device()` is called before Triton is first imported: with no CUDA
device it sets TRITON_INTERPRET=1 (kernels then run in numpy on the CPU,
which is how CI checks the generated kernels), and it turns a missing
Triton into one UsageError line.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from llmc.errors import UsageError


@dataclass(frozen=True)
class Where:
    device: Any          # torch.device
    interpret: bool      # kernels run under TRITON_INTERPRET=1

    @property
    def dot_f32(self) -> bool:
        """tl.dot of bf16 is wrong in the interpreter: kernels cast to f32 first."""
        return self.interpret


def has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def triton_device() -> Where:
    """The device the kernels run on, with Triton imported (see the module docstring)."""
    import torch

    cuda = has_cuda() and os.environ.get("TRITON_INTERPRET") != "1"
    if not cuda:
        os.environ["TRITON_INTERPRET"] = "1"
        _reimport_interpreted()
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
        if not cuda:
            _no_overflow_checks()
    except ImportError:
        where = "a GPU" if cuda else "no GPU, and the Triton interpreter needs triton too"
        raise UsageError(f"the gpu backend needs Triton (>= 3.7.1) and there is {where}; "
                         "install it with `pip install 'triton>=3.7.1'` (or "
                         "`pip install -e .[gpu]`)") from None
    return Where(torch.device("cuda" if cuda else "cpu"), not cuda)


def _reimport_interpreted() -> None:
    """Triton decides at import whether its own @jit helpers (tl.sum, tl.max,
    ...) are interpreted. When something imported it before TRITON_INTERPRET
    was set (torch.export does), turn those helpers into interpreted ones
    (its native extension cannot be imported twice)."""
    std = sys.modules.get("triton.language.standard")
    if std is None or type(std.sum).__name__ == "InterpretedFunction":
        return
    from triton import knobs
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    knobs.runtime.interpret = True
    for name, mod in list(sys.modules.items()):
        if mod is not None and (name == "triton.language" or name.startswith("triton.language.")):
            for key, value in list(vars(mod).items()):
                if isinstance(value, JITFunction):
                    setattr(mod, key, InterpretedFunction(value.fn))


def _no_overflow_checks() -> None:
    """The interpreter checks every integer add and multiply for overflow
    (a debug option, off on a GPU unless debugging), which doubles a kernel's
    time there; run it as a GPU would."""
    import functools

    from triton.runtime import interpreter

    opts = interpreter.InterpreterOptions
    if not isinstance(opts, functools.partial):
        interpreter.InterpreterOptions = functools.partial(opts, sanitize_overflow=False)
