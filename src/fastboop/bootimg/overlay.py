"""Apply device tree overlays (``.dtbo``) on the host, before the DTB goes into an image.

This is an I/O adapter, not a core: it runs ``fdtoverlay`` from Debian's
``device-tree-compiler``. fdtoverlay is libfdt's own overlay implementation (the code
U-Boot and the kernel build use), so fixups, local fixups and phandle renumbering behave
exactly as on real firmware; no maintained Python library applies overlays fully. It
blocks while the tool runs; async callers wrap it in ``anyio.to_thread.run_sync``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fastboop.fdt import FdtError, fdt_total_size

FDTOVERLAY = "fdtoverlay"


def apply_overlays(base: bytes, overlays: Sequence[bytes], *, tool: str = FDTOVERLAY) -> bytes:
    """Return ``base`` with every overlay in ``overlays`` applied, in order."""
    fdt_total_size(base)
    if not overlays:
        return bytes(base)
    for index, overlay in enumerate(overlays):
        try:
            fdt_total_size(overlay)
        except FdtError as error:
            raise FdtError(f"overlay {index + 1}: {error.message}") from None
    executable = shutil.which(tool)
    if executable is None:
        raise FdtError(
            f"{tool} not found", hint="install Debian's device-tree-compiler package"
        )
    with tempfile.TemporaryDirectory(prefix="fastboop-dtbo-") as tmp:
        workdir = Path(tmp)
        (workdir / "base.dtb").write_bytes(base)
        names = []
        for index, overlay in enumerate(overlays):
            name = workdir / f"overlay{index}.dtbo"
            name.write_bytes(overlay)
            names.append(str(name))
        result = subprocess.run(
            [executable, "-i", str(workdir / "base.dtb"), "-o", str(workdir / "out.dtb"), *names],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise FdtError(
                "applying overlays failed: "
                + (detail[-1] if detail else f"exit {result.returncode}"),
                hint="check that each overlay targets nodes or labels the base DTB has",
            )
        return (workdir / "out.dtb").read_bytes()
