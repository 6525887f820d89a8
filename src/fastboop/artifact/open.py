"""Open a distro artifact as the phone will see it: its root, and everything stage0 needs.

``open_artifact("pmos-fajita.img.xz")`` lists every filesystem in the image, decides
which is the root, ``/boot`` and the ESP (:mod:`.roles`), and returns an
:class:`Artifact` with

- ``fs``: one tree over them (:class:`~fastboop.artifact.coalesce.CoalescedFilesystem`),
  where stage0's discovery finds the kernel, DTBs and modules, first hit;
- ``root_source``: exactly the root filesystem's bytes, the range the phone is served;
- ``rootfs_kind`` and ``subvol``: how stage0 mounts them.

The payload builder and the smoo export both open the artifact through here, with the
same :class:`ArtifactOptions`, so the kernel's modules and the served root can never
come from different volumes.
"""

from __future__ import annotations

import os

from fastboop.artifact.roles import Role, Roles, choose_roles
from fastboop.artifact.volumes import VolumeInfo
from fastboop.channel.magic import has_records
from fastboop.errors import UsageError
from fastboop.rootfs.detect import open_filesystem
from fastboop.rootfs.errors import UnsupportedError
from fastboop.rootfs.open import default_cache_dir, open_source, volumes_of
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Final

    from fastboop.artifact.live import LiveRoot
    from fastboop.artifact.roles import Subvolumes
    from fastboop.blocks import BlockSource
    from fastboop.bootprofile.artifact import ProfileUse
    from fastboop.rootfs.compressed import ProgressHook
    from fastboop.rootfs.fs import Filesystem


class ArtifactOptions(Value):
    """The user's overrides of the guesses (``--partition``, ``--boot-partition``,
    ``--kernel-version``); the same on every command that takes an artifact. A plain
    value (:mod:`fastboop.values`): never journaled or encoded, and every command that
    opens an artifact makes one."""

    __slots__ = (
        "boot_partition",
        "boot_profile",
        "device_profile",
        "kernel_version",
        "partition",
    )
    partition: Final[str | None]  # the root volume
    boot_partition: Final[str | None]
    kernel_version: Final[str | None]
    #: Channels (a boot profile record first, the artifact after): ``--boot-profile`` and
    #: the device profile a boot profile's ``stage0.devices`` must name.
    boot_profile: Final[str | None]
    device_profile: Final[str | None]

    def __init__(self, *, partition: str | None = None, boot_partition: str | None = None,
                 kernel_version: str | None = None, boot_profile: str | None = None,
                 device_profile: str | None = None) -> None:  # fmt: skip
        self.partition = partition
        self.boot_partition = boot_partition
        self.kernel_version = kernel_version
        self.boot_profile = boot_profile
        self.device_profile = device_profile


