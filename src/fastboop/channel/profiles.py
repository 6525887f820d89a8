"""The device-profile pool of a session whose artifact is a channel.

CHANNELS.md: device profiles carried in a channel are loaded for that session only
(nothing is installed), and when there are any, probing and matching are restricted to
them. devpro.md's precedence still applies to each id (a local file with the same id
wins over the channel's copy), so a user can correct a channel's profile locally.
"""

from __future__ import annotations

import os

from fastboop.channel.intake import read_head
from fastboop.channel.magic import has_records
from fastboop.devpro.pool import LoadedProfile, ProfilePool
from fastboop.devpro.sources import load_channel_profile, load_pool
from fastboop.rootfs.open import open_source


def channel_device_profiles(spec: str | os.PathLike[str]) -> list[LoadedProfile]:
    """The FBOODEVP records at the head of ``spec``; none when it is not a channel (or is
    a directory)."""
    text = os.fspath(spec)
    if not text.startswith(("http://", "https://")) and os.path.isdir(text):
        return []
    source = open_source(text)
    if not has_records(source):
        return []
    head = read_head(source, where=text)
    return [load_channel_profile(source.read(r.offset, r.size), origin=f"{text}@{r.offset}")
            for r in head.records if r.kind == "device-profile"]  # fmt: skip


def session_pool(spec: str | os.PathLike[str]) -> ProfilePool:
    """The pool a session uses: built-in and local profiles, or the channel's own."""
    carried = channel_device_profiles(spec)
    pool = load_pool(channel=carried)
    if not carried:
        return pool
    ids = {item.profile.id for item in carried}
    return ProfilePool([pool.entry(i) for i in sorted(ids)], loaded=pool.loaded,
                       warnings=pool.warnings, checked_dirs=pool.checked_dirs)  # fmt: skip
