"""The device side of fastboot as a sans-I/O state machine: packet in, replies out.

:class:`SimulatedBootloader` is what every simulator adapter (in-memory, TCP, UDP,
emulated USB) wraps. It owns the protocol state — waiting for a command, counting
download bytes, booted, unplugged — and returns *what* to send and *when* (a delay, a
silence, an unplug) without doing any of it, so the adapters stay thin and the behaviour
is identical whichever wire the client uses.

Unlike a real bootloader it refuses every command except ``getvar``, ``download`` and
``boot`` and remembers those refusals, so tests can prove nothing tried to change the
"device".
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable
from typing import Literal

import msgspec

from fastboop.fastboot.protocol import encode_response
from fastboop.sim.model import BootloaderModel, CommandBehaviour
from fastboop.sim.ram import DownloadRam

State = Literal["command", "data", "booted", "unplugged"]


class Send(msgspec.Struct, frozen=True):
    """Send ``packet`` to the host, after waiting ``delay`` seconds."""

    packet: bytes
    delay: float = 0.0


class Silence(msgspec.Struct, frozen=True):
    """The bootloader will never answer this command; the host must time out."""


class Unplug(msgspec.Struct, frozen=True):
    """The device drops off the bus: every further operation fails."""


Output = Send | Silence | Unplug

_DOWNLOAD = re.compile(r"download:([0-9a-fA-F]{8})")

MAX_LOG = 10_000
"""Commands (and refusals) a session remembers; older ones are dropped, so a client that
never hangs up cannot grow the simulator without bound."""

BootCallback = Callable[[bytes], None]
CommandCallback = Callable[[str], None]


class SimulatedBootloader:
    """One fastboot session on a simulated phone; see the module docstring.

    ``booted_images`` holds every image the host booted, in order, unless ``keep_images``
    is false (a long-running server hands each image to ``on_boot`` and keeps a few
    itself); ``commands`` the last :data:`MAX_LOG` commands received (including refused
    ones) and ``refused`` the ones not allowed.
    """

    def __init__(
        self,
        model: BootloaderModel,
        *,
        on_boot: BootCallback | None = None,
        on_command: CommandCallback | None = None,
        keep_images: bool = True,
        ram: DownloadRam | None = None,
    ):
        self.model = model
        self._ram = ram or DownloadRam()
        self._keep_images = keep_images
        self._on_command = on_command
        self.state: State = "command"
        self.commands: list[str] = []
        self.refused: list[str] = []
        self.booted_images: list[bytes] = []
        self.bytes_received = 0
        self._on_boot = on_boot
        self._expected = 0
        self._chunks: list[bytes | memoryview] = []
        self._fill: mmap.mmap | None = None  # see data_buffer
        self._region: mmap.mmap | None = None  # the download RAM this download's data is in
        self._fill_start = 0
        self._received = 0
        self._image: bytes | None = None

    def receive(self, packet: bytes | memoryview) -> list[Output]:
        """Feed one host packet (a command or a piece of download data).

        Data may arrive as a read-only view; it is kept by reference and joined into the
        image when it is booted.
        """
        if self.state == "unplugged":
            return [Unplug()]
        if self.state == "data":
            return self._data(packet)
        if self.state == "booted":
            # The phone left fastboot mode: nothing listens any more.
            self.state = "unplugged"
            return [Unplug()]
        return self._command(bytes(packet))

    def release(self) -> None:
        """Forget any downloaded data: the connection ended, nothing can boot it now."""
        self._drop_data()
        self._image = None
        self._received = self._expected = 0
        if self.state == "data":
            self.state = "command"

    @property
    def downloaded(self) -> bytes | None:
        """The image currently held in RAM (after a complete download)."""
        if self._image is None and self._chunks and self._received == self._expected:
            self._image = b"".join(self._chunks)
            self._drop_data()
        return self._image

    def _drop_data(self) -> None:
        """The download's pieces are no longer needed: its RAM is free for the next."""
        self._chunks = []
        self._fill = None
        region, self._region = self._region, None
        if region is not None:
            self._ram.give(region)

    def _command(self, packet: bytes) -> list[Output]:
        command = packet.decode("utf-8", errors="replace")
        _log_append(self.commands, command)
        if self._on_command is not None:
            self._on_command(command)
        if len(packet) > 4096 or not packet:
            return [Send(encode_response("FAIL", b"invalid command"))]
        if command.startswith("getvar:"):
            return self._getvar(command)
        match = _DOWNLOAD.fullmatch(command)
        if match:
            return self._download(command, int(match.group(1), 16))
        if command == "boot":
            return self._boot(command)
        _log_append(self.refused, command)
        return [Send(encode_response("FAIL", b"command not allowed by the fastboop simulator"))]

    def _finish(self, behaviour: CommandBehaviour, final: bytes) -> list[Output]:
        wait = behaviour.info_interval
        lines = [encode_response("INFO", i.encode()) for i in behaviour.info]
        lines += [encode_response("INFO", b"chatter %d" % n) for n in range(behaviour.chatter)]
        lines += [encode_response("TEXT", t.encode() + b"\x00") for t in behaviour.text]
        outputs: list[Output] = [Send(line, delay=wait) for line in lines]
        if behaviour.silent:
            outputs.append(Silence())
            return outputs
        if behaviour.fail is not None:
            final = encode_response("FAIL", behaviour.fail.encode())
        outputs.append(Send(final, delay=behaviour.delay))
        return outputs

    def _getvar(self, command: str) -> list[Output]:
        name = command[len("getvar:") :]
        behaviour = self.model.behaviour_for(command)
        if name == "all":
            lines = [f"{key}:{value}" for key, value in sorted(self._all_variables().items())]
            behaviour = msgspec.structs.replace(behaviour, info=[*behaviour.info, *lines])
            return self._finish(behaviour, encode_response("OKAY"))
        value = self.model.variable(name)
        if value is None:
            return self._finish(behaviour, encode_response("FAIL", b"GetVar Variable Not found"))
        return self._finish(behaviour, encode_response("OKAY", value.encode()))

    def _all_variables(self) -> dict[str, str]:
        names = {"max-download-size", "serialno", *self.model.getvar}
        return {name: self.model.variable(name) or "" for name in names}

    def _download(self, command: str, size: int) -> list[Output]:
        behaviour = self.model.behaviour_for(command)
        if size == 0 or size > self.model.max_download_size:
            failure = encode_response("FAIL", b"data too large" if size else b"invalid size")
            return self._finish(CommandBehaviour(info=behaviour.info), failure)
        outputs = self._finish(behaviour, b"DATA" + self._data_size(size))
        if behaviour.fail is None and not behaviour.silent:
            self.state = "data"
            self._expected = size
            self._drop_data()
            self._received = 0
            self._image = None
        return outputs

    def _data_size(self, size: int) -> bytes:
        digits = f"{size:x}".encode()
        return digits.rjust(8, self.model.data_size_padding.encode())

    def _data(self, packet: bytes | memoryview) -> list[Output]:
        if not packet:
            return []  # zero-length packets are ignored in the data phase (§2.3)
        if len(packet) > self._expected - self._received:
            if self._unplugs_within(len(packet)):
                return self._unplug()
            self.bytes_received += len(packet)
            self.state = "command"
            self._drop_data()
            return [Send(encode_response("FAIL", b"more data than announced"))]
        self._chunks.append(packet)
        return self._count(len(packet))

    @property
    def data_room(self) -> int:
        """Bytes of download data the device still expects (0 outside a data phase)."""
        return self._expected - self._received if self.state == "data" else 0

    def data_buffer(self, size: int) -> memoryview:
        """Where the next ``size`` (at most :attr:`data_room`) bytes of data go, in place.

        A socket adapter receives straight into it (``recv_into``), then reports with
        :meth:`data_filled`: the image is assembled where it lies, with no copy per piece.
        The view is the adapter's until then only: the RAM is reused by later downloads.
        """
        if self._fill is None:
            self._fill = self._region = self._ram.take(self.data_room)
            self._fill_start = self._received
            self._chunks.append(memoryview(self._fill)[: self.data_room])
        start = self._received - self._fill_start
        return memoryview(self._fill)[start : start + min(size, self.data_room)]

    def data_filled(self, count: int) -> list[Output]:
        """``count`` more bytes were written into :meth:`data_buffer`'s view."""
        return self._count(count)

    def _count(self, count: int) -> list[Output]:
        if self._unplugs_within(count):
            return self._unplug()
        self.bytes_received += count
        self._received += count
        if self._received < self._expected:
            return []
        self.state = "command"
        self._fill = None
        return self._finish(self.model.behaviour_for("data"), encode_response("OKAY"))

    def _unplugs_within(self, count: int) -> bool:
        limit = self.model.unplug_after_bytes
        return limit is not None and self.bytes_received + count > limit

    def _unplug(self) -> list[Output]:
        limit = self.model.unplug_after_bytes
        assert limit is not None
        self.bytes_received = limit
        self.state = "unplugged"
        return [Unplug()]

    def _boot(self, command: str) -> list[Output]:
        behaviour = self.model.behaviour_for(command)
        image = self.downloaded
        if image is None:
            return self._finish(behaviour, encode_response("FAIL", b"no image downloaded"))
        outputs = self._finish(behaviour, encode_response("OKAY"))
        if behaviour.fail is None and not behaviour.silent:
            if self._keep_images:
                self.booted_images.append(image)
            self.state = "booted"
            self._image = None  # the booted system owns it now; this session is over
            if self._on_boot is not None:
                self._on_boot(image)
        return outputs


def _log_append(log: list[str], entry: str) -> None:
    if len(log) >= MAX_LOG:
        del log[: len(log) - MAX_LOG + 1]
    log.append(entry)
