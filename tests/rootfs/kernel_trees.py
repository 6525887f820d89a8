"""Fixture trees built from real Debian kernel packages (shared by rootfs and stage0 tests).

Nothing here is committed output: trees and images are built into pytest's tmp dirs from
the cached Debian ``linux-image`` packages, with the real ``depmod`` writing the indexes.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from tests.support import debian

#: ``debian_kernel`` asks apt-cache every call (seconds); the answer is fixed per run.
debian_kernel = functools.cache(debian.debian_kernel)

#: A modest subset of the module tree (about 15 MB): enough for the stage0 closure
#: (gadget, nbd, overlay, erofs, ext4 + crypto deps) without imaging 290 MB.
MODULE_SUBSET = [
    "kernel/fs/erofs",
    "kernel/fs/configfs",
    "kernel/fs/overlayfs",
    "kernel/fs/ext4",
    "kernel/fs/jbd2",
    "kernel/fs/mbcache.ko",
    "kernel/fs/fat",
    "kernel/drivers/usb/gadget",
    "kernel/drivers/block/nbd.ko",
    "kernel/lib",
    "kernel/crypto",
]


#: Extra arm64 directories holding the USB controller, PHY and regulator drivers.
ARM64_USB_SUBSET = [
    "kernel/drivers/usb",
    "kernel/drivers/phy",
    "kernel/drivers/regulator",
    "kernel/drivers/soc/qcom",
    "kernel/drivers/interconnect",
    "kernel/drivers/clk/qcom",
]


def copy_module_subset(
    arch: str, dest_root: Path, *, usr_merged: bool = True, extra: list[str] | None = None
) -> str:
    """Copy a module subset of Debian's ``arch`` kernel under ``dest_root`` and depmod it.

    Returns the kernel version. With ``usr_merged`` the modules live in
    ``usr/lib/modules`` and ``lib`` is a symlink to ``usr/lib`` (Debian 12+ layout).
    """
    src_root, version = debian_kernel(arch)
    src = src_root / "lib/modules" / version
    libdir = dest_root / ("usr/lib" if usr_merged else "lib")
    dst = libdir / "modules" / version
    dst.mkdir(parents=True, exist_ok=True)
    for rel in MODULE_SUBSET + (extra or []):
        s = src / rel
        if s.is_dir():
            shutil.copytree(s, dst / rel, dirs_exist_ok=True)
        elif s.exists():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dst / rel)
    for name in ("modules.builtin", "modules.order", "modules.builtin.modinfo"):
        shutil.copy2(src / name, dst / name)
    if usr_merged and not (dest_root / "lib").exists():
        os.symlink("usr/lib", dest_root / "lib")
    subprocess.run(["depmod", "-b", str(dest_root), version], check=True, capture_output=True)
    return version


def full_depmod_tree(arch: str, dest_root: Path) -> str:
    """Hard-link the *whole* module tree of ``arch`` under ``dest_root`` and depmod it."""
    src_root, version = debian_kernel(arch)
    (dest_root / "lib/modules").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["cp", "-al", str(src_root / "lib/modules" / version), str(dest_root / "lib/modules")],
        check=True,
    )
    subprocess.run(["depmod", "-b", str(dest_root), version], check=True, capture_output=True)
    return version


def add_odd_files(root: Path) -> None:
    """Files that exercise every reader path: modes, sizes at block edges, links, devices."""
    odd = root / "odd"
    odd.mkdir()
    (odd / "empty").write_bytes(b"")
    (odd / "block").write_bytes(bytes(range(256)) * 16)  # exactly 4096
    (odd / "block+1").write_bytes(b"\x01" * 4097)
    (odd / "random").write_bytes(os.urandom(200_000))  # incompressible → plain clusters
    (odd / "text").write_bytes(b"stage0 " * 90_000)  # very compressible
    (odd / ("n" * 120)).write_bytes(b"long name")
    # Sparse: 40 data islands in 2.5 MB. mke2fs -d keeps the holes, so ext4 needs an
    # extent tree deeper than the 4 in-inode extents, and ext2/3 indirect maps with gaps.
    with open(odd / "sparse", "wb") as f:
        for i in range(40):
            f.seek(i * 65536)
            f.write(os.urandom(1000) + bytes([i]) * 3000)
        f.truncate(40 * 65536 + 12345)
    (odd / "utf8-ünïcode").write_bytes(b"u")
    secret = odd / "secret"
    secret.write_bytes(b"s")
    secret.chmod(0o600)
    suid = odd / "suid"
    suid.write_bytes(b"x")
    suid.chmod(0o4755)
    many = odd / "many"
    many.mkdir()
    for i in range(400):  # several directory blocks
        (many / f"entry-{i:04d}-with-a-longish-name").write_bytes(str(i).encode())
    os.symlink("/usr/lib/modules", odd / "abs-link")
    os.symlink("../odd/text", odd / "rel-link")
    os.symlink("does-not-exist", odd / "dangling")
    os.symlink("loop-b", odd / "loop-a")
    os.symlink("loop-a", odd / "loop-b")
    os.mkfifo(odd / "fifo")
    os.mknod(odd / "null", 0o20666, os.makedev(1, 3))
    # Inline and shared xattrs shift where inline data and cluster indexes start.
    xattr_files = [odd / "text", odd / "block+1", odd / "secret", odd / "many", odd / "random"]
    for i, path in enumerate(xattr_files):
        os.setxattr(path, "user.fastboop.shared", b"same-on-every-file")
        os.setxattr(path, f"user.fastboop.own{i}", os.urandom(20 + 37 * i))
        os.setxattr(path, "trusted.overlay.opaque", b"y")
    os.setxattr(odd / "rel-link", "trusted.link", b"x", follow_symlinks=False)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/tool").write_bytes(b"#!/bin/sh\n")
    (root / "usr/bin/tool").chmod(0o755)
    if not (root / "bin").exists():
        os.symlink("usr/bin", root / "bin")


#: How the distributions compress modules, with the real tools: Fedora's ``xz --check=crc32
#: --lzma2=dict=1MiB``, Arch's ``zstd``, and the ``gzip -9`` of kmod's MODULE_COMPRESS_GZIP.
MODULE_COMPRESSORS = {
    ".ko.xz": ["xz", "--check=crc32", "--lzma2=dict=1MiB", "-T1", "-q"],
    ".ko.zst": ["zstd", "-q", "--rm"],
    ".ko.gz": ["gzip", "-9", "-n"],
}


def compress_modules(dest_root: Path, version: str, suffix: str) -> None:
    """Compress every ``.ko`` under ``dest_root``'s modules directory as a distribution
    would (``suffix`` picks the tool), then depmod again so the index names the new files."""
    moddir = (dest_root / "lib/modules" / version).resolve()
    files = sorted(str(p) for p in moddir.rglob("*.ko"))
    for start in range(0, len(files), 200):
        subprocess.run([*MODULE_COMPRESSORS[suffix], *files[start : start + 200]], check=True)
    subprocess.run(["depmod", "-b", str(dest_root), version], check=True, capture_output=True)
