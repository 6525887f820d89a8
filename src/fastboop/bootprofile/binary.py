"""FBOOPROF: a compiled boot profile, as the reference writes it and channels carry it.

Layout: the magic ``FBOOPROF``, a u16 LE format version, then the profile in postcard
(:mod:`fastboop.postcard`). The reference has changed the body while keeping or
resetting the version, so each version number read here names one released layout:

=======  ==================================  ===================================================
version  reference                           body
=======  ==================================  ===================================================
0        fastboop 0.0.1-rc.19 and later,     gibblox 0.0.2 pipeline steps (casync, http, file,
         gibblox-pipeline 0.0.2              xz, tar, android_sparseimg, mbr, gpt) with
                                             ``content``, ``cors_safelisted_mode`` and
                                             ``lba_size``; ``kernel_modules``; per-device
                                             ``inject_mac``. **Written by fastboop.**
1        development builds of February      the first pipeline form (casync, http, xz,
         2026 (``bootprofile: add v1``)      android_sparseimg, mbr, gpt, file), no
                                             ``content``; ``extra_modules``
2        fastboop 0.0.1-rc.1 to rc.9         gibblox 0.0.1 pipeline (casync, http, file, xz,
                                             android_sparseimg, mbr, gpt), no ``content``;
                                             ``extra_modules``
=======  ==================================  ===================================================

Records come from untrusted channel heads: every length is bounded by the bytes present,
nesting by :data:`~fastboop.bootprofile.manifest.MAX_DEPTH`, and the only exception that
escapes is :class:`FbooProfError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastboop import postcard as pc
from fastboop.bootprofile.manifest import MAX_DEPTH
from fastboop.bootprofile.schema import (
    STEP_NAMES,
    AndroidSparse,
    BootProfile,
    BootProfileError,
    Casync,
    Content,
    Device,
    File,
    Filesystem,
    Gpt,
    Http,
    InjectMac,
    Mbr,
    PathSource,
    Source,
    Tar,
    Xz,
)

FBOOPROF_MAGIC = b"FBOOPROF"
FBOOPROF_VERSION = 0  # what fastboop writes: the reference's current layout
HEADER_SIZE = len(FBOOPROF_MAGIC) + 2


class FbooProfError(BootProfileError):
    """An FBOOPROF record that cannot be decoded (``offset`` into the record)."""

    def __init__(self, detail: str, *, offset: int | None = None, hint: str | None = None):
        self.detail = detail
        self.offset = offset
        where = f"byte {offset}" if offset is not None else None
        super().__init__(f"FBOOPROF: {detail}", where=where, hint=hint)


@dataclass(frozen=True)
class Layout:
    version: int
    steps: tuple[str, ...]  # pipeline step kinds in enum-variant order
    content: bool  # steps carry ``content``
    cors: bool  # http carries ``cors_safelisted_mode``
    lba_size: bool  # mbr/gpt carry ``lba_size``
    inject_mac: bool  # device stage0 carries ``inject_mac``


LAYOUTS = {
    0: Layout(0, ("casync", "http", "file", "xz", "tar", "android_sparseimg", "mbr", "gpt"),
              content=True, cors=True, lba_size=True, inject_mac=True),
    1: Layout(1, ("casync", "http", "xz", "android_sparseimg", "mbr", "gpt", "file"),
              content=False, cors=False, lba_size=False, inject_mac=False),
    2: Layout(2, ("casync", "http", "file", "xz", "android_sparseimg", "mbr", "gpt"),
              content=False, cors=False, lba_size=False, inject_mac=False),
}  # fmt: skip
_ROOTFS = ("ostree", "erofs", "ext4", "fat")  # BootProfileRootfsBin variants
_FILESYSTEMS = ("erofs", "ext4", "fat")  # BootProfileRootfsFilesystemBin variants

# -- encoding ---------------------------------------------------------------------------------


def _content(layout: Layout, content: Content | None) -> bytes:
    if not layout.content:
        return b""
    return pc.option(content, lambda c: pc.string(c.digest) + pc.varint(c.size_bytes))


def _source(layout: Layout, source: Source) -> bytes:
    kind = STEP_NAMES[type(source)]
    if kind not in layout.steps:
        raise FbooProfError(f"format version {layout.version} has no {kind} step")
    out = pc.varint(layout.steps.index(kind))

    def opt_u32(value: int | None) -> bytes:
        return pc.option(value, pc.varint)

    if isinstance(source, Casync):
        out += pc.string(source.index) + pc.option(source.chunk_store, pc.string)
    elif isinstance(source, Http):
        out += pc.string(source.url) + (pc.boolean(source.cors_safelisted_mode)
                                        if layout.cors else b"")  # fmt: skip
    elif isinstance(source, File):
        out += pc.string(source.path)
    elif isinstance(source, Tar):
        out += pc.string(source.entry) + _source(layout, source.source)
    elif isinstance(source, (Xz, AndroidSparse)):
        out += _source(layout, source.source)
    elif isinstance(source, Mbr):
        out += pc.option(source.partuuid, pc.string) + opt_u32(source.index)
        out += opt_u32(source.lba_size) if layout.lba_size else b""
        out += _source(layout, source.source)
    else:
        out += pc.option(source.partlabel, pc.string) + pc.option(source.partuuid, pc.string)
        out += opt_u32(source.index) + (opt_u32(source.lba_size) if layout.lba_size else b"")
        out += _source(layout, source.source)
    return out + _content(layout, source.content)


def _filesystem(layout: Layout, fs: Filesystem) -> bytes:
    if fs.ostree:
        return (pc.varint(_ROOTFS.index("ostree")) + pc.varint(_FILESYSTEMS.index(fs.kind))
                + _source(layout, fs.source))  # fmt: skip
    return pc.varint(_ROOTFS.index(fs.kind)) + _source(layout, fs.source)


def _device(layout: Layout, device: Device) -> bytes:
    out = pc.seq(device.dt_overlays, pc.byte_string) + pc.option(device.extra_cmdline, pc.string)
    out += pc.seq(device.kernel_modules, pc.string)
    if layout.inject_mac:
        out += pc.option(device.inject_mac, lambda m: pc.option(m.wifi, pc.string)
                         + pc.option(m.bluetooth, pc.string))  # fmt: skip
    elif device.inject_mac is not None:
        raise FbooProfError(f"format version {layout.version} has no inject_mac")
    return out


def encode_fbooprof(profile: BootProfile, *, version: int = FBOOPROF_VERSION) -> bytes:
    """The FBOOPROF record for ``profile`` (header plus postcard body)."""
    layout = LAYOUTS[version]

    def path(part: PathSource) -> bytes:
        return pc.string(part.path) + _filesystem(layout, part.filesystem)

    devices = sorted(profile.devices.items())
    body = b"".join([
        pc.string(profile.id),
        pc.option(profile.display_name, pc.string),
        _filesystem(layout, profile.rootfs),
        pc.option(profile.kernel, path),
        pc.option(profile.dtbs, path),
        pc.seq(profile.dt_overlays, pc.byte_string),
        pc.option(profile.extra_cmdline, pc.string),
        pc.seq(profile.kernel_modules, pc.string),
        pc.varint(len(devices)),
        *(pc.string(k) + _device(layout, d) for k, d in devices),
    ])  # fmt: skip
    return FBOOPROF_MAGIC + version.to_bytes(2, "little") + body


# -- decoding ---------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, data: bytes, layout: Layout) -> None:
        self.r = pc.Reader(data, HEADER_SIZE, lambda detail, at: FbooProfError(detail, offset=at))
        self.layout = layout

    def content(self, what: str) -> Content | None:
        if not self.layout.content:
            return None
        return self.r.option(what, lambda w: Content(self.r.string(f"{w}.digest"),
                                                     self.r.varint(f"{w}.size_bytes", 64)))

    def source(self, what: str, depth: int = 0) -> Source:
        if depth > MAX_DEPTH:
            raise self.r.fail(f"{what}: pipeline deeper than {MAX_DEPTH} steps")
        r = self.r
        kind = r.index(f"{what} step", list(self.layout.steps))
        here = f"{what}.{kind}"

        def u32(w: str) -> int | None:
            return r.option(w, lambda x: r.varint(x, 32))

        def lba(w: str) -> int | None:
            return u32(w) if self.layout.lba_size else None

        if kind == "casync":
            blob_index = r.string(f"{here}.index")
            store = r.option(f"{here}.chunk_store", r.string)
            return Casync(blob_index, store, self.content(here))
        if kind == "http":
            url = r.string(f"{here}.url")
            cors = r.boolean(f"{here}.cors_safelisted_mode") if self.layout.cors else False
            return Http(url, cors, self.content(here))
        if kind == "file":
            return File(r.string(f"{here}.path"), self.content(here))
        if kind == "xz":
            return Xz(self.source(here, depth + 1), self.content(here))
        if kind == "tar":
            entry = r.string(f"{here}.entry")
            return Tar(entry, self.source(here, depth + 1), self.content(here))
        if kind == "android_sparseimg":
            return AndroidSparse(self.source(here, depth + 1), self.content(here))
        label = r.option(f"{here}.partlabel", r.string) if kind == "gpt" else None
        partuuid = r.option(f"{here}.partuuid", r.string)
        index = u32(f"{here}.index")
        lba_size = lba(f"{here}.lba_size")
        nested = self.source(here, depth + 1)
        if kind == "mbr":
            return Mbr(nested, partuuid, index, lba_size, self.content(here))
        return Gpt(nested, label, partuuid, index, lba_size, self.content(here))

    def filesystem(self, what: str) -> Filesystem:
        kind = self.r.index(f"{what} filesystem", list(_ROOTFS))
        if kind == "ostree":
            inner = self.r.index(f"{what}.ostree filesystem", list(_FILESYSTEMS))
            return Filesystem(inner, self.source(f"{what}.ostree.{inner}"), ostree=True)
        return Filesystem(kind, self.source(f"{what}.{kind}"))

    def path(self, what: str) -> PathSource:
        return PathSource(self.r.string(f"{what}.path"), self.filesystem(what))

    def device(self, what: str) -> Device:
        r = self.r
        overlays = tuple(r.seq(f"{what}.dt_overlays", r.raw))
        cmdline = r.option(f"{what}.extra_cmdline", r.string)
        modules = tuple(r.seq(f"{what}.stage0.kernel_modules", r.string))
        mac = None
        if self.layout.inject_mac:
            mac = r.option(f"{what}.stage0.inject_mac", lambda w: InjectMac(
                r.option(f"{w}.wifi", r.string), r.option(f"{w}.bluetooth", r.string)))
        return Device(overlays, cmdline, modules, mac)

    def profile(self) -> BootProfile:
        r = self.r
        profile_id = r.string("id")
        display = r.option("display_name", r.string)
        rootfs = self.filesystem("rootfs")
        kernel = r.option("kernel", self.path)
        dtbs = r.option("dtbs", self.path)
        overlays = tuple(r.seq("dt_overlays", r.raw))
        cmdline = r.option("extra_cmdline", r.string)
        modules = tuple(r.seq("stage0.kernel_modules", r.string))
        devices: dict[str, Device] = {}
        previous = None
        for _ in range(r.length("stage0.devices count")):
            key = r.string("stage0.devices key")
            if previous is not None and key.encode() <= previous.encode():
                raise r.fail(f"stage0.devices keys out of order at {key!r}")
            previous = key
            devices[key] = self.device(f"stage0.devices.{key}")
        return BootProfile(id=profile_id, rootfs=rootfs, display_name=display, kernel=kernel,
                           dtbs=dtbs, dt_overlays=overlays, extra_cmdline=cmdline,
                           kernel_modules=modules, devices=devices)  # fmt: skip


def header_version(data: bytes) -> int | None:
    """The format version when ``data`` starts with an FBOOPROF header, else None."""
    if len(data) < HEADER_SIZE or not data.startswith(FBOOPROF_MAGIC):
        return None
    return int.from_bytes(data[8:10], "little")


def decode_fbooprof_prefix(data: bytes) -> tuple[BootProfile, int, int]:
    """Decode the record at the start of ``data``: (profile, bytes consumed, version)."""
    version = header_version(data)
    if version is None:
        raise FbooProfError("not an FBOOPROF record (bad magic or shorter than its header)",
                            offset=0)  # fmt: skip
    layout = LAYOUTS.get(version)
    if layout is None:
        raise FbooProfError(f"unsupported format version {version}", offset=8,
                            hint=f"fastboop reads versions {', '.join(map(str, LAYOUTS))}")
    decoder = _Decoder(data, layout)
    return decoder.profile(), decoder.r.offset, version


def decode_fbooprof(data: bytes) -> tuple[BootProfile, int]:
    """Decode exactly one record (trailing bytes are an error): (profile, version)."""
    profile, consumed, version = decode_fbooprof_prefix(data)
    if consumed != len(data):
        raise FbooProfError(f"{len(data) - consumed} trailing bytes after the profile",
                            offset=consumed)  # fmt: skip
    return profile, version
