"""A block source that answers with another source's size, identity, directness and bytes.

Wrappers over a source (a copy-on-write overlay, a verifying reader, replay's blind
overlay, tests' counting or failing sources) differ only in what they do around a read,
never in what the bytes are called or how big they are, so that pass-through lives here
once, as :class:`~fastboop.rootfs.forwarding.ForwardingFilesystem` holds it for
filesystems. A wrapper that renames or resizes its bytes (a slice, an export padded to
whole blocks) is not a forwarding source: it answers those itself.

It stays read-only: a wrapper becomes a :class:`~fastboop.blocks.source.WritableBlockSource`
(and the smoo pump lets the phone write) only by defining ``write`` and ``flush`` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms
if TYPE_CHECKING:
    from fastboop.blocks.protocols import BlockSource



class ForwardingSource:
    """``inner``'s size, identity and bytes; direct exactly when ``inner`` is (a subclass
    that adds heavy work per read says ``direct = False``)."""

    def __init__(self, inner: BlockSource) -> None:
        self.inner = inner

    @property
    def size(self) -> int:
        return self.inner.size

    @property
    def identity(self) -> str:
        return self.inner.identity

    @property
    def direct(self) -> bool:
        return self.inner.direct

    def read(self, offset: int, length: int) -> bytes:
        return self.inner.read(offset, length)
