"""Simulated phones served over real sockets (TCP/UDP on 127.0.0.1) for detect tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.sources import load_pool
from fastboop.sim.model import BootloaderModel, load_model
from fastboop.sim.server import SimService

Served = Callable[..., "AsyncIterator[tuple[SimService, int]]"]


@asynccontextmanager
async def served(
    model: str | BootloaderModel, kind: str = "tcp"
) -> AsyncIterator[tuple[SimService, int]]:
    """A :class:`SimService` listening on a free 127.0.0.1 port; yields it and the port."""
    service = SimService(load_model(model) if isinstance(model, str) else model)
    async with anyio.create_task_group() as tg:
        serve = service.serve_tcp if kind == "tcp" else service.serve_udp
        port = await tg.start(serve, "127.0.0.1", 0)
        yield service, port
        tg.cancel_scope.cancel()


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
