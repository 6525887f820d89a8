"""The device-side programs fastboop ships, built from ``stage0/`` for each architecture.

``stage0-init`` is the PID1 every boot image carries; ``vphone-usbip`` is the virtual
phone's USB/IP helper, which only ``fastboop sim vm-*`` puts in the initramfs it boots.
A source checkout builds them into ``stage0/build/<machine>/`` (``scripts/setup`` runs
``make -C stage0``) and that build wins, so a rebuilt program is used at once; wheels ship
them under ``fastboop/_data/stage0/<machine>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastboop.errors import FastboopError

REPO_STAGE0: Final = Path(__file__).resolve().parents[3] / "stage0" / "build"
#: where a wheel installed on a file system has them (what ``importlib.resources`` gives
#: for such an install; that module is imported only for other loaders, as it costs
#: ~30 M instructions with the ``tempfile`` it imports: a fifth of a stage0 build)
PACKAGED_STAGE0: Final = Path(__file__).resolve().parents[1] / "_data" / "stage0"
#: kernel architecture (as :func:`fastboop.bootimg.kernel.detect_kernel` names it) ->
#: the machine directory the programs are built into
MACHINES: Final = {"arm64": "aarch64", "x86_64": "x86_64"}


class DeviceBinaryNotFound(FastboopError):
    """A device-side program for the kernel's architecture is not available."""


def device_binary(name: str, arch: str) -> bytes:
    """The static program ``name`` (``stage0-init``, ``vphone-usbip``) for ``arch``."""
    machine = MACHINES.get(arch)
    if machine is None:
        raise DeviceBinaryNotFound(f"{name} is not built for {arch} kernels")
    local = REPO_STAGE0 / machine / name
    if local.is_file():
        return local.read_bytes()
    installed = PACKAGED_STAGE0 / machine / name
    if installed.is_file():
        return installed.read_bytes()
    from importlib import resources  # a zip or another loader without plain files

    packaged = resources.files("fastboop").joinpath("_data", "stage0", machine, name)
    if packaged.is_file():
        return packaged.read_bytes()
    raise DeviceBinaryNotFound(
        f"no {name} binary for {machine}",
        where=str(local),
        hint="build it with `make -C stage0` (scripts/setup does this)",
    )


__all__ = ["MACHINES", "REPO_STAGE0", "DeviceBinaryNotFound", "device_binary"]


PID1_NAME: Final = "stage0-init"


def kernel_arch(kernel: bytes) -> str:
    """The CPU a kernel is built for; the PID1 and the image layout must match it.

    An uncompressed kernel says so in its header; only a wrapped one is unwrapped (which
    for a 33 MB Image also means a regex scan for its version string)."""
    from fastboop.bootimg.kernel import classify_raw, detect_kernel

    arch = classify_raw(kernel)[1]
    return arch or detect_kernel(kernel).arch or "arm64"


def find_pid1(arch: str) -> bytes:
    """The static stage0 PID1 for ``arch`` (``arm64`` or ``x86_64``); see
    :func:`device_binary` for where it comes from."""
    return device_binary(PID1_NAME, arch)
