"""The simulated phone's download RAM: one buffer, reused from one download to the next.

A bootloader receives ``download`` data into a fixed region of its RAM, the same for
every download; nothing clears it in between. The simulator used to map fresh memory
for each download instead, and fresh memory is zeroed by the kernel as it is first
written: for 256 MiB that is ~22 ms of the simulator's CPU, as much as copying the data
in, charged to every download step a benchmark times (issue 15; ``perf`` put
``clear_page_erms`` under the simulator's ``recv_into`` at a third of a download's
samples). :class:`DownloadRam` keeps the last finished download's region as a spare and
hands it to the next download that fits, so only the first download of a size pays.

The spare is released to the kernel's discretion (``MADV_FREE``): under memory pressure
its pages are reclaimed rather than swapped, and a reclaimed page is zero again when
next written, so a simulator that idles for days holds no more than the kernel lets it.
Regions are *private* anonymous memory with huge pages where the kernel offers them:
``mmap``'s default, a shared mapping, is shmem, faulted 4 KiB at a time through the page
cache (that made most of the simulator's CPU time per MiB received, issue 15).
"""

from __future__ import annotations

import contextlib
import mmap


class DownloadRam:
    """Regions for download data, the last one given back kept for the next download.

    :meth:`take` a region of at least ``size`` bytes; :meth:`give` it back once nothing
    refers to its contents any more (the image was copied out, or dropped). Its bytes
    are whatever the last download left: the caller writes before it reads.
    """

    def __init__(self) -> None:
        self._spare: mmap.mmap | None = None
        self.reused = 0  # downloads served from the spare (for tests and benchmarks)

    def take(self, size: int) -> mmap.mmap:
        spare, self._spare = self._spare, None
        if spare is not None and len(spare) >= size:
            self.reused += 1
            return spare
        if spare is not None:
            _close(spare)
        return _mapped(size)

    def give(self, region: mmap.mmap) -> None:
        """``region`` is free again: it becomes the spare (the larger one is kept)."""
        if self._spare is not None and len(self._spare) >= len(region):
            _close(region)
            return
        if self._spare is not None:
            _close(self._spare)
        advice = getattr(mmap, "MADV_FREE", None)
        if advice is not None:
            with contextlib.suppress(OSError):
                region.madvise(advice)
        self._spare = region


def _close(region: mmap.mmap) -> None:
    """Unmap now, or, while a view of it is still alive somewhere, when it is collected."""
    with contextlib.suppress(BufferError):
        region.close()


def _mapped(size: int) -> mmap.mmap:
    """``size`` bytes of private anonymous memory, huge pages where offered."""
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        with contextlib.suppress(OSError):
            region.madvise(advice)
    return region
