"""Build (once) a >= 1 GiB EROFS rootfs that looks like a real Debian arm64 install.

Used by ``bench/rootfs_large.py``. The point of the image is to make "how much of the
image does stage0 synthesis read" a meaningful number, so two things must be real:

* the boot parts stage0 reads: Debian's arm64 kernel, all its DTBs in Debian's layout
  (``/usr/lib/linux-image-<ver>/<vendor>/*.dtb``) and the *full* module tree under
  ``/usr/lib/modules/<ver>`` indexed by ``depmod``, with merged ``/usr``;
* the bulk stage0 must *not* read: a userland whose size, file count, directory sizes
  and compressibility resemble a distro's (``/usr/bin`` and the multiarch library
  directory with thousands of entries, ``/usr/share/doc``, locales, icons, firmware,
  dpkg's database). Its content is synthetic — seeded, so every run builds the same
  image — because what matters to the reader is where bytes sit, not what they say.

The image is cached under ``<repo>/.cache/bench/`` (gitignored) and rebuilt only when
``RECIPE`` changes; it never enters the test suite.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

RECIPE = 1  # bump whenever the tree below changes, so a stale cached image is not reused
SEED = 0x5EED_F00B
# Stored (compressed) bytes of userland to generate, estimated with the per-kind lz4hc
# ratios below (within ~5% on a 100 MiB sample); the image is checked against MIN_IMAGE.
FILLER_STORED = 1100 << 20
MIN_IMAGE = 1 << 30
ARCH_TRIPLET = "aarch64-linux-gnu"

_SYLLABLES = ("ba", "cor", "de", "fin", "gal", "hu", "in", "jo", "ker", "lib", "mo", "net",
              "op", "pa", "qu", "ra", "sys", "ti", "ux", "vo", "wi", "xa", "yu", "zen")  # fmt: skip
_LANGS = ("de", "es", "fr", "it", "ja", "nl", "pl", "pt_BR", "ru", "sv", "uk", "zh_CN")
_ICON_SIZES = ("16x16", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "scalable")


class Content:
    """Seeded file contents of three kinds, with their approximate lz4hc stored ratio.

    ``text`` is prose-like (a random walk over a fixed vocabulary; lz4hc keeps ~45%),
    ``packed`` is already-compressed data (``.gz``, PNG, firmware: kept ~100%),
    ``binary`` mixes 4 KiB pages of both with zero runs, like ELF code plus tables.
    """

    TEXT_RATIO = 0.45
    BINARY_RATIO = 0.72

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(3000)]
        lines = []
        total = 0
        while total < 4 << 20:
            line = " ".join(rng.choices(words, k=rng.randint(3, 14))) + "\n"
            lines.append(line)
            total += len(line)
        self.corpus = "".join(lines).encode()

    def text(self, n: int) -> bytes:
        assert n < len(self.corpus)
        start = self.rng.randrange(len(self.corpus) - n)
        return self.corpus[start : start + n]

    def packed(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def binary(self, n: int) -> bytes:
        pages = []
        for offset in range(0, n, 4096):
            size = min(4096, n - offset)
            pick = self.rng.random()
            if pick < 0.6:
                pages.append(self.rng.randbytes(size))
            elif pick < 0.85:
                pages.append(self.text(size))
            else:
                pages.append(bytes(size))
        return b"".join(pages)


class Filler:
    """Writes package-shaped userland into a tree until the stored-size budget is spent."""

    def __init__(self, tree: Path, rng: random.Random) -> None:
        self.tree = tree
        self.rng = rng
        self.content = Content(rng)
        self.stored = 0.0  # estimated bytes after lz4hc
        self.files = 0

    def _size(self, median: float, sigma: float, cap: int) -> int:
        return max(16, min(cap, int(self.rng.lognormvariate(0, sigma) * median)))

    def write(self, rel: str, kind: str, size: int) -> str:
        make: Callable[[int], bytes] = getattr(self.content, kind)
        ratio = {"text": Content.TEXT_RATIO, "binary": Content.BINARY_RATIO}.get(kind, 1.0)
        path = self.tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make(size))
        self.stored += size * ratio
        self.files += 1
        return "/" + rel

    def package(self, name: str) -> None:
        rng = self.rng
        owned: list[str] = []
        for i in range(rng.choice((0, 0, 1, 1, 1, 2, 3, 5))):
            owned.append(self.write(f"usr/bin/{name}{'-' + str(i) if i else ''}", "binary",
                                    self._size(60e3, 1.2, 8 << 20)))  # fmt: skip
        if rng.random() < 0.15:
            owned.append(self.write(f"usr/sbin/{name}d", "binary", self._size(120e3, 1.0, 4 << 20)))
        for i in range(rng.choice((0, 1, 1, 2, 4))):
            so = f"usr/lib/{ARCH_TRIPLET}/lib{name}{i or ''}.so.{rng.randint(0, 9)}"
            owned.append(self.write(so, "binary", self._size(120e3, 1.4, 40 << 20)))
        if rng.random() < 0.2:
            for i in range(rng.randint(1, 12)):
                owned.append(self.write(f"usr/lib/{name}/{name}-helper{i}", "binary",
                                        self._size(40e3, 1.0, 2 << 20)))  # fmt: skip
        if rng.random() < 0.25:
            for i in range(rng.randint(2, 30)):
                owned.append(self.write(f"usr/lib/python3/dist-packages/{name}/m{i}.py", "text",
                                        self._size(6e3, 1.0, 400_000)))  # fmt: skip
        doc = f"usr/share/doc/{name}"
        owned.append(self.write(f"{doc}/copyright", "text", self._size(3e3, 0.8, 200_000)))
        owned.append(self.write(f"{doc}/changelog.Debian.gz", "packed",
                                self._size(5e3, 1.0, 400_000)))  # fmt: skip
        if rng.random() < 0.3:
            for lang in rng.sample(_LANGS, rng.randint(1, len(_LANGS))):
                owned.append(self.write(f"usr/share/locale/{lang}/LC_MESSAGES/{name}.mo",
                                        "text", self._size(15e3, 1.0, 1 << 20)))  # fmt: skip
        if rng.random() < 0.2:
            for size in rng.sample(_ICON_SIZES, rng.randint(1, len(_ICON_SIZES))):
                owned.append(self.write(f"usr/share/icons/hicolor/{size}/apps/{name}.png",
                                        "packed", self._size(6e3, 1.0, 600_000)))  # fmt: skip
        for i in range(rng.randint(0, 3)):
            owned.append(self.write(f"usr/share/man/man{rng.randint(1, 8)}/{name}{i}.gz",
                                    "packed", self._size(2e3, 0.8, 100_000)))  # fmt: skip
        if rng.random() < 0.1:
            for i in range(rng.randint(3, 40)):
                owned.append(self.write(f"usr/include/{name}/h{i}.h", "text",
                                        self._size(5e3, 1.0, 300_000)))  # fmt: skip
        if rng.random() < 0.02:
            for i in range(rng.randint(1, 6)):
                owned.append(self.write(f"usr/share/{name}/data{i}.bin", "packed",
                                        self._size(800e3, 1.2, 60 << 20)))  # fmt: skip
        if rng.random() < 0.02:
            owned.append(self.write(f"usr/lib/firmware/qcom/{name}.mbn", "packed",
                                    self._size(2e6, 1.0, 20 << 20)))  # fmt: skip
        info = self.tree / "var/lib/dpkg/info"
        info.mkdir(parents=True, exist_ok=True)
        (info / f"{name}.list").write_text("".join(f"{p}\n" for p in owned))
        (info / f"{name}.md5sums").write_text(
            "".join(f"{rng.randbytes(16).hex()}  {p[1:]}\n" for p in owned)
        )
        self.files += 2

    def fill(self, budget: float) -> None:
        seen: set[str] = set()
        while self.stored < budget:
            name = "".join(self.rng.choices(_SYLLABLES, k=self.rng.randint(2, 4)))
            if name in seen:
                continue
            seen.add(name)
            self.package(name)


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True)


def assemble(tree: Path, package_root: Path, kver: str) -> Filler:
    """Lay out the Debian kernel package as installed, then the synthetic userland."""
    (tree / "boot").mkdir(parents=True)
    for name in (f"vmlinuz-{kver}", f"config-{kver}", f"System.map-{kver}"):
        shutil.copy2(package_root / "boot" / name, tree / "boot" / name)
    shutil.copytree(package_root / "usr" / "lib" / f"linux-image-{kver}",
                    tree / "usr" / "lib" / f"linux-image-{kver}")  # fmt: skip
    shutil.copytree(package_root / "lib" / "modules" / kver,
                    tree / "usr" / "lib" / "modules" / kver)  # fmt: skip
    for link in ("bin", "sbin", "lib"):
        (tree / link).symlink_to(f"usr/{link}")
    for directory in ("dev", "proc", "sys", "run", "tmp", "home", "root", "var/log", "etc"):
        (tree / directory).mkdir(parents=True, exist_ok=True)
    (tree / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    _run(["depmod", "-b", str(tree), kver])
    filler = Filler(tree, random.Random(SEED))
    filler.fill(FILLER_STORED)
    return filler


def large_image(cache: Path, package_root: Path, kver: str) -> Path:
    """Return the cached image for this kernel, building it first if needed (minutes)."""
    image = cache / f"rootfs-large-r{RECIPE}-{kver}.erofs"
    if image.exists():
        return image
    cache.mkdir(parents=True, exist_ok=True)
    tree = cache / "tree.tmp"
    shutil.rmtree(tree, ignore_errors=True)
    filler = assemble(tree, package_root, kver)
    print(f"tree: {filler.files} userland files, ~{filler.stored / 2**20:.0f} MiB stored "
          f"(estimate); packing with mkfs.erofs -zlz4hc ...", flush=True)  # fmt: skip
    partial = image.with_suffix(".partial")
    _run(["mkfs.erofs", "--quiet", "-zlz4hc", "-T0", "--all-root", str(partial), str(tree)])
    shutil.rmtree(tree)
    size = partial.stat().st_size
    if size < MIN_IMAGE:
        partial.unlink()
        raise SystemExit(f"image is only {size} bytes; raise FILLER_STORED")
    partial.rename(image)
    return image
