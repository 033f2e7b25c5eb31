"""One numerics helper: every comparison (backend vs interpreter vs PyTorch)
goes through `compare`, which picks the tolerance by dtype and reports max
and relative error and the first mismatching index (docs/style.md, rule 7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.errors import NumericsError

# Relative-error bounds ||out - ref|| / ||ref|| by dtype (docs/design.md).
REL_TOL = {"f32": 1e-5, "f16": 1e-2, "bf16": 1e-2}


@dataclass(frozen=True)
class Comparison:
    dtype: str
    rel_error: float
    max_abs_error: float
    first_mismatch: tuple[int, ...] | None
    tolerance: float
    ok: bool

    def summary(self, what: str = "output") -> str:
        verdict = "ok" if self.ok else "MISMATCH"
        if self.tolerance == 0:
            return (f"  {what}: {verdict} (bit-exact required; "
                    f"first mismatch {self.first_mismatch})")
        return (f"  {what}: {verdict}: relative error {self.rel_error:.2e} "
                f"(bound {self.tolerance:.0e}), max abs error {self.max_abs_error:.2e}")


def compare(got: np.ndarray, ref: np.ndarray, dtype: str = "f32",
            rel_tol: float | None = None) -> Comparison:
    """Compare; integer dtypes (and rel_tol=0) must match bit for bit."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        raise NumericsError(f"shape {got.shape} where {ref.shape} was expected")
    exact = rel_tol == 0 or dtype not in REL_TOL
    tol = 0.0 if exact else (rel_tol if rel_tol is not None else REL_TOL[dtype])
    if exact:
        diff = got != ref
        bad = np.argwhere(diff)
        first = tuple(int(i) for i in bad[0]) if bad.size else None
        max_abs = float(np.max(np.abs(got.astype(np.float64) - ref))) if got.size else 0.0
        return Comparison(dtype, 0.0 if first is None else float("inf"), max_abs, first, 0.0,
                          first is None)
    g, r = got.astype(np.float64), ref.astype(np.float64)
    err = np.abs(g - r)
    denom = np.linalg.norm(r)
    rel = float(np.linalg.norm(g - r) / denom) if denom else float(np.linalg.norm(g - r))
    scale = np.abs(r).max() if r.size else 0.0
    bad = np.argwhere(err > tol * max(scale, 1e-30))
    first = tuple(int(i) for i in bad[0]) if bad.size else None
    return Comparison(dtype, rel, float(err.max()) if err.size else 0.0, first, tol,
                      rel <= tol and bool(np.all(np.isfinite(g)) == np.all(np.isfinite(r))))


def assert_close(got: np.ndarray, ref: np.ndarray, dtype: str = "f32",
                 rel_tol: float | None = None, what: str = "output") -> Comparison:
    c = compare(got, ref, dtype, rel_tol)
    if not c.ok:
        raise NumericsError(c.summary(what) + f"; first mismatch at {c.first_mismatch}")
    return c
