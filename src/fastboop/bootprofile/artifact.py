"""A boot profile opened as an :class:`~fastboop.artifact.Artifact`: the root from its
``rootfs`` pipeline, the kernel and DTBs from theirs, stage0 additions for the device.

Everything downstream (``build_stage0``, the export, ``--json``) works on the artifact
as it does for a plain image; :class:`ProfileUse`, attached as ``artifact.boot_profile``,
carries what the profile adds. All ``content`` digests are verified before this returns,
so nothing is built or served from bytes the profile does not vouch for.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from fastboop.artifact.open import Artifact
from fastboop.artifact.roles import Role, Roles
from fastboop.artifact.volumes import VolumeInfo
from fastboop.blocks import BlockSource
from fastboop.bootprofile.content import ProgressHook
from fastboop.bootprofile.pipeline import PipelineOpener
from fastboop.bootprofile.schema import (
    STEP_NAMES,
    BootProfile,
    Filesystem,
    Source,
    Stage0Extras,
    inner,
)
from fastboop.rootfs.detect import detect_kind
from fastboop.rootfs.errors import NotFoundError
from fastboop.rootfs.fs import Filesystem as RootFilesystem
from fastboop.rootfs.fsid import read_identity
from fastboop.stage0.errors import MissingFileError


def pipeline_layers(fs: Filesystem) -> tuple[str, ...]:
    """The steps outermost (terminal) first, as volume layers: ``file``, ``xz``, ``mbr``."""
    steps: list[str] = []
    source: Source | None = fs.source
    while source is not None:
        steps.append(STEP_NAMES[type(source)])
        source = inner(source)
    return (*reversed(steps), fs.kind)


class ProfileUse(msgspec.Struct, frozen=True):
    """What a boot profile adds to a build, resolved for one device profile."""

    profile: BootProfile
    version: int  # the FBOOPROF format version it was read from (0 for a manifest)
    extras: Stage0Extras
    kernel: bytes | None = None
    kernel_path: str | None = None
    dtbs: RootFilesystem | None = None
    dtbs_path: str | None = None
    verified: tuple[str, ...] = ()  # pipeline layers whose content was checked

    def find_dtb(self, devicetree_name: str) -> tuple[str, bytes] | None:
        """stage0.md §7.3 source 2: ``path`` itself if it ends in ``.dtb``, else the first
        of ``<path>/<name>.dtb``, ``<path>/<name>``, ``<path>``."""
        if self.dtbs is None or self.dtbs_path is None:
            return None
        base = self.dtbs_path.rstrip("/") or "/"
        name = devicetree_name.strip("/")
        tries = [base] if base.endswith(".dtb") else [f"{base}/{name}.dtb", f"{base}/{name}",
                                                      base]  # fmt: skip
        for path in tries:
            if self.dtbs.is_file(path):
                return f"dtbs:{path}", self.dtbs.read_file(path)
        raise MissingFileError(f"missing file: dtb for {name} in the boot profile's dtbs "
                               f"({', '.join(tries)})", where=self.dtbs.label)  # fmt: skip

    def as_json(self) -> dict[str, object]:
        return {"id": self.profile.id, "display_name": self.profile.display_name,
                "format_version": self.version, "kernel": self.kernel_path,
                "dtbs": self.dtbs_path, "kernel_modules": list(self.extras.kernel_modules),
                "verified": list(self.verified)}  # fmt: skip


def open_profile_artifact(
    spec: str,
    profile: BootProfile,
    *,
    version: int = 0,
    cache_dir: Path,
    base_dir: Path | None = None,
    tail: BlockSource | None = None,
    device_profile: str | None = None,
    progress: ProgressHook | None = None,
) -> Artifact:
    """Open every pipeline of ``profile``, verify their content, and return the artifact."""
    opener = PipelineOpener(cache_dir=cache_dir, base_dir=base_dir, tail=tail)
    volumes: list[VolumeInfo] = []
    sources: list[BlockSource | None] = []

    def add(name: str, fs: Filesystem, source: BlockSource) -> None:
        kind = detect_kind(source)
        volumes.append(VolumeInfo(index=len(volumes), kind=kind, member=name,
                                  identity=read_identity(source, kind),
                                  layers=pipeline_layers(fs), size=source.size))  # fmt: skip
        sources.append(source)

    root_source, root_fs = opener.filesystem(profile.rootfs, "rootfs")
    add("rootfs", profile.rootfs, root_source)
    kernel = kernel_path = None
    if profile.kernel is not None:
        kernel_source, kernel_fs = opener.filesystem(profile.kernel.filesystem, "kernel")
        add("kernel", profile.kernel.filesystem, kernel_source)
        kernel_path = profile.kernel.path
        if not kernel_fs.is_file(kernel_path):
            raise NotFoundError(f"the boot profile's kernel {kernel_path} is not a file",
                                where=kernel_fs.label)  # fmt: skip
        kernel = kernel_fs.read_file(kernel_path)
    dtbs_fs = None
    if profile.dtbs is not None:
        dtbs_source, dtbs_fs = opener.filesystem(profile.dtbs.filesystem, "dtbs")
        add("dtbs", profile.dtbs.filesystem, dtbs_source)
    verified = opener.verify(progress)
    why = f"the boot profile {profile.id!r}'s rootfs"
    artifact = Artifact(spec, volumes=volumes, sources=sources, roles=Roles(Role(0, why)),
                        fs=root_fs, layers=())  # fmt: skip
    artifact.boot_profile = ProfileUse(
        profile=profile, version=version, extras=profile.effective(device_profile),
        kernel=kernel, kernel_path=kernel_path, dtbs=dtbs_fs,
        dtbs_path=profile.dtbs.path if profile.dtbs else None, verified=tuple(verified),
    )  # fmt: skip
    return artifact
