"""Recognise a kernel file and re-encode it the way a device wants (bootimg.md §9-§10).

Distros ship kernels in many wrappers (raw arm64 Image, EFI-stub Image, gzip, zstd, xz,
lz4, EFI zboot, x86 bzImage); Android bootloaders want one specific encoding
(``image``, ``image.gz``, ``image.lz4``, ``image.zst``, optionally with the DTB appended).
:func:`unwrap_kernel` peels wrappers down to the raw Image and :func:`prepare_kernel`
encodes that for the device. Everything here is in memory, with typed errors.
"""

from __future__ import annotations

import re
import struct
import warnings

from fastboop.bootimg import compression as comp
from fastboop.bootimg.errors import (
    BootImageWarning,
    DecompressedTooLargeError,
    KernelArchError,
    KernelFormatError,
    UnsupportedEncodingError,
)
from fastboop.bootimg.layout import KernelEncoding
from fastboop.bootimg.pe import is_zboot, parse_pe, parse_zboot
from fastboop.fdt import FdtError, fdt_total_size, find_appended_dtb
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from mmap import mmap
    from typing import Final

    #: A kernel file's bytes, or a read-only map of the file: ``bootimg build`` maps its
    #: inputs, and a raw Image is then checked, hashed and written without ever being
    #: copied into fresh memory (wrapped kernels are copied out to bytes to be peeled).
    Blob = bytes | mmap

ARM64_MAGIC = b"ARM\x64"
RISCV_MAGIC = b"RSC\x05"
ARM_ZIMAGE_MAGIC = struct.pack("<I", 0x016F2818)
#: How many wrappers (zboot around gzip around ...) :func:`unwrap_kernel` will peel.
MAX_LAYERS = 4

_BANNER = b"Linux version "
_VERSION = re.compile(re.escape(_BANNER) + rb"[^\0\n]{1,400}")


class KernelInfo(Value):
    """What a kernel file is, from the outside in.

    ``layers`` lists the wrappers peeled, outermost first, ending with the payload's own
    format (``image`` for an arm64 Image, ``bzimage``, or ``unknown``), e.g.
    ``("zboot:gzip", "image")``. ``arch`` is None when nothing in the file says.
    ``appended_dtb_size`` counts DTB bytes found after the kernel (an ``Image.gz-dtb``);
    ``trailing_size`` counts every byte after the outermost compressed stream.
    (A plain value: nothing serialises it, see :mod:`fastboop.bootimg.layout`.)
    """

    __slots__ = ("appended_dtb_size", "arch", "efi_stub", "image_size", "layers", "raw_size",
                 "trailing_size", "version")  # fmt: skip
    layers: Final[tuple[str, ...]]
    arch: Final[str | None]
    efi_stub: Final[bool]
    version: Final[str | None]
    image_size: Final[int | None]
    raw_size: Final[int]
    appended_dtb_size: Final[int]
    trailing_size: Final[int]

    def __init__(
        self,
        *,
        layers: tuple[str, ...],
        arch: str | None,
        efi_stub: bool,
        version: str | None,
        image_size: int | None,
        raw_size: int,
        appended_dtb_size: int,
        trailing_size: int,
    ) -> None:
        self.layers = layers
        self.arch = arch
        self.efi_stub = efi_stub
        self.version = version
        self.image_size = image_size
        self.raw_size = raw_size
        self.appended_dtb_size = appended_dtb_size
        self.trailing_size = trailing_size

    @property
    def format(self) -> str:
        return self.layers[0]


def classify_raw(data: Blob) -> tuple[str, str | None]:
    """(format, arch) of an uncompressed kernel, from its header alone (no decompression).

    Cheap enough to call on every build: an x86 ``bzimage`` is recognised by its boot
    protocol header (``HdrS`` at 0x202), which is never inside another wrapper.
    """
    if len(data) >= 64 and data[0x38:0x3C] == ARM64_MAGIC:
        return "image", "arm64"
    if len(data) >= 64 and data[0x38:0x3C] == RISCV_MAGIC:
        return "image", "riscv64"
    if len(data) >= 0x240 and data[0x202:0x206] == b"HdrS":
        xloadflags = struct.unpack_from("<H", data, 0x236)[0]
        return "bzimage", "x86_64" if xloadflags & 1 else "x86"
    if len(data) >= 0x30 and data[0x24:0x28] == ARM_ZIMAGE_MAGIC:
        return "zimage", "arm"
    return "unknown", None


