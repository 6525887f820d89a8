"""FBOODEVP: one device profile in binary form, as embedded in channels (devpro.md §8).

Layout: the magic ``FBOODEVP``, a u16 LE format version (0, documented as unstable), then
the profile in postcard encoding (:mod:`fastboop.postcard`).

**Project decision:** a profile with a ``machine`` section (a project addition the
reference does not know) is written as format version 1: the version-0 body, then
``machine`` as ``devicetree`` (varint enum index) and ``modules`` (a list of strings).
Profiles without one stay version 0, byte for byte what the reference writes and reads.

Channel records are untrusted input: decoding bounds every length by the bytes actually
present, refuses overlong varints, and runs the same semantic checks as the YAML loader,
so the only exception that escapes is :class:`~fastboop.devpro.errors.FbooDevpError`.
"""

from __future__ import annotations

from fastboop import postcard as pc
from fastboop.devpro.checks import profile_issues
from fastboop.devpro.errors import FbooDevpError
from fastboop.devpro.schema import (
    AndroidBootImage,
    BootLimits,
    Compression,
    DeviceProfile,
    DevicetreeSource,
    InitrdSettings,
    KernelEncoding,
    KernelSettings,
    MachineSettings,
    MatchEntry,
    ProbeOperator,
    ProbeStep,
)

__all__ = [
    "FBOODEVP_MAGIC",
    "FBOODEVP_VERSION",
    "decode_fboodevp",
    "decode_fboodevp_prefix",
    "encode_fboodevp",
]

FBOODEVP_MAGIC = b"FBOODEVP"
FBOODEVP_VERSION = 0
FBOODEVP_MACHINE_VERSION = 1  # version 0 plus the machine section (project addition)
_HEADER_SIZE = len(FBOODEVP_MAGIC) + 2
_LEGACY_BUNDLE_MAGIC = b"FBCH"

# Enum indices are the member order of the schema enums (§8 table).
_KERNEL_ENCODINGS = list(KernelEncoding)
_COMPRESSIONS = list(Compression)
_OPERATORS = list(ProbeOperator)
_DEVICETREE_SOURCES = list(DevicetreeSource)

def _step(step: ProbeStep) -> bytes:
    out = pc.varint(_OPERATORS.index(step.operator)) + pc.string(step.getvar)
    if step.operator.takes_value:
        out += pc.string(step.value or "")
    return out


def _limits(limits: BootLimits) -> bytes:
    return b"".join(
        pc.option(value, pc.varint)
        for value in (limits.max_kernel_bytes, limits.max_initrd_bytes, limits.max_total_bytes)
    )


def _bootimg(image: AndroidBootImage) -> bytes:
    return b"".join(
        [
            pc.varint(image.header_version),
            pc.varint(image.page_size),
            pc.option(image.base, pc.varint),
            pc.option(image.kernel_offset, pc.varint),
            pc.option(image.dtb_offset, pc.varint),
            pc.option(image.limits, _limits),
            pc.varint(_KERNEL_ENCODINGS.index(image.kernel.encoding)),
            pc.option(
                image.initrd,
                lambda initrd: pc.option(initrd.compress,
                                         lambda c: pc.varint(_COMPRESSIONS.index(c))),
            ),
            pc.option(image.cmdline_append, pc.string),
        ]
    )


def encode_fboodevp(profile: DeviceProfile) -> bytes:
    """The FBOODEVP record for ``profile`` (header plus postcard body)."""
    body = b"".join(
        [
            pc.string(profile.id),
            pc.option(profile.display_name, pc.string),
            pc.string(profile.devicetree_name),
            pc.varint(len(profile.match)),
            *(pc.varint(entry.vid) + pc.varint(entry.pid) for entry in profile.match),
            pc.varint(len(profile.probe)),
            *(_step(step) for step in profile.probe),
            _bootimg(profile.android_bootimg),
        ]
    )
    version = FBOODEVP_VERSION
    if profile.machine is not None:
        version = FBOODEVP_MACHINE_VERSION
        machine = profile.machine
        body += pc.varint(_DEVICETREE_SOURCES.index(machine.devicetree))
        body += pc.varint(len(machine.modules)) + b"".join(pc.string(m) for m in machine.modules)
    return FBOODEVP_MAGIC + version.to_bytes(2, "little") + body


