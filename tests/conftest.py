"""Shared fixtures: traced tiny models are cached per session.

Property tests draw the same examples on every run (a derandomized
hypothesis profile), so a run of `make test` is reproducible; set
HYPOTHESIS_PROFILE=explore to search with fresh random examples.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@functools.cache
def traced(name: str, phase: str, batch: int = 2, seq_len: int = 8, weights: str = "random"):
    from llmc import api

    return api.trace(name, phase, batch=batch, seq_len=seq_len, weights=weights)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
