"""Simulated phones served over real sockets (TCP/UDP on 127.0.0.1) for detect tests."""

from __future__ import annotations

import pytest

from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.sources import load_pool


@pytest.fixture(scope="session")
def pool() -> ProfilePool:
    return load_pool(include_local=False)


@pytest.fixture(autouse=True)
def _logs_to_stderr() -> None:
    """The simulator logs through structlog, whose default is stdout; keep stdout for the
    command's own output (the CLI sends logs to stderr too once it configures them)."""
    import sys

    import structlog

    structlog.configure(logger_factory=lambda *args: structlog.PrintLogger(file=sys.stderr))
