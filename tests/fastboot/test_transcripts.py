"""The fastboot.md §10 transcripts T1-T10, played against both real clients: the async
:class:`FastbootClient` and the one-shot :class:`BlockingFastbootClient`, which drive the
same sans-I/O conversation (``client_for``, tests/fastboot/conftest.py)."""

from __future__ import annotations

import pytest

from fastboop.fastboot import (
    FastbootBadArgument,
    FastbootDeviceFailure,
    FastbootProtocolError,
    Response,
    is_missing,
)
from fastboop.transports.memory import ExpectWrite, Reply, ScriptedTransport
from tests.fastboot.conftest import ClientFor

pytestmark = pytest.mark.anyio

LIMIT_OK = [ExpectWrite(b"getvar:max-download-size"), Reply(b"OKAY0x10000000")]


async def test_t1_getvar_ok(client_for: ClientFor) -> None:
    transport = ScriptedTransport([ExpectWrite(b"getvar:product"), Reply(b"OKAYsdm845")])
    assert await client_for(transport).getvar("product") == "sdm845"
    assert transport.finished


async def test_t2_getvar_unknown_variable_fails(client_for: ClientFor) -> None:
    transport = ScriptedTransport(
        [ExpectWrite(b"getvar:partition-type:aging"), Reply(b"FAILunknown variable")]
    )
    with pytest.raises(FastbootDeviceFailure) as caught:
        await client_for(transport).getvar("partition-type:aging")
    assert caught.value.device_message == "unknown variable"
    assert caught.value.kind == "device_fail"
    assert transport.finished


async def test_t3_nul_terminated_empty_value_is_missing(client_for: ClientFor) -> None:
    transport = ScriptedTransport([ExpectWrite(b"getvar:variant"), Reply(b"OKAY\x00")])
    value = await client_for(transport).getvar("variant")
    assert value == ""
    assert is_missing(value)


async def test_t4_download_with_info_before_data_and_okay(client_for: ClientFor) -> None:
    transport = ScriptedTransport(
        [
            *LIMIT_OK,
            ExpectWrite(b"download:00000007"),
            Reply(b"INFOpreparing"),
            Reply(b"DATA00000007"),
            ExpectWrite(b"1234567"),
            Reply(b"INFOreceived"),
            Reply(b"OKAY"),
        ]
    )
    infos: list[Response] = []
    progress: list[tuple[int, int]] = []
    client = client_for(transport, on_info=infos.append)
    await client.download(b"1234567", on_progress=lambda s, t: progress.append((s, t)))
    assert [i.text for i in infos] == ["preparing", "received"]
    assert progress == [(7, 7)]
    assert transport.finished
    assert transport.written[1:] == [b"download:00000007", b"1234567"]


async def test_t5_boot_with_info_and_text(client_for: ClientFor) -> None:
    transport = ScriptedTransport(
        [ExpectWrite(b"boot"), Reply(b"INFObooting"), Reply(b"TEXTcontinuing\x00"), Reply(b"OKAY")]
    )
    infos: list[Response] = []
    await client_for(transport, on_info=infos.append).boot()
    assert [(i.status, i.text) for i in infos] == [("INFO", "booting"), ("TEXT", "continuing")]
    assert transport.finished


async def test_t6_fail_after_info(client_for: ClientFor) -> None:
    transport = ScriptedTransport([ExpectWrite(b"boot"), Reply(b"INFOx"), Reply(b"FAILnope")])
    with pytest.raises(FastbootDeviceFailure) as caught:
        await client_for(transport).boot()
    assert caught.value.device_message == "nope"


async def test_t7_wrong_state(client_for: ClientFor) -> None:
    transport = ScriptedTransport([ExpectWrite(b"getvar:product"), Reply(b"DATA00000010")])
    with pytest.raises(FastbootProtocolError, match="unexpected status: DATA"):
        await client_for(transport).getvar("product")


async def test_t8_short_response(client_for: ClientFor) -> None:
    transport = ScriptedTransport([ExpectWrite(b"getvar:product"), Reply(b"OK")])
    with pytest.raises(FastbootProtocolError, match="at least 4"):
        await client_for(transport).getvar("product")


async def test_t9_space_padded_data_size(client_for: ClientFor) -> None:
    image = bytes(range(256)) * 18 + bytes(range(52))
    assert len(image) == 0x1234
    transport = ScriptedTransport(
        [
            *LIMIT_OK,
            ExpectWrite(b"download:00001234"),
            Reply(b"DATA    1234"),
            ExpectWrite(image),
            Reply(b"OKAY"),
        ]
    )
    await client_for(transport).download(image)
    assert transport.finished


async def test_t10_download_larger_than_device_limit(client_for: ClientFor) -> None:
    transport = ScriptedTransport(
        [ExpectWrite(b"getvar:max-download-size"), Reply(b"OKAY0x08000000")]
    )
    size = 0x0A000000
    with pytest.raises(FastbootBadArgument) as caught:
        await client_for(transport).download(memoryview(bytearray(size)))
    assert str(caught.value).startswith(
        f"boot image is {size} bytes but the device's max-download-size is {0x08000000}"
    )
    assert caught.value.kind == "bad_argument"
    assert transport.written == [b"getvar:max-download-size"]
