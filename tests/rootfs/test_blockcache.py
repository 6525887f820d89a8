"""The decompressed-block cache: one decode per block, however many threads want it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fastboop.rootfs.blockcache import BlockCache
from fastboop.rootfs.errors import CorruptImageError

HANG_GUARD = 30  # seconds; a hang guard, not a speed assertion


def test_concurrent_readers_of_one_block_decode_it_once() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def decode(number: int) -> bytes:
        with lock:
            calls.append(number)
        time.sleep(0.05)  # a slow decode (or an HTTP fetch under it)
        return bytes([number]) * 1000

    cache = BlockCache([(0, 1000), (1000, 1000)], decode)
    with ThreadPoolExecutor(8) as pool:
        reads = list(pool.map(lambda i: cache.read(10 * i, 100), range(8)))
    assert calls == [0] and all(r == bytes(100) for r in reads)
    with ThreadPoolExecutor(8) as pool:  # a read spanning both blocks, from every thread
        spans = list(pool.map(lambda _: cache.read(950, 100), range(8)))
    assert sorted(calls) == [0, 1] and spans == [bytes(50) + b"\x01" * 50] * 8


def test_a_failed_decode_is_not_cached_and_waiters_try_again() -> None:
    attempts: list[int] = []
    decoding, gate, asking = threading.Event(), threading.Event(), threading.Event()

    def decode(number: int) -> bytes:
        attempts.append(number)
        if len(attempts) == 1:
            decoding.set()
            gate.wait(HANG_GUARD)
            raise CorruptImageError("xz: bad block check")
        return b"x" * 10

    def second_reader() -> bytes:
        asking.set()
        return cache.read(0, 10)

    cache = BlockCache([(0, 10)], decode)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.read, 0, 10)
        assert decoding.wait(HANG_GUARD)  # the first reader holds the block's decode ...
        second = pool.submit(second_reader)
        assert asking.wait(HANG_GUARD)
        time.sleep(0.05)  # ... and the second most likely waits for it (if it comes late,
        gate.set()  # it finds no decode under way and decodes itself: the same outcome)
        with pytest.raises(CorruptImageError):
            first.result()
        assert second.result() == b"x" * 10
    assert attempts == [0, 0]
