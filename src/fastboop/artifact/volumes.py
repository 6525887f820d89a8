"""What fastboop knows about each filesystem in an artifact, and how users name one.

A :class:`VolumeInfo` is plain data: where the volume sits (partition, tar member, the
container layers around it), what it is (the detected filesystem) and what it calls
itself (label and UUID from its superblock). Roles, ``--json`` and every message about
a volume are built from it. ``--partition`` and ``--boot-partition`` pick a volume by
any name a user is likely to have at hand: the partition number or GPT name, the
filesystem label, ``UUID=``/``LABEL=``/``PARTUUID=``/``PARTLABEL=`` as in fstab, or a
tar member's path.
"""

from __future__ import annotations

from fastboop.artifact.fstab import VolumeRef, parse_source
from fastboop.rootfs.errors import NotFoundError
from fastboop.rootfs.fsid import FsIdentity
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

    from fastboop.rootfs.partitions import Partition

#: GPT partition types that carry a role (UAPI Discoverable Partitions Specification).
ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
XBOOTLDR_TYPE = "bc13c2ff-59e6-4262-a352-b275fd6f7172"
ROOT_TYPES = {
    "b921b045-1df0-41c3-af44-4c6f280d3fae": "arm64",
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "x86_64",
    "69dad710-2ce4-4e3c-b16c-21a1d49abed3": "arm",
    "44479540-f297-41b2-9af7-d131d5f0458a": "x86",
}
MBR_ESP_TYPE = "ef"


class VolumeInfo(Value):
    """One volume (a plain value, :mod:`fastboop.values`: ``--json`` is :meth:`as_json`)."""

    __slots__ = ("identity", "index", "kind", "layers", "member", "notes", "partition", "size")
    index: Final[int]  # position in the artifact's deterministic volume order
    kind: Final[str | None]  # "erofs" | "ext4" | "vfat" | "btrfs" | None (not one we read)
    identity: Final[FsIdentity]
    partition: Final[Partition | None]
    member: Final[str | None]  # tar member path
    layers: Final[tuple[str, ...]]  # containers peeled to reach it, outermost first
    size: Final[int]
    notes: Final[tuple[str, ...]]  # what its container layers said (e.g. backup GPT used)

    def __init__(self, *, index: int, kind: str | None,
                 identity: FsIdentity = FsIdentity(),  # noqa: B008 - frozen
                 partition: Partition | None = None, member: str | None = None,
                 layers: tuple[str, ...] = (), size: int = 0,
                 notes: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.index = index
        self.kind = kind
        self.identity = identity
        self.partition = partition
        self.member = member
        self.layers = layers
        self.size = size
        self.notes = notes

    @property
    def name(self) -> str:
        """How messages name it: ``partition 2 'boot'``, ``rootfs.img``, ``the image``."""
        if self.partition is not None:
            gpt_name = f" {self.partition.name!r}" if self.partition.name else ""
            where = f"partition {self.partition.number}{gpt_name}"
            if self.member:
                where = f"{self.member} {where}"
        elif self.member:
            where = self.member
        else:
            where = "the image"
        return where

    def describe(self) -> str:
        """``partition 2 'boot' (ext4 'fedora-boot')``: the name and what it holds."""
        what = self.kind or "no filesystem fastboop reads"
        if self.identity.label:
            what += f" {self.identity.label!r}"
        return f"{self.name} ({what})"

    def matches(self, ref: VolumeRef) -> bool:
        """Whether an fstab-style reference names this volume (UUIDs ignore case)."""
        value = ref.value.casefold()
        if ref.tag == "UUID":
            return bool(self.identity.uuid) and self.identity.uuid.casefold() == value
        if ref.tag == "LABEL":
            return bool(self.identity.label) and self.identity.label == ref.value
        if self.partition is None:
            return False
        if ref.tag == "PARTUUID":
            return bool(self.partition.uuid) and self.partition.uuid.casefold() == value
        if ref.tag == "PARTLABEL":
            return bool(self.partition.name) and self.partition.name == ref.value
        return False

    def selected_by(self, selector: str) -> bool:
        """Whether ``--partition``/``--boot-partition`` ``selector`` names this volume."""
        ref = parse_source(selector)
        if ref.tag != "DEVICE":
            return self.matches(ref)
        names = {self.identity.label}
        if self.partition is not None:
            names |= {str(self.partition.number), self.partition.name}
        if self.member:
            names |= {self.member, self.member.rsplit("/", 1)[-1]}
        return selector in names - {""}

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"index": self.index, "name": self.name, "fs": self.kind,
                                  "label": self.identity.label, "uuid": self.identity.uuid,
                                  "size": self.size, "layers": list(self.layers)}  # fmt: skip
        if self.partition is not None:
            out["partition"] = {"number": self.partition.number, "type": self.partition.type,
                                "name": self.partition.name, "uuid": self.partition.uuid,
                                "start": self.partition.start}  # fmt: skip
        if self.member is not None:
            out["member"] = self.member
        return out


def select_volume(volumes: Sequence[VolumeInfo], selector: str, option: str) -> VolumeInfo:
    """The first volume ``selector`` names; an error listing them all otherwise."""
    for volume in volumes:
        if volume.selected_by(selector):
            return volume
    raise NotFoundError(
        f"{option} {selector!r} names no volume in the image",
        hint=f"{option} takes a partition number or name, a label, UUID=…, PARTUUID=… or "
        f"a tar member; the image has: {listing(volumes)}",
    )


def listing(volumes: Sequence[VolumeInfo]) -> str:
    return "; ".join(v.describe() for v in volumes) or "no volumes"


def gpt_type(volume: VolumeInfo) -> str | None:
    return volume.partition.type if volume.partition is not None else None