class Artifact:
    """An opened artifact: its volumes, their roles, the merged tree and the root's bytes."""

    def __init__(
        self,
        spec: str,
        *,
        volumes: list[VolumeInfo],
        sources: list[BlockSource | None],
        roles: Roles,
        fs: Filesystem,
        layers: tuple[str, ...] = (),
    ) -> None:
        self.spec = spec
        self.volumes = volumes
        self.roles = roles
        self.fs = fs
        self.layers = layers
        self.root = volumes[roles.root.volume]
        #: The volume whose bytes the phone is served: the root, except on live media that
        #: nest the root image (then the image holding it) or stack layers (the ISO).
        self.served = self.root
        #: What the phone is served: the root filesystem's own bytes (None: a directory).
        self.root_source = sources[roles.root.volume]
        self.subvol = roles.root.subvol
        #: ``(paths, filesystem)`` of root images inside the served volume (live media:
        #: ``LiveOS/rootfs.img`` in squashfs, or Ubuntu's layers): stage0 loop-mounts them.
        self.loop: tuple[str, str] | None = None
        self.live: dict[str, object] | None = None
        #: What a boot profile adds (:class:`fastboop.bootprofile.artifact.ProfileUse`).
        self.boot_profile: ProfileUse | None = None
        self.channel: dict[str, object] | None = None  # records read, where the tail starts
        self.extra_notes: list[str] = []

    def use_live_root(self, live: LiveRoot, sources: list[BlockSource | None]) -> None:
        """Serve what the live layout says (:func:`~fastboop.artifact.live.live_roles`)."""
        self.served = self.volumes[live.served]
        self.root_source = sources[live.served]
        self.loop = live.loop
        self.live = live.description

    @property
    def rootfs_kind(self) -> str:
        """The filesystem of the served bytes (what ``stage0.rootfs`` names)."""
        return self.served.kind or "unknown"

    @property
    def notes(self) -> tuple[str, ...]:
        """The roles' reasons, then what the container layers said (the backup GPT was
        used, how a compressed layer is read), each once."""
        seen = dict.fromkeys(self.roles.notes)
        for volume in self.volumes:
            seen.update(dict.fromkeys(volume.notes))
        seen.update(dict.fromkeys(self.extra_notes))
        return tuple(seen)

    def origin(self, path: str) -> str:
        """The volume a path of :attr:`fs` comes from, by name."""
        from fastboop.artifact.coalesce import CoalescedFilesystem

        if isinstance(self.fs, CoalescedFilesystem):
            return self.fs.origin(path).origin
        return self.root.name

    def role_json(self, role: Role | None) -> dict[str, Any] | None:
        if role is None:
            return None
        volume = self.volumes[role.volume]
        return {"volume": volume.name, "index": volume.index, "fs": volume.kind,
                "mountpoint": role.mountpoint, "subvol": role.subvol,
                "why": role.why}  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "artifact": self.spec,
            "layers": list(self.layers),
            "volumes": [v.as_json() for v in self.volumes],
            "roles": {
                "root": self.role_json(self.roles.root),
                "boot": self.role_json(self.roles.boot),
                "esp": self.role_json(self.roles.esp),
            },
            "notes": list(self.notes),
        } | ({"live": self.live} if self.live is not None else {}) \
            | ({"boot_profile": self.boot_profile.as_json()} if self.boot_profile else {}) \
            | ({"channel": self.channel} if self.channel is not None else {})  # fmt: skip


