"""Write an output directory atomically: build it beside, then rename it into place.

Every command that writes a directory (compile, report, plan, rtl) goes
through here, so a failure never leaves half an artifact and a directory
llmc did not write is never replaced."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from llmc.errors import UsageError


def check_dest(dest: str | Path, marker: str) -> Path:
    """Refuse `dest` (UsageError) unless it is absent, empty, or an earlier
    output holding `marker`, and it can be created where it is (no file on
    its path, a writable parent); commands call it before any work."""
    dest = Path(dest)
    if not str(dest).strip():
        raise UsageError("the output directory (-o) is empty; give a directory path")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory; give a directory path for -o")
    _check_parent(dest)
    if dest.is_dir() and any(dest.iterdir()) and not (dest / marker).is_file():
        raise UsageError(
            f"{dest} is a non-empty directory that llmc did not write (no {marker}); "
            "refusing to replace it"
        )
    return dest


def _check_parent(dest: Path) -> None:
    """The nearest existing ancestor of `dest` must be a directory we may write in."""
    parent = dest.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot create {dest}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {dest}: no permission to write in {parent}")
    try:  # permissions are not the whole story (read-only mounts, /proc, root)
        os.rmdir(tempfile.mkdtemp(prefix=".llmc-probe-", dir=parent))
    except OSError as exc:
        raise UsageError(f"cannot create {dest}: {parent}: {exc.strerror}") from None


@contextmanager
def atomic_dir(dest: str | Path, marker: str) -> Iterator[Path]:
    """Yield a fresh directory beside `dest`; on success it replaces `dest`.

    `dest` may not exist, may be empty, or may be an earlier output (it holds
    the file `marker`); anything else — a file, or a directory of other
    things — is refused with a UsageError. On an exception nothing changes.
    """
    dest = check_dest(dest, marker)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as exc:
        raise UsageError(f"cannot create {dest}: {exc.strerror}") from None
    tmp.chmod(0o755)  # mkdtemp makes it private; an output directory is not
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    try:
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.rename(dest, old)
        os.rename(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"cannot write {dest}: {exc.strerror}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


Content = str | bytes | Callable[[Path], object]


def write_dir(dest: str | Path, files: Mapping[str, Content], marker: str) -> Path:
    """Write `files` (name -> text, bytes, or a function writing to a path)
    as the directory `dest`, atomically (see `atomic_dir`; `marker` is one of
    the files, naming the kind of output)."""
    with atomic_dir(dest, marker) as tmp:
        for name, content in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
    return Path(dest)
