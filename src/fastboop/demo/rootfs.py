"""Assemble the demo's rootfs: a small Debian-layout arm64 image built from real parts.

It holds Debian's real arm64 kernel (``/boot/vmlinuz-<ver>``), its real Qualcomm DTBs in
Debian's layout (``/usr/lib/linux-image-<ver>/qcom/``) and its real modules under
``/usr/lib/modules/<ver>`` with ``modules.dep`` from ``depmod``, packed as EROFS — an
unmodified distro layout, just without the userland, so the demo's build step does
exactly what it does for a real phone. Subsystems a phone never needs in stage0 (GPU,
media, networking, sound…) are left out to keep the image small.

Two host tools help: ``mkfs.erofs`` (erofs-utils) packs a compressed image when present,
otherwise fastboop's own writer packs an uncompressed one
(:mod:`fastboop.rootfs.erofs.writer`); ``depmod`` (kmod, on every Linux distribution)
writes ``modules.dep``, and the demo says how to install it when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from fastboop.demo.debian import FetchError, Progress, cache_home, debian_kernel
from fastboop.rootfs.erofs.writer import write_erofs

LEFT_OUT = (
    "kernel/net",
    "kernel/sound",
    "kernel/drivers/net",
    "kernel/drivers/media",
    "kernel/drivers/gpu",
    "kernel/drivers/scsi",
    "kernel/drivers/infiniband",
    "kernel/drivers/iio",
    "kernel/drivers/staging",
    "kernel/drivers/target",
    "kernel/drivers/bluetooth",
    "kernel/drivers/input",
    "kernel/drivers/hid",
    "kernel/drivers/md",
)

OS_RELEASE = """\
PRETTY_NAME="fastboop demo rootfs (Debian kernel {version})"
NAME="fastboop-demo"
ID=fastboop-demo
"""


INSTALL_HINTS = {
    "depmod": "it comes with kmod: Debian/Ubuntu `sudo apt install kmod`, Fedora "
    "`sudo dnf install kmod`, Arch `sudo pacman -S kmod`",
}


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True)
    except FileNotFoundError as error:
        raise FetchError(f"{argv[0]} is not installed, and the demo needs it",
                         hint=INSTALL_HINTS.get(argv[0], "install it")) from error
    except subprocess.CalledProcessError as error:
        raise FetchError(f"{argv[0]} failed: {error.stderr.strip()[-300:]}") from error


def _depmod() -> str:
    """depmod, also where sbin is not on PATH (a normal user's PATH on Debian)."""
    found = shutil.which("depmod") or next(
        (str(p) for p in (Path("/usr/sbin/depmod"), Path("/sbin/depmod")) if p.exists()), None)
    return found or "depmod"


def _assemble_tree(package_root: Path, version: str, tree: Path) -> None:
    (tree / "boot").mkdir(parents=True)
    shutil.copy2(package_root / "boot" / f"vmlinuz-{version}", tree / "boot")
    dtbs = package_root / "usr" / "lib" / f"linux-image-{version}"
    shutil.copytree(dtbs / "qcom", tree / "usr" / "lib" / f"linux-image-{version}" / "qcom")
    source = package_root / "lib" / "modules" / version
    target = tree / "usr" / "lib" / "modules" / version
    skip = {source / part for part in LEFT_OUT}
    shutil.copytree(
        source, target, ignore=lambda d, names: [n for n in names if Path(d, n) in skip]
    )
    # Merged /usr, as on current Debian: /lib -> usr/lib.
    (tree / "lib").symlink_to("usr/lib")
    (tree / "etc").mkdir()
    (tree / "etc" / "os-release").write_text(OS_RELEASE.format(version=version))
    (tree / "sbin").symlink_to("usr/sbin")
    (tree / "usr" / "sbin").mkdir()
    (tree / "usr" / "sbin" / "init").write_text("#!/bin/sh\necho 'hello from the demo rootfs'\n")
    (tree / "usr" / "sbin" / "init").chmod(0o755)
    _run([_depmod(), "-b", str(tree), version])


def demo_rootfs(cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """Build (once) and return the demo's EROFS rootfs image."""
    cache = cache_dir or cache_home()
    package_root, version = debian_kernel("arm64", cache / "debian", progress)
    image = cache / "demo" / f"rootfs-{version}.erofs"
    if image.exists():
        return image
    work = cache / "demo" / f"tree-{version}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    _assemble_tree(package_root, version, work)
    partial = image.with_suffix(".partial")
    if shutil.which("mkfs.erofs"):
        _run(["mkfs.erofs", "-zlz4hc", "-T0", "--all-root", str(partial), str(work)])
    else:  # no erofs-utils here: fastboop's own (uncompressed) writer
        write_erofs(work, partial, volume_name="fastboop-demo")
    # smoo serves whole 4 KiB blocks; mkfs.erofs already writes whole blocks.
    partial.rename(image)
    shutil.rmtree(work, ignore_errors=True)
    return image