def _bzimage_version(data: Blob) -> str | None:
    (pointer,) = struct.unpack_from("<H", data, 0x20E)
    start = pointer + 0x200
    if not pointer or start >= len(data):
        return None
    return data[start : data.find(b"\0", start, start + 400)].decode("ascii", "replace") or None


def _peel(source: Blob) -> tuple[str, bytes, bytes] | None:
    """One wrapper off ``source``: (layer name, inner bytes, trailing bytes) or None if raw."""
    if len(source) >= 64 and source[0x38:0x3C] in (ARM64_MAGIC, RISCV_MAGIC):
        return None  # raw or EFI-stub Image: the PE header is part of the Image
    data = bytes(source)  # no copy of bytes; a mapped file is read once, to be unwrapped
    if data[:3] == comp.GZIP_MAGIC:
        inner, used = comp.gzip_decompress(data)
        return "gzip", inner, data[used:]
    if data[:4] == comp.ZSTD_MAGIC:
        inner, used = comp.zstd_decompress(data)
        return "zstd", inner, data[used:]
    if data[:6] == comp.XZ_MAGIC:
        inner, used = comp.xz_decompress(data)
        return "xz", inner, data[used:]
    if data[:4] == comp.LZ4_LEGACY_MAGIC:
        inner, used = comp.lz4_legacy_decompress(data)
        return "lz4", inner, data[used:]
    if data[:4] == comp.LZ4_FRAME_MAGIC:
        inner, used = comp.lz4_frame_decompress(data)
        return "lz4-frame", inner, data[used:]
    if is_zboot(data):
        return _peel_zboot(data)
    if data[:2] == b"MZ" and classify_raw(data)[0] == "unknown":
        return "pe", _pe_payload(data), b""
    return None


_ZBOOT_DECODERS: dict[str, Callable[[bytes], tuple[bytes, int]]] = {
    "gzip": comp.gzip_decompress,
    "zstd": comp.zstd_decompress,
    "zstd22": comp.zstd_decompress,
    "xzkern": comp.xz_decompress,
}


def _peel_zboot(data: bytes) -> tuple[str, bytes, bytes]:
    """Decode an EFI zboot payload (§10.3); if that fails, or does not yield an arm64
    Image, fall back to the PE heuristic before giving up with the zboot error."""
    try:
        header = parse_zboot(data)
        decode = _ZBOOT_DECODERS.get(header.compression)
        if decode is None:
            raise KernelFormatError(f"unsupported zboot compression {header.compression}")
        payload = data[header.payload_offset : header.payload_offset + header.payload_size]
        inner, _ = decode(payload)  # bytes after the stream (a size trailer) are ignored
        if inner[0x38:0x3C] != ARM64_MAGIC:
            raise KernelFormatError("zboot payload is not an arm64 Image")
        return f"zboot:{header.compression}", inner, b""
    except KernelFormatError as error:
        try:
            return "pe", _pe_payload(data), b""
        except KernelFormatError:
            raise error from None


def _pe_payload(data: bytes) -> bytes:
    """The reference heuristic for PE wrappers without a zboot header (§10.4).

    Search ``.text`` sections, then every section, then the whole file. In each region a
    zstd stream that decodes to a PE or arm64 Image wins at once; otherwise the largest
    zstd decode of at least 1 MiB; otherwise the first gzip stream that decodes to one.
    (The reference inflates only 64 bytes to probe gzip; fastboop decodes the whole
    stream, so a damaged stream is rejected here rather than later.) All candidates
    together may decode at most :data:`PE_SEARCH_BUDGET` bytes, so a file of many small
    bombs costs a bounded amount of work.
    """
    pe = parse_pe(data)
    text = [s for s in pe.sections if s.name == ".text"]
    regions = [(s.offset, s.offset + s.size) for s in (*text, *pe.sections)]
    regions.append((0, len(data)))
    budget = _Budget(PE_SEARCH_BUDGET)
    for start, end in regions:
        blob = data[start:end]
        largest = b""
        for pos in _offsets(blob, comp.ZSTD_MAGIC):
            inner = budget.try_decode(comp.zstd_decompress, blob[pos:])
            if _is_kernel(inner):
                return inner
            if len(inner) >= MIN_KERNEL_BYTES and len(inner) > len(largest):
                largest = inner
        if largest:
            return largest
        for pos in _offsets(blob, comp.GZIP_MAGIC):
            inner = budget.try_decode(comp.gzip_decompress, blob[pos:])
            if _is_kernel(inner):
                return inner
    raise KernelFormatError("no compressed kernel payload found in PE")


