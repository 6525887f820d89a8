"""Live media: an ISO 9660 image whose root is a file inside it.

Distributions publish live ISOs in three shapes (``/work/shared/specs/artifacts.md``):

========  =====================  =================================================
layout    kernel (ISO path)      root image(s) (ISO paths)
========  =====================  =================================================
fedora    ``images/pxeboot/``    ``LiveOS/squashfs.img``: squashfs or, from Fedora 42
                                 (kiwi), EROFS; older media nest ``LiveOS/rootfs.img``
                                 (ext4) inside the squashfs
debian    ``live/``              ``live/filesystem.squashfs``
ubuntu    ``casper/``            ``casper/filesystem.squashfs``, or layers named by
                                 their stack: ``minimal.squashfs`` under
                                 ``minimal.standard.squashfs`` under ...
========  =====================  =================================================

:func:`expand_live_media` turns an ISO volume into the volumes stage0 needs: each root
image as a slice of the ISO (served as is: ranged reads, no copy), a nested image as a
source read through the squashfs, and the kernel directory, which is mounted at
``/boot`` of the merged tree so the kernel comes from the ISO's own path while modules
and DTBs come from the root image. :func:`live_roles` decides what is served:

* one root image: that slice (``stage0.rootfs`` squashfs or erofs);
* a nested image: the squashfs slice, loop-mounted by stage0 (``stage0.loop``);
* several Ubuntu layers (the user names the top one): the whole ISO, each layer
  loop-mounted and stacked by overlayfs. By default the lowest layer that holds the
  kernel's modules is served alone.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from fastboop.artifact.roles import Role, Roles
from fastboop.artifact.volumes import VolumeInfo, select_volume
from fastboop.blocks import BlockSource
from fastboop.errors import UsageError
from fastboop.rootfs.detect import detect_kind
from fastboop.rootfs.errors import NotFoundError, RootfsError
from fastboop.rootfs.fs import Filesystem
from fastboop.rootfs.fsid import read_identity
from fastboop.rootfs.iso9660 import IsoFilesystem
from fastboop.rootfs.squashfs import SquashfsFilesystem
from fastboop.rootfs.subtree import SubtreeFilesystem

#: Root images nested in Fedora's squashfs.img (ext3fs.img: Fedora 16 and older).
NESTED_IMAGES = ("LiveOS/rootfs.img", "LiveOS/ext3fs.img")
KERNEL_PREFIXES = ("vmlinuz", "vmlinux", "Image", "linux")
MODULE_DIRS = ("/usr/lib/modules", "/lib/modules")


class LiveLayout(msgspec.Struct, frozen=True):
    """Which live-media shape an ISO has, and where its parts are."""

    distro: str  # "fedora" | "debian" | "ubuntu"
    kernel_dir: str  # ISO path of the directory with the kernel
    roots: tuple[str, ...]  # root image paths in the ISO, lowest layer first


def _ubuntu_layers(names: list[str]) -> tuple[str, ...]:
    """casper's squashfs images, lowest layer first: a layer's name is the names of the
    layers below it plus its own, dot-separated (``minimal.standard.squashfs`` sits on
    ``minimal.squashfs``)."""
    stems = [n.removesuffix(".squashfs") for n in names]
    return tuple(f"casper/{s}.squashfs" for s in sorted(stems, key=lambda s: (s.count("."), s)))


def detect_layout(iso: Filesystem) -> LiveLayout | None:
    """The live layout of an ISO's tree, or None when it is none of those."""
    if iso.is_file("/LiveOS/squashfs.img"):
        return LiveLayout("fedora", "images/pxeboot", ("LiveOS/squashfs.img",))
    if iso.is_file("/live/filesystem.squashfs"):
        return LiveLayout("debian", "live", ("live/filesystem.squashfs",))
    if iso.is_dir("/casper"):
        layers = [n for n in iso.listdir("/casper")
                  if n.endswith(".squashfs") and iso.is_file(f"/casper/{n}")]  # fmt: skip
        if layers:
            return LiveLayout("ubuntu", "casper", _ubuntu_layers(layers))
    return None


class LiveVolumes(msgspec.Struct, frozen=True):
    """What :func:`expand_live_media` added for one ISO volume (indices into volumes)."""

    layout: LiveLayout
    iso: int  # the ISO volume itself
    kernel_dir: int  # pseudo-volume: the kernel directory of the ISO
    roots: tuple[int, ...]  # the root images, lowest layer first
    nested: tuple[tuple[int, int, str], ...]  # (outer root, nested volume, path inside)


def _kernel_dir(iso: Filesystem, layout: LiveLayout, label: str) -> str:
    path = f"/{layout.kernel_dir}"
    kernels = [n for n in iso.listdir(path) if n.startswith(KERNEL_PREFIXES)] \
        if iso.is_dir(path) else []  # fmt: skip
    if not kernels:
        raise NotFoundError(f"{layout.distro}-style live ISO without a kernel in {path}",
                            where=label, hint="is this a netinstall or an installer-only "
                            "ISO? fastboop boots live media")  # fmt: skip
    return path


