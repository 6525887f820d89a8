"""Boot-profile validation: the reference's rules (``validate_boot_profile`` and
gibblox's ``validate_pipeline``), each failure one :class:`BootProfileError` naming the
step by its path (``rootfs.ext4.mbr``)."""

from __future__ import annotations

import re

from fastboop.bootprofile.manifest import MAX_DEPTH
from fastboop.bootprofile.schema import (
    STEP_NAMES,
    TERMINALS,
    BootProfile,
    BootProfileError,
    Casync,
    Content,
    File,
    Filesystem,
    Gpt,
    Http,
    Mbr,
    Source,
    Tar,
    inner,
)

DIGEST = re.compile(r"sha512:[0-9a-f]{128}")
ROOT_FILESYSTEMS = ("erofs", "ext4")  # what stage0 can switch root into from a profile


def check_content(content: Content, where: str) -> None:
    digest = content.digest.strip()
    if not digest:
        raise BootProfileError(f"{where}.content: empty digest")
    if not digest.startswith("sha512:"):
        raise BootProfileError(f"{where}.content: digest must use the 'sha512:' prefix, "
                               f"got {digest[:24]!r}")  # fmt: skip
    if not DIGEST.fullmatch(digest):
        raise BootProfileError(f"{where}.content: digest must be 'sha512:' and 128 lowercase "
                               f"hex digits, got {len(digest) - 7} characters")  # fmt: skip


def _strip(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


def check_source(
    source: Source, where: str, *, require_content: bool, files_unhashed: bool = False,
    depth: int = 0,
) -> None:
    if depth > MAX_DEPTH:
        raise BootProfileError(f"{where}: pipeline exceeds max depth {MAX_DEPTH}")
    here = f"{where}.{STEP_NAMES[type(source)]}"
    if source.content is not None:
        check_content(source.content, here)
    if isinstance(source, TERMINALS):
        if isinstance(source, Http) and not source.url.strip():
            raise BootProfileError(f"{here}: empty URL")
        if isinstance(source, File) and not source.path.strip():
            raise BootProfileError(f"{here}: empty path")
        if isinstance(source, Casync):
            if not source.index.strip():
                raise BootProfileError(f"{here}: empty index")
            if _strip(source.index).lower().endswith(".caidx"):
                raise BootProfileError(f"{here}: casync archive indexes (.caidx) are not "
                                       "block images", hint="use a blob index (.caibx)")
            if source.chunk_store is not None and not source.chunk_store.strip():
                raise BootProfileError(f"{here}: empty chunk_store")
        unhashed_file = files_unhashed and isinstance(source, File)
        if require_content and source.content is None and not unhashed_file:
            raise BootProfileError(f"{here}: a terminal source must carry content "
                                   "(digest and size_bytes)", hint="fastboop bootprofile "
                                   "create fills them in for local files")  # fmt: skip
        return
    if isinstance(source, Tar) and not source.entry.strip():
        raise BootProfileError(f"{here}: empty entry")
    if isinstance(source, Mbr):
        if source.partuuid is not None and not source.partuuid.strip():
            raise BootProfileError(f"{here}: empty partuuid")
        count = (source.partuuid is not None) + (source.index is not None)
        if count != 1:
            raise BootProfileError(f"{here}: needs exactly one selector (partuuid or index), "
                                   f"found {count}")  # fmt: skip
    if isinstance(source, Gpt):
        for key in ("partlabel", "partuuid"):
            value = getattr(source, key)
            if value is not None and not value.strip():
                raise BootProfileError(f"{here}: empty {key}")
        count = sum(v is not None for v in (source.partlabel, source.partuuid, source.index))
        if count != 1:
            raise BootProfileError(f"{here}: needs exactly one selector (partlabel, partuuid "
                                   f"or index), found {count}")  # fmt: skip
    if isinstance(source, (Mbr, Gpt)) and source.lba_size not in (None, 512, 1024, 2048, 4096):
        raise BootProfileError(f"{here}: lba_size {source.lba_size} is not a sector size")
    nested = inner(source)
    assert nested is not None
    check_source(nested, here, require_content=require_content, files_unhashed=files_unhashed,
                 depth=depth + 1)


def _check_fs(fs: Filesystem, where: str, require_content: bool, files_unhashed: bool) -> None:
    name = f"{where}.ostree" if fs.ostree else where
    check_source(fs.source, f"{name}.{fs.kind}", require_content=require_content,
                 files_unhashed=files_unhashed)


def validate(
    profile: BootProfile, *, require_content: bool = True, files_unhashed: bool = False
) -> None:
    """Raise :class:`BootProfileError` for the first rule ``profile`` breaks.

    ``require_content`` off is for records of the older formats (1, 2), which have no
    ``content`` field at all; ``files_unhashed`` for manifests, whose local ``file``
    steps ``bootprofile create`` hashes.
    """
    if not profile.id.strip():
        raise BootProfileError("id: empty")
    if profile.rootfs.kind not in ROOT_FILESYSTEMS:
        raise BootProfileError(f"rootfs: '{profile.rootfs.kind}' cannot be the root stage0 "
                               "switches into (supported: erofs, ext4)",
                               hint="use fat for kernel and dtbs sources")  # fmt: skip
    _check_fs(profile.rootfs, "rootfs", require_content, files_unhashed)
    for key in ("kernel", "dtbs"):
        part = getattr(profile, key)
        if part is None:
            continue
        if not part.path.strip():
            raise BootProfileError(f"{key}.path: empty")
        _check_fs(part.filesystem, key, require_content, files_unhashed)
    for device_id in profile.devices:
        if not device_id.strip():
            raise BootProfileError("stage0.devices: empty device profile id")
