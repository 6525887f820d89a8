"""A download's data phase: one framed message over TCP, from memory or with sendfile.

Issue 15: AOSP sends the whole payload as one ``download`` data phase; so does fastboop
now over TCP (:meth:`TcpTransport.send_data`), from a buffer in large ``sendmsg`` writes or
straight from a file with ``sendfile``, and over UDP (:meth:`UdpTransport.send_data`), as
one message of full packets. Other transports take it in 1 MiB pieces. Either
way the device must end up with the exact bytes, progress must be reported at the same
1 MiB marks, and the never-flash gate must still count every byte.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from fastboop.fastboot import FastbootClient, tcp_wire, udp_wire
from fastboop.fastboot.gate import FastbootRefused
from fastboop.fastboot.payload import Payload
from fastboop.sim import SimulatedBootloader, load_model
from fastboop.sim.transport import SimTransport
from fastboop.transports import sockio
from fastboop.transports.tcp import open_tcp
from fastboop.transports.udp import open_udp
from tests.support.simulators import connect, served

pytestmark = pytest.mark.anyio

FAJITA = load_model("oneplus-fajita")
MIB = 1 << 20


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.bin"
    path.write_bytes(os.urandom(3 * MIB + 12345))  # not a whole number of MiB
    return path


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@pytest.mark.parametrize("source", ["bytes", "bytearray", "file"])
async def test_download_and_boot_deliver_the_exact_bytes(
    protocol: str, source: str, image_file: Path
) -> None:
    expected = image_file.read_bytes()
    marks: list[tuple[int, int]] = []
    with anyio.fail_after(60):
        async with served(FAJITA, protocol) as (sim, port):
            transport = await connect(protocol, port)
            client = FastbootClient(transport)
            with image_file.open("rb") as file:
                data = {"bytes": expected, "bytearray": bytearray(expected), "file": file}
                await client.download(data[source], on_progress=lambda *m: marks.append(m))
            await client.boot()
            await transport.aclose()
    assert sim.booted_images == [expected]
    total = len(expected)
    assert marks == [(MIB, total), (2 * MIB, total), (3 * MIB, total), (total, total)]


async def test_tcp_sends_the_data_phase_as_one_frame(image_file: Path) -> None:
    """A device that records frames sees the command, then the data as one message."""
    size = image_file.stat().st_size
    frames: list[int] = []

    async def device(sock: object) -> None:
        assert isinstance(sock, __import__("socket").socket)
        reader = sockio.Reader(sock)
        await reader.exactly(4)
        await sockio.send_all(sock, [tcp_wire.HANDSHAKE])
        for answer in (b"OKAY0x20000000", b"DATA%08x" % size, b"OKAY"):
            length = tcp_wire.parse_frame_header(await reader.exactly(8))
            frames.append(length)
            buffer = bytearray(length)
            view = memoryview(buffer)
            while view:
                view = view[await reader.into(view) :]
            if length == size:
                assert bytes(buffer) == image_file.read_bytes()
            await sockio.send_all(sock, [tcp_wire.frame(answer)])

    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:

            async def accept() -> None:
                await anyio.wait_readable(listener)
                connection, _ = listener.accept()
                connection.setblocking(False)
                try:
                    await device(connection)
                finally:
                    sockio.close(connection)

            group.start_soon(accept)
            transport = await open_tcp("127.0.0.1", port)
            with image_file.open("rb") as file:
                await FastbootClient(transport).download(file)
            await transport.aclose()
    sockio.close(listener)
    assert frames == [len(b"getvar:max-download-size"), len(b"download:00000000"), size]


async def test_a_file_is_sent_from_its_position_to_its_end(image_file: Path) -> None:
    transport = SimTransport(SimulatedBootloader(FAJITA))
    with image_file.open("rb") as file:
        file.seek(1000)
        await FastbootClient(transport).download(file)
    assert transport.bootloader.downloaded == image_file.read_bytes()[1000:]


async def final(transport: object) -> bytes:
    """The next response that is not INFO/TEXT (fajita's bootloader chats)."""
    while True:
        packet: bytes = await transport.receive(64, timeout=5)  # type: ignore[attr-defined]
        if packet[:4] not in (b"INFO", b"TEXT"):
            return packet


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_the_gate_counts_data_sent_in_one_go(protocol: str) -> None:
    """send_data outside an accepted data phase, or past it, reaches no socket."""
    with anyio.fail_after(30):
        async with served(FAJITA, protocol) as (sim, port):
            transport = await connect(protocol, port)
            with pytest.raises(FastbootRefused):
                await transport.send_data(Payload.of(bytes(MIB)), timeout=5, on_sent=print)
            await transport.send(b"download:00000010", timeout=5)
            assert await final(transport) == b"DATA00000010"
            with pytest.raises(FastbootRefused):
                await transport.send_data(Payload.of(bytes(17)), timeout=5, on_sent=print)
            await transport.send_data(Payload.of(bytes(16)), timeout=5, on_sent=lambda n: None)
            assert await final(transport) == b"OKAY"
            await transport.aclose()
    assert sim.sessions[0].bytes_received == 16


@asynccontextmanager
async def udp_device(
    fail_at: int | None = None,
) -> AsyncIterator[tuple[int, list[udp_wire.Packet]]]:
    """A UDP fastboot device in the real wire format that records every fastboot packet
    and, if ``fail_at`` is given, acknowledges the data packet it records at that index
    with a FAIL (a device that ends the data phase early: its buffer is full, say)."""
    seen: list[udp_wire.Packet] = []
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:

        async def serve() -> None:
            waiting = b""  # the device's message, handed out on the next empty packet
            data = 0
            async for datagram, (host, port, *_) in sock:
                packet = udp_wire.decode_packet(datagram)
                answer = b""
                if packet.id == udp_wire.ID_QUERY:
                    reply = udp_wire.encode_packet(packet.id, 0, udp_wire.encode_u16(packet.seq))
                    await sock.sendto(reply, host, port)
                    continue
                if packet.id == udp_wire.ID_INIT:
                    size = udp_wire.encode_init(1, 1400)
                    reply = udp_wire.encode_packet(packet.id, packet.seq, size)
                    await sock.sendto(reply, host, port)
                    continue
                seen.append(packet)
                if packet.data.startswith(b"download:"):
                    data, waiting = int(packet.data[9:], 16), b"DATA" + packet.data[9:]
                elif not packet.data:
                    answer, waiting = waiting, b""
                elif data:
                    data -= len(packet.data)
                    if fail_at is not None and len(seen) - 1 == fail_at:
                        answer, data = b"FAILbuffer full", 0
                    elif data == 0:
                        waiting = b"OKAY"
                reply = udp_wire.encode_packet(packet.id, packet.seq, answer)
                await sock.sendto(reply, host, port)

        async with anyio.create_task_group() as group:
            group.start_soon(serve)
            yield int(sock.extra(anyio.abc.SocketAttribute.local_port)), seen
            group.cancel_scope.cancel()


async def test_udp_sends_the_data_phase_as_one_message(image_file: Path) -> None:
    """As AOSP does: every data packet but the last carries the continuation flag, and
    each is a full packet of the payload (fastboot.md §8.4)."""
    expected = image_file.read_bytes()
    with anyio.fail_after(60):
        async with udp_device() as (port, seen):
            transport = await open_udp("127.0.0.1", port, retry_interval=0.05)
            await transport.send(b"download:%08x" % len(expected), timeout=5)
            assert await transport.receive(64, timeout=5) == b"DATA%08x" % len(expected)
            with image_file.open("rb") as file:
                await transport.send_data(Payload.of(file), timeout=5, on_sent=lambda n: None)
            assert await transport.receive(64, timeout=5) == b"OKAY"
            await transport.aclose()
    data = [packet for packet in seen[1:] if packet.data]
    assert b"".join(packet.data for packet in data) == expected
    assert [packet.continued for packet in data] == [True] * (len(data) - 1) + [False]
    assert {len(packet.data) for packet in data[:-1]} == {1400 - udp_wire.HEADER_SIZE}


async def test_udp_data_stops_when_the_device_ends_the_phase() -> None:
    """A FAIL in a data packet's acknowledgement ends the phase: not one more byte goes
    out (it would reach the device as a command), the FAIL is the download's answer, and
    the gate refuses data from then on."""
    with anyio.fail_after(30):
        async with udp_device(fail_at=4) as (port, seen):
            transport = await open_udp("127.0.0.1", port, retry_interval=0.05)
            await transport.send(b"download:%08x" % (4 * MIB), timeout=5)
            assert await transport.receive(64, timeout=5) == b"DATA%08x" % (4 * MIB)
            sent: list[int] = []
            await transport.send_data(Payload.of(bytes(4 * MIB)), timeout=5, on_sent=sent.append)
            assert await transport.receive(64, timeout=5) == b"FAILbuffer full"
            with pytest.raises(FastbootRefused):
                await transport.send_data(Payload.of(bytes(16)), timeout=5, on_sent=print)
            await transport.aclose()
    assert [len(packet.data) for packet in seen] == [17, 0, 1396, 1396, 1396]
    assert sent == []  # not even the first MiB was finished


def test_payload_chunks_are_keepable_and_files_are_read_as_they_go(image_file: Path) -> None:
    mutable = bytearray(b"abcdef")
    pieces = list(Payload.of(mutable).chunks(4))
    mutable[:] = b"zzzzzz"
    assert [bytes(p) for p in pieces] == [b"abcd", b"ef"]  # copies: safe to keep
    frozen = b"abcdef"
    assert [p.obj for p in Payload.of(frozen).chunks(4)] == [frozen, frozen]  # no copies
    with image_file.open("rb") as file:
        payload = Payload.of(file)
        assert payload.view is None and payload.size == image_file.stat().st_size
        assert b"".join(bytes(p) for p in payload.chunks(MIB)) == image_file.read_bytes()
        assert bytes(payload.memory()) == image_file.read_bytes()


async def test_closing_the_transport_mid_send_is_a_transport_error() -> None:
    """A session that stops (Ctrl-C) closes the device while an upload still waits on the
    socket: the upload must fail as a link failure, not crash with anyio's error."""
    import socket

    from fastboop.transports.base import TransportError

    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    held: list[socket.socket] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:

            async def device() -> None:  # handshakes, says DATA, then never reads again
                await anyio.wait_readable(listener)
                connection, _ = listener.accept()
                connection.setblocking(False)
                held.append(connection)
                reader = sockio.Reader(connection)
                await reader.exactly(4)
                await sockio.send_all(connection, [tcp_wire.HANDSHAKE])
                length = tcp_wire.parse_frame_header(await reader.exactly(8))
                await reader.exactly(length)
                await sockio.send_all(connection, [tcp_wire.frame(b"DATA04000000")])

            group.start_soon(device)
            transport = await open_tcp("127.0.0.1", listener.getsockname()[1])
            await transport.send(b"download:04000000", timeout=5)
            assert await transport.receive(64, timeout=5) == b"DATA04000000"
            failures: list[BaseException] = []

            async def upload() -> None:
                try:
                    payload = Payload.of(bytes(64 * MIB))
                    await transport.send_data(payload, timeout=30, on_sent=lambda n: None)
                except TransportError as error:
                    failures.append(error)

            group.start_soon(upload)
            await anyio.sleep(0.3)  # the socket buffers are full: upload() waits
            await transport.aclose()
    for connection in held:
        sockio.close(connection)
    sockio.close(listener)
    assert len(failures) == 1


@pytest.mark.parametrize("source", ["bytes", "file"])
async def test_a_slow_tcp_link_that_moves_is_not_timed_out(source: str, tmp_path: Path) -> None:
    """Bulk data goes from a worker thread in blocking calls; the per-transfer timeout
    bounds a stretch without progress, not the whole: a device that drains the data
    far slower than that still gets all of it, and progress is heard as it goes."""
    size = 12 * MIB
    data = os.urandom(size)
    received = bytearray()
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:

            async def device() -> None:  # DATA, then 256 KiB every 50 ms: ~5 MB/s
                await anyio.wait_readable(listener)
                connection, _ = listener.accept()
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
                connection.setblocking(False)
                reader = sockio.Reader(connection)
                await reader.exactly(4)
                await sockio.send_all(connection, [tcp_wire.HANDSHAKE])
                await reader.exactly(tcp_wire.parse_frame_header(await reader.exactly(8)))
                await sockio.send_all(connection, [tcp_wire.frame(b"DATA%08x" % size)])
                tcp_wire.parse_frame_header(await reader.exactly(8))
                while len(received) < size:
                    received.extend(await reader.exactly(min(256 << 10, size - len(received))))
                    await anyio.sleep(0.05)
                sockio.close(connection)

            group.start_soon(device)
            transport = await open_tcp("127.0.0.1", listener.getsockname()[1])
            await transport.send(b"download:%08x" % size, timeout=5)
            assert await transport.receive(64, timeout=5) == b"DATA%08x" % size
            heard: list[int] = []
            path = tmp_path / "image"
            path.write_bytes(data)
            with path.open("rb") as file:
                payload = Payload.of(data if source == "bytes" else file)
                await transport.send_data(payload, timeout=0.5, on_sent=heard.append)
            await transport.aclose()
    sockio.close(listener)
    assert bytes(received) == data
    assert sum(heard) == size and len(heard) > 2
