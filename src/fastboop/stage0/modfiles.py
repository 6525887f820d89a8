"""Module files as stage0 gets them: plain ``.ko`` where the kernel cannot decompress.

Distributions ship modules compressed (Fedora ``.ko.xz``, Arch and Alpine ``.ko.zst``,
some ``.ko.gz``). A kernel loads those itself only when it is built with
``CONFIG_MODULE_DECOMPRESS`` *and* the matching ``CONFIG_MODULE_COMPRESS_<ALG>`` (the
kernel has one in-kernel decompressor, for the algorithm it was configured with).
Debian's arm64 kernel has neither, and stage0's userspace fallback unpacks only gzip
(stage0.md §4.8). So the host decides per suffix: from the image's kernel config
(``/boot/config-<kver>``, or ``config`` in the modules directory as Fedora ships it) when
there is one, and *decompress* when in doubt, because a plain module always loads.

Decompression is bounded and checked (issue 10 §1): each module may expand to at most
:data:`MAX_MODULE_BYTES`, its stream must end and pass the format's own check (xz
CRC/CRC64, gzip CRC32 and size, zstd's content checksum when present), and the result
must be an ELF object. The index files are rewritten to the new names, so the device's
``modules.dep`` points at the files that are really there. Pure functions: the caller
reads the files.
"""

from __future__ import annotations

import re

import msgspec

from fastboop.bootimg import compression
from fastboop.bootimg.errors import KernelFormatError
from fastboop.stage0.errors import ModuleError

#: Largest module accepted after decompression. The biggest in-tree modules (GPU drivers)
#: are a few tens of MiB; gadget-path modules are far smaller.
MAX_MODULE_BYTES = 128 << 20
COMPRESSED_SUFFIXES = {".ko.xz": "XZ", ".ko.zst": "ZSTD", ".ko.gz": "GZIP"}
ELF_MAGIC = b"\x7fELF"
#: Index files that name module paths (``modules.builtin`` lists plain ``.ko`` names).
PATH_INDEXES = ("modules.dep", "modules.order")


class KernelModuleSupport(msgspec.Struct, frozen=True):
    """Which compressed suffixes the kernel loads itself, and how that was decided."""

    loads: frozenset[str]  # subset of COMPRESSED_SUFFIXES
    source: str | None  # the config file read, or None when there was none

    def describe(self) -> str:
        where = self.source or "no kernel config in the image"
        if self.loads:
            return f"the kernel decompresses {', '.join(sorted(self.loads))} itself ({where})"
        return f"the kernel cannot decompress modules ({where})"


def kernel_support(config_text: str | None, source: str | None = None) -> KernelModuleSupport:
    """Parse a kernel ``.config``: ``None`` (no config found) means it decompresses nothing."""
    if config_text is None:
        return KernelModuleSupport(frozenset(), None)
    loads: set[str] = set()
    if config_enabled(config_text, "CONFIG_MODULE_DECOMPRESS"):
        for suffix, alg in COMPRESSED_SUFFIXES.items():
            if config_enabled(config_text, f"CONFIG_MODULE_COMPRESS_{alg}"):
                loads.add(suffix)
    return KernelModuleSupport(frozenset(loads), source)


def config_enabled(config_text: str, option: str) -> bool:
    """Whether a line of a kernel ``.config`` is ``OPTION=y`` (trailing blanks allowed).

    Found with ``str.find`` for the option's own line: a ``^...$`` regex over the whole
    ~250 KB config cost ~5 ms, as the regex engine tries ``^`` at every position."""
    needle = f"\n{option}=y"
    text = "\n" + config_text
    pos = text.find(needle)
    while pos >= 0:
        end = text.find("\n", pos + len(needle))
        if not text[pos + len(needle) : None if end < 0 else end].strip():
            return True
        pos = text.find(needle, pos + len(needle))
    return False


def compressed_suffix(relpath: str) -> str | None:
    for suffix in COMPRESSED_SUFFIXES:
        if relpath.endswith(suffix):
            return suffix
    return None


def plain_path(relpath: str) -> str:
    """``kernel/fs/btrfs/btrfs.ko.xz`` → ``kernel/fs/btrfs/btrfs.ko``."""
    suffix = compressed_suffix(relpath)
    return relpath[: -len(suffix)] + ".ko" if suffix else relpath


def needs_plain(relpath: str, support: KernelModuleSupport) -> bool:
    suffix = compressed_suffix(relpath)
    return suffix is not None and suffix not in support.loads


def decompress_module(relpath: str, data: bytes, *, limit: int = MAX_MODULE_BYTES) -> bytes:
    """The plain ELF object inside a ``.ko.xz``/``.ko.zst``/``.ko.gz`` file."""
    suffix = compressed_suffix(relpath)
    if suffix is None:
        return data
    decode = {".ko.xz": compression.xz_decompress, ".ko.zst": compression.zstd_decompress,
              ".ko.gz": compression.gzip_decompress}[suffix]  # fmt: skip
    try:
        payload, used = decode(data, limit)
    except KernelFormatError as error:
        raise ModuleError(f"cannot decompress module: {error.message}", where=relpath,
                          hint="the image's module file is damaged; re-download it") from None
    if data[used:].strip(b"\0"):
        raise ModuleError(f"junk after the {suffix[4:]} stream of a module", where=relpath)
    if not payload.startswith(ELF_MAGIC):
        raise ModuleError("not a kernel module (no ELF header) after decompression",
                          where=relpath)  # fmt: skip
    return payload


def rewrite_index(text: bytes, renamed: set[str]) -> bytes:
    """``modules.dep``/``modules.order`` with every path in ``renamed`` made plain.

    Only whole path tokens are rewritten (paths are separated by spaces, ``:`` and line
    ends), so a module name that happens to contain another one is left alone.
    """
    if not renamed:
        return text

    def swap(match: re.Match[bytes]) -> bytes:
        token = match.group(0).decode("utf-8", "surrogateescape")
        return (plain_path(token) if token in renamed else token).encode(
            "utf-8", "surrogateescape"
        )

    return re.sub(rb"[^\s:]+", swap, text)
