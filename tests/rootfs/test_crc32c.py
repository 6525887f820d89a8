"""CRC-32C: the kernel's register arithmetic, in C (google-crc32c) and in Python for one
short input (crc32c_short), which must agree bit for bit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastboop.rootfs.crc32c import _TABLE, crc32c, crc32c_short


def test_the_table_is_the_reflected_castagnoli_polynomials() -> None:
    expected = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        expected.append(crc)
    assert list(_TABLE) == expected


def test_known_values() -> None:
    # The standard CRC-32C check value: "123456789" -> 0xE3069283 (inverted at both ends).
    assert crc32c(0xFFFFFFFF, b"123456789") ^ 0xFFFFFFFF == 0xE3069283
    assert crc32c_short(0xFFFFFFFF, b"123456789") ^ 0xFFFFFFFF == 0xE3069283
    assert crc32c(0xFFFFFFFF, b"") == crc32c_short(0xFFFFFFFF, b"") == 0xFFFFFFFF


@given(st.integers(0, 0xFFFFFFFF), st.binary(max_size=5000))
def test_python_and_c_agree(seed: int, data: bytes) -> None:
    assert crc32c_short(seed, data) == crc32c(seed, data)
