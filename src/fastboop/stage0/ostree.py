"""OSTree deployments on the host side (stage0.md §7.1, §6.1, §10 step 7).

An OSTree image keeps each deployment under ``/ostree/deploy/<stateroot>/deploy/<entry>``
and points at it from boot loader entries (``ostree=/ostree/boot.N/<os>/<csum>/<n>``).
fastboop picks one, reads kernel, modules and DTB *inside* it, and passes the path on
so the device switches root into it.
"""

from __future__ import annotations

import re

import msgspec

from fastboop.rootfs.errors import RootfsError
from fastboop.rootfs.fs import Filesystem, split_path
from fastboop.rootfs.subtree import SubtreeFilesystem
from fastboop.stage0.discover import natural_key
from fastboop.stage0.errors import MissingFileError

ENTRIES_DIR = "/boot/loader/entries"
_DEPLOY_RE = re.compile(r"^/ostree/deploy/[^/]+/deploy/[^/]+$")


class Deployment(msgspec.Struct, frozen=True):
    path: str  # the ostree= value, e.g. /ostree/boot.1/fedora/<csum>/0
    version: str = ""
    title: str = ""


def _parse_entry(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            fields.setdefault(key, value.strip())
    return fields


def list_deployments(fs: Filesystem) -> list[Deployment]:
    """Deployments named by Boot Loader Specification entries, newest version first."""
    out: list[Deployment] = []
    try:
        names = fs.listdir(ENTRIES_DIR)
    except RootfsError:
        return out
    for name in names:
        if not name.endswith(".conf"):
            continue
        fields = _parse_entry(fs.read_file(f"{ENTRIES_DIR}/{name}").decode("utf-8", "replace"))
        for option in fields.get("options", "").split():
            if option.startswith("ostree="):
                out.append(Deployment(option.removeprefix("ostree="), fields.get("version", ""),
                                      fields.get("title", "")))  # fmt: skip
    return sorted(out, key=lambda d: natural_key(d.version), reverse=True)


def resolve_deployment(fs: Filesystem, path: str) -> str:
    """The real ``/ostree/deploy/<stateroot>/deploy/<entry>`` behind an ``ostree=`` path."""
    parts = split_path(path)
    if not parts or ".." in parts:
        raise MissingFileError(f"bad ostree deployment path {path!r}", where=fs.label)
    node = fs.resolve("/" + "/".join(parts))
    real = _real_path(fs, node)
    if real is None or not _DEPLOY_RE.match(real) or not fs.node_stat(node).is_dir:
        raise MissingFileError(
            f"ostree path {path} does not lead to ostree/deploy/<stateroot>/deploy/<entry>",
            where=fs.label,
        )
    stateroot = real.split("/")[3]
    if not fs.is_dir(f"/ostree/deploy/{stateroot}/var"):
        raise MissingFileError(f"missing /ostree/deploy/{stateroot}/var", where=fs.label)
    return real


def _real_path(fs: Filesystem, target: object) -> str | None:
    """Find the canonical path of a deployment node by scanning ``/ostree/deploy``."""
    for stateroot in fs.listdir("/ostree/deploy") if fs.is_dir("/ostree/deploy") else []:
        base = f"/ostree/deploy/{stateroot}/deploy"
        for entry in fs.listdir(base) if fs.is_dir(base) else []:
            if fs.resolve(f"{base}/{entry}") == target:
                return f"{base}/{entry}"
    return None


def open_deployment(fs: Filesystem, choice: str | None) -> tuple[Filesystem, str]:
    """(view rooted at the deployment, the ``ostree=`` path to pass to the device).

    ``choice`` is an explicit ``ostree=`` path, or ``None`` for the newest entry.
    """
    if choice is None:
        deployments = list_deployments(fs)
        if not deployments:
            raise MissingFileError("no OSTree deployment in /boot/loader/entries",
                                   where=fs.label)  # fmt: skip
        choice = deployments[0].path
    real = resolve_deployment(fs, choice)
    return SubtreeFilesystem(fs, real), "/" + "/".join(split_path(choice))
