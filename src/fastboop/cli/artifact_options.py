"""The options every command that takes an artifact shares (``boot``, ``stage0``,
``rootfs``, ``serve``, ...): which volume is the root, which is ``/boot``, which kernel.

fastboop guesses all three (docs/rootfs-and-stage0.md, "Artifact shapes"); these
override the guesses, the same way on every command, so what ``fastboop stage0 --json``
showed is what ``fastboop boot`` will do.
"""

from __future__ import annotations

from fastboop.artifact.open import ArtifactOptions

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    import argparse
    from typing import Any

VOLUME_FORMS = ("a partition number or GPT name, a filesystem label, UUID=…, LABEL=…, "
                "PARTUUID=…, PARTLABEL=… or a tar member")  # fmt: skip


KERNEL_VERSION_HELP = "pick this kernel (its /lib/modules/KVER) when the image has several"


def add_artifact_options(
    parser: Any, *, kernel_version: bool = True, kernel_version_help: str = KERNEL_VERSION_HELP
) -> None:
    """Add ``--partition``, ``--boot-partition`` and (optionally) ``--kernel-version``,
    whose help a command that does not pick a kernel words for what it does with it."""
    parser.add_argument("--partition", metavar="VOLUME",
                        help=f"the root volume inside a disk image or tarball: {VOLUME_FORMS} "
                        "(default: from GPT types, labels and the contents)")  # fmt: skip
    parser.add_argument("--boot-partition", metavar="VOLUME",
                        help="the volume mounted on /boot, where the kernel and DTBs are "
                        "looked up first (default: from the root's /etc/fstab, GPT types "
                        "and labels)")  # fmt: skip
    if kernel_version:
        parser.add_argument("--kernel-version", metavar="KVER", help=kernel_version_help)
    parser.add_argument("--boot-profile", metavar="ID",
                        help="with a channel carrying several boot profiles: the one to use "
                        "(default: the only one whose stage0.devices fits the device)")


def artifact_options(args: argparse.Namespace) -> ArtifactOptions:
    return ArtifactOptions(
        partition=getattr(args, "partition", None),
        boot_partition=getattr(args, "boot_partition", None),
        kernel_version=getattr(args, "kernel_version", None),
        boot_profile=getattr(args, "boot_profile", None),
        device_profile=getattr(args, "device_profile", None),
    )
