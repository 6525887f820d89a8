"""The real :class:`~fastboop.backends.ports.GadgetSource`: stage0's smoo gadget on USB.

After ``fastboot boot`` the phone drops off the bus and, seconds later, stage0
re-enumerates as a smoo gadget with the phone's own VID/PID/serial. :class:`UsbGadgetSource`
polls the bus until that gadget is there and has *proven* itself with IDENT
(:mod:`fastboop.transports.smoo_usb_find`), then hands the open link to the smoo host.
It never gives up by itself: the session machine owns the deadline (its ``gadget`` timer)
and cancels the search.

Devices that are not ready (busy, not answering yet) or not smoo at all are skipped and
retried on the next poll; each distinct reason is logged once per device, so a long wait
does not flood the log.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from fastboop.artifact.open import ArtifactOptions
from fastboop.backends.exports import ServedImage, export_block_size, open_served_source
from fastboop.backends.ports import BuiltPayload, DeviceChanged, GadgetSource
from fastboop.backends.standard import ConsoleOpener, ExportOpener, StandardBackend
from fastboop.blocks import CopyOnWriteSource, FileSource
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.schema import DeviceProfile
from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.smoo.export import DEFAULT_BLOCK_SIZE, Export
from fastboop.smoo.handshake import NotSmooError
from fastboop.smoo.host import HostConfig
from fastboop.smoo.link import GadgetLink
from fastboop.transports.base import DeviceAddress, Transport, TransportError
from fastboop.transports.smoo_usb import OPEN_ATTEMPTS, OPEN_RETRY_DELAY, UsbLinkTimeouts
from fastboop.transports.smoo_usb_find import GadgetFilter, prove_gadget, scan_gadgets

log = get_logger("fastboop.smoo")

POLL_INTERVAL = 0.5  # smoo.md §2.3: the reference rediscovers every 500 ms


class UsbGadgetSource:
    """Finds the booted phone's smoo gadget on USB through pyusb.

    ``backend`` is a pyusb backend (``None``: libusb); tests pass an emulated bus.
    ``on_skip`` hears about each device that was considered and skipped, with the reason.
    """

    def __init__(
        self,
        *,
        backend: Any = None,
        interval: float = POLL_INTERVAL,
        control_timeout: float = 1.0,
        timeouts: UsbLinkTimeouts | None = None,
        open_attempts: int = OPEN_ATTEMPTS,
        open_retry_delay: float = OPEN_RETRY_DELAY,
        on_skip: Callable[[DeviceAddress, str], None] | None = None,
    ):
        self.backend = backend
        self.interval = interval
        self.control_timeout = control_timeout
        self.timeouts = timeouts
        self.open_attempts = open_attempts
        self.open_retry_delay = open_retry_delay
        self._on_skip = on_skip

    async def find(self, booted: DeviceAddress) -> tuple[DeviceAddress, GadgetLink]:
        """Poll until the gadget belonging to ``booted`` is present and answers IDENT."""
        want = GadgetFilter.for_device(booted)
        log.info("waiting for smoo gadget", vid=booted.vid, pid=booted.pid,
                 serial=booted.serial)
        reported: dict[str, str] = {}
        while True:
            for candidate in await scan_gadgets(want, backend=self.backend):
                address = candidate.address
                try:
                    link = await prove_gadget(
                        candidate,
                        control_timeout=self.control_timeout,
                        timeouts=self.timeouts,
                        attempts=self.open_attempts,
                        retry_delay=self.open_retry_delay,
                    )
                except NotSmooError as error:
                    self._skip(reported, address, f"not a smoo gadget: {error}")
                    continue
                except (TransportError, TimeoutError, FastboopError) as error:
                    # Busy, permission denied, or ep0 not answering yet: try again later.
                    self._skip(reported, address,
                               f"smoo gadget not ready: {error or type(error).__name__}")
                    continue
                log.info("smoo gadget found", location=address.location,
                         serial=address.serial, interface=candidate.interface.interface,
                         mimic=candidate.interface.mimic)
                return address, link
            await anyio.sleep(self.interval)

    def _skip(self, reported: dict[str, str], address: DeviceAddress, reason: str) -> None:
        if reported.get(address.location) != reason:
            reported[address.location] = reason
            log.warning(reason, location=address.location)
        if self._on_skip is not None:
            self._on_skip(address, reason)




class CombinedGadgetSource:
    """Several gadget sources at once (local USB and a USB/IP bus): the first to find and
    prove the gadget wins, and the others stop looking."""

    def __init__(self, sources: list[GadgetSource]):
        self.sources = sources

    async def find(self, booted: DeviceAddress) -> tuple[DeviceAddress, GadgetLink]:
        found: list[tuple[DeviceAddress, GadgetLink]] = []
        async with anyio.create_task_group() as tg:

            async def search(source: GadgetSource) -> None:
                result = await source.find(booted)
                found.append(result)
                tg.cancel_scope.cancel()

            for source in self.sources:
                tg.start_soon(search, source)
        for _, extra in found[1:]:  # two found at once: keep the first, release the rest
            with anyio.CancelScope(shield=True):
                await extra.aclose()
        return found[0]


class NoFastbootDevices:
    """A :class:`~fastboop.backends.ports.DeviceSource` that never reports a device.

    Serve-only sessions (``fastboop serve``) start after the phone was booted, so nothing
    may ever be probed as fastboot; asking to open a device is a bug.
    """

    async def watch(self, on_change: DeviceChanged) -> None:
        await anyio.sleep_forever()

    async def open(self, device: DeviceAddress) -> Transport:
        raise TransportError("serve-only sessions open no fastboot device", address=device)


class NoPayloadBuilder:
    """A :class:`~fastboop.backends.ports.PayloadBuilder` for sessions that build nothing."""

    def build(
        self, profile: DeviceProfile, rootfs: str, device: DeviceAddress | None = None
    ) -> BuiltPayload:
        raise FastboopError("serve-only sessions build no boot image")


class OverlayExports:
    """An :data:`~fastboop.backends.standard.ExportOpener` serving the rootfs *writably*.

    Writes land in a copy-on-write ``overlay`` file and the image stays pristine. One
    export serves the whole session: the overlay only knows which blocks were written for
    the life of its source, so reopening it per reconnect would lose the phone's writes
    (and the export id stays the same, as the gadget requires, smoo.md §8.3).
    """

    def __init__(self, overlay: str | os.PathLike[str], *,
                 block_size: int = DEFAULT_BLOCK_SIZE,
                 options: ArtifactOptions = ArtifactOptions()):  # noqa: B008 - frozen
        self.overlay = Path(overlay)
        self.block_size = block_size
        self.options = options  # the root volume of a disk image is what gets written
        self._opened: tuple[str, Export, FileSource | ServedImage, CopyOnWriteSource] | None
        self._opened = None

    def __call__(self, rootfs: str) -> Export:
        if self._opened is not None:
            if self._opened[0] != rootfs:
                raise FastboopError("the overlay belongs to another image", where=rootfs)
            return self._opened[1]
        base = open_served_source(rootfs, self.options)
        try:
            block_size = min(self.block_size, export_block_size(base))
            cow = CopyOnWriteSource(base, self.overlay, block_size)
            export = Export.of(cow, block_size=block_size, writable=True)
        except BaseException:
            base.close()
            raise
        self._opened = (rootfs, export, base, cow)
        return export

    def close(self) -> None:
        if self._opened is not None:
            _, _, base, cow = self._opened
            cow.close()
            base.close()
            self._opened = None


def serve_only_backend(
    gadgets: GadgetSource,
    *,
    smoo_config: HostConfig | None = None,
    export_opener: ExportOpener | None = None,
    artifact_options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
    console: ConsoleOpener | None = None,
) -> StandardBackend:
    """A :class:`StandardBackend` for ``SessionConfig(serve_gadget=...)`` sessions."""
    return StandardBackend(
        devices=NoFastbootDevices(),
        gadgets=gadgets,
        profiles=ProfilePool([]),
        builder=NoPayloadBuilder(),
        smoo_config=smoo_config,
        export_opener=export_opener,
        artifact_options=artifact_options,
        console=console,
    )


__all__ = [
    "POLL_INTERVAL",
    "CombinedGadgetSource",
    "NoFastbootDevices",
    "NoPayloadBuilder",
    "OverlayExports",
    "UsbGadgetSource",
    "serve_only_backend",
]
