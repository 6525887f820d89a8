"""Serve the phone from your own block source.

What the phone mounts is read through a :class:`~fastboop.blocks.BlockSource`: ``size``,
``read(offset, length)`` (exactly that many bytes, or raise), ``identity`` (a stable name
of the bytes) and ``direct`` (``True`` only when a read never blocks on I/O). Serve from a
cache, an object store, a deduplicating store... This one reads the image file and counts
the phone's reads; ``Export.of`` gives it the geometry the gadget needs.
Run: python docs/examples/custom_block_source.py ROOTFS
"""

from __future__ import annotations

import sys

import anyio

import fastboop
from fastboop import events as ev
from fastboop.blocks import FileSource
from fastboop.smoo.export import Export


class CountingSource:
    """A BlockSource over another one, counting the reads."""

    def __init__(self, inner: FileSource):
        self._inner = inner
        self.reads = 0
        self.bytes_read = 0

    @property
    def size(self) -> int:
        return self._inner.size

    @property
    def identity(self) -> str:
        return f"counted:{self._inner.identity}"

    @property
    def direct(self) -> bool:
        return self._inner.direct  # no waiting added, so the pump may call us inline

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        self.bytes_read += length
        return self._inner.read(offset, length)


async def main(rootfs: str) -> tuple[fastboop.SessionSnapshot, CountingSource]:
    source = CountingSource(FileSource(rootfs))
    try:
        async with (
            fastboop.SimulatedPhone("oneplus-fajita") as phone,
            fastboop.open_session(rootfs, device_profile="oneplus-fajita", devices=phone,
                                  gadgets=phone,
                                  export_opener=lambda spec: Export.of(source)) as session,
        ):
            async for event in session:
                if isinstance(event, ev.ServeStats) and phone.report.rootfs_read.is_set():
                    session.cancel("the phone has read its rootfs")
    finally:
        source._inner.close()
    print(f"{session.result.state}: the phone made {source.reads} reads, "
          f"{source.bytes_read} bytes")
    return session.result, source


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
