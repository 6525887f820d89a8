"""FBOODEVP: one device profile in binary form, as embedded in channels (devpro.md §8).

Layout: the magic ``FBOODEVP``, a u16 LE format version (0, documented as unstable), then
the profile in `postcard <https://postcard.jamesmunns.com>`_ encoding: unsigned LEB128
varints for integers, varint-length-prefixed strings and lists, ``00``/``01`` option tags,
varint enum indices, struct fields in declaration order.

**Project decision:** a profile with a ``machine`` section (a project addition the
reference does not know) is written as format version 1: the version-0 body, then
``machine`` as ``devicetree`` (varint enum index) and ``modules`` (a list of strings).
Profiles without one stay version 0, byte for byte what the reference writes and reads.

Channel records are untrusted input: decoding bounds every length by the bytes actually
present, refuses overlong varints, and runs the same semantic checks as the YAML loader,
so the only exception that escapes is :class:`~fastboop.devpro.errors.FbooDevpError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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

_T = TypeVar("_T")


# -- encoding ---------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(value: str) -> bytes:
    data = value.encode("utf-8")
    return _varint(len(data)) + data


def _option(value: _T | None, encode: Callable[[_T], bytes]) -> bytes:
    return b"\x00" if value is None else b"\x01" + encode(value)


def _step(step: ProbeStep) -> bytes:
    out = _varint(_OPERATORS.index(step.operator)) + _string(step.getvar)
    if step.operator.takes_value:
        out += _string(step.value or "")
    return out


def _limits(limits: BootLimits) -> bytes:
    return b"".join(
        _option(value, _varint)
        for value in (limits.max_kernel_bytes, limits.max_initrd_bytes, limits.max_total_bytes)
    )


def _bootimg(image: AndroidBootImage) -> bytes:
    return b"".join(
        [
            _varint(image.header_version),
            _varint(image.page_size),
            _option(image.base, _varint),
            _option(image.kernel_offset, _varint),
            _option(image.dtb_offset, _varint),
            _option(image.limits, _limits),
            _varint(_KERNEL_ENCODINGS.index(image.kernel.encoding)),
            _option(
                image.initrd,
                lambda initrd: _option(initrd.compress, lambda c: _varint(_COMPRESSIONS.index(c))),
            ),
            _option(image.cmdline_append, _string),
        ]
    )


def encode_fboodevp(profile: DeviceProfile) -> bytes:
    """The FBOODEVP record for ``profile`` (header plus postcard body)."""
    body = b"".join(
        [
            _string(profile.id),
            _option(profile.display_name, _string),
            _string(profile.devicetree_name),
            _varint(len(profile.match)),
            *(_varint(entry.vid) + _varint(entry.pid) for entry in profile.match),
            _varint(len(profile.probe)),
            *(_step(step) for step in profile.probe),
            _bootimg(profile.android_bootimg),
        ]
    )
    version = FBOODEVP_VERSION
    if profile.machine is not None:
        version = FBOODEVP_MACHINE_VERSION
        machine = profile.machine
        body += _varint(_DEVICETREE_SOURCES.index(machine.devicetree))
        body += _varint(len(machine.modules)) + b"".join(_string(m) for m in machine.modules)
    return FBOODEVP_MAGIC + version.to_bytes(2, "little") + body


# -- decoding ---------------------------------------------------------------------------------


class _Reader:
    """A cursor over the record that turns every shortfall into a typed error."""

    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def fail(self, detail: str) -> FbooDevpError:
        return FbooDevpError("decode", detail, offset=self.offset)

    def byte(self, what: str) -> int:
        if self.offset >= len(self.data):
            raise self.fail(f"unexpected end of data reading {what}")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def varint(self, what: str, bits: int) -> int:
        max_bytes = (bits + 6) // 7
        value = 0
        for index in range(max_bytes):
            byte = self.byte(what)
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if index and byte == 0:
                    raise self.fail(f"overlong varint for {what}")
                if value >> bits:
                    raise self.fail(f"{what} does not fit in u{bits}")
                return value
        raise self.fail(f"varint for {what} longer than {max_bytes} bytes")

    def length(self, what: str) -> int:
        count = self.varint(what, 64)
        if count > len(self.data) - self.offset:
            raise self.fail(f"{what} {count} exceeds the {len(self.data) - self.offset} bytes left")
        return count

    def string(self, what: str) -> str:
        size = self.length(f"length of {what}")
        raw = self.data[self.offset : self.offset + size]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None
        self.offset += size
        return text

    def option(self, what: str, decode: Callable[[str], _T]) -> _T | None:
        tag = self.byte(f"option tag of {what}")
        if tag == 0:
            return None
        if tag != 1:
            raise self.fail(f"invalid option tag {tag} for {what}")
        return decode(what)

    def index(self, what: str, choices: list[_T]) -> _T:
        value = self.varint(what, 32)
        if value >= len(choices):
            raise self.fail(f"unknown {what} variant {value}")
        return choices[value]


def _decode_step(reader: _Reader, index: int) -> ProbeStep:
    what = f"probe[{index}]"
    operator = reader.index(f"{what} operator", _OPERATORS)
    name = reader.string(f"{what} getvar name")
    value = reader.string(f"{what} value") if operator.takes_value else None
    return ProbeStep(getvar=name, operator=operator, value=value)


def _decode_bootimg(reader: _Reader) -> AndroidBootImage:
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
    reader = _Reader(data, _HEADER_SIZE)
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
