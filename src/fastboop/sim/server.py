"""The simulated phone served over fastboot TCP and UDP, so real clients can talk to it.

:class:`SimService` owns one model and every session opened against it. Each TCP
connection and each UDP ``init`` starts a fresh :class:`SimulatedBootloader` (a phone
re-entering fastboot mode); every command is logged with structlog and every booted image
is collected (and passed to ``on_boot``, which ``fastboop sim --save-boot`` uses).
The protocol work is done by the sans-I/O cores; this module only owns sockets and sleeps.
"""

from __future__ import annotations

import socket
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from fastboop.fastboot import tcp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.logs import get_logger
from fastboop.sim.bootloader import BootCallback, Output, Send, Silence, SimulatedBootloader
from fastboop.sim.model import BootloaderModel
from fastboop.sim.ram import DownloadRam
from fastboop.sim.udp_device import DEFAULT_MAX_PACKET_SIZE, UdpDeviceSession
from fastboop.transports import sockio
from fastboop.transports.busypoll import BusyPoll
from fastboop.transports.sockblock import open_nonblocking

MAX_COMMAND_FRAME: Final = 4096
KEEP_BOOTS: Final = 3
KEEP_SESSIONS: Final = 16
MAX_UDP_PEERS: Final = 16
DATA_PIECE: Final = 1 << 20
UDP_DATAGRAM_MAX: Final = 1 << 16

if TYPE_CHECKING:
    from fastboop.sim.usbip_phone import UsbipPhone
    from fastboop.sim.usbip_server import UsbipService
    from fastboop.sim.vm import VirtualPhone

_log = get_logger("fastboop.sim")


