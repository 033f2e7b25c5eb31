"""llmc.dse — design-space exploration: sweep specs run on a local process
pool or a Ray cluster, resumable, with the tokens/J x tokens/s x area Pareto
front and a multi-objective search.

- `load_spec(path)` / `parse_spec(tables)` -> `Spec`; `grid(spec)` its points;
- `make_engine("local" | "ray", address, jobs)`;
- `run_sweep(spec, out, engine)` -> `Outcome` (points, computed, reused);
- `search(spec, out, engine, trials)` (llmc.dse.search, needs Optuna).

It sits above the cost model and the simulator (it reads both), beside the
API (llmc/layers.py).
"""

from llmc.dse.engines import LocalEngine, RayEngine, make_engine
from llmc.dse.run import Outcome, run_sweep
from llmc.dse.spec import AXES, POINT_LIMIT, Spec, grid, load_spec, parse_spec, point_hash

__all__ = ["AXES", "POINT_LIMIT", "LocalEngine", "Outcome", "RayEngine", "Spec", "grid",
           "load_spec", "make_engine", "parse_spec", "point_hash", "run_sweep"]
