"""The TCP link's data phase on a non-blocking socket: send until the send buffer is full,
poll for room a short while (:class:`~fastboop.transports.busypoll.BusyPoll`), then
sleep until there is room (issue 15). Against real sockets and a device in a thread:
a reader slow enough to fill the buffers many times still gets every byte in order, and
one that stops reading makes the per-transfer timeout fire as the usual typed error."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fastboop.fastboot import tcp_wire
from fastboop.fastboot.blocking import BlockingFastbootClient
from fastboop.fastboot.errors import FastbootTimeout
from fastboop.fastboot.payload import Payload
from fastboop.transports.busypoll import BusyPoll
from fastboop.transports.tcp_link import TcpLink, open_tcp_link

MIB = 1 << 20
LIMIT = 60.0  # seconds a device thread waits at most; a bound, never asserted on


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = sock.recv(size, socket.MSG_WAITALL)
    assert len(data) == size
    return data


@contextmanager
def device(behave: Callable[[socket.socket, int], None]) -> Iterator[int]:
    """A fastboot TCP device in a thread: handshake, ``getvar`` -> 256 MiB,
    ``download:`` -> ``DATA``, then
    ``behave(connection, size)`` with the data phase's header read. Yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(LIMIT)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(LIMIT)
                _exactly(connection, 4)
                connection.sendall(tcp_wire.HANDSHAKE)
                while True:  # a client may ask for max-download-size first
                    header = _exactly(connection, 8)
                    command = _exactly(connection, tcp_wire.parse_frame_header(header))
                    if command.startswith(b"download:"):
                        break
                    connection.sendall(tcp_wire.frame(b"OKAY0x10000000"))
                size = int(command.removeprefix(b"download:"), 16)
                connection.sendall(tcp_wire.frame(b"DATA%08x" % size))
                assert tcp_wire.parse_frame_header(_exactly(connection, 8)) == size
                behave(connection, size)
        except BaseException as error:  # reported by device() once the test is done
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(LIMIT)
        listener.close()
    assert not failures, failures


def _small_buffers(link: TcpLink) -> None:
    assert link.sock is not None
    link.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 10)


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_a_slow_reader_forcing_many_full_buffers_gets_every_byte_in_order(
    source: str, tmp_path: Path
) -> None:
    size = 3 * MIB + 12345  # not a multiple of any buffer or call size
    data = os.urandom(size)
    received = bytearray()

    def slow(connection: socket.socket, length: int) -> None:
        while len(received) < length:  # 32 KiB at a time, with pauses: ~100 full buffers
            piece = connection.recv(min(32 << 10, length - len(received)))
            assert piece
            received.extend(piece)
            time.sleep(0.001)
        connection.sendall(tcp_wire.frame(b"OKAY"))

    poll = BusyPoll(window=50e-6, max_rest=1)  # spins every other full buffer
    path = tmp_path / "image"
    path.write_bytes(data)
    heard: list[int] = []
    with device(slow) as port, path.open("rb") as file:
        link = open_tcp_link("127.0.0.1", port)
        link.busy_poll = poll
        _small_buffers(link)
        link.send(b"download:%08x" % size, timeout=5)
        assert link.receive(64, timeout=5) == b"DATA%08x" % size
        payload = Payload.of(data if source == "bytes" else file)
        link.send_data(payload, timeout=5, on_sent=heard.append)
        assert link.receive(64, timeout=5) == b"OKAY"
        link.close()
    assert bytes(received) == data
    assert sum(heard) == size
    assert poll.hits + poll.misses >= 10  # the buffer was full, and the link spun, often


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_a_device_that_stops_reading_is_the_usual_typed_timeout(
    source: str, tmp_path: Path
) -> None:
    size = 64 * MIB  # far more than every buffer between the two
    stop = threading.Event()

    def stalls(connection: socket.socket, length: int) -> None:
        connection.recv(64 << 10)  # some data, then never again
        stop.wait(LIMIT)

    path = tmp_path / "image"
    path.write_bytes(bytes(size))
    with device(stalls) as port, path.open("rb") as file:
        link = open_tcp_link("127.0.0.1", port)
        client = BlockingFastbootClient(link, timeout=0.3)
        started = time.monotonic()
        try:
            with pytest.raises(FastbootTimeout, match=r"0\.3 s"):
                client.download(bytes(size) if source == "bytes" else file)
        finally:
            stop.set()
            link.close()
        assert time.monotonic() - started < LIMIT  # it did end: no hang
