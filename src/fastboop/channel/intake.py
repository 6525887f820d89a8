"""Open a channel (a path or URL) and choose what a session uses from it.

:func:`open_channel` reads the head (:mod:`.head`), fetching only as many bytes as the
records need, and gives the artifact tail as a slice of the stream (ranged reads over
HTTP, nothing copied). :func:`choose_boot_profile` applies the reference's rule: a boot
profile whose ``stage0.devices`` is empty fits every device, otherwise only those it
lists; ``--boot-profile ID`` picks one; several that fit is an error that lists them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import msgspec

from fastboop.blocks import BlockSource, SliceSource
from fastboop.bootprofile.schema import BootProfile
from fastboop.channel.head import (
    SCAN_MAX_BYTES,
    ChannelHead,
    NeedMoreBytes,
    scan_head,
)
from fastboop.errors import UsageError

FIRST_READ = 64 << 10


class AmbiguousBootProfileError(UsageError):
    """Several of a channel's boot profiles fit (or no device is known yet to choose)."""


class Channel(msgspec.Struct, frozen=True):
    spec: str
    source: BlockSource  # the whole stream
    head: ChannelHead
    tail: BlockSource | None  # the artifact after the records; None when there is none

    @property
    def base_dir(self) -> Path | None:
        """Where relative ``file`` steps of its profiles may also be found."""
        if self.spec.startswith(("http://", "https://")):
            return None
        return Path(self.spec).resolve().parent


def read_head(source: BlockSource, *, where: str) -> ChannelHead:
    """The channel's records at the start of ``source``. Reads 64 KiB first and grows
    the read only as far as the records ask (up to the scan limit): a channel is often
    a large artifact behind HTTP, and its head is small."""
    size = min(source.size, FIRST_READ)
    while True:
        data = source.read(0, size)
        try:
            return scan_head(data, source.size, where=where)
        except NeedMoreBytes as more:
            grown = min(source.size, SCAN_MAX_BYTES, max(more.size, size * 2))
            if grown <= size:
                raise
            size = grown


def open_channel(source: BlockSource, *, spec: str) -> Channel:
    """``source`` as a channel: its records, and the artifact after them as a slice of
    the same source (no copy), or None when the channel carries records only."""
    head = read_head(source, where=spec)
    tail = None
    if head.consumed < source.size:
        tail = SliceSource(source, head.consumed, source.size - head.consumed,
                           name=f"tail@{head.consumed}")  # fmt: skip
    return Channel(os.fspath(spec), source, head, tail)


def choose_boot_profile(
    profiles: Sequence[BootProfile],
    *,
    device_profile: str | None,
    requested: str | None,
    where: str = "channel",
) -> BootProfile | None:
    """The boot profile a session uses (module docstring); None when there is none."""
    ids = ", ".join(p.id for p in profiles) or "none"
    if requested is not None:
        chosen = next((p for p in profiles if p.id == requested), None)
        if chosen is None:
            raise UsageError(f"--boot-profile {requested}: no such boot profile", where=where,
                             hint=f"the channel carries: {ids}")  # fmt: skip
        if device_profile is not None and not chosen.matches_device(device_profile):
            raise UsageError(f"boot profile {requested!r} is not for device {device_profile!r}",
                             where=where, hint="its stage0.devices lists: "
                             f"{', '.join(sorted(chosen.devices))}")  # fmt: skip
        return chosen
    if not profiles:
        return None
    fitting = [p for p in profiles
               if device_profile is None or p.matches_device(device_profile)]  # fmt: skip
    if len(fitting) == 1:
        return fitting[0]
    device = f" for device {device_profile!r}" if device_profile else ""
    if not fitting:
        raise UsageError(f"none of the channel's boot profiles is{device}", where=where,
                         hint=f"the channel carries: {ids}")  # fmt: skip
    raise AmbiguousBootProfileError(f"{len(fitting)} boot profiles fit{device}: "
                     f"{', '.join(p.id for p in fitting)}", where=where,
                     hint="choose one with --boot-profile ID")  # fmt: skip


def channel_summary(channel: Channel) -> dict[str, object]:
    """For ``--json``: the records read, where the tail starts, and what was skipped."""
    return {
        "records": [msgspec.structs.asdict(r) for r in channel.head.records],
        "tail_offset": channel.head.consumed if channel.tail is not None else None,
        "tail_bytes": channel.tail.size if channel.tail is not None else 0,
        "warnings": list(channel.head.warnings),
    }