def open_artifact(
    spec: str | os.PathLike[str],
    options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
    *,
    arch: str | None = None,
    cache_dir: Path | None = None,
    progress: ProgressHook | None = None,
) -> Artifact:
    """Open a directory, image file or URL, with every volume in it (module docstring).

    ``progress`` hears how a whole-stream decompression (``.xz`` without an index...)
    gets on, for a progress bar."""
    text = os.fspath(spec)
    if not text.startswith(("http://", "https://")) and os.path.isdir(text):
        from fastboop.rootfs.dirfs import DirectoryFilesystem

        info = VolumeInfo(index=0, kind="dir")
        return Artifact(text, volumes=[info], sources=[None], roles=Roles(Role(0, "a directory")),
                        fs=DirectoryFilesystem(text))  # fmt: skip
    source = open_source(text, cache_dir=cache_dir)
    channel_notes: list[str] = []
    channel_json: dict[str, object] | None = None
    if has_records(source):
        from fastboop.channel.intake import channel_summary, choose_boot_profile, open_channel

        channel = open_channel(source, spec=text)
        channel_notes = list(channel.head.warnings)
        channel_json = channel_summary(channel)
        head = channel.head
        profile = choose_boot_profile(head.boot_profiles, device_profile=options.device_profile,
                                      requested=options.boot_profile, where=text)  # fmt: skip
        if profile is not None:
            from fastboop.bootprofile.artifact import open_profile_artifact

            version = head.boot_versions[head.boot_profiles.index(profile)]
            artifact = open_profile_artifact(
                text, profile, version=version, cache_dir=cache_dir or default_cache_dir(),
                base_dir=channel.base_dir, tail=channel.tail,
                device_profile=options.device_profile)  # fmt: skip
            artifact.channel = channel_json
            artifact.extra_notes += channel_notes
            return artifact
        if channel.tail is None:
            raise UsageError(f"{text} holds only device profiles, no artifact to boot",
                             hint="append the image to the channel, or pass it instead")
        source = channel.tail
    elif options.boot_profile is not None:
        raise UsageError(f"--boot-profile {options.boot_profile}: {text} carries no boot "
                         "profiles", hint="pass a channel or a compiled boot profile "
                         "(fastboop bootprofile create)")  # fmt: skip
    layers, found = enumerate_volumes(source, label=text, cache_dir=cache_dir,
                                      progress=progress)  # fmt: skip
    volumes = [info for info, _ in found]
    sources: list[BlockSource | None] = [source for _, source in found]
    opened: dict[int, Filesystem] = {}

    def open_fs(volume: VolumeInfo) -> Filesystem:
        if volume.index not in opened:
            source = sources[volume.index]
            if source is None or volume.kind is None:
                raise UnsupportedError("not a filesystem fastboop reads", where=volume.name)
            opened[volume.index] = open_filesystem(source, label=f"{text} ({volume.name})")
        return opened[volume.index]

    live = live_root = None
    if any(volume.kind == "iso9660" for volume in volumes):
        # live media only: the ISO 9660 and squashfs readers load when an image needs them
        from fastboop.artifact.live import expand_live_media, live_roles

        live = expand_live_media(text, volumes, sources, opened)
    if live is not None:
        if options.boot_partition is not None:
            raise UsageError("--boot-partition does not apply to live media: the kernel "
                             f"is the ISO's (/{live.layout.kernel_dir})",
                             hint="name a root image or layer with --partition")  # fmt: skip
        live_root = live_roles(live, volumes, open_fs, selector=options.partition)
        roles = live_root.roles
    else:
        roles = choose_roles(volumes, open_fs, arch=arch, root=options.partition,
                             boot=options.boot_partition)  # fmt: skip
    mounts: list[tuple[str, Filesystem, str]] = []  # (mount point, tree, volume name)
    for role in roles.mounted():
        volume = volumes[role.volume]
        fs = open_fs(volume)
        name = volume.name
        if role.subvol:
            subvolumes: Subvolumes = fs  # type: ignore[assignment] # a btrfs: roles checked
            fs = subvolumes.open_subvolume(role.subvol)
            name += f", subvolume {role.subvol!r}"
        mounts.append((role.mountpoint, fs, name))
    tree = mounts[0][1]
    if len(mounts) > 1:  # a root with /boot or the ESP on other volumes: one merged tree
        from fastboop.artifact.coalesce import CoalescedFilesystem, Mount

        tree = CoalescedFilesystem([Mount(*mount) for mount in mounts], label=text)
    artifact = Artifact(text, volumes=volumes, sources=sources, roles=roles, fs=tree,
                        layers=tuple(layers))  # fmt: skip
    if live_root is not None:
        artifact.use_live_root(live_root, sources)
    artifact.channel = channel_json
    artifact.extra_notes += channel_notes
    return artifact


def enumerate_volumes(
    source: BlockSource, *, label: str, cache_dir: Path | None = None,
    progress: ProgressHook | None = None,
) -> tuple[list[str], list[tuple[VolumeInfo, BlockSource]]]:
    """Every volume in ``source`` (:func:`fastboop.rootfs.volumes.enumerate_volumes`) as
    :class:`VolumeInfo`, with the layers common to all of them (outermost first).

    An image that is a single volume with nothing fastboop reads fails here with what it
    looks like (squashfs, ISO 9660...) and what to do.
    """
    found = volumes_of(source, label=label, cache_dir=cache_dir, progress=progress)
    if len(found) == 1 and found[0].kind is None and not found[0].partitions:
        open_filesystem(found[0].source, label=label)  # raises "not a supported rootfs"
    common: list[str] = []
    for layer in zip(*(v.layers for v in found), strict=False):
        if len(set(layer)) != 1 or " partition " in layer[0] or layer[0].startswith("tar "):
            break
        common.append(layer[0])
    infos = [(VolumeInfo(index=i, kind=v.kind, identity=v.identity, partition=v.partition,
                         member=v.member, layers=v.layers, size=v.source.size,
                         notes=v.notes), v.source)
             for i, v in enumerate(found)]  # fmt: skip
    return common, infos
