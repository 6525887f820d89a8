"""The HTTP source under the smoo pump's concurrency: neighbouring reads from several
threads share the blocks at their boundaries, and each block is fetched once.

A live ISO's root is a file at a 2 KiB-aligned offset of the ISO, so the pump's reads
of it are never aligned to the 64 KiB cache blocks: before blocks were claimed by the
thread fetching them, a simulated session over HTTP fetched 1.6 times what it needed
(bench/live_iso.py)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from fastboop.rootfs.http import DEFAULT_BLOCK, HttpSource
from tests.support.http_range import RangeHandler, range_server

IMAGE = random.Random(5).randbytes(2 << 20)
READ = 128 << 10
START = 2048  # a file's offset inside an ISO: aligned to 2 KiB, not to the cache blocks


def test_neighbouring_reads_fetch_each_block_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "live.iso").write_bytes(IMAGE)
    plain = RangeHandler.send_head

    def slow(self: RangeHandler) -> object:
        time.sleep(0.2)  # every thread looks its blocks up while the others fetch
        return plain(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(RangeHandler, "send_head", slow)
    threads, results = 4, dict[int, bytes]()
    with range_server(tmp_path) as base:
        source = HttpSource(f"{base}/live.iso")
        probed = source.bytes_fetched
        ready = threading.Barrier(threads)

        def read(index: int) -> None:
            ready.wait()
            results[index] = source.read(START + index * READ, READ)

        workers = [threading.Thread(target=read, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    for index in range(threads):
        offset = START + index * READ
        assert results[index] == IMAGE[offset : offset + READ]
    end = START + threads * READ
    blocks = -(-end // DEFAULT_BLOCK)  # the blocks the reads touch, each fetched once
    assert source.bytes_fetched - probed == blocks * DEFAULT_BLOCK
    assert source.requests <= 1 + 2 * threads  # the probe, then a run or two of blocks each