#: Smallest zstd payload the PE heuristic accepts as a kernel without a recognisable magic.
MIN_KERNEL_BYTES = 1 << 20
#: Bytes all candidate streams of one PE may decode to, together.
PE_SEARCH_BUDGET = 2 * comp.MAX_OUTPUT


#: Candidate streams tried per magic and region, so a file full of stray magic bytes
#: cannot make the heuristic decode (and copy) megabytes thousands of times.
MAX_CANDIDATES = 64


def _offsets(blob: bytes, magic: bytes) -> list[int]:
    found: list[int] = []
    pos = blob.find(magic)
    while pos >= 0 and len(found) < MAX_CANDIDATES:
        found.append(pos)
        pos = blob.find(magic, pos + 1)
    return found


class _Budget:
    """Output the PE heuristic may still decode. A candidate may use what is left; one
    that decodes is charged its size, one that overflows is charged all it was given."""

    def __init__(self, total: int) -> None:
        self.left = total

    def try_decode(self, decode: Callable[[bytes, int], tuple[bytes, int]], blob: bytes) -> bytes:
        if self.left <= 0:
            raise KernelFormatError(
                "no kernel among the PE's compressed streams within "
                f"{PE_SEARCH_BUDGET >> 20} MiB of decoding"
            )
        limit = min(comp.MAX_OUTPUT, self.left)
        try:
            inner = decode(blob, limit)[0]
        except DecompressedTooLargeError:
            self.left -= limit
            return b""
        except KernelFormatError:
            return b""
        self.left -= len(inner)
        return inner


def _is_kernel(data: bytes) -> bool:
    return data[:2] == b"MZ" or data[0x38:0x3C] == ARM64_MAGIC


def unwrap_kernel(data: Blob) -> tuple[KernelInfo, Blob]:
    """Peel every wrapper off ``data``; return what it is and the bare kernel bytes.

    A DTB appended after the kernel (after the compressed stream, or after a raw Image)
    is reported in :attr:`KernelInfo.appended_dtb_size` and left out of the result. A
    raw Image comes back as it was given (a mapped file stays mapped) unless a DTB had
    to be cut off it.
    """
    if not len(data):
        raise KernelFormatError("kernel file is empty")
    layers: list[str] = []
    trailing = b""
    current: Blob = bytes(data) if isinstance(data, bytearray | memoryview) else data
    for _ in range(MAX_LAYERS + 1):
        peeled = _peel(current)
        if peeled is None:
            break
        name, current, rest = peeled
        if not layers:
            trailing = rest
        layers.append(name)
    else:
        raise KernelFormatError("kernel wrapped in too many layers (recursion limit reached)")

    appended = 0
    if trailing[:4] == b"\xd0\x0d\xfe\xed":
        try:
            appended = fdt_total_size(trailing)
        except FdtError:
            appended = 0
    fmt, arch = classify_raw(current)
    if not layers and fmt == "image":
        start = find_appended_dtb(current, _pe_end(current))
        if start is not None and start >= 64:
            appended = len(current) - start
            current = current[:start]
    layers.append(fmt)

    version = _bzimage_version(current) if fmt == "bzimage" else _linux_version(current)
    image_size = None
    if fmt == "image" and arch == "arm64":
        image_size = struct.unpack_from("<Q", current, 16)[0]
    return (
        KernelInfo(
            layers=tuple(layers),
            arch=arch,
            efi_stub=fmt == "image" and current[:2] == b"MZ",
            version=version,
            image_size=image_size,
            raw_size=len(current),
            appended_dtb_size=appended,
            trailing_size=len(trailing),
        ),
        current,
    )


def _pe_end(image: Blob) -> int:
    """Where an EFI-stub Image's PE sections end (0 for a plain Image or a bad PE header).

    A DTB appended to the Image lies after them (at most an Authenticode signature sits
    in between), so :func:`~fastboop.fdt.find_appended_dtb` need only search that tail:
    the whole 33 MB of Debian's Image took 16 ms to scan, a sixth of ``bootimg build``.
    """
    if image[:2] != b"MZ":
        return 0
    try:
        sections = parse_pe(image).sections
    except KernelFormatError:
        return 0
    return max((s.offset + s.size for s in sections), default=0)


