"""The head of a channel: profile records before the artifact (the reference's CHANNELS.md).

A channel is a byte stream: zero or more records, then the artifact tail. Records are
read forward from offset 0, each by its magic:

- ``FBOOPROF``: a boot profile (:mod:`fastboop.bootprofile.binary`), validated;
- ``FBOODEVP``: a device profile (:mod:`fastboop.devpro.binary`), validated;
- ``FBPHINT0``: pipeline hints (an optimisation sidecar fastboop does not need): skipped;

and the first bytes that are none of these start the tail. The accept, warn and fail
rules are CHANNELS.md's: an invalid record *first* fails the channel; an invalid record
after at least one valid one is a warning and ends the scan there (the tail starts at
it). At most :data:`MAX_RECORDS` records in the first :data:`SCAN_MAX_BYTES` are read.

:func:`scan_head` is sans-I/O over the head's bytes; it asks for more (by raising
:class:`NeedMoreBytes`) when a record runs past what it was given.
"""

from __future__ import annotations

import msgspec

from fastboop.bootprofile.binary import FBOOPROF_MAGIC, decode_fbooprof_prefix
from fastboop.bootprofile.schema import BootProfile
from fastboop.bootprofile.validate import validate
from fastboop.channel.magic import LEGACY_BUNDLE
from fastboop.devpro.binary import FBOODEVP_MAGIC, decode_fboodevp_prefix
from fastboop.devpro.schema import DeviceProfile
from fastboop.errors import FastboopError
from fastboop.rootfs.errors import UnsupportedError

SCAN_MAX_BYTES = 4 << 20  # the reference's CHANNEL_BOOT_PROFILE_STREAM_SCAN_MAX_BYTES
MAX_RECORDS = 128
HINTS_MAGIC = b"FBPHINT0"
HINTS_HEADER = 18  # magic, u16 version, u32 metadata size, u32 payload size
INDEX_MAGIC = b"FBCHIDX0"


class ChannelError(FastboopError):
    """A channel whose head cannot be used (its first record is invalid, and so on)."""


class NeedMoreBytes(Exception):
    """The scan needs the head's first ``size`` bytes to go on."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(size)


class ChannelRecord(msgspec.Struct, frozen=True):
    kind: str  # "boot-profile" | "device-profile" | "pipeline-hints"
    offset: int
    size: int
    id: str = ""
    version: int = 0


class ChannelHead(msgspec.Struct, frozen=True):
    boot_profiles: tuple[BootProfile, ...] = ()
    boot_versions: tuple[int, ...] = ()  # FBOOPROF format version of each boot profile
    device_profiles: tuple[DeviceProfile, ...] = ()
    records: tuple[ChannelRecord, ...] = ()
    consumed: int = 0  # where the artifact tail starts
    warnings: tuple[str, ...] = ()

    @property
    def has_records(self) -> bool:
        return bool(self.records)


def _truncated(error: Exception) -> bool:
    return "unexpected end of data" in str(error) or "bytes left" in str(error)


def scan_head(data: bytes, total: int, *, where: str = "channel") -> ChannelHead:
    """Read the records at the start of a ``total``-byte stream whose first bytes are
    ``data`` (see the module docstring)."""
    cap = min(total, SCAN_MAX_BYTES)
    boot: list[BootProfile] = []
    versions: list[int] = []
    devices: list[DeviceProfile] = []
    records: list[ChannelRecord] = []
    warnings: list[str] = []
    cursor = 0
    while cursor < cap:
        if len(records) >= MAX_RECORDS:
            raise ChannelError(f"more than {MAX_RECORDS} records in the head", where=where)
        if len(data) < min(cap, cursor + 16):
            raise NeedMoreBytes(min(cap, cursor + 64 << 10))
        rest = data[cursor:cap]
        if cursor == 0 and rest.startswith(LEGACY_BUNDLE):
            raise UnsupportedError("a legacy FBCH profile bundle, not a channel", where=where,
                                   hint="the reference replaced these bundles with FBOOPROF "
                                   "and FBOODEVP records at the head of a channel")  # fmt: skip
        if rest.startswith(INDEX_MAGIC):
            if not records:
                raise UnsupportedError("indexed channels (FBCHIDX0) are not supported yet",
                                       where=where, hint="use a channel whose records are "
                                       "simply concatenated before the artifact")  # fmt: skip
            warnings.append(f"an FBCHIDX0 index at byte {cursor} ends the head scan")
            break
        try:
            if rest.startswith(FBOOPROF_MAGIC):
                kind = "boot profile"
                profile, size, version = decode_fbooprof_prefix(rest)
                validate(profile, require_content=version == 0)
                boot.append(profile)
                versions.append(version)
                records.append(ChannelRecord("boot-profile", cursor, size, profile.id, version))
            elif rest.startswith(FBOODEVP_MAGIC):
                kind = "device profile"
                device, size = decode_fboodevp_prefix(rest)
                devices.append(device)
                records.append(ChannelRecord("device-profile", cursor, size, device.id))
            elif rest.startswith(HINTS_MAGIC) and len(rest) >= HINTS_HEADER:
                kind = "pipeline hints"
                size = HINTS_HEADER + int.from_bytes(rest[10:14], "little") + \
                    int.from_bytes(rest[14:18], "little")  # fmt: skip
                if size > len(rest):
                    raise ChannelError(f"pipeline hints record of {size} bytes runs past the "
                                       "head")  # fmt: skip
                records.append(ChannelRecord("pipeline-hints", cursor, size))
                warnings.append(f"pipeline hints at byte {cursor} skipped (fastboop does not "
                                "use them)")  # fmt: skip
            else:
                break  # the artifact tail
        except FastboopError as error:
            if _truncated(error) and len(data) < cap:
                raise NeedMoreBytes(min(cap, max(2 * len(data), cursor + (64 << 10)))) from None
            detail = str(error)
            if _truncated(error) and cap < total:
                detail += f" (the head may be at most {SCAN_MAX_BYTES} bytes)"
            if not records:
                raise ChannelError(f"invalid {kind} record at byte {cursor}: {detail}",
                                   where=where) from None  # fmt: skip
            warnings.append(f"invalid {kind} record at byte {cursor} ends the head scan: "
                            f"{detail}")  # fmt: skip
            break
        cursor += size
    return ChannelHead(tuple(boot), tuple(versions), tuple(devices), tuple(records), cursor,
                       tuple(warnings))  # fmt: skip
