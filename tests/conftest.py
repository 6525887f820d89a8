"""Test-wide fixtures, and the hypothesis profile every property test runs under."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import settings

from fastboop import logs

# The suite is a gate, so it must give the same verdict on every run: hypothesis draws its
# examples from a seed fixed per test. Exploring new inputs is the fuzz campaign's job
# (bench/fuzz.py); `HYPOTHESIS_PROFILE=explore` gives the tests random seeds again.
# No deadline: a per-example time limit is a timed assertion, and it fails on a busy
# machine (speed belongs in bench/).
settings.register_profile("suite", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs under both anyio backends."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """CLI tests configure logging; give every test structlog's defaults back, and drop a
    configuration the CLI recorded but no record applied yet (fastboop.logs applies it
    lazily, so it would otherwise reach the next test's first record)."""
    yield
    structlog.reset_defaults()
    logs._pending = None
