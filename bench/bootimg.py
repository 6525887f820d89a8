"""How long preparing a real kernel and building a boot image takes.

Run from the repository root: ``.venv/bin/python bench/bootimg.py``. Uses Debian's
arm64 kernel package (fetched and cached by tests/support/debian.py). Prints one line per
step with the best of a few runs, plus output sizes, so encodings can be compared. The
numbers in docs/benchmarks-bootimg.md come from this script.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.debian import debian_kernel

from fastboop.bootimg import (
    ENCODINGS,
    BootImageLayout,
    build_boot_image,
    parse_boot_image,
    prepare_kernel,
    unwrap_kernel,
)

RUNS = 3


def best(fn: Callable[[], bytes]) -> tuple[float, bytes]:
    times = []
    result = b""
    for _ in range(RUNS):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    root, version = debian_kernel("arm64")
    image = (root / "boot" / f"vmlinuz-{version}").read_bytes()
    dtb = root / "usr/lib" / f"linux-image-{version}" / "qcom" / "sdm845-oneplus-enchilada.dtb"
    dtb_bytes = dtb.read_bytes()
    print(f"kernel: Debian {version}, {len(image)} bytes raw EFI-stub Image")
    print(f"{'step':<34} {'seconds':>8} {'MB/s':>8} {'output bytes':>14}")
    encoded: dict[str, bytes] = {}
    for encoding in ENCODINGS:
        seconds, out = best(lambda e=encoding: prepare_kernel(image, e, dtb_bytes, "arm64"))
        encoded[encoding] = out
        rate = len(image) / seconds / 1e6
        print(f"prepare_kernel {encoding:<19} {seconds:8.3f} {rate:8.0f} {len(out):14}")
    for encoding in ("image.gz", "image.lz4", "image.zst"):
        seconds, _ = best(lambda e=encoding: unwrap_kernel(encoded[e])[1])
        rate = len(image) / seconds / 1e6
        print(f"unwrap_kernel {encoding:<20} {seconds:8.3f} {rate:8.0f} {len(image):14}")
    layout = BootImageLayout(header_version=2, page_size=4096)
    kernel = encoded["image.gz"]
    seconds, boot = best(
        lambda: build_boot_image(layout, kernel, ramdisk=bytes(4 << 20), dtb=dtb_bytes)
    )
    print(f"{'build_boot_image v2 (gz, 4 MiB rd)':<34} {seconds:8.3f} {'':>8} {len(boot):14}")
    seconds, _ = best(lambda: parse_boot_image(boot).kernel)
    print(f"{'parse_boot_image (same image)':<34} {seconds:8.3f} {'':>8} {len(boot):14}")


if __name__ == "__main__":
    main()
