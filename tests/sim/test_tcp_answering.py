"""The simulator answers fastboot TCP as a bootloader does: each response sent at once.

With Nagle's algorithm on the accepted socket, the ``DATA`` that follows ``INFO`` after a
``download:`` waited for the client's ACK of the INFO, and a client that delays its ACKs
(AOSP's, at ~40 ms) paid that stall inside every download step. U-Boot's TCP stack has no
Nagle. The option is checked on a real accepted socket; the stall itself is a timing and
belongs to bench/peers.py.
"""

from __future__ import annotations

import socket

from fastboop.sim.server import _answering


def test_an_accepted_connection_is_non_blocking_and_sends_without_nagle() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                answering = _answering(accepted)
                assert answering is accepted
                assert answering.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                assert not answering.getblocking()
                client.sendall(b"getvar:product")
