"""Hypothesis fuzzing of the boot-profile and channel decoders: hostile bytes and
manifests give one typed error (a FastboopError), never a crash or an unbounded read."""

from __future__ import annotations

import json

import hypothesis.strategies as st
from hypothesis import given, settings

from fastboop.bootprofile.binary import decode_fbooprof, encode_fbooprof
from fastboop.bootprofile.manifest import load_manifest, parse_manifest
from fastboop.bootprofile.schema import (
    AndroidSparse,
    BootProfile,
    Content,
    Device,
    File,
    Filesystem,
    Gpt,
    Http,
    InjectMac,
    Mbr,
    PathSource,
    Tar,
    Xz,
)
from fastboop.bootprofile.validate import validate
from fastboop.channel.head import NeedMoreBytes, scan_head
from fastboop.errors import FastboopError
from tests.support.errors import one_line

TEXT = st.text(max_size=12)
CONTENT = st.none() | st.builds(Content, st.just("sha512:" + "ab" * 64), st.integers(0, 1 << 40))
TERMINAL = st.builds(Http, TEXT, st.booleans(), CONTENT) | st.builds(File, TEXT, CONTENT)


def wrap(inner: st.SearchStrategy) -> st.SearchStrategy:  # type: ignore[type-arg]
    return (st.builds(Xz, inner, CONTENT) | st.builds(AndroidSparse, inner, CONTENT)
            | st.builds(Tar, TEXT, inner, CONTENT)
            | st.builds(Mbr, inner, st.none() | TEXT, st.none() | st.integers(0, 9))
            | st.builds(Gpt, inner, st.none() | TEXT, st.none(), st.none() | st.integers(0, 9),
                        st.none() | st.just(4096), CONTENT))  # fmt: skip


SOURCES = st.recursive(TERMINAL, wrap, max_leaves=6)
FILESYSTEMS = st.builds(Filesystem, st.sampled_from(["erofs", "ext4", "fat"]), SOURCES,
                        st.booleans())  # fmt: skip
PROFILES = st.builds(
    BootProfile, id=TEXT, rootfs=FILESYSTEMS, display_name=st.none() | TEXT,
    kernel=st.none() | st.builds(PathSource, TEXT, FILESYSTEMS),
    dt_overlays=st.lists(st.binary(max_size=20), max_size=2).map(tuple),
    extra_cmdline=st.none() | TEXT, kernel_modules=st.lists(TEXT, max_size=3).map(tuple),
    devices=st.dictionaries(TEXT, st.builds(Device, kernel_modules=st.lists(TEXT, max_size=2)
                                            .map(tuple), inject_mac=st.none() | st.builds(
                                                InjectMac, st.none() | TEXT)), max_size=2),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(PROFILES)
def test_any_profile_round_trips(profile: BootProfile) -> None:
    record = encode_fbooprof(profile)
    assert decode_fbooprof(record) == (profile, 0)


@settings(max_examples=300, deadline=None)
@given(PROFILES, st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=6),
       st.integers(0, 4096))
def test_damaged_records(profile: BootProfile, mutations: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(encode_fbooprof(profile))
    for offset, value in mutations:
        data[10 + offset % max(len(data) - 10, 1)] = value
    data = data[: max(10, len(data) - cut % 8)]
    try:
        decoded, _ = decode_fbooprof(bytes(data))
        validate(decoded, require_content=False)
    except FastboopError as error:
        one_line(error)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 3))
def test_channel_heads(noise: bytes, prefix: int) -> None:
    magic = [b"", b"FBOOPROF\x00\x00", b"FBOODEVP\x00\x00", b"FBPHINT0\x00\x00"][prefix]
    data = magic + noise
    try:
        head = scan_head(data, len(data))
        assert 0 <= head.consumed <= len(data)
    except NeedMoreBytes as more:
        assert more.size <= len(data)  # only ever asks for what the stream has
    except FastboopError as error:
        one_line(error)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-5, 1 << 33) | TEXT,
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(
                           ["id", "rootfs", "erofs", "ext4", "fat", "ostree", "file", "http",
                            "xz", "mbr", "gpt", "tar", "index", "source", "content", "digest",
                            "size_bytes", "path", "kernel", "stage0", "devices", "entry",
                            "android_sparseimg", "casync", "partlabel"]), inner, max_size=4),
                       max_leaves=20)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(JSONISH)
def test_hostile_manifests(data: object) -> None:
    try:
        profile = parse_manifest(data)
        validate(profile, files_unhashed=True)
        assert load_manifest(json.dumps(data)) == profile
    except FastboopError as error:
        one_line(error)
