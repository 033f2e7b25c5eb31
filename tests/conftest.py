"""Shared fixtures: traced tiny models are cached per session."""

from __future__ import annotations

import functools

import numpy as np
import pytest


@functools.cache
def traced(name: str, phase: str, batch: int = 2, seq_len: int = 8, weights: str = "random"):
    from llmc import api

    return api.trace(name, phase, batch=batch, seq_len=seq_len, weights=weights)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
