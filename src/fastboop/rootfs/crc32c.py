"""CRC-32C as the Linux kernel computes it for on-disk checksums (ext4, EROFS).

The kernel's ``crc32c(seed, data, len)`` is the bare CRC register: no inversion of the
result, and the caller's seed as the start value (``~0`` for a fresh sum). ext4 chains it
(a seed made from the UUID, then the inode number, then the inode), so the helper takes
a seed. The arithmetic is ``google-crc32c``'s (C, hardware CRC instructions), which
computes the *standard* CRC-32C: inverted at both ends. Inverting the seed going in and
the result coming out turns one into the other.
"""

from __future__ import annotations

import google_crc32c

_MASK = 0xFFFFFFFF


def crc32c(seed: int, data: bytes) -> int:
    """The kernel's ``crc32c(seed, data)``: ``crc32c(0xFFFFFFFF, b"")`` is ``0xFFFFFFFF``."""
    return ~int(google_crc32c.extend(~seed & _MASK, data)) & _MASK
