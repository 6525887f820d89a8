"""An export: one block source plus the geometry and id the gadget knows it by."""

from __future__ import annotations

import msgspec

from fastboop.blocks import BlockSource, WritableBlockSource
from fastboop.errors import FastboopError
from fastboop.smoo.protocol import MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, ExportSpec, derive_export_id

DEFAULT_BLOCK_SIZE = 4096  # what the project's NBD gadget accepts on every phone (stage0 §11.5)


class Export(msgspec.Struct, frozen=True, kw_only=True):
    """What the host serves under one export id.

    ``writable`` is off by default: fastboop's rootfs is read-only and the gadget mounts it
    under a tmpfs overlay. Turning it on requires a :class:`WritableBlockSource`.
    """

    spec: ExportSpec
    source: BlockSource
    writable: bool = False

    @classmethod
    def of(
        cls,
        source: BlockSource,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        export_id: int | None = None,
        writable: bool = False,
    ) -> Export:
        """Derive the stable export id from the source's identity unless one is pinned."""
        where = source.identity
        if not (MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE) or block_size & (block_size - 1):
            raise FastboopError(f"block size {block_size} is not a power of two in 512..65536",
                                where=where)
        if source.size == 0 or source.size % block_size:
            raise FastboopError(
                f"image size {source.size} is not a non-zero multiple of {block_size}",
                where=where,
                hint="pad the image to a whole number of blocks",
            )
        if writable and not isinstance(source, WritableBlockSource):
            raise FastboopError("source cannot be written", where=where,
                                hint="wrap it in CopyOnWriteSource")
        block_count = source.size // block_size
        eid = export_id if export_id is not None else derive_export_id(
            source.identity, block_size, block_count
        )
        return cls(spec=ExportSpec(eid, block_size, source.size), source=source,
                   writable=writable)