class SimService:
    """One simulated phone reachable over TCP and/or UDP; see the module docstring.

    A simulator may serve for days, so it keeps little: the last ``keep_boots`` booted
    images (``booted_images``) and the last ``keep_sessions`` sessions (``sessions``, for
    their command logs). A session's downloaded data is freed when its connection ends,
    and UDP sessions, which have no connection, when their peer has been quiet longest
    among more than :data:`MAX_UDP_PEERS` (issue 10 §6).
    """

    def __init__(
        self,
        model: BootloaderModel,
        *,
        on_boot: BootCallback | None = None,
        keep_boots: int = KEEP_BOOTS,
        keep_sessions: int = KEEP_SESSIONS,
    ):
        self.model = model
        self._sessions: deque[SimulatedBootloader] = deque(maxlen=keep_sessions)
        self._boots: deque[bytes] = deque(maxlen=keep_boots)
        self.endpoints: list[str] = []  # "tcp:HOST:PORT" / "udp:HOST:PORT" once listening
        self._on_boot = on_boot
        self.ram = DownloadRam()  # one phone, one download buffer, shared by its sessions
        # Set by `fastboop sim --usbip` (cli/sim.py run_sim): the USB/IP service and the
        # phone that turns into stage0's gadget there after a boot.
        self.usbip: UsbipService | None = None
        self.phone: UsbipPhone | VirtualPhone | None = None

    def new_bootloader(self, peer: str) -> SimulatedBootloader:
        log = _log.bind(model=self.model.name, peer=peer)

        def booted(image: bytes) -> None:
            log.info("boot", image_bytes=len(image))
            self._boots.append(image)
            if self._on_boot is not None:
                self._on_boot(image)

        bootloader = SimulatedBootloader(
            self.model,
            on_boot=booted,
            on_command=lambda c: log.info("command", command=c),
            keep_images=False,  # the service keeps the last few itself
            ram=self.ram,
        )
        self._sessions.append(bootloader)
        return bootloader

    @property
    def sessions(self) -> list[SimulatedBootloader]:
        """The most recent sessions (live or ended), oldest first."""
        return list(self._sessions)

    @property
    def booted_images(self) -> list[bytes]:
        """The most recently booted images, oldest first."""
        return list(self._boots)

    @property
    def commands(self) -> list[str]:
        """Every command the kept sessions received, in order."""
        return [command for session in self._sessions for command in session.commands]

    async def serve_tcp(
        self,
        host: str = "127.0.0.1",
        port: int = tcp_wire.DEFAULT_PORT,
        *,
        task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept fastboot TCP connections until cancelled; reports the bound port.

        Plain non-blocking sockets (:mod:`fastboop.transports.sockio`), so download data
        is received straight into the image (``recv_into``): the simulator keeps up with
        any client on loopback instead of being what a benchmark measures.
        """
        listener = _listen(host, port)
        try:
            bound = int(listener.getsockname()[1])
            _log.info("listening", transport="tcp", host=host, port=bound, model=self.model.name)
            self.endpoints.append(f"tcp:{host}:{bound}")
            task_status.started(bound)
            async with anyio.create_task_group() as group:
                while True:
                    await anyio.wait_readable(listener)
                    try:
                        connection, remote = listener.accept()
                    except (BlockingIOError, ConnectionAbortedError):
                        continue
                    group.start_soon(self._tcp_connection, _answering(connection), remote)
        finally:
            sockio.close(listener)

    async def _tcp_connection(self, connection: socket.socket, remote: tuple[Any, ...]) -> None:
        peer = f"tcp:{remote[0]}:{remote[1]}"
        bootloader = self.new_bootloader(peer)
        try:
            await _TcpSession(connection, bootloader).run()
        except (OSError, EOFError, anyio.ClosedResourceError, FastbootProtocolError) as error:
            _log.info("connection closed", peer=peer, reason=str(error) or type(error).__name__)
        finally:
            bootloader.release()
            sockio.close(connection)

    async def serve_udp(
        self,
        host: str = "127.0.0.1",
        port: int = tcp_wire.DEFAULT_PORT,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        busy_poll: BusyPoll | None = None,
        task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Answer fastboot UDP packets until cancelled; one session per host address.

        At most :data:`MAX_UDP_PEERS` sessions live at once; a new peer evicts the one
        heard from least recently, and its data with it. A plain non-blocking socket,
        drained with ``recvfrom_into`` a reused buffer whenever it is readable: a
        download is one datagram per round trip, and anyio's UDP socket objects cost
        more per datagram than the rest of the simulator (issue 15).

        With ``busy_poll`` (``fastboop sim`` passes one: it is a process of its own, like
        a phone), each reply is followed by polling the socket for a short window before
        the event loop's wait, as a bootloader polls its NIC, backing off while the
        client is slower (:class:`~fastboop.transports.busypoll.BusyPoll`): a download's
        next packet then needs no wake-up, which on a VM costs more than handling it.
        Other tasks wait one window at most. Without it (the default: in a process
        shared with the client there is no wake-up to save), the loop never spins.
        """
        sessions: OrderedDict[tuple[str, int], UdpDeviceSession] = OrderedDict()
        sock = _bind_udp(host, port)
        try:
            bound = int(sock.getsockname()[1])
            _log.info("listening", transport="udp", host=host, port=bound, model=self.model.name)
            self.endpoints.append(f"udp:{host}:{bound}")
            task_status.started(bound)
            buffer = memoryview(bytearray(UDP_DATAGRAM_MAX))
            handled = 0
            poll, until = busy_poll or BusyPoll(window=0.0), 0.0
            while True:
                await anyio.wait_readable(sock)
                while True:
                    try:
                        count, address = sock.recvfrom_into(buffer)
                    except BlockingIOError:
                        if until:
                            if time.perf_counter() < until:
                                continue  # the client's next packet is likely on its way
                            poll.miss()
                            until = 0.0
                        break
                    except ConnectionRefusedError:
                        break
                    if until:
                        poll.hit()
                    key = (str(address[0]), int(address[1]))
                    session = sessions.get(key)
                    if session is None:
                        session = self._udp_session(sessions, key, max_packet_size)
                    else:
                        sessions.move_to_end(key)
                    reply = session.handle(buffer[:count])
                    if reply is not None:
                        if reply.delay:
                            await anyio.sleep(reply.delay)
                        await _send_datagram(sock, reply.datagram, address)
                    until = poll.deadline(time.perf_counter())
                    handled += 1
                    if handled % 64 == 0:  # a peer that never pauses must not starve the rest
                        await anyio.lowlevel.checkpoint()
        finally:
            sockio.close(sock)

    def _udp_session(
        self,
        sessions: OrderedDict[tuple[str, int], UdpDeviceSession],
        key: tuple[str, int],
        max_packet_size: int,
    ) -> UdpDeviceSession:
        name = f"udp:{key[0]}:{key[1]}"
        session = UdpDeviceSession(lambda: self.new_bootloader(name),
                                   max_packet_size=max_packet_size)  # fmt: skip
        sessions[key] = session
        if len(sessions) > MAX_UDP_PEERS:
            _, evicted = sessions.popitem(last=False)
            evicted.release()
        return session


class _TcpSession:
    """One TCP connection: handshake, then framed messages in and out."""

    def __init__(self, sock: socket.socket, bootloader: SimulatedBootloader):
        self._sock = sock
        self._reader = sockio.Reader(sock)
        self._bootloader = bootloader

    async def run(self) -> None:
        peer = tcp_wire.parse_handshake(await self._reader.exactly(tcp_wire.HANDSHAKE_SIZE))
        await sockio.send_all(self._sock, [b"FB%02d" % min(peer, tcp_wire.VERSION)])
        while True:
            try:
                header = await self._reader.exactly(tcp_wire.HEADER_SIZE)
            except EOFError:
                return
            length = tcp_wire.parse_frame_header(header)
            if self._bootloader.state == "data":
                if not await self._data(length):
                    return
                continue
            if length > MAX_COMMAND_FRAME:
                raise FastbootProtocolError(f"{length}-byte command frame")
            message = await self._reader.exactly(length) if length else b""
            if not await self._emit(self._bootloader.receive(message)):
                return

    async def _data(self, length: int) -> bool:
        """Download data: received in place while the device expects it, the device only
        counting bytes; any excess goes the ordinary way (and is refused)."""
        bootloader = self._bootloader
        while length:
            if bootloader.state == "data" and bootloader.data_room:
                count = await self._reader.into(bootloader.data_buffer(length))
                outputs = bootloader.data_filled(count)
            else:
                piece = await self._reader.exactly(min(length, DATA_PIECE))
                count = len(piece)
                outputs = bootloader.receive(piece)
            length -= count
            if not await self._emit(outputs):
                return False
        return True

    async def _emit(self, outputs: list[Output]) -> bool:
        """Send the bootloader's replies; False when the phone "unplugged"."""
        for output in outputs:
            if isinstance(output, Silence):
                return True
            if isinstance(output, Send):
                if output.delay:
                    await anyio.sleep(output.delay)
                await sockio.send_all(self._sock, [tcp_wire.frame(output.packet)])
            else:
                return False
        return True


def _bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (port 0: any free port)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    return open_nonblocking(socket.socket, host, infos, lambda sock, address: sock.bind(address))


async def _send_datagram(sock: socket.socket, datagram: bytes, address: Any) -> None:
    while True:
        try:
            sock.sendto(datagram, address)
            return
        except BlockingIOError:
            await anyio.wait_writable(sock)


def _answering(connection: socket.socket) -> socket.socket:
    """An accepted fastboot connection, set up to answer as a bootloader does: at once.

    Non-blocking for the event loop, and TCP_NODELAY: a bootloader's TCP stack sends each
    response when it is made (U-Boot's has no Nagle). Without it, Nagle held the
    ``DATA`` that follows ``INFO`` until the client ACKed the INFO, and the client's
    delayed ACK made that ~40 ms inside every download step, for AOSP's client and ours.
    """
    connection.setblocking(False)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _listen(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on ``host:port`` (port 0: any free port)."""

    def listen(listener: socket.socket, address: Any) -> None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(64)

    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return open_nonblocking(socket.socket, host, infos, listen)
