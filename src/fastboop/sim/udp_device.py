"""The device side of fastboot over UDP (fastboot.md §8), sans I/O.

:class:`UdpDeviceSession` turns host datagrams into reply datagrams around a
:class:`~fastboop.sim.bootloader.SimulatedBootloader`: it answers queries, negotiates on
init (and starts a fresh bootloader session there, as the spec requires), acknowledges
every host packet with an empty one, hands device messages out when the host polls, and
re-sends its saved reply when the host retransmits. It is as strict as AOSP's host
expects — a command's acknowledgement never carries data — so the real ``fastboot``
client works against it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import msgspec

from fastboop.fastboot import udp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.sim.bootloader import Output, Send, Silence, SimulatedBootloader

DEFAULT_MAX_PACKET_SIZE = 1400  # fits an Ethernet MTU, as U-Boot's does


class Reply(msgspec.Struct, frozen=True):
    """Send ``datagram`` after ``delay`` seconds."""

    datagram: bytes
    delay: float = 0.0


class UdpDeviceSession:
    """One simulated phone listening on a UDP port; see the module docstring."""

    def __init__(
        self,
        new_bootloader: Callable[[], SimulatedBootloader],
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    ):
        self._new_bootloader = new_bootloader
        self.bootloader: SimulatedBootloader | None = None
        self.max_packet_size = max_packet_size
        self.expected_seq = 0
        self._last: tuple[int, bytes] | None = None
        self._incoming: list[bytes] = []
        self._outgoing: deque[Send | Silence] = deque()
        self._partial = b""
        self._unplugged = False

    def release(self) -> None:
        """Free the session's downloaded data (the server forgets this peer)."""
        if self.bootloader is not None:
            self.bootloader.release()

    def handle(self, datagram: bytes | memoryview) -> Reply | None:
        """One datagram in, at most one reply out (``None``: stay silent).

        ``datagram`` may be a view of a buffer the caller reuses: nothing keeps it.
        """
        size = len(datagram)
        if size > udp_wire.HEADER_SIZE:
            packet_id, _, seq = udp_wire.decode_header(datagram)
            bootloader = self.bootloader
            if (
                packet_id == udp_wire.ID_FASTBOOT
                and seq == self.expected_seq
                and bootloader is not None
                and bootloader.data_room >= size - udp_wire.HEADER_SIZE
                and not self._unplugged
            ):
                return self._download_data(bootloader, datagram, seq)
        try:
            packet = udp_wire.decode_packet(bytes(datagram))
        except FastbootProtocolError:
            return None
        if packet.id == udp_wire.ID_QUERY:
            data = udp_wire.encode_u16(self.expected_seq)
            return Reply(udp_wire.encode_packet(udp_wire.ID_QUERY, packet.seq, data))
        if self._last is not None and packet.seq == self._last[0]:
            return Reply(self._last[1])  # a retransmission: same answer, no re-execution
        if packet.seq != self.expected_seq or packet.id == udp_wire.ID_ERROR:
            return None
        if packet.id == udp_wire.ID_INIT:
            reply: Reply | None = self._init(packet)
        elif self.bootloader is None:
            message = b"session not initialised; send init first"
            return Reply(udp_wire.encode_packet(udp_wire.ID_ERROR, packet.seq, message))
        else:
            reply = self._fastboot(packet)
        if reply is not None:
            self._last = (packet.seq, reply.datagram)
            self.expected_seq = (packet.seq + 1) & 0xFFFF
        return reply

    def _download_data(
        self, bootloader: SimulatedBootloader, datagram: bytes | memoryview, seq: int
    ) -> Reply | None:
        """A data packet the device expects, the bulk of a download: its bytes go straight
        into the image (:meth:`SimulatedBootloader.data_buffer`), with no packet object
        and no copy but that one (issue 15: the simulator must not be what a UDP
        benchmark measures). The same outcome as :meth:`_host_data`."""
        count = len(datagram) - udp_wire.HEADER_SIZE
        bootloader.data_buffer(count)[:] = memoryview(datagram)[udp_wire.HEADER_SIZE :]
        if not self._queue(bootloader.data_filled(count)):
            return None
        reply = self._ack(seq)
        self._last = (seq, reply.datagram)
        self.expected_seq = (seq + 1) & 0xFFFF
        return reply

    def _init(self, packet: udp_wire.Packet) -> Reply | None:
        try:
            version, size = udp_wire.decode_init(packet.data)
        except FastbootProtocolError as error:
            return Reply(udp_wire.encode_packet(udp_wire.ID_ERROR, packet.seq, str(error).encode()))
        self.max_packet_size = min(self.max_packet_size, size)
        self.release()  # a new fastboot session: the old one's data goes
        self.bootloader = self._new_bootloader()
        self._incoming, self._outgoing, self._partial = [], deque(), b""
        self._unplugged = False
        data = udp_wire.encode_init(min(version, udp_wire.VERSION), self.max_packet_size)
        return Reply(udp_wire.encode_packet(udp_wire.ID_INIT, packet.seq, data))

    def _fastboot(self, packet: udp_wire.Packet) -> Reply | None:
        if self._unplugged:
            return None
        if packet.data:
            return self._host_data(packet)
        return self._poll(packet.seq)

    def _host_data(self, packet: udp_wire.Packet) -> Reply | None:
        bootloader = self.bootloader
        assert bootloader is not None
        if bootloader.state == "data":
            outputs = bootloader.receive(packet.data)  # the device just counts data bytes
        else:
            self._incoming.append(packet.data)
            if packet.continued:
                return self._ack(packet.seq)
            message, self._incoming = b"".join(self._incoming), []
            outputs = bootloader.receive(message)
        if not self._queue(outputs):
            return None
        return self._ack(packet.seq)

    def _queue(self, outputs: list[Output]) -> bool:
        """Queue the bootloader's replies for the host's polls; False once the phone
        "unplugged" (it then never answers again, as a pulled cable would)."""
        for output in outputs:
            if isinstance(output, Send | Silence):
                self._outgoing.append(output)
            else:
                self._unplugged = True
                return False
        return True

    def _poll(self, seq: int) -> Reply | None:
        delay = 0.0
        if not self._partial:
            if not self._outgoing:
                return self._ack(seq)  # nothing to say (yet)
            output = self._outgoing[0]
            if isinstance(output, Silence):
                return None  # hung bootloader: the host will retransmit, then give up
            self._outgoing.popleft()
            self._partial, delay = output.packet, output.delay
        room = self.max_packet_size - udp_wire.HEADER_SIZE
        piece, self._partial = self._partial[:room], self._partial[room:]
        datagram = udp_wire.encode_packet(
            udp_wire.ID_FASTBOOT, seq, piece, continued=bool(self._partial)
        )
        return Reply(datagram, delay)

    @staticmethod
    def _ack(seq: int) -> Reply:
        return Reply(udp_wire.encode_packet(udp_wire.ID_FASTBOOT, seq))
