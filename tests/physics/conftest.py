"""Shared fixtures of the physics tests."""

import pytest

from moesuite.core.training import torch_threads


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run every physics test with one torch thread (scoped and restored afterwards).

    The models here are tiny; on the shared 2-core CI/dev machine a second intra-op thread that
    is not really free makes them spin-wait (the MixER API tests took 10x longer with two).
    """
    with torch_threads(1):
        yield
