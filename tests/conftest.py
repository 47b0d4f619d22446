"""Shared fixtures and problems for the test suite."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest

# Keep XLA to one thread per test process: the suite runs on two cores with pytest-xdist.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")


def rosenbrock_flat(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
