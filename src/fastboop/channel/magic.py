"""Whether a stream is a channel with records: its first 8 bytes (no decoders imported,
so every artifact open can ask cheaply)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms
if TYPE_CHECKING:
    from fastboop.blocks.protocols import BlockSource


#: Magics that make a stream a channel with records (rather than a plain artifact).
RECORD_MAGICS = (b"FBOOPROF", b"FBOODEVP", b"FBPHINT0", b"FBCHIDX0")
LEGACY_BUNDLE = b"FBCH\x01\x00"  # the reference's old profile bundle, FBCH + u16 1


def has_records(source: BlockSource) -> bool:
    """Whether the stream starts with a profile record (or the legacy bundle)."""
    if source.size < 8:
        return False
    head = source.read(0, 8)
    return head in RECORD_MAGICS or head.startswith(LEGACY_BUNDLE)
