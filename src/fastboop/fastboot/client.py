"""An async fastboot client that can only read variables, load an image and boot it.

The public surface is deliberately three methods: :meth:`FastbootClient.getvar`,
:meth:`FastbootClient.download` and :meth:`FastbootClient.boot`. There is no generic
"send a command" entry point, so no caller — and no bug — can flash, erase or change slots
(fastboot.md §1.1). The wire rules live in :mod:`fastboop.fastboot.protocol`; this module
only moves packets and maps transport failures onto the typed error kinds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Final, Protocol, runtime_checkable

from fastboop.fastboot import protocol
from fastboop.fastboot.errors import (
    FastbootBadArgument,
    FastbootDeviceFailure,
    FastbootProtocolError,
    FastbootTimeout,
    FastbootTransportError,
)
from fastboop.fastboot.protocol import Response
from fastboop.logs import get_logger
from fastboop.transports.base import Transport, TransportError

DEFAULT_TIMEOUT: Final = 30.0
"""Per-transfer timeout in seconds (§5); INFO/TEXT restart it."""

CHUNK_SIZE: Final = 1 << 20
"""Download data goes out in 1 MiB transfers (§4.2)."""

ProgressCallback = Callable[[int, int], None]
InfoCallback = Callable[[Response], None]

_log = get_logger("fastboop.fastboot")


@runtime_checkable
class ViewSender(Protocol):
    """Optional transport capability: send a read-only ``memoryview`` without copying it.

    :class:`~fastboop.transports.base.Transport` carries ``bytes``; a transport that can
    also take a view (the simulator, TCP) spares the client one copy per 1 MiB chunk,
    which is what keeps in-memory downloads above 1 GB/s. Others get ``bytes`` as usual.
    """

    async def send_view(self, view: memoryview, *, timeout: float) -> None: ...


class FastbootClient:
    """Speaks fastboot over one open :class:`~fastboop.transports.base.Transport`.

    ``on_info`` receives every INFO/TEXT response (to show as ``(bootloader) ...``);
    ``timeout`` bounds each transfer. The getvar cache lives as long as the client, which
    is one probe-and-boot session on one device (§4.1); only OKAY answers are cached.
    """

    __slots__ = ("_cache", "_chunk_size", "_on_info", "_timeout", "_transport")

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_info: InfoCallback | None = None,
        chunk_size: int = CHUNK_SIZE,
    ):
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._transport = transport
        self._timeout = timeout
        self._on_info = on_info
        self._chunk_size = chunk_size
        self._cache: dict[str, str] = {}

    async def getvar(self, name: str) -> str:
        """Read one variable. Raises :class:`FastbootDeviceFailure` when the device FAILs.

        The value is the OKAY payload without trailing NULs; whitespace is kept (§4.1).
        """
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        command = protocol.encode_getvar(name)
        await self._send_command(command)
        value = protocol.expect_okay(await self._final_response(), command.decode())
        self._cache[name] = value
        return value

    async def download(
        self,
        data: bytes | bytearray | memoryview,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Load ``data`` into device RAM (``download``), never into a partition.

        Checks ``max-download-size`` first so an oversized image fails with both sizes
        named instead of an opaque device FAIL (§6).
        """
        view = memoryview(data).cast("B")
        total = len(view)
        command = protocol.encode_download(total)
        await self._check_max_download_size(total)
        await self._send_command(command)
        accepted = protocol.parse_data_size(
            protocol.expect_data(await self._final_response(), command.decode()).raw
        )
        if accepted is None:
            _log.warning("unparseable DATA size, sending anyway", requested=total)
        elif accepted != total:
            raise FastbootProtocolError(
                f"device accepted {accepted} bytes, requested {total}", where="download"
            )
        await self._send_data(view, on_progress)
        protocol.expect_okay(await self._final_response(), "download")

    async def boot(self) -> None:
        """Boot the image just downloaded. On OKAY the device leaves fastboot mode."""
        command = protocol.encode_boot()
        await self._send_command(command)
        protocol.expect_okay(await self._final_response(), "boot")

    async def _check_max_download_size(self, size: int) -> None:
        try:
            raw = await self.getvar("max-download-size")
        except FastbootDeviceFailure as failure:
            _log.warning("max-download-size not available", device_message=failure.device_message)
            return
        limit = protocol.parse_max_download_size(raw)
        _log.debug("max-download-size", raw=raw, parsed=limit)
        if limit is None:
            _log.warning("unparseable max-download-size, letting the device decide", raw=raw)
        elif size > limit:
            raise FastbootBadArgument(
                f"boot image is {size} bytes but the device's max-download-size is {limit}",
                hint="use a smaller kernel/initramfs or a device profile with size limits",
            )

    async def _send_data(self, view: memoryview, on_progress: ProgressCallback | None) -> None:
        total = len(view)
        chunk_size = self._chunk_size
        # Zero-copy only for immutable data: a view of a bytearray could change under a
        # transport that keeps it (the simulator records what it received).
        zero_copy = view.readonly and isinstance(self._transport, ViewSender)
        sent = 0
        while sent < total:
            end = min(sent + chunk_size, total)
            if zero_copy:
                await self._send_view(view[sent:end])
            else:
                await self._send(view[sent:end].tobytes())
            sent = end
            if on_progress is not None:
                on_progress(sent, total)

    async def _send_view(self, chunk: memoryview) -> None:
        transport = self._transport
        assert isinstance(transport, ViewSender)
        with self._sending():
            await transport.send_view(chunk, timeout=self._timeout)

    async def _send_command(self, command: bytes) -> None:
        protocol.check_command(command)
        await self._send(command)

    async def _send(self, packet: bytes) -> None:
        with self._sending():
            await self._transport.send(packet, timeout=self._timeout)

    @contextlib.contextmanager
    def _sending(self) -> Iterator[None]:
        """Map a send's link failures onto the fastboot error kinds (§4.4)."""
        try:
            yield
        except TransportError as error:
            raise FastbootTransportError(str(error)) from error
        except TimeoutError:
            raise FastbootTimeout(
                f"sending to the device took longer than {self._timeout:g} s",
                where=self._where(),
            ) from None

    async def _final_response(self) -> Response:
        """Read until a final status, showing INFO/TEXT and restarting the timer (§3.3)."""
        while True:
            try:
                packet = await self._transport.receive(
                    protocol.RESPONSE_BUFFER_SIZE, timeout=self._timeout
                )
            except TransportError as error:
                raise FastbootTransportError(str(error)) from error
            except TimeoutError:
                raise FastbootTimeout(
                    f"no response from the device within {self._timeout:g} s",
                    where=self._where(),
                ) from None
            response = protocol.parse_response(packet)
            if not response.is_intermediate:
                return response
            _log.info("bootloader", status=response.status, text=response.text)
            if self._on_info is not None:
                self._on_info(response)

    def _where(self) -> str:
        address = self._transport.address
        return f"{address.transport}:{address.location}"
