"""The device-profile (DevPro) data model, as plain immutable values.

These structs mirror the YAML schema (devpro.md §2) one to one, including which fields are
optional, so that a profile read from YAML, decoded from the FBOODEVP binary form, or built
in a test compares equal field by field. Defaults that the schema defines for absent
fields (``base`` 0, ``kernel_offset`` 0x8000, ...) are applied by
:mod:`fastboop.devpro.bootparams`, not here: keeping "absent" distinct from "written as
the default" is what lets the binary form round-trip exactly.

Validation lives in :mod:`fastboop.devpro.loader` and :mod:`fastboop.devpro.checks`;
constructing a struct directly performs no checks beyond msgspec's typing.
"""

from __future__ import annotations

import enum

import msgspec

__all__ = [
    "MAX_GETVAR_NAME_BYTES",
    "AndroidBootImage",
    "BootLimits",
    "Compression",
    "DeviceProfile",
    "DevicetreeSource",
    "InitrdSettings",
    "KernelEncoding",
    "KernelSettings",
    "MachineSettings",
    "MatchEntry",
    "ProbeOperator",
    "ProbeStep",
]

#: ``getvar:<name>`` must fit the 64-byte fastboot command limit (fastboot.md §3.1).
MAX_GETVAR_NAME_BYTES = 64 - len("getvar:")


class Compression(enum.Enum):
    """A compression scheme, as used by kernel encodings and ``initrd.compress``."""

    NONE = "none"
    GZIP = "gzip"
    LZ4 = "lz4"
    ZSTD = "zstd"


class KernelEncoding(enum.Enum):
    """How the kernel is packed into the boot image's kernel section (bootimg.md §9).

    The value is the spelling used in profiles; the order of members is the FBOODEVP enum
    index, so do not reorder them.
    """

    IMAGE = "image"
    IMAGE_DTB = "image+dtb"
    IMAGE_GZ = "image.gz"
    IMAGE_GZ_DTB = "image.gz+dtb"
    IMAGE_LZ4 = "image.lz4"
    IMAGE_LZ4_DTB = "image.lz4+dtb"
    IMAGE_ZST = "image.zst"
    IMAGE_ZST_DTB = "image.zst+dtb"

    @property
    def compression(self) -> Compression:
        """The compression applied to the kernel ``Image``."""
        stem = self.value.removesuffix("+dtb")
        return {
            "image": Compression.NONE,
            "image.gz": Compression.GZIP,
            "image.lz4": Compression.LZ4,
            "image.zst": Compression.ZSTD,
        }[stem]

    @property
    def appends_dtb(self) -> bool:
        """Whether the DTB is concatenated after the (compressed) kernel."""
        return self.value.endswith("+dtb")


class ProbeOperator(enum.Enum):
    """The check a probe step applies to a getvar value (devpro.md §3.1).

    Member order is the FBOODEVP probe-step enum index; do not reorder.
    """

    EQUALS = "equals"
    STARTS_WITH = "starts_with"
    NOT_EQUALS = "not_equals"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"

    @property
    def takes_value(self) -> bool:
        """``exists``/``not_exists`` test presence only and carry no operand."""
        return self not in (ProbeOperator.EXISTS, ProbeOperator.NOT_EXISTS)


class MatchEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A USB prefilter entry: the device's idVendor and idProduct must both equal these."""

    vid: int
    pid: int


class ProbeStep(msgspec.Struct, frozen=True, kw_only=True):
    """One read-only ``getvar`` check.

    ``value`` is the operand for ``equals``/``starts_with``/``not_equals`` and ``None``
    for ``exists``/``not_exists``.
    """

    getvar: str
    operator: ProbeOperator
    value: str | None = None

    def describe(self) -> str:
        """A short human-readable form, e.g. ``product equals 'sdm845'``."""
        if self.value is None:
            return f"{self.getvar} {self.operator.value}"
        return f"{self.getvar} {self.operator.value} {self.value!r}"


class BootLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Optional size caps; ``None`` or 0 means no limit."""

    max_kernel_bytes: int | None = None
    max_initrd_bytes: int | None = None
    max_total_bytes: int | None = None


class KernelSettings(msgspec.Struct, frozen=True, kw_only=True):
    encoding: KernelEncoding


class InitrdSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Kept for schema fidelity only: the initramfs is always an uncompressed cpio."""

    compress: Compression | None = None


class AndroidBootImage(msgspec.Struct, frozen=True, kw_only=True):
    """``boot.fastboot_boot.android_bootimg``: how to lay out the Android boot image.

    Optional addresses are ``None`` when the profile does not write them; see
    :func:`fastboop.devpro.bootparams.boot_image_params` for the effective values.
    """

    header_version: int
    page_size: int
    kernel: KernelSettings
    base: int | None = None
    kernel_offset: int | None = None
    dtb_offset: int | None = None
    limits: BootLimits | None = None
    initrd: InitrdSettings | None = None
    cmdline_append: str | None = None


class DevicetreeSource(enum.Enum):
    """Where the kernel's device tree comes from (``machine.devicetree``, project addition).

    Member order is the FBOODEVP enum index; do not reorder.
    """

    ROOTFS = "rootfs"
    """Looked up in the rootfs by ``devicetree_name`` (stage0.md §7.3); phones."""
    PROVIDED = "provided"
    """The machine supplies its own (qemu's ``virt``, firmware with ACPI or a DT of its
    own): no DTB is looked up, put in the boot image or used for module discovery."""


class MachineSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``machine``: what the hardware needs that its device tree does not say.

    A project addition to devpro.md §2, for devices whose USB device controller no DT
    names: the virtual phones' ``usbip_vudc`` and their network card. ``modules`` join
    the stage0 module list after the DT-discovered ones (stage0.md §4.2, "profile").
    """

    devicetree: DevicetreeSource = DevicetreeSource.ROOTFS
    modules: tuple[str, ...] = ()


class DeviceProfile(msgspec.Struct, frozen=True, kw_only=True):
    """What a device is (``match`` + ``probe``) and how to boot it (``android_bootimg``).

    The schema nests the boot settings as ``boot.fastboot_boot.android_bootimg``; there is
    exactly one boot mechanism, so the model flattens that chain into one field.
    """

    id: str
    devicetree_name: str
    match: tuple[MatchEntry, ...]
    probe: tuple[ProbeStep, ...]
    android_bootimg: AndroidBootImage
    display_name: str | None = None
    machine: MachineSettings | None = None

    @property
    def devicetree_provided(self) -> bool:
        """Whether the machine supplies its own device tree (no DTB is looked up)."""
        return self.machine is not None and self.machine.devicetree is DevicetreeSource.PROVIDED

    @property
    def machine_modules(self) -> tuple[str, ...]:
        return self.machine.modules if self.machine is not None else ()

    @property
    def label(self) -> str:
        """``id (display_name)``, or plain ``id`` — the form used when listing choices."""
        return f"{self.id} ({self.display_name})" if self.display_name else self.id
