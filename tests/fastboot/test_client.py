"""FastbootClient behaviour beyond the §10 transcripts: API surface, cache, chunking, errors."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastboop.fastboot import (
    FastbootClient,
    FastbootDeviceFailure,
    FastbootError,
    FastbootProtocolError,
)
from fastboop.fastboot.errors import FastbootBadArgument, FastbootTimeout, FastbootTransportError
from fastboop.transports.memory import ExpectWrite, Reply, ScriptedTransport, Stall, Unplug

LIMIT_OK = [ExpectWrite(b"getvar:max-download-size"), Reply(b"OKAY0x10000000")]


def test_public_surface_is_exactly_getvar_download_boot() -> None:
    public = {name for name in dir(FastbootClient) if not name.startswith("_")}
    assert public == {"getvar", "download", "boot"}


@pytest.mark.anyio
async def test_getvar_cache_sends_one_command_per_okay_name() -> None:
    transport = ScriptedTransport([ExpectWrite(b"getvar:product"), Reply(b"OKAYsdm845")])
    client = FastbootClient(transport)
    assert await client.getvar("product") == "sdm845"
    assert await client.getvar("product") == "sdm845"
    assert transport.written == [b"getvar:product"]


@pytest.mark.anyio
async def test_getvar_fail_is_not_cached() -> None:
    transport = ScriptedTransport(
        [
            ExpectWrite(b"getvar:slot-count"),
            Reply(b"FAILnot yet"),
            ExpectWrite(b"getvar:slot-count"),
            Reply(b"OKAY2"),
        ]
    )
    client = FastbootClient(transport)
    with pytest.raises(FastbootDeviceFailure):
        await client.getvar("slot-count")
    assert await client.getvar("slot-count") == "2"
    assert transport.finished


@pytest.mark.anyio
async def test_download_is_chunked_and_reports_progress() -> None:
    image = bytes(range(256)) * 10  # 2560 bytes in 1000-byte chunks
    transport = ScriptedTransport(
        [*LIMIT_OK, ExpectWrite(b"download:00000a00"), Reply(b"DATA00000a00"),
         ExpectWrite(image), Reply(b"OKAY")]
    )
    progress: list[tuple[int, int]] = []
    client = FastbootClient(transport, chunk_size=1000)
    await client.download(image, on_progress=lambda s, t: progress.append((s, t)))
    assert progress == [(1000, 2560), (2000, 2560), (2560, 2560)]
    assert [len(p) for p in transport.written[2:]] == [1000, 1000, 560]
    assert b"".join(transport.written[2:]) == image
    assert transport.finished


@pytest.mark.anyio
async def test_data_echo_mismatch_is_a_protocol_error_and_sends_no_data() -> None:
    transport = ScriptedTransport(
        [*LIMIT_OK, ExpectWrite(b"download:00000007"), Reply(b"DATA00000006")]
    )
    with pytest.raises(FastbootProtocolError, match="device accepted 6 bytes, requested 7"):
        await FastbootClient(transport).download(b"1234567")
    assert transport.written == [b"getvar:max-download-size", b"download:00000007"]


@pytest.mark.anyio
@pytest.mark.parametrize("limit_reply", [b"FAILunknown variable", b"OKAYlots", b"OKAY"])
async def test_download_goes_ahead_when_limit_is_unknown(limit_reply: bytes) -> None:
    transport = ScriptedTransport(
        [ExpectWrite(b"getvar:max-download-size"), Reply(limit_reply),
         ExpectWrite(b"download:00000003"), Reply(b"DATAzzzzzzzz"), ExpectWrite(b"abc"),
         Reply(b"OKAY")]
    )
    await FastbootClient(transport).download(b"abc")
    assert transport.finished


@pytest.mark.anyio
async def test_download_reuses_cached_limit() -> None:
    transport = ScriptedTransport(
        [*LIMIT_OK, ExpectWrite(b"download:00000001"), Reply(b"DATA00000001"),
         ExpectWrite(b"a"), Reply(b"OKAY"),
         ExpectWrite(b"download:00000001"), Reply(b"DATA00000001"),
         ExpectWrite(b"b"), Reply(b"OKAY")]
    )
    client = FastbootClient(transport)
    await client.download(b"a")
    await client.download(b"b")
    assert transport.finished


@pytest.mark.anyio
async def test_empty_image_is_refused_before_anything_is_sent() -> None:
    transport = ScriptedTransport([])
    with pytest.raises(FastbootBadArgument, match="empty"):
        await FastbootClient(transport).download(b"")
    assert transport.written == []


@pytest.mark.anyio
async def test_fail_on_final_download_okay() -> None:
    transport = ScriptedTransport(
        [*LIMIT_OK, ExpectWrite(b"download:00000001"), Reply(b"DATA00000001"),
         ExpectWrite(b"a"), Reply(b"FAILno memory")]
    )
    with pytest.raises(FastbootDeviceFailure, match="no memory"):
        await FastbootClient(transport).download(b"a")


@pytest.mark.anyio
async def test_timeout_becomes_typed_timeout_error() -> None:
    transport = ScriptedTransport([ExpectWrite(b"boot"), Stall()])
    with pytest.raises(FastbootTimeout) as caught:
        await FastbootClient(transport, timeout=0.5).boot()
    assert caught.value.kind == "timeout"
    assert "0.5 s" in str(caught.value)


@pytest.mark.anyio
async def test_unplug_becomes_typed_transport_error() -> None:
    transport = ScriptedTransport(
        [*LIMIT_OK, ExpectWrite(b"download:00000004"), Reply(b"DATA00000004"), Unplug()]
    )
    with pytest.raises(FastbootTransportError, match="disconnected") as caught:
        await FastbootClient(transport).download(b"abcd")
    assert caught.value.kind == "transport"


@pytest.mark.anyio
async def test_many_info_packets_are_all_surfaced() -> None:
    chatter = [Reply(b"INFOline %d" % i) for i in range(500)]
    transport = ScriptedTransport([ExpectWrite(b"boot"), *chatter, Reply(b"OKAY")])
    seen: list[str] = []
    await FastbootClient(transport, on_info=lambda r: seen.append(r.text)).boot()
    assert seen == [f"line {i}" for i in range(500)]


# --- fuzzing: any response stream ends in a value or a typed error ----------------------------

_packets = st.lists(
    st.one_of(
        st.binary(max_size=20),
        st.sampled_from([b"OKAY", b"FAIL", b"DATA", b"INFO", b"TEXT"]).flatmap(
            lambda s: st.binary(max_size=16).map(lambda p: s + p)
        ),
    ),
    max_size=6,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(replies=_packets, operation=st.sampled_from(["getvar", "download", "boot"]))
def test_fuzz_client_against_malformed_streams(replies: list[bytes], operation: str) -> None:
    async def scenario() -> None:
        # The transport answers every read with the next fuzzed packet and accepts any write.
        class Fuzzed:
            address = ScriptedTransport([]).address

            def __init__(self) -> None:
                self.replies = list(replies)

            async def send(self, packet: bytes, *, timeout: float) -> None:
                return None

            async def receive(self, max_size: int, *, timeout: float) -> bytes:
                if not self.replies:
                    raise TimeoutError
                return self.replies.pop(0)

            async def aclose(self) -> None:
                return None

        client = FastbootClient(Fuzzed(), timeout=0.01)
        try:
            if operation == "getvar":
                assert isinstance(await client.getvar("product"), str)
            elif operation == "download":
                await client.download(b"abc")
            else:
                await client.boot()
        except FastbootError:
            pass

    anyio.run(scenario)


@pytest.mark.anyio
async def test_every_read_after_info_gets_the_full_timeout_again() -> None:
    class Recording(ScriptedTransport):
        def __init__(self) -> None:
            super().__init__(
                [ExpectWrite(b"boot"), Reply(b"INFOa"), Reply(b"TEXTb"), Reply(b"OKAY")]
            )
            self.timeouts: list[float] = []

        async def receive(self, max_size: int, *, timeout: float) -> bytes:
            self.timeouts.append(timeout)
            assert max_size == 4096
            return await super().receive(max_size, timeout=timeout)

    transport = Recording()
    await FastbootClient(transport, timeout=7.5).boot()
    assert transport.timeouts == [7.5, 7.5, 7.5]


def test_default_timeout_is_thirty_seconds() -> None:
    from fastboop.fastboot.client import CHUNK_SIZE, DEFAULT_TIMEOUT

    assert (DEFAULT_TIMEOUT, CHUNK_SIZE) == (30.0, 1 << 20)
