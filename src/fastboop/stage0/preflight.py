"""Check an artifact before waiting for a phone: a bad image fails in a second, not after
the phone was plugged in, probed and put into the wrong state of mind.

:func:`check_artifact` does what the payload build will do, minus reading the big files:
it opens every layer and volume, decides the roles, finds the kernel and its modules
directory, resolves the stage0 module closure against the index (so a missing ``nbd``
or filesystem module shows now), and when the device profile is known, finds and parses
its DTB. The device-specific parts (USB IDs, the clock, DT-derived modules) wait for the
build, which repeats these steps on the same artifact with the same options.
"""

from __future__ import annotations

import msgspec

from fastboop.artifact.open import ArtifactOptions, open_artifact
from fastboop.bootimg.kernel import classify_raw
from fastboop.fdt import parse_fdt
from fastboop.rootfs.compressed import ProgressHook
from fastboop.stage0.build import load_module_index
from fastboop.stage0.discover import find_kernel, load_dtb
from fastboop.stage0.errors import MissingFileError
from fastboop.stage0.modules import required_modules, resolve_closure


class ArtifactCheck(msgspec.Struct, frozen=True):
    """What the check found, for one line before "waiting for a device"."""

    root: str  # "partition 2 (ext4 'pmOS_root')"
    rootfs: str  # stage0.rootfs
    kernel: str  # path in the merged tree
    kver: str
    kernel_volume: str
    dtb: str | None  # None: no profile given, or an x86 kernel
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        dtb = f", DTB {self.dtb}" if self.dtb else ""
        return (f"artifact checked: root {self.root}, kernel {self.kernel} ({self.kver}) from "
                f"{self.kernel_volume}{dtb}")  # fmt: skip


def check_artifact(
    spec: str,
    options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
    *,
    devicetree_name: str | None = None,
    extra_modules: tuple[str, ...] = (),
    progress: ProgressHook | None = None,
) -> ArtifactCheck:
    """Raise the error the build would raise, or say what the build will use.

    ``progress`` follows a whole-stream decompression (this is the first opening, so the
    one that fills the decompression cache)."""
    artifact = open_artifact(spec, options, progress=progress)
    fs = artifact.fs
    choice = find_kernel(fs, kernel_version=options.kernel_version,
                         boot_first=artifact.roles.boot is not None)  # fmt: skip
    index, _raw = load_module_index(fs, choice)
    loop_kind = artifact.loop[1] if artifact.loop else None
    resolve_closure(index, required_modules(artifact.rootfs_kind, user_modules=extra_modules,
                                            loop_kind=loop_kind))  # fmt: skip
    dtb_path = None
    if devicetree_name:
        try:
            dtb_path, dtb = load_dtb(fs, devicetree_name, index.kver)
        except MissingFileError:
            if classify_raw(fs.read_file(choice.kernel_path))[0] != "bzimage":
                raise  # x86 kernels boot without a DTB; everything else needs it
        else:
            parse_fdt(dtb)
    subvol = f", subvolume {artifact.subvol!r}" if artifact.subvol else ""
    several = choice.others_note()
    return ArtifactCheck(
        root=artifact.root.describe() + subvol,
        rootfs=artifact.rootfs_kind,
        kernel=choice.kernel_path,
        kver=index.kver,
        kernel_volume=artifact.origin(choice.kernel_path),
        dtb=dtb_path,
        notes=artifact.notes + ((several,) if several else ()),
    )
