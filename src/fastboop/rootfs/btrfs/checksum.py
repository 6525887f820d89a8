"""btrfs checksums: the superblock's ``csum_type`` picks one algorithm for everything.

Every metadata block (the superblock and each tree node) starts with a 32-byte checksum
of the rest of the block. Four algorithms exist; each comes from a maintained library
rather than our own code, because a wrong checksum routine would reject good images:

- crc32c (the default, and what Fedora and mkfs.btrfs write): ``google-crc32c``, the C
  implementation with SSE4.2/ARMv8 CRC instructions (a pure-Python CRC would cost ~3 ms
  per 16 KiB tree node);
- xxhash64: the ``xxhash`` binding of the reference library;
- sha256 and blake2b-256: :mod:`hashlib`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import google_crc32c
import xxhash

from fastboop.rootfs.errors import UnsupportedError

CSUM_SIZE = 32  # the checksum field is always 32 bytes; shorter sums are zero-padded

CRC32C = 0
XXHASH64 = 1
SHA256 = 2
BLAKE2B = 3

NAMES = {CRC32C: "crc32c", XXHASH64: "xxhash64", SHA256: "sha256", BLAKE2B: "blake2b"}


def _crc32c(data: bytes) -> bytes:
    return int(google_crc32c.value(data)).to_bytes(4, "little")


def _xxhash64(data: bytes) -> bytes:
    return xxhash.xxh64_digest(data, seed=0)[::-1]  # btrfs stores the u64 little-endian


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _blake2b(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


_ALGORITHMS: dict[int, Callable[[bytes], bytes]] = {
    CRC32C: _crc32c,
    XXHASH64: _xxhash64,
    SHA256: _sha256,
    BLAKE2B: _blake2b,
}


def checksummer(csum_type: int) -> Callable[[bytes], bytes]:
    """The digest function for ``csum_type``; :class:`UnsupportedError` for unknown ones."""
    try:
        return _ALGORITHMS[csum_type]
    except KeyError:
        raise UnsupportedError(
            f"btrfs: unsupported checksum type {csum_type}",
            hint="fastboop reads crc32c, xxhash64, sha256 and blake2b filesystems",
        ) from None


def block_checksum_ok(block: bytes, digest: Callable[[bytes], bytes]) -> bool:
    """Whether a metadata block's leading checksum matches the rest of the block."""
    expected = digest(block[CSUM_SIZE:])
    return block[: len(expected)] == expected


def name_hash(name: bytes) -> int:
    """The directory-item key offset for ``name``: crc32c seeded with ``~1``, no final xor.

    ``google_crc32c.extend`` continues a *finished* CRC (it inverts before and after), so
    the raw seed ``0xFFFFFFFE`` goes in as ``1`` and the result is inverted back.
    """
    return ~int(google_crc32c.extend(1, name)) & 0xFFFFFFFF
