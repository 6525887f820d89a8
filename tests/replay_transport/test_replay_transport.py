"""The replay transport: fastboot.md §10 transcripts served from journal ``Wire`` records."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.fastboot import FastbootClient, FastbootDeviceFailure, FastbootTransportError
from fastboop.journal import JournalWriter, Record, Wire, make_header
from fastboop.transports import transport_factory
from fastboop.transports.replay import ReplayDivergence, ReplayTransport, WireTranscript

pytestmark = pytest.mark.anyio


def transcript(*packets: tuple[str, bytes]) -> WireTranscript:
    records = [
        Record(seq, 0, Wire.capture("fastboot", direction, data))
        for seq, (direction, data) in enumerate(packets, start=10)
    ]
    return WireTranscript(records)


async def test_t1_getvar_ok() -> None:
    script = transcript(("out", b"getvar:product"), ("in", b"OKAYsdm845"))
    client = FastbootClient(ReplayTransport(script))
    assert await client.getvar("product") == "sdm845"
    assert script.finished and script.divergence is None


async def test_t2_fail_is_served_as_recorded() -> None:
    script = transcript(("out", b"getvar:partition-type:aging"), ("in", b"FAILunknown variable"))
    with pytest.raises(FastbootDeviceFailure) as failure:
        await FastbootClient(ReplayTransport(script)).getvar("partition-type:aging")
    assert failure.value.device_message == "unknown variable"


async def test_t4_download_with_info_and_data_by_digest() -> None:
    payload = bytes(range(256)) * 4  # 1 KiB: journaled by digest, not inline
    script = transcript(
        ("out", b"getvar:max-download-size"),
        ("in", b"OKAY0x00100000"),
        ("out", b"download:00000400"),
        ("in", b"INFOpreparing"),
        ("in", b"DATA00000400"),
        ("out", payload),
        ("in", b"INFOreceived"),
        ("in", b"OKAY"),
    )
    assert script.peek() is not None
    client = FastbootClient(ReplayTransport(script))
    await client.download(payload)
    assert script.finished


async def test_unexpected_write_names_the_record() -> None:
    script = transcript(("out", b"getvar:product"), ("in", b"OKAYsdm845"))
    with pytest.raises(FastbootTransportError):
        await FastbootClient(ReplayTransport(script)).getvar("variant")
    divergence = script.divergence
    assert divergence is not None
    assert divergence.seq == 10
    assert divergence.expected == "OUT b'getvar:product'"
    assert divergence.actual == "OUT b'getvar:variant'"
    assert "journal record #10" in str(divergence)


async def test_different_digest_payload_diverges() -> None:
    payload = bytes(1000)
    script = transcript(("out", b"download:000003e8"), ("in", b"DATA000003e8"), ("out", payload))
    transport = ReplayTransport(script)
    await transport.send(b"download:000003e8", timeout=1)
    assert await transport.receive(64, timeout=1) == b"DATA000003e8"
    with pytest.raises(ReplayDivergence) as caught:
        await transport.send(b"\1" + payload[1:], timeout=1)
    assert caught.value.seq == 12
    assert "different sha256" in caught.value.actual


async def test_reading_where_the_host_wrote_and_past_the_end() -> None:
    script = transcript(("out", b"boot"))
    transport = ReplayTransport(script)
    with pytest.raises(ReplayDivergence) as caught:
        await transport.receive(64, timeout=1)
    assert caught.value.seq == 10
    await transport.send(b"boot", timeout=1)
    with pytest.raises(ReplayDivergence) as caught:
        await transport.receive(64, timeout=1)
    assert caught.value.seq is None
    assert script.divergence is not None and script.divergence.seq == 10  # the first one


async def test_recorded_timeout_replays_as_a_timeout() -> None:
    script = transcript(("out", b"getvar:product"))
    transport = ReplayTransport(script, timeouts=True)
    await transport.send(b"getvar:product", timeout=1)
    with pytest.raises(TimeoutError):
        await transport.receive(64, timeout=1)
    assert script.divergence is None


async def test_other_channels_are_ignored_and_skip_to_drops_packets() -> None:
    records = [
        Record(0, 0, Wire.capture("smoo", "out", b"x")),
        Record(1, 0, Wire.capture("fastboot", "out", b"download:00000001")),
        Record(2, 0, Wire.capture("fastboot", "in", b"DATA00000001")),
        Record(3, 0, Wire.capture("fastboot", "out", b"boot")),
    ]
    script = WireTranscript(records)
    assert script.total == 3
    assert script.skip_to(3) == 2
    await ReplayTransport(script).send(b"boot", timeout=1)
    assert script.finished


async def test_registered_as_transport_replay(tmp_path: Path) -> None:
    path = tmp_path / "j.fbj"
    with JournalWriter(path, make_header()) as writer:
        writer.append(Wire.capture("fastboot", "out", b"getvar:product"), 1)
        writer.append(Wire.capture("fastboot", "in", b"OKAYsargo"), 2)
    transport = transport_factory("replay")(path)
    assert transport.address.transport == "replay"
    assert await FastbootClient(transport).getvar("product") == "sargo"
    await transport.aclose()


DATA = bytes(range(256)) * 12288  # 3 MiB: three recorded transfers, or one


def download_script(*pieces: bytes) -> WireTranscript:
    return transcript(
        ("out", b"getvar:max-download-size"), ("in", b"OKAY0x10000000"),
        ("out", b"download:%08x" % len(DATA)), ("in", b"DATA%08x" % len(DATA)),
        *(("out", piece) for piece in pieces), ("in", b"OKAY"),
    )  # fmt: skip


@pytest.mark.parametrize("recorded", ["in 1 MiB transfers", "in one data phase"])
@pytest.mark.parametrize("replayed", ["one data phase", "1 MiB transfers"])
async def test_download_data_replays_however_either_side_cut_it(
    recorded: str, replayed: str
) -> None:
    """Chunk boundaries are invisible on the wire (§4.2), so a journal recorded with 1 MiB
    transfers replays against one data phase, and the reverse."""
    mib = 1 << 20
    pieces = [DATA[i : i + mib] for i in range(0, len(DATA), mib)]
    script = download_script(*(pieces if recorded.startswith("in 1") else [DATA]))
    transport = ReplayTransport(script)
    marks: list[int] = []
    views_only = replayed == "1 MiB transfers"  # then the client falls back to transfers
    client = FastbootClient(_ViewsOnly(transport) if views_only else transport)  # type: ignore[arg-type]
    await client.download(DATA, on_progress=lambda sent, total: marks.append(sent))
    assert script.finished and script.divergence is None
    assert marks == [mib, 2 * mib, 3 * mib]


class _ViewsOnly:
    """The replay transport without its whole-data-phase capability."""

    def __init__(self, inner: ReplayTransport):
        self.inner = inner
        self.address = inner.address
        self.send = inner.send
        self.send_view = inner.send_view
        self.receive = inner.receive
        self.aclose = inner.aclose


async def test_a_changed_byte_in_the_data_diverges_at_its_transfer() -> None:
    mib = 1 << 20
    script = download_script(DATA[:mib], DATA[mib : 2 * mib], DATA[2 * mib :])
    changed = bytearray(DATA)
    changed[mib + 5] ^= 1
    with pytest.raises(FastbootTransportError):
        await FastbootClient(ReplayTransport(script)).download(bytes(changed))
    divergence = script.divergence
    assert divergence is not None
    assert divergence.seq == 15  # the second recorded transfer (seq 10 is the first OUT)
    assert "different sha256" in divergence.actual


async def test_a_recorded_failure_mid_data_is_raised_at_the_same_byte() -> None:
    mib = 1 << 20
    script = transcript(
        ("out", b"getvar:max-download-size"), ("in", b"OKAY0x10000000"),
        ("out", b"download:%08x" % len(DATA)), ("in", b"DATA%08x" % len(DATA)),
        ("out", DATA[:mib]),
    )  # fmt: skip
    marks: list[int] = []
    transport = ReplayTransport(script, failure="device disconnected")
    with pytest.raises(FastbootTransportError, match="device disconnected"):
        await FastbootClient(transport).download(DATA, on_progress=lambda s, t: marks.append(s))
    assert marks == [mib] and script.finished
