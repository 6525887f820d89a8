"""Build an Android boot image in memory (sans-I/O): bytes in, bytes out.

:func:`build_boot_image` writes exactly the sections it is given, laid out as AOSP
mkbootimg lays them out, so its output is byte-comparable with mkbootimg's for the same
inputs (the test suite checks this against Debian's mkbootimg). Choosing what to put in
the kernel section (compression, an appended DTB) is :mod:`fastboop.bootimg.kernel`'s job;
:func:`assemble_boot_image` ties both together the way a device profile asks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

from fastboop.bootimg.errors import (
    AddressOverflowError,
    BootImageWarning,
    CmdlineTooLongError,
    InvalidLayoutError,
    SizeLimitError,
    UnsupportedHeaderVersionError,
)
from fastboop.bootimg.header import (
    BOOT_ARGS_SIZE,
    BOOT_NAME_SIZE,
    HEADER_SIZES,
    V3_CMDLINE_SIZE,
    BootHeader,
    id_digest,
    id_hash,
    id_length,
    id_sections,
    pack_header,
    pieces,
    sections_id,
)
from fastboop.bootimg.kernel import KernelInfo, prepare_kernel_parts
from fastboop.bootimg.layout import (
    BUILDABLE_HEADER_VERSIONS,
    MKBOOTIMG_PAGE_SIZES,
    BootImageLayout,
    OsVersion,
    check_page_size,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import BinaryIO

    from fastboop.bootimg.header import Buffer
    from fastboop.bootimg.kernel import Blob

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF
#: Longest command line any header can carry: 512 + 1024 on v0-v2, 1536 on v3/v4.
MAX_CMDLINE_BYTES = 1536


def pad_to(length: int, page_size: int) -> int:
    """``length`` rounded up to a whole number of pages."""
    return -(-length // page_size) * page_size


def _check_limit(what: str, size: int, limit: int) -> None:
    if limit and size > limit:
        raise SizeLimitError(what, size, limit, hint="the device profile caps this size")
    if size > U32_MAX:
        raise SizeLimitError(what, size, U32_MAX, hint="boot image size fields are 32-bit")


def _address(layout: BootImageLayout, field: str, offset: int, bits: int = 32) -> int:
    address = layout.base + offset
    if layout.base < 0 or offset < 0 or address > (U32_MAX if bits == 32 else U64_MAX):
        raise AddressOverflowError(field, address)
    return address


def build_boot_image(
    layout: BootImageLayout,
    kernel: bytes,
    *,
    ramdisk: bytes = b"",
    dtb: bytes | None = None,
    cmdline: str | bytes = "",
    os_version: OsVersion | None = None,
    board: str | bytes = b"",
    boot_signature: bytes = b"",
) -> bytes:
    """Lay out a boot image from already-encoded parts.

    ``kernel`` goes in verbatim (encode it with :func:`~fastboop.bootimg.kernel.prepare_kernel`
    first). ``dtb`` becomes the separate DTB section, which only header v2 has; for any other
    version pass ``None`` and append the DTB to the kernel instead. ``boot_signature`` is
    v4's signature section. Checks run in the spec's order (bootimg.md §14) and raise typed
    :class:`~fastboop.bootimg.errors.BootImageError`\\ s.
    """
    return plan_boot_image(
        layout, (kernel,), ramdisk=ramdisk, dtb=dtb, cmdline=cmdline, os_version=os_version,
        board=board, boot_signature=boot_signature,
    ).join()  # fmt: skip


def plan_boot_image(
    layout: BootImageLayout,
    kernel: Sequence[Buffer],
    *,
    ramdisk: Buffer = b"",
    dtb: Buffer | None = None,
    cmdline: str | bytes = "",
    os_version: OsVersion | None = None,
    board: str | bytes = b"",
    boot_signature: Buffer = b"",
) -> BootImagePlan:
    """:func:`build_boot_image`, as a plan: the header and the sections, not yet joined.

    ``kernel`` may come in parts (an encoded kernel and the DTB appended to it), laid end
    to end. The plan can be joined into bytes or written to a file piece by piece, so a
    caller that writes the image never holds a second copy of it.
    """
    version = layout.header_version
    kernel_size = sum(len(part) for part in kernel)
    check_page_size(layout.page_size)
    if layout.page_size not in MKBOOTIMG_PAGE_SIZES:
        warnings.warn(
            f"page size {layout.page_size} is outside mkbootimg's {MKBOOTIMG_PAGE_SIZES}",
            BootImageWarning,
            stacklevel=2,
        )
    if not kernel_size:
        raise InvalidLayoutError("kernel is empty", hint="a boot image needs a kernel")
    _check_limit("kernel", kernel_size, layout.limits.max_kernel_bytes)
    _check_limit("initrd", len(ramdisk), layout.limits.max_initrd_bytes)

    cmdline_bytes = cmdline.encode() if isinstance(cmdline, str) else bytes(cmdline)
    if len(cmdline_bytes) > MAX_CMDLINE_BYTES:
        raise CmdlineTooLongError(len(cmdline_bytes), MAX_CMDLINE_BYTES)

    name = board.encode() if isinstance(board, str) else bytes(board)
    if len(name) > BOOT_NAME_SIZE:
        raise InvalidLayoutError(f"board name is {len(name)} bytes, the header holds 16")

    if version not in BUILDABLE_HEADER_VERSIONS:
        raise UnsupportedHeaderVersionError(version)
    if version >= 3:
        if dtb is not None:
            raise InvalidLayoutError(
                f"header v{version} has no DTB section",
                hint="v3+ devices take the DTB from vendor_boot; use a +dtb kernel encoding",
            )
        if name:
            raise InvalidLayoutError(f"header v{version} has no board name field")
        if boot_signature and version < 4:
            raise InvalidLayoutError("only header v4 has a boot signature section")
        plan = _build_v3(layout, kernel, ramdisk, cmdline_bytes, os_version, boot_signature)
    else:
        if dtb is not None and version < 2:
            raise InvalidLayoutError(
                f"header v{version} has no DTB section",
                hint="append the DTB to the kernel (a +dtb encoding) or use header v2",
            )
        if boot_signature:
            raise InvalidLayoutError("only header v4 has a boot signature section")
        if len(cmdline_bytes) > BOOT_ARGS_SIZE - 1:
            warnings.warn(
                f"cmdline is {len(cmdline_bytes)} bytes; bytes past 511 go to extra_cmdline, "
                "which not every bootloader reads",
                BootImageWarning,
                stacklevel=2,
            )
        plan = _build_v0_v2(layout, kernel, ramdisk, dtb, cmdline_bytes, os_version, name)

    total = plan.size
    if layout.limits.max_total_bytes and total > layout.limits.max_total_bytes:
        raise SizeLimitError("total bootimg", total, layout.limits.max_total_bytes)
    if total > U32_MAX:
        raise SizeLimitError("total bootimg", total, U32_MAX, hint="fastboot downloads are 32-bit")
    return plan


def _build_v0_v2(
    layout: BootImageLayout,
    kernel: Sequence[Buffer],
    ramdisk: Buffer,
    dtb: Buffer | None,
    cmdline: bytes,
    os_version: OsVersion | None,
    name: bytes,
) -> BootImagePlan:
    version = layout.header_version
    page = layout.page_size
    kernel_addr = _address(layout, "kernel", layout.kernel_offset)
    ramdisk_addr = _address(layout, "ramdisk", layout.ramdisk_offset)
    _address(layout, "second", layout.second_offset)  # checked (§14), but never written
    tags_addr = _address(layout, "tags", layout.tags_offset)
    dtb_blob = dtb or b""
    if dtb is not None and not dtb:
        raise InvalidLayoutError("DTB is empty")
    _check_limit("dtb", len(dtb_blob), 0)
    dtb_addr = _address(layout, "dtb", layout.dtb_offset, bits=64) if dtb_blob else 0

    header = BootHeader(
        header_version=version,
        kernel_size=sum(len(part) for part in kernel),
        kernel_addr=kernel_addr,
        ramdisk_size=len(ramdisk),
        # AOSP mkbootimg writes a load address only for a section that exists: 0 for an
        # absent ramdisk, and 0 for the second stage, which fastboop never has.
        ramdisk_addr=ramdisk_addr if ramdisk else 0,
        second_addr=0,
        tags_addr=tags_addr,
        page_size=page,
        os_version=os_version.pack() if os_version else 0,
        name=name,
        cmdline=cmdline[:BOOT_ARGS_SIZE],
        # id: the one SHA-1, over the sections, made by the plan (as it writes them)
        extra_cmdline=cmdline[BOOT_ARGS_SIZE:],
        header_size=HEADER_SIZES[version] if version >= 1 else 0,
        dtb_size=len(dtb_blob),
        dtb_addr=dtb_addr,
    )
    return BootImagePlan(page, header, [("kernel", kernel), ("ramdisk", (ramdisk,)),
                                        ("dtb", (dtb_blob,))], id_version=version)  # fmt: skip


def _build_v3(
    layout: BootImageLayout,
    kernel: Sequence[Buffer],
    ramdisk: Buffer,
    cmdline: bytes,
    os_version: OsVersion | None,
    signature: Buffer,
) -> BootImagePlan:
    version = layout.header_version
    header = BootHeader(
        header_version=version,
        kernel_size=sum(len(part) for part in kernel),
        ramdisk_size=len(ramdisk),
        os_version=os_version.pack() if os_version else 0,
        header_size=HEADER_SIZES[version],
        cmdline=cmdline[:V3_CMDLINE_SIZE],
        signature_size=len(signature),
    )
    _check_limit("boot signature", len(signature), 0)
    sections = [("kernel", kernel), ("ramdisk", (ramdisk,)), ("signature", (signature,))]
    return BootImagePlan(layout.effective_page_size, header, sections)


class BootImagePlan:
    """A boot image as its pieces: the header, then each section padded to whole pages.

    ``header`` holds every field, ``id`` included, so a summary needs no re-parsing.
    ``sections`` are ``(name, parts)`` in image order; empty sections take no pages.
    :meth:`join` makes the bytes (one copy), :meth:`write` puts them in a file without
    ever holding the whole image.

    A v0-v2 header's ``id`` hashes the sections (``id_version``). :meth:`write` to a
    seekable file hashes each piece as it writes it and puts the header in last, so a
    mapped input is read once and its pages can be let go as it goes (bootimg build:
    v2 peak RSS 50.5 -> ~28 MiB); otherwise the first look at :attr:`header` hashes
    the sections, whole.
    """

    def __init__(
        self,
        page_size: int,
        header: BootHeader,
        sections: list[tuple[str, Sequence[Buffer]]],
        *,
        id_version: int | None = None,
    ):
        self.page_size = page_size
        self._header = header
        self.sections = [(name, tuple(p for p in parts if len(p))) for name, parts in sections]
        self._id_version = id_version  # None once the id is in the header (or never needed)

    @property
    def header(self) -> BootHeader:
        if self._id_version is not None:
            self._header.id = sections_id(self._id_version, dict(self.sections))
            self._id_version = None
        return self._header

    def _id_order(self) -> list[tuple[str, tuple[Buffer, ...]]]:
        """The id's sections in its order, absent ones (second, recovery_dtbo) empty."""
        assert self._id_version is not None
        present = dict(self.sections)
        return [(name, present.get(name, ())) for name in id_sections(self._id_version)]

    def _pieces(self) -> Iterator[Buffer]:
        packed = pack_header(self.header)
        yield packed
        yield bytes(pad_to(len(packed), self.page_size) - len(packed))
        for _, parts in self.sections:
            for part in parts:
                yield from pieces(part)  # a mapped input in slices, released as written
            length = sum(len(part) for part in parts)
            yield bytes(pad_to(length, self.page_size) - length)

    @property
    def size(self) -> int:
        return sum(pad_to(size, self.page_size) for _, _, size in self.layout())

    def layout(self) -> list[tuple[str, int, int]]:
        """``(name, offset, size)`` of the header and of every non-empty section."""
        found = [("header", 0, len(pack_header(self._header)))]  # the id does not resize it
        offset = pad_to(found[0][2], self.page_size)
        for name, parts in self.sections:
            length = sum(len(part) for part in parts)
            if length:
                found.append((name, offset, length))
                offset += pad_to(length, self.page_size)
        return found

    def section(self, name: str) -> bytes:
        """One section's bytes (joined; meant for small ones such as the DTB)."""
        parts = dict(self.sections).get(name, ())
        return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)

    def join(self) -> bytes:
        return b"".join(self._pieces())

    def write(self, out: BinaryIO) -> int:
        """Write the image to ``out``; returns its size."""
        if self._id_version is not None and out.seekable() and self._written_as_hashed():
            return self._write_hashing(out)
        written = 0
        for piece in self._pieces():
            if len(piece):
                out.write(piece)
                written += len(piece)
        return written

    def _written_as_hashed(self) -> bool:
        """Whether the image's sections come in the id's order, none outside it."""
        ordered = [name for name, parts in self._id_order() if parts]
        return [name for name, parts in self.sections if parts] == ordered

    def _write_hashing(self, out: BinaryIO) -> int:
        """:meth:`write` in one pass over the sections: each piece hashed for the id and
        written, the header (with the id) written last, into the page left for it."""
        start = out.tell()
        head = pad_to(len(pack_header(self._header)), self.page_size)
        out.seek(start + head)
        written, sha = head, id_hash()
        for _, parts in self._id_order():
            length = 0
            for part in parts:
                for piece in pieces(part):
                    sha.update(piece)
                    out.write(piece)
                length += len(part)
            sha.update(id_length(length))
            if length:
                out.write(bytes(pad_to(length, self.page_size) - length))
                written += pad_to(length, self.page_size)
        self._header.id = id_digest(sha)
        self._id_version = None
        end = out.tell()
        out.seek(start)
        packed = pack_header(self._header)
        out.write(packed + bytes(head - len(packed)))
        out.seek(end)
        return written


