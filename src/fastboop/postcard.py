"""The subset of `postcard <https://postcard.jamesmunns.com>`_ the reference's binary
records use (FBOODEVP device profiles, FBOOPROF boot profiles).

Postcard is serde's compact wire format: unsigned LEB128 varints for integers,
varint-length-prefixed strings, byte strings and lists, ``00``/``01`` option tags, a
byte per bool, a varint variant index before an enum's fields, struct fields in
declaration order, maps as a length and sorted ``(key, value)`` pairs.

Records arrive in untrusted channel heads, so :class:`Reader` bounds every length by the
bytes actually present, refuses overlong varints and values wider than their type, and
reports each shortfall through the caller's error factory (one typed error per format).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# -- writing ------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"postcard varints are unsigned, not {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string(value: str) -> bytes:
    data = value.encode("utf-8")
    return varint(len(data)) + data


def byte_string(value: bytes) -> bytes:
    return varint(len(value)) + value


def option(value: T | None, encode: Callable[[T], bytes]) -> bytes:
    return b"\x00" if value is None else b"\x01" + encode(value)


def boolean(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def seq(values: list[T] | tuple[T, ...], encode: Callable[[T], bytes]) -> bytes:
    return varint(len(values)) + b"".join(encode(v) for v in values)


# -- reading ------------------------------------------------------------------------------


class Reader:
    """A cursor over a record that turns every shortfall into ``fail(detail, offset)``."""

    def __init__(self, data: bytes, offset: int, fail: Callable[[str, int], Exception]) -> None:
        self.data = data
        self.offset = offset
        self._fail = fail

    def fail(self, detail: str) -> Exception:
        return self._fail(detail, self.offset)

    def byte(self, what: str) -> int:
        if self.offset >= len(self.data):
            raise self.fail(f"unexpected end of data reading {what}")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def varint(self, what: str, bits: int) -> int:
        max_bytes = (bits + 6) // 7
        value = 0
        for index in range(max_bytes):
            byte = self.byte(what)
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if index and byte == 0:
                    raise self.fail(f"overlong varint for {what}")
                if value >> bits:
                    raise self.fail(f"{what} does not fit in u{bits}")
                return value
        raise self.fail(f"varint for {what} longer than {max_bytes} bytes")

    def length(self, what: str) -> int:
        """A length or count: never more than the bytes left (each item takes >= 1)."""
        count = self.varint(what, 64)
        if count > len(self.data) - self.offset:
            raise self.fail(f"{what} {count} exceeds the {len(self.data) - self.offset} bytes left")
        return count

    def raw(self, what: str) -> bytes:
        size = self.length(f"length of {what}")
        raw = self.data[self.offset : self.offset + size]
        self.offset += size
        return bytes(raw)

    def string(self, what: str) -> str:
        size = self.length(f"length of {what}")
        raw = self.data[self.offset : self.offset + size]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None
        self.offset += size
        return text

    def boolean(self, what: str) -> bool:
        value = self.byte(what)
        if value > 1:
            raise self.fail(f"invalid bool {value} for {what}")
        return value == 1

    def option(self, what: str, decode: Callable[[str], T]) -> T | None:
        tag = self.byte(f"option tag of {what}")
        if tag == 0:
            return None
        if tag != 1:
            raise self.fail(f"invalid option tag {tag} for {what}")
        return decode(what)

    def index(self, what: str, choices: list[T]) -> T:
        value = self.varint(what, 32)
        if value >= len(choices):
            raise self.fail(f"unknown {what} variant {value}")
        return choices[value]

    def seq(self, what: str, decode: Callable[[str], T]) -> list[T]:
        return [decode(f"{what}[{i}]") for i in range(self.length(f"{what} count"))]
