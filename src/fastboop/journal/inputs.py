"""Digests of a session's inputs, for the journal header.

A replay is only meaningful against the inputs that were recorded, so the header names
them. Hashing a multi-gigabyte rootfs before every boot would cost more than the boot, so
big files get a *sampled* digest (size plus the first and last 4 MiB), labelled as such.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FULL_HASH_LIMIT = 256 << 20
SAMPLE = 4 << 20


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` for small files, ``sampled-sha256:<hex>`` for big ones."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
            return f"sha256:{digest.hexdigest()}"
        digest.update(size.to_bytes(8, "little"))
        digest.update(stream.read(SAMPLE))
        stream.seek(size - SAMPLE)
        digest.update(stream.read(SAMPLE))
    return f"sampled-sha256:{digest.hexdigest()}"


def session_inputs(rootfs: Path | str, profile_digests: dict[str, str]) -> dict[str, str]:
    """Header inputs: the rootfs (a digest for files; the URL itself for remote images,
    which are never downloaded whole) and every device profile in force."""
    spec = str(rootfs)
    remote = spec.startswith(("http://", "https://"))
    inputs = {"rootfs": f"url:{spec}" if remote else file_digest(Path(spec))}
    inputs.update({f"profile:{k}": f"sha256:{v}" for k, v in profile_digests.items()})
    return inputs
