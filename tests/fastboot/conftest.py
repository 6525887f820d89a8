"""Every async test runs under both asyncio and trio; transcripts run on both clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fastboop.fastboot import FastbootClient
from fastboop.fastboot.blocking import BlockingFastbootClient
from fastboop.transports.memory import ScriptedTransport
from tests.support.clients import AsyncFacade, ScriptedLink


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


ClientFor = Callable[..., Any]


@pytest.fixture(params=["async", "blocking"])
def client_for(request: pytest.FixtureRequest) -> ClientFor:
    """``client_for(transport, **options)``: the async client on a scripted transport,
    or the blocking one on the same script (both drive one FastbootConversation)."""

    def make(transport: ScriptedTransport, **options: Any) -> Any:
        if request.param == "async":
            return FastbootClient(transport, **options)
        return AsyncFacade(BlockingFastbootClient(ScriptedLink(transport), **options))

    return make