def assemble_boot_image(
    layout: BootImageLayout,
    kernel: bytes,
    *,
    ramdisk: bytes = b"",
    dtb: bytes | None = None,
    cmdline: str | bytes = "",
    os_version: OsVersion | None = None,
) -> bytes:
    """Encode ``kernel`` as ``layout`` asks and put the DTB where the profile says (§9.2).

    With a ``+dtb`` encoding the DTB is appended to the kernel; otherwise v2 gets a DTB
    section, v0/v1 boot without any DTB (with a warning, as the spec decides), and v3/v4
    are refused because their DTB lives in a vendor_boot image fastboop does not build.
    """
    return plan_assembled_boot_image(
        layout, kernel, ramdisk=ramdisk, dtb=dtb, cmdline=cmdline, os_version=os_version
    )[0].join()


def plan_assembled_boot_image(
    layout: BootImageLayout,
    kernel: Blob,
    *,
    ramdisk: Buffer = b"",
    dtb: bytes | None = None,
    cmdline: str | bytes = "",
    os_version: OsVersion | None = None,
    unwrapped: tuple[KernelInfo, Blob] | None = None,
) -> tuple[BootImagePlan, KernelInfo]:
    """:func:`assemble_boot_image` as a plan, with what the kernel section is.

    The kernel is unwrapped once (``unwrapped``, if the caller already did it) and
    hashed once, and nothing is joined: the CLI writes the plan to its output file and
    describes the image from the plan.
    """
    encoding = layout.encoding
    encoded, kernel_info = prepare_kernel_parts(
        kernel, layout.kernel_encoding, dtb if encoding.append_dtb else None, layout.arch,
        unwrapped=unwrapped,
    )  # fmt: skip
    section_dtb: bytes | None = None
    if dtb is not None and not encoding.append_dtb:
        if layout.header_version == 2:
            section_dtb = dtb
        elif layout.header_version < 2:
            warnings.warn(
                f"header v{layout.header_version} with encoding {layout.kernel_encoding} "
                "carries no DTB; the image boots without one",
                BootImageWarning,
                stacklevel=2,
            )
        else:
            raise InvalidLayoutError(
                f"header v{layout.header_version} cannot carry a DTB without a +dtb encoding",
                hint="v3+ devices read the DTB from vendor_boot, which fastboop does not build",
            )
    elif dtb is None and layout.header_version < 2 and not encoding.append_dtb:
        warnings.warn("no DTB given; the image boots without one", BootImageWarning, stacklevel=2)
    plan = plan_boot_image(
        layout, encoded, ramdisk=ramdisk, dtb=section_dtb, cmdline=cmdline, os_version=os_version
    )
    return plan, kernel_info