# -- decoding ---------------------------------------------------------------------------------


def _reader(data: bytes, offset: int) -> pc.Reader:
    return pc.Reader(data, offset, lambda detail, at: FbooDevpError("decode", detail, offset=at))


def _decode_step(reader: pc.Reader, index: int) -> ProbeStep:
    what = f"probe[{index}]"
    operator = reader.index(f"{what} operator", _OPERATORS)
    name = reader.string(f"{what} getvar name")
    value = reader.string(f"{what} value") if operator.takes_value else None
    return ProbeStep(getvar=name, operator=operator, value=value)


def _decode_bootimg(reader: pc.Reader) -> AndroidBootImage:
    def u64(what: str) -> int:
        return reader.varint(what, 64)

    def limits(what: str) -> BootLimits:
        return BootLimits(
            max_kernel_bytes=reader.option("max_kernel_bytes", u64),
            max_initrd_bytes=reader.option("max_initrd_bytes", u64),
            max_total_bytes=reader.option("max_total_bytes", u64),
        )

    def initrd(what: str) -> InitrdSettings:
        return InitrdSettings(
            compress=reader.option("initrd.compress", lambda w: reader.index(w, _COMPRESSIONS))
        )

    return AndroidBootImage(
        header_version=reader.varint("header_version", 32),
        page_size=reader.varint("page_size", 32),
        base=reader.option("base", u64),
        kernel_offset=reader.option("kernel_offset", u64),
        dtb_offset=reader.option("dtb_offset", u64),
        limits=reader.option("limits", limits),
        kernel=KernelSettings(encoding=reader.index("kernel.encoding", _KERNEL_ENCODINGS)),
        initrd=reader.option("initrd", initrd),
        cmdline_append=reader.option("cmdline_append", reader.string),
    )


def decode_fboodevp_prefix(data: bytes) -> tuple[DeviceProfile, int]:
    """Decode the record at the start of ``data``; return it and the bytes consumed."""
    if data.startswith(_LEGACY_BUNDLE_MAGIC):
        raise FbooDevpError(
            "invalid-magic", "legacy FBCH profile bundle is not supported", offset=0
        )
    if len(data) < _HEADER_SIZE or not data.startswith(FBOODEVP_MAGIC):
        raise FbooDevpError("invalid-magic", "not a FBOODEVP record (bad magic)", offset=0)
    version = int.from_bytes(data[8:10], "little")
    if version not in (FBOODEVP_VERSION, FBOODEVP_MACHINE_VERSION):
        raise FbooDevpError(
            "unsupported-version", f"unsupported FBOODEVP format version {version}", offset=8
        )
    reader = _reader(data, _HEADER_SIZE)
    profile_id = reader.string("id")
    display_name = reader.option("display_name", reader.string)
    devicetree_name = reader.string("devicetree_name")
    match = tuple(
        MatchEntry(vid=reader.varint("vid", 16), pid=reader.varint("pid", 16))
        for _ in range(reader.length("match count"))
    )
    probe = tuple(_decode_step(reader, i) for i in range(reader.length("probe count")))
    bootimg = _decode_bootimg(reader)
    machine = None
    if version == FBOODEVP_MACHINE_VERSION:
        machine = MachineSettings(
            devicetree=reader.index("machine.devicetree", _DEVICETREE_SOURCES),
            modules=tuple(reader.string(f"machine.modules[{i}]")
                          for i in range(reader.length("machine.modules count"))),
        )  # fmt: skip
    profile = DeviceProfile(
        id=profile_id,
        display_name=display_name,
        devicetree_name=devicetree_name,
        match=match,
        probe=probe,
        android_bootimg=bootimg,
        machine=machine,
    )
    for issue in profile_issues(profile):
        raise FbooDevpError(
            "invalid-profile", f"profile {profile_id!r}: {issue.path}: {issue.detail}"
        )
    return profile, reader.offset


def decode_fboodevp(data: bytes) -> DeviceProfile:
    """Decode exactly one record; trailing bytes are an error."""
    profile, consumed = decode_fboodevp_prefix(data)
    if consumed != len(data):
        raise FbooDevpError(
            "decode", f"{len(data) - consumed} trailing bytes after the profile", offset=consumed
        )
    return profile