def _linux_version(image: Blob) -> str | None:
    """The ``Linux version ...`` banner. ``bytes.find`` locates the literal start about
    twice as fast as a regex search would scan for it; the regex then only checks there."""
    pos = image.find(_BANNER)
    while pos >= 0:
        match = _VERSION.match(image, pos)
        if match:
            return match.group().decode("ascii", "replace").strip()
        pos = image.find(_BANNER, pos + 1)
    return None


def detect_kernel(data: Blob) -> KernelInfo:
    """Describe a kernel file (decompressing it if needed to find arch and version)."""
    return unwrap_kernel(data)[0]


def _compress(raw: Blob, compression: str) -> Blob:
    if compression == "gzip":
        return comp.gzip_compress(bytes(raw))
    if compression == "lz4":
        return comp.lz4_legacy_compress(bytes(raw))
    if compression == "zstd":
        return comp.zstd_compress(bytes(raw))
    return raw


def prepare_kernel(kernel: bytes, encoding: str, dtb: bytes | None, arch: str) -> bytes:
    """Turn any supported kernel file into ``encoding`` for a device of ``arch``.

    The kernel is unwrapped to its raw Image, checked against ``arch``, compressed as the
    encoding says and, for ``+dtb`` encodings, followed directly by ``dtb`` (no padding).
    If the input already has the wanted compression and nothing trailing, it is kept
    byte for byte. x86_64 kernels (bzImage) are passed through unchanged with ``image``.
    """
    parts, _ = prepare_kernel_parts(kernel, encoding, dtb, arch)
    return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


_LAYER_OF = {"gzip": "gzip", "lz4": "lz4", "zstd": "zstd"}


def prepare_kernel_parts(
    kernel: Blob,
    encoding: str,
    dtb: bytes | None,
    arch: str,
    *,
    unwrapped: tuple[KernelInfo, Blob] | None = None,
) -> tuple[tuple[Blob, ...], KernelInfo]:
    """:func:`prepare_kernel` unjoined, with what the result is.

    The parts are the encoded kernel and, for ``+dtb``, the DTB: a boot image writer lays
    them end to end, so a 33 MB kernel is never copied to add 100 KB after it. The
    :class:`KernelInfo` describes the kernel section as a reader of the finished image
    would find it; knowing it here saves unwrapping the kernel a second time.
    ``unwrapped`` is :func:`unwrap_kernel`'s result for ``kernel`` if the caller has it.
    """
    wanted = KernelEncoding.parse(encoding)
    info, raw = unwrapped if unwrapped is not None else unwrap_kernel(kernel)
    if info.arch is not None and info.arch != arch:
        raise KernelArchError(
            f"kernel is for {info.arch}, but the device is {arch}",
            hint=f"use a {arch} kernel"
            + (" (this looks like a PC kernel)" if info.arch == "x86_64" else ""),
        )
    if arch == "x86_64":
        if wanted.compression != "none" or wanted.append_dtb:
            raise UnsupportedEncodingError(
                f"encoding {encoding} does not apply to x86_64 kernels", hint="use image"
            )
        return (raw,), info.replace(layers=info.layers[-1:], appended_dtb_size=0,
                                    trailing_size=0)  # fmt: skip
    if info.arch is None:
        warnings.warn(
            f"kernel has no {arch} Image magic; passing it on as a raw Image",
            BootImageWarning,
            stacklevel=2,
        )
    appended = b""
    if wanted.append_dtb:
        if dtb is None:
            raise UnsupportedEncodingError(
                f"encoding {encoding} appends a DTB, but none was given", hint="pass a DTB"
            )
        fdt_total_size(dtb)
        appended = bytes(dtb)
    already = info.layers == (wanted.compression, "image") and not info.trailing_size
    encoded = bytes(kernel) if already else _compress(raw, wanted.compression)
    compressed = wanted.compression != "none"
    layers = (_LAYER_OF[wanted.compression], info.layers[-1]) if compressed else info.layers[-1:]
    section = info.replace(
        layers=info.layers if already else layers,
        appended_dtb_size=len(appended),
        trailing_size=len(appended) if compressed else 0,
    )
    return ((encoded, appended) if appended else (encoded,)), section
