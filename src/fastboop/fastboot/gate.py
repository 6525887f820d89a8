"""The never-flash gate at the wire: what a fastboot transport may put on it, and when.

:class:`~fastboop.fastboot.client.FastbootClient` can only say ``getvar``, ``download``
and ``boot``, but a transport is a public object too: ``TcpTransport.send(b"flash:boot")``
would put a mutating command on the wire with no client involved. So every fastboot
transport owns a :class:`WireGate` and runs every host-to-device write through it before
a byte leaves. The gate allows exactly:

* a command that :func:`~fastboop.fastboot.protocol.check_command` accepts (the same
  function the client checks with): ``getvar:<name>``, ``download:%08x``, ``boot``;
* download data, but only inside the data phase of an accepted ``download``: after the
  host sent ``download:N`` *and* the device answered ``DATA``, and only up to the size
  both agreed on. Bytes past it, or data with no ``DATA`` seen, are refused.

To know when a data phase starts and ends the gate also sees every device-to-host
response (:meth:`WireGate.incoming`). It is sans-I/O like the rest of
:mod:`fastboop.fastboot`: bytes in, a verdict out, so each transport stays a thin leaf
and a new transport (the USB/IP one, a vendor's) only has to call two methods.
"""

from __future__ import annotations

from fastboop.fastboot import protocol, udp_wire
from fastboop.fastboot.errors import FastbootBadArgument, FastbootProtocolError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Final, Literal

    Phase = Literal["command", "data"]

_FINAL_STATUSES: Final = (b"OKAY", b"FAIL", b"DATA")
_DOWNLOAD_PREFIX: Final = b"download:"


class FastbootRefused(FastbootBadArgument):
    """A transport refused to put bytes on the wire (fastboop never changes a device)."""


class WireGate:
    """One connection's view of the fastboot exchange; see the module docstring.

    Call :meth:`outgoing` with every host-to-device write *before* writing it (it raises
    :class:`FastbootRefused` and nothing may be written), and :meth:`incoming` with every
    device-to-host response packet. :meth:`reset` starts over, for a transport whose
    device restarts its fastboot session (a UDP ``init``, a reconnect).
    """

    __slots__ = ("_data_left", "_download_size", "phase")

    def __init__(self) -> None:
        self.phase: Phase = "command"
        self._download_size: int | None = None  # "download:N" sent, no final status yet
        self._data_left = 0

    def reset(self) -> None:
        self.phase = "command"
        self._download_size = None
        self._data_left = 0

    @property
    def data_left(self) -> int:
        """Bytes the current data phase still accepts (0 outside a data phase)."""
        return self._data_left

    def outgoing(self, data: bytes | bytearray | memoryview) -> None:
        """Allow ``data`` onto the wire, or raise :class:`FastbootRefused`."""
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if self.phase == "data":
            self.data(size)
            return
        if size > protocol.COMMAND_LIMIT:  # no copy of a big buffer just to refuse it
            raise FastbootRefused(
                f"refusing {size} bytes outside a download's data phase: a fastboot "
                f"command is at most {protocol.COMMAND_LIMIT} bytes",
                hint="fastboop only sends getvar, download and boot",
            )
        command = bytes(data)
        try:
            protocol.check_command(command)
        except FastbootBadArgument as refused:
            raise FastbootRefused(refused.message, where=refused.where, hint=refused.hint) from None
        if command.startswith(_DOWNLOAD_PREFIX):
            self._download_size = int(command[len(_DOWNLOAD_PREFIX) :], 16)
        else:
            self._download_size = None

    def data(self, size: int) -> None:
        """Allow ``size`` bytes of download data (from memory or a file), or raise.

        Only inside the data phase of an accepted download, and not past its size.
        """
        if self.phase != "data" or size > self._data_left:
            left = self._data_left if self.phase == "data" else 0
            raise FastbootRefused(
                f"refusing {size} bytes of download data: the accepted download has "
                f"{left} bytes left",
                hint="fastboop only sends download data the device asked for",
            )
        self._data_left -= size
        if self._data_left == 0:
            self.phase = "command"

    def incoming(self, packet: bytes | bytearray | memoryview) -> None:
        """Observe one device response: a ``DATA`` to a pending download opens its phase."""
        status = bytes(packet[:4])
        if status not in _FINAL_STATUSES:
            return  # INFO/TEXT (or garbage the client will reject) ends nothing
        requested, self._download_size = self._download_size, None
        if self.phase == "data":
            # The device spoke before the data was complete (a FAIL, say): its data phase
            # is over, whatever it was still owed.
            self.phase, self._data_left = "command", 0
            return
        if status != b"DATA" or requested is None:
            return
        try:
            offered = protocol.parse_data_size(bytes(packet[4:]))
        except FastbootProtocolError:
            offered = None  # over 4 GiB: the client stops; allow no more than requested
        self._data_left = requested if offered is None else min(requested, offered)
        if self._data_left:
            self.phase = "data"


class UdpWireGate:
    """:class:`WireGate` for fastboot over UDP, where the wire carries datagrams (§8).

    The UDP transport's only socket writer hands every datagram to :meth:`outgoing`. A
    query, an init (which restarts the device's session, so the gate starts over too) and
    an empty fastboot packet (a poll or an acknowledgement) carry no command; any other
    fastboot packet's data is checked like a TCP or USB write. Outside a data phase a
    command must fit one packet (commands are at most 64 bytes), so a continuation flag
    there is refused: it would let a command be assembled from pieces the gate never
    saw whole. The host never sends error packets, nor anything that does not decode.
    """

    __slots__ = ("gate",)

    def __init__(self) -> None:
        self.gate = WireGate()

    def outgoing(self, datagram: bytes | bytearray | memoryview) -> None:
        try:
            packet = udp_wire.decode_packet(bytes(datagram))
        except FastbootProtocolError as error:
            raise FastbootRefused(f"refusing a malformed UDP datagram: {error}") from None
        if packet.id == udp_wire.ID_QUERY and not packet.data:
            return
        if packet.id == udp_wire.ID_INIT and len(packet.data) == 4:
            self.gate.reset()
            return
        if packet.id != udp_wire.ID_FASTBOOT:
            raise FastbootRefused(
                f"refusing a UDP packet with id 0x{packet.id:02x} and {len(packet.data)} "
                "data bytes: the host sends only query, init and fastboot packets"
            )
        if not packet.data:
            return
        if packet.continued and self.gate.phase != "data":
            raise FastbootRefused(
                "refusing a fastboot command split over UDP packets",
                hint="commands are at most 64 bytes and always fit one packet",
            )
        self.gate.outgoing(packet.data)

    def data(self, size: int) -> None:
        """Allow ``size`` bytes of download data that the transport itself cuts into
        fastboot packets (id 0x03, nothing but the payload's bytes in them), or raise.

        The data phase's datagrams are then not decoded one by one: checking the
        ``size`` bytes once, before the first of them leaves, is the same verdict
        :meth:`outgoing` would reach for each (they are data inside the accepted phase,
        within its size) at a fraction of the cost (issue 15).
        """
        self.gate.data(size)

    def incoming(self, message: bytes | bytearray | memoryview) -> None:
        """One whole device message (continuations already joined)."""
        self.gate.incoming(message)
