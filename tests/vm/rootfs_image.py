"""The served test rootfs: a real EROFS image made with mkfs.erofs.

It holds Debian's real kernel package, amd64 (or arm64 for the virtual phone):
``/boot/vmlinuz-<kver>`` and the whole ``/lib/modules/<kver>`` tree, from which the stage0
builder picks its modules, with the depmod index the package's postinst would make; plus
the test's own ``/sbin/init``, a marker file and a pseudo-random payload blob that the init
reads end to end. The image is cached under ``.cache/vm`` keyed by its inputs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.debian import REPO_ROOT, debian_kernel
from tests.vm.guestbins import compile_static

IMAGE_CACHE = REPO_ROOT / ".cache" / "vm" / "rootfs"
BLOB_BYTES = 16 << 20  # large enough that reading it spans a host restart


@dataclass(frozen=True)
class VmRootfs:
    image: Path
    kver: str
    marker: str
    blob_bytes: int
    blob_sum: str  # what rootfs_init prints: weighted sum of LE u64 words, 16 hex digits


def _blob(seed: str, size: int) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(size)


def blob_checksum(blob: bytes) -> str:
    """Same as rootfs_init.c: sum of word[i] * (i + 1) over little-endian u64 words."""
    words = memoryview(blob).cast("Q")
    total = sum(word * (i + 1) for i, word in enumerate(words)) & (2**64 - 1)
    return f"{total:016x}"


def chunk_sums(blob: bytes, chunk: int = 64 << 10) -> bytes:
    """Per-chunk checksums (as in :func:`blob_checksum`, global word index), u64 LE each."""
    words = memoryview(blob).cast("Q")
    per = chunk // 8
    sums = [0] * (len(words) // per)
    for i, word in enumerate(words):
        sums[i // per] += word * (i + 1)
    return b"".join((s & (2**64 - 1)).to_bytes(8, "little") for s in sums)


def build_rootfs(arch: str = "amd64", *, blob_bytes: int = BLOB_BYTES,
                 init_program: str = "rootfs_init") -> VmRootfs:
    """Build (or reuse) the EROFS test rootfs image for Debian architecture ``arch``, with
    ``guest/<init_program>.c`` as its ``/sbin/init`` (bench/vm_serving.py has its own)."""
    kroot, kver = debian_kernel(arch)
    init = compile_static(init_program, arch)
    key = hashlib.sha256(f"{kver}|{init.name}|{blob_bytes}|v3".encode()).hexdigest()[:16]
    marker = f"fastboop-vm-marker-{key}"
    image = IMAGE_CACHE / f"rootfs-{key}.erofs"
    blob = _blob(marker, blob_bytes)
    meta = image.with_suffix(".sum")
    if not image.exists() or not meta.exists():
        # Private staging and output names, renamed into place: two worktrees sharing
        # .cache (or two test processes) may build the same image at once.
        IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".rootfs-{key}.", dir=IMAGE_CACHE))
        try:
            staging = work / "tree"
            shutil.copytree(kroot, staging, copy_function=_link_or_copy, ignore=_skip_stamp)
            if (staging / "usr" / "lib").is_dir() and not (staging / "lib").exists():
                # a merged-/usr package (Debian 13 on): its rootfs has /lib -> usr/lib
                (staging / "lib").symlink_to("usr/lib")
            # The package leaves the index to its postinst; a real rootfs has it.
            subprocess.run(["depmod", "-b", str(staging), kver], check=True)
            (staging / "sbin").mkdir(exist_ok=True)
            shutil.copy(init, staging / "sbin" / "init")
            (staging / "sbin" / "init").chmod(0o755)
            (staging / "etc").mkdir(exist_ok=True)
            (staging / "etc" / "vmtest-marker").write_text(marker + "\n")
            (staging / "data").mkdir(exist_ok=True)
            (staging / "data" / "blob").write_bytes(blob)
            (staging / "data" / "blob.sums").write_bytes(chunk_sums(blob))
            partial = work / "image.erofs"
            subprocess.run(["mkfs.erofs", "--quiet", "-T0", "--all-root", str(partial),
                            str(staging)], check=True)  # fmt: skip
            (work / "sum").write_text(blob_checksum(blob))
            # the checksum first: an image without its .sum is rebuilt, never half-read
            (work / "sum").replace(meta)
            partial.replace(image)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return VmRootfs(image, kver, marker, blob_bytes, meta.read_text().strip())


def _link_or_copy(src: str, dst: str) -> object:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _skip_stamp(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n == ".extracted"]
