"""A small, bounded cache of decompressed blocks, for randomly accessed compressed files.

Multi-block xz and seekable zstd decode whole blocks (frames); filesystem readers and the
smoo pump then read small pieces of them, often several from one block, so the most
recently used blocks are kept, up to :data:`CACHE_BUDGET` bytes (always at least the
last one). Reads may come from several threads (the pump reads sources that are not
direct in worker threads): the cache is locked, decoding is not, so two threads may
decode different blocks at once. One block is decoded by one thread at a time: the
others wait for it, because the kernel's readahead makes several requests land in the
same block together, and over HTTP each decode would fetch the block's compressed bytes
again (a simulated boot over HTTP fetched 2.3 times the image before this).
"""

from __future__ import annotations

import bisect
import inspect
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence

CACHE_BUDGET = 128 << 20


class BlockCache:
    def __init__(
        self,
        spans: Sequence[tuple[int, int]],
        decode: Callable[[int], bytes],
        *,
        budget: int = CACHE_BUDGET,
    ):
        """``spans`` are the (start, size) of each block in decompressed offsets, in
        order and contiguous; ``decode(number)`` returns exactly that block's bytes."""
        self._starts = [start for start, _ in spans]
        self._sizes = [size for _, size in spans]
        # The owner passes its own bound method. Held strongly, it would close a cycle
        # (source -> cache -> method -> source) that keeps the source, its input and up
        # to the budget of decoded blocks alive after the source is dropped, until the
        # cyclic GC happens to run (a hundred dropped volumes held gigabytes).
        self._decode: Callable[[], Callable[[int], bytes] | None] = (
            weakref.WeakMethod(decode) if inspect.ismethod(decode) else lambda: decode
        )
        self._budget = budget
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self._decoding: dict[int, threading.Event] = {}  # block → set when it is decoded

    def _block(self, number: int) -> bytes:
        while True:
            with self._lock:
                data = self._blocks.get(number)
                if data is not None:
                    self._blocks.move_to_end(number)
                    return data
                pending = self._decoding.get(number)
                if pending is None:
                    done = self._decoding[number] = threading.Event()
                    break
            pending.wait()  # another thread decodes it; then look again (it may have failed)
        try:
            decode = self._decode()
            if decode is None:  # only the owner reads through its cache
                raise RuntimeError("block cache used after its source was dropped")
            data = decode(number)
            with self._lock:
                if number not in self._blocks:
                    self._blocks[number] = data
                    self._held += len(data)
                while self._held > self._budget and len(self._blocks) > 1:
                    _, dropped = self._blocks.popitem(last=False)
                    self._held -= len(dropped)
            return data
        finally:
            with self._lock:
                del self._decoding[number]
            done.set()

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)``; the caller has checked the range."""
        number = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        parts = []
        while length > 0:
            start, size = self._starts[number], self._sizes[number]
            skip = offset - start
            if 0 <= skip < size:
                take = min(length, size - skip)
                parts.append(self._block(number)[skip : skip + take])
                offset += take
                length -= take
            number += 1
        return b"".join(parts)
