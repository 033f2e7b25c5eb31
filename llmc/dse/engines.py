"""Where sweep points run: a local process pool, or tasks on a Ray cluster.

An engine takes chunks (plain dicts: points and their device files' text)
and a task function (`evaluate_chunk` by default; `llmc.dse.regress` runs RTL
suites the same way) and yields each chunk's rows as soon as it finishes, in whatever order they
finish; the caller keys rows by point hash, so order and retries cannot
change a table. Both engines run `llmc.dse.evaluate.evaluate_chunk`, which a
worker imports from its own llmc: nothing is pickled but plain data and a
reference to that function.

Failures: a local worker process that dies breaks the pool; the chunks not
yet back are run again in a fresh pool (up to RETRIES times). On Ray a task
whose worker or node dies is retried by Ray (`max_retries`) and, should that
run out, resubmitted by the driver (up to RETRIES times).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from llmc.dse.evaluate import evaluate_chunk
from llmc.errors import UsageError

RETRIES = 3
Task = Callable[[dict], list[dict]]   # a module-level function a worker can import
RAY_INSTALL = "pip install 'llmc[ray]' (or: pip install 'ray>=2.60')"
CONNECT_TIMEOUT_S = 3.0


class LocalEngine:
    """Worker processes on this machine (`jobs`; default one per core)."""

    name = "local"

    def __init__(self, jobs: int | None = None) -> None:
        if jobs is not None and jobs <= 0:
            raise UsageError(f"--jobs must be positive, got {jobs}")
        self.workers = jobs or os.cpu_count() or 1

    def run(self, chunks: Sequence[dict], fn: Task = evaluate_chunk) -> Iterator[list[dict]]:
        if self.workers == 1:
            for c in chunks:
                yield fn(c)
            return
        pending = dict(enumerate(chunks))
        for _ in range(RETRIES + 1):
            try:
                yield from self._pool(pending, fn)
                return
            except BrokenProcessPool:
                continue  # a worker died: run what is not back in a fresh pool
        raise UsageError(f"local workers died {RETRIES + 1} times; {len(pending)} chunks of "
                         "points not computed (rerun to resume)")

    def _pool(self, pending: dict[int, dict], fn: Task) -> Iterator[list[dict]]:
        warm_imports()  # forked workers start with what the parent has imported
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            futs = {pool.submit(fn, c): i for i, c in pending.items()}
            while futs:
                done, _ = wait(futs, return_when=FIRST_COMPLETED)
                for f in done:
                    rows = f.result()
                    del pending[futs.pop(f)]
                    yield rows

    def close(self) -> None:
        pass


def warm_imports() -> None:
    """Import what evaluating a point needs (the cost model, the zoo, the
    simulator: about a second), once, in the process that forks workers."""
    import llmc.costmodel.report  # noqa: F401
    import llmc.frontend.zoo.config  # noqa: F401
    import llmc.sim  # noqa: F401


def import_ray():  # noqa: ANN201 - the ray module
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray needs Ray, which is not installed: {RAY_INSTALL}"
                         ) from None
    return ray


def _reachable(address: str) -> None:
    """Refuse, within CONNECT_TIMEOUT_S, a HOST:PORT nothing listens on."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected auto or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(f"no Ray cluster at {address}: {exc.strerror or exc}; start one with "
                         "`ray start --head` or check --address") from None


class RayEngine:
    """Ray tasks on an existing cluster (`address`: "auto" or HOST:PORT), on
    the cluster this process is already connected to, or on a local one
    started here (`jobs` CPUs) and stopped at close()."""

    name = "ray"

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        ray = import_ray()
        self.ray, self._owned = ray, False
        if not ray.is_initialized():
            if address not in (None, "auto"):
                _reachable(address)
            try:  # "local": a new instance, never a cluster someone else started here
                ray.init(address=address or "local", num_cpus=jobs if address is None else None,
                         include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a new local cluster"
                raise UsageError(f"cannot connect to Ray at {where}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else exc!r}"
                                 ) from None
            self._owned = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote: dict[Task, object] = {}
        self._task = self._remote_of(evaluate_chunk)

    def _remote_of(self, fn: Task):  # noqa: ANN202 - a ray RemoteFunction
        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(max_retries=RETRIES, retry_exceptions=False)(fn)
        return self._remote[fn]

    def run(self, chunks: Sequence[dict], fn: Task = evaluate_chunk) -> Iterator[list[dict]]:
        ray, task = self.ray, self._remote_of(fn)
        todo = list(enumerate(chunks))[::-1]
        tries = dict.fromkeys(range(len(chunks)), 0)
        running: dict = {}
        window = 2 * self.workers
        while todo or running:
            while todo and len(running) < window:
                i, c = todo.pop()
                running[task.remote(c)] = i
            done, _ = ray.wait(list(running), num_returns=1)
            ref = done[0]
            i = running.pop(ref)
            try:
                rows = ray.get(ref)
            except ray.exceptions.RayError as exc:
                tries[i] += 1
                if tries[i] > RETRIES:
                    raise UsageError(f"a task failed {tries[i]} times on Ray: "
                                     f"{str(exc).splitlines()[0]}; rerun to resume") from None
                todo.append((i, chunks[i]))
                continue
            yield rows

    def close(self) -> None:
        if self._owned:
            self.ray.shutdown()


def make_engine(name: str, address: str | None = None, jobs: int | None = None):  # noqa: ANN201
    """The engine called `name` ("local" or "ray")."""
    if name == "local":
        if address is not None:
            raise UsageError("--address applies to --engine ray")
        return LocalEngine(jobs)
    if name == "ray":
        return RayEngine(address, jobs)
    raise UsageError(f"unknown engine {name!r}; expected local or ray")