def expand_live_media(
    label: str,
    volumes: list[VolumeInfo],
    sources: list[BlockSource | None],
    opened: dict[int, Filesystem],
) -> LiveVolumes | None:
    """Add the live-media volumes of the first ISO volume (in place); None without one."""
    iso_volume = next((v for v in volumes if v.kind == "iso9660"), None)
    if iso_volume is None:
        return None
    source = sources[iso_volume.index]
    assert source is not None
    iso = IsoFilesystem(source, label=f"{label} ({iso_volume.name})")
    opened[iso_volume.index] = iso
    layout = detect_layout(iso)
    if layout is None:
        raise UsageError(f"{label} is an ISO 9660 image, but not live media fastboop knows",
                         hint="expected LiveOS/squashfs.img (Fedora), live/filesystem.squashfs "
                         "(Debian) or casper/*.squashfs (Ubuntu)")  # fmt: skip
    base = (*iso_volume.layers, "iso9660")

    def add(member: str, kind: str | None, src: BlockSource | None, layers: tuple[str, ...],
            fs: Filesystem | None = None) -> int:  # fmt: skip
        index = len(volumes)
        identity = read_identity(src, kind) if src is not None else iso_volume.identity
        volumes.append(VolumeInfo(index=index, kind=kind, identity=identity, member=member,
                                  layers=layers, size=src.size if src else 0))  # fmt: skip
        sources.append(src)
        if fs is not None:
            opened[index] = fs
        return index

    kernel_path = _kernel_dir(iso, layout, iso.label)
    kernel_dir = add(layout.kernel_dir, "iso9660", None, (*base, f"directory {kernel_path}"),
                     SubtreeFilesystem(iso, kernel_path))  # fmt: skip
    roots: list[int] = []
    nested: list[tuple[int, int, str]] = []
    for path in layout.roots:
        image = iso.file_source(path)
        kind = detect_kind(image)
        index = add(path, kind, image, (*base, f"file {path}"))
        roots.append(index)
        if kind != "squashfs":
            continue
        fs = SquashfsFilesystem(image, label=f"{label} ({path})")
        opened[index] = fs
        inner_path = next((p for p in NESTED_IMAGES if fs.is_file(f"/{p}")), None)
        if inner_path is not None:
            inner = fs.file_source(f"/{inner_path}")
            inner_index = add(f"{path}/{inner_path}", detect_kind(inner), inner,
                              (*base, f"file {path}", "squashfs", f"file {inner_path}"))
            nested.append((index, inner_index, inner_path))  # fmt: skip
    return LiveVolumes(layout, iso_volume.index, kernel_dir, tuple(roots), tuple(nested))


class LiveRoot(msgspec.Struct, frozen=True):
    """The live roles, and what the phone is served when that differs from the root tree."""

    roles: Roles
    served: int  # volume whose bytes are exported
    loop: tuple[str, str] | None  # stage0.loop: (paths, filesystem)
    description: dict[str, object]  # for --json: layout, layers, what is served and why


def _has_modules(fs: Filesystem) -> bool:
    try:
        return any(fs.is_dir(d) and fs.listdir(d) for d in MODULE_DIRS)
    except RootfsError:
        return False


def live_roles(
    live: LiveVolumes,
    volumes: list[VolumeInfo],
    open_fs: Callable[[VolumeInfo], Filesystem],
    *,
    selector: str | None,
) -> LiveRoot:
    """Root (the tree stage0 reads), ``/boot`` (the ISO's kernel directory) and what to
    serve; ``selector`` is ``--partition``: a root image or an Ubuntu layer by name."""
    layout = live.layout
    nested = {outer: (inner, path) for outer, inner, path in live.nested}
    candidates = [volumes[i] for i in (*live.roots, *(n for _, n, _ in live.nested))]
    boot = Role(live.kernel_dir, f"the {layout.distro} live ISO's kernel directory "
                f"/{layout.kernel_dir}", "/boot")  # fmt: skip
    chain: list[int]
    if selector is not None:
        chosen = select_volume(candidates, selector, "--partition")
        if chosen.index in live.roots:
            chain = list(live.roots[: live.roots.index(chosen.index) + 1])
            if layout.distro != "ubuntu":
                chain = [chosen.index]
            why = f"--partition {selector}"
        else:  # a nested image named directly
            outer = next(o for o, (i, _) in nested.items() if i == chosen.index)
            chain, why = [outer], f"--partition {selector}"
    else:
        with_modules = [i for i in live.roots if _has_modules(open_fs(volumes[nested[i][0]]
                                                                      if i in nested else
                                                                      volumes[i]))]
        lowest = with_modules[0] if with_modules else live.roots[0]
        chain = [lowest]
        why = (f"the lowest of {len(live.roots)} layers that holds the kernel's modules"
               if len(live.roots) > 1 else f"the {layout.distro} live root image")
    top = chain[-1]
    # The tree stage0 reads: the lowest chosen layer holding modules (nested image if any).
    tree = next((i for i in chain if _has_modules(open_fs(volumes[nested[i][0]] if i in nested
                                                          else volumes[i]))), chain[0])
    tree_volume = nested[tree][0] if tree in nested else tree
    served, loop = top, None
    if top in nested:
        inner, path = nested[top]
        loop = (path, volumes[inner].kind or "ext4")
        why += f"; it holds {path} ({volumes[inner].kind}), which stage0 loop-mounts"
    if len(chain) > 1:
        served = live.iso
        images = ":".join(volumes[i].member or "" for i in reversed(chain))
        kinds = {volumes[i].kind for i in chain}
        if len(kinds) != 1:
            raise UsageError("the named layers are of different filesystems",
                             hint=", ".join(f"{volumes[i].name}: {volumes[i].kind}"
                                            for i in chain))  # fmt: skip
        loop = (images, kinds.pop() or "squashfs")
        why += (f"; {len(chain)} layers stacked: the whole ISO is served and stage0 "
                "loop-mounts each")
    description: dict[str, object] = {
        "layout": layout.distro,
        "kernel_dir": layout.kernel_dir,
        "layers": [volumes[i].member for i in live.roots],
        "served": volumes[served].name,
        "stack": [volumes[i].member for i in chain],
        "loop": list(loop) if loop else None,
    }
    roles = Roles(Role(tree_volume, why), boot)
    return LiveRoot(roles, served, loop, description)
