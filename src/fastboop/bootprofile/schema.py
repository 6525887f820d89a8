"""Boot profiles, as the reference fastboop defines them (its ``fastboop-schema`` crate and
``gibblox-pipeline``'s pipeline sources).

A boot profile says where an image's parts come from when a plain path is not enough:
the root filesystem, and optionally the kernel and DTBs from another filesystem, each as a
*pipeline* of steps from a terminal source (``http``, ``file``, ``casync``) through
containers (``xz``, ``tar``, ``android_sparseimg``, ``mbr``, ``gpt``) to a filesystem.
Any step may carry ``content``, the SHA-512 and size of the bytes that step produces,
which fastboop verifies on the bytes it reads (:mod:`.content`).

These structs are the runtime form (the reference's ``BootProfile``: device-tree overlays
compiled). :mod:`.manifest` reads and writes the YAML/JSON authoring form and
:mod:`.binary` the compiled ``FBOOPROF`` record.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from fastboop.errors import FastboopError

#: The filesystems a rootfs/kernel/dtbs source may name (``ostree`` wraps one of them).
FILESYSTEMS = ("erofs", "ext4", "fat")


class BootProfileError(FastboopError):
    """A boot profile (manifest, record or pipeline) is malformed or fails validation."""


class Content(msgspec.Struct, frozen=True):
    digest: str  # "sha512:<128 lowercase hex>"
    size_bytes: int


class Http(msgspec.Struct, frozen=True):
    url: str
    cors_safelisted_mode: bool = False
    content: Content | None = None


class File(msgspec.Struct, frozen=True):
    path: str
    content: Content | None = None


class Casync(msgspec.Struct, frozen=True):
    index: str
    chunk_store: str | None = None
    content: Content | None = None


class Xz(msgspec.Struct, frozen=True):
    source: Source
    content: Content | None = None


class Tar(msgspec.Struct, frozen=True):
    entry: str
    source: Source
    content: Content | None = None


class AndroidSparse(msgspec.Struct, frozen=True):
    source: Source
    content: Content | None = None


class Mbr(msgspec.Struct, frozen=True):
    source: Source
    partuuid: str | None = None
    index: int | None = None  # 0-based, as the reference counts
    lba_size: int | None = None
    content: Content | None = None


class Gpt(msgspec.Struct, frozen=True):
    source: Source
    partlabel: str | None = None
    partuuid: str | None = None
    index: int | None = None  # 0-based
    lba_size: int | None = None
    content: Content | None = None


Source: TypeAlias = Http | File | Casync | Xz | Tar | AndroidSparse | Mbr | Gpt
TERMINALS = (Http, File, Casync)
#: The manifest key of each step kind (also how messages name layers).
STEP_NAMES: dict[type, str] = {Http: "http", File: "file", Casync: "casync", Xz: "xz",
                               Tar: "tar", AndroidSparse: "android_sparseimg", Mbr: "mbr",
                               Gpt: "gpt"}  # fmt: skip


def inner(source: Source) -> Source | None:
    """The step a container step reads from; None for a terminal source."""
    return None if isinstance(source, TERMINALS) else source.source


class Filesystem(msgspec.Struct, frozen=True):
    """A filesystem read from a pipeline: ``erofs``, ``ext4`` or ``fat`` (``ostree``: the
    filesystem holds an OSTree deployment)."""

    kind: str
    source: Source
    ostree: bool = False


class PathSource(msgspec.Struct, frozen=True):
    """``kernel``/``dtbs``: a path inside a filesystem from its own pipeline."""

    path: str
    filesystem: Filesystem


class InjectMac(msgspec.Struct, frozen=True):
    wifi: str | None = None
    bluetooth: str | None = None


class Device(msgspec.Struct, frozen=True):
    """Per-device-profile additions (``stage0.devices.<id>``)."""

    dt_overlays: tuple[bytes, ...] = ()
    extra_cmdline: str | None = None
    kernel_modules: tuple[str, ...] = ()
    inject_mac: InjectMac | None = None


class BootProfile(msgspec.Struct, frozen=True):
    id: str
    rootfs: Filesystem
    display_name: str | None = None
    kernel: PathSource | None = None
    dtbs: PathSource | None = None
    dt_overlays: tuple[bytes, ...] = ()  # compiled .dtbo blobs
    extra_cmdline: str | None = None
    kernel_modules: tuple[str, ...] = ()
    devices: dict[str, Device] = msgspec.field(default_factory=dict)

    def matches_device(self, device_profile_id: str) -> bool:
        """CHANNELS.md's rule: no devices listed means every device."""
        return not self.devices or device_profile_id in self.devices

    def effective(self, device_profile_id: str | None) -> Stage0Extras:
        """Global stage0 additions plus the device's own, in that order (the reference's
        ``resolve_effective_boot_profile_stage0``)."""
        device = self.devices.get(device_profile_id or "", Device())
        return Stage0Extras(
            dt_overlays=(*self.dt_overlays, *device.dt_overlays),
            extra_cmdline=(self.extra_cmdline or "").strip(),
            device_cmdline=(device.extra_cmdline or "").strip(),
            kernel_modules=(*self.kernel_modules, *device.kernel_modules),
            inject_mac=device.inject_mac,
        )


class Stage0Extras(msgspec.Struct, frozen=True):
    """What a boot profile adds to stage0 for one device (global, then the device's)."""

    dt_overlays: tuple[bytes, ...] = ()
    extra_cmdline: str = ""
    device_cmdline: str = ""
    kernel_modules: tuple[str, ...] = ()
    inject_mac: InjectMac | None = None

    def mac_targets(self) -> list[tuple[str, str]]:
        mac = self.inject_mac
        if mac is None:
            return []
        return [(kind, value) for kind, value in (("wifi", mac.wifi), ("bluetooth",
                                                                        mac.bluetooth))
                if value]  # fmt: skip
