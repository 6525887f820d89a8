"""``/etc/fstab`` of a distro root, read for two facts: which volume is ``/boot`` and which
btrfs subvolume is ``/`` (sans-I/O: text in, entries out).

Only the lines the image's own init would act on count: comments and blank lines are
skipped, fields are whitespace-separated with ``\\040``-style octal escapes (fstab(5)),
and a line with fewer than three fields is ignored as the real ``mount`` ignores it.
Sources name a volume by ``UUID=``, ``LABEL=``, ``PARTUUID=`` or ``PARTLABEL=``, or by
the equivalent ``/dev/disk/by-*/`` path; a plain device path (``/dev/sda2``) names no
volume that survives being copied, and is reported as such.
"""

from __future__ import annotations

from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Final

#: ``/dev/disk/by-<x>/<value>`` → the ``<TAG>=<value>`` form.
_BY_DIRS = {"by-uuid": "UUID", "by-label": "LABEL", "by-partuuid": "PARTUUID",
            "by-partlabel": "PARTLABEL"}  # fmt: skip
TAGS = ("UUID", "LABEL", "PARTUUID", "PARTLABEL")
MAX_FSTAB_BYTES = 1 << 20


class VolumeRef(Value):
    """How fstab names a volume: ``tag`` is one of :data:`TAGS`, or ``DEVICE`` for a path."""

    __slots__ = ("tag", "value")
    tag: Final[str]
    value: Final[str]

    def __init__(self, tag: str, value: str) -> None:
        self.tag = tag
        self.value = value

    def __str__(self) -> str:
        return self.value if self.tag == "DEVICE" else f"{self.tag}={self.value}"


class FstabEntry(Value):
    """One fstab line (plain values, :mod:`fastboop.values`: nothing serialises them)."""

    __slots__ = ("fstype", "line", "mountpoint", "options", "source")
    source: Final[VolumeRef]
    mountpoint: Final[str]
    fstype: Final[str]
    options: Final[tuple[str, ...]]
    line: Final[int]  # 1-based, for messages

    def __init__(self, source: VolumeRef, mountpoint: str, fstype: str,
                 options: tuple[str, ...], line: int) -> None:  # fmt: skip
        self.source = source
        self.mountpoint = mountpoint
        self.fstype = fstype
        self.options = options
        self.line = line

    def option(self, name: str) -> str | None:
        """The value of ``name=value`` (the last one wins, as in mount(8)), or None."""
        found = None
        for option in self.options:
            key, eq, value = option.partition("=")
            if eq and key == name:
                found = value
        return found


def _unescape(field: str) -> str:
    """fstab's octal escapes (``\\040`` for a space). ``re`` is imported here, on the first
    escape: at module level it brought itself, ``enum``, ``functools`` and ``collections``
    (~25 M instructions) into every command that opens an image."""
    if "\\" not in field:
        return field
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_source(text: str) -> VolumeRef:
    """``UUID=…`` and friends (quotes allowed, as libmount allows them), or a device path."""
    tag, eq, value = text.partition("=")
    if eq and tag.upper() in TAGS:
        return VolumeRef(tag.upper(), value.strip("\"'"))
    parts = text.split("/")
    if len(parts) == 5 and parts[:3] == ["", "dev", "disk"] and parts[3] in _BY_DIRS:
        return VolumeRef(_BY_DIRS[parts[3]], parts[4])
    return VolumeRef("DEVICE", text)


def normalize_mountpoint(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def parse_fstab(text: str) -> list[FstabEntry]:
    """The entries of an fstab, in file order."""
    entries = []
    for number, raw in enumerate(text[:MAX_FSTAB_BYTES].splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [_unescape(f) for f in line.split()]
        if len(fields) < 3:
            continue
        options = tuple(o for o in fields[3].split(",") if o) if len(fields) > 3 else ()
        source, mountpoint = parse_source(fields[0]), normalize_mountpoint(fields[1])
        entries.append(FstabEntry(source, mountpoint, fields[2], options, number))
    return entries


def entry_for(entries: list[FstabEntry], mountpoint: str) -> FstabEntry | None:
    """The entry that mounts ``mountpoint``; when several do, the last wins (it is mounted
    on top, so it is what the system sees)."""
    found = None
    mountpoint = normalize_mountpoint(mountpoint)
    for entry in entries:
        if entry.mountpoint == mountpoint and entry.fstype not in ("swap", "none"):
            found = entry
    return found


def subvolume_of(entry: FstabEntry) -> str | None:
    """The btrfs subvolume path an entry mounts (``subvol=/root`` → ``root``)."""
    value = entry.option("subvol")
    if value is None:
        return None
    return "/".join(p for p in value.split("/") if p not in ("", "."))
