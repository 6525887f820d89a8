"""Fuzz family ``bootprofile``: damaged FBOOPROF records and channel heads, as they come
from an untrusted channel: the record decoder (every format version), validation, and
the head scan's accept/warn/fail rules over mixed FBOOPROF/FBOODEVP/FBPHINT0 records.

Seeds: profiles built with every pipeline step, nesting and stage0 field, encoded as
fastboop writes them (format 0) and in the older layouts (1, 2), alone and as channel
heads followed by an EROFS-looking tail. Classes: byte damage after the header; a field
set to a boundary varint (lengths, counts, variant indices); truncation; records glued
together or with junk between them; YAML/JSON manifests of random shape.
"""

from __future__ import annotations

import functools
import json
import random

from bench.fuzzing._mutate import boundary_int, mutate

from fastboop import postcard as pc
from fastboop.bootprofile.binary import LAYOUTS, decode_fbooprof_prefix, encode_fbooprof
from fastboop.bootprofile.manifest import load_manifest
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
    Source,
    Tar,
    Xz,
)
from fastboop.bootprofile.validate import validate
from fastboop.channel.head import NeedMoreBytes, scan_head
from fastboop.errors import FastboopError

NAME = "bootprofile"
DESCRIPTION = "FBOOPROF records (formats 0, 1, 2), channel heads, manifests"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

_CLASSES = (("record", 400), ("varint", 150), ("head", 250), ("manifest", 200))
_TAIL = bytes(1024) + b"\xe2\xe1\xf5\xe0" + bytes(1000)
_DIGEST = "sha512:" + "0123456789abcdef" * 8


def setup() -> None:
    _seeds()


def _source(rng: random.Random, version: int, depth: int = 0) -> Source:
    content = Content(_DIGEST, rng.randrange(1 << 40)) if version == 0 else None
    if depth > 3 or rng.random() < 0.3:
        return Http("https://h/i.img", False, content) if rng.random() < 0.5 else \
            File("./i.img", content)  # fmt: skip
    inner = _source(rng, version, depth + 1)
    kind = rng.choice(["xz", "sparse", "mbr", "gpt"] + (["tar"] if version == 0 else []))
    if kind == "xz":
        return Xz(inner, content)
    if kind == "sparse":
        return AndroidSparse(inner, content)
    if kind == "tar":
        return Tar("rootfs.img", inner, content)
    if kind == "mbr":
        return Mbr(inner, index=rng.randrange(4), lba_size=512 if version == 0 else None,
                   content=content)  # fmt: skip
    return Gpt(inner, partlabel="rootfs", content=content)


def _profile(rng: random.Random, version: int) -> BootProfile:
    devices = {f"dev{i}": Device((b"\xd0\x0d\xfe\xed" + bytes(8),) if rng.random() < 0.3 else (),
                                 "quiet", ("vfat",), InjectMac("w") if version == 0 else None)
               for i in range(rng.randrange(3))}  # fmt: skip
    return BootProfile(
        id=f"p{rng.randrange(1000)}", display_name="Fuzz" if rng.random() < 0.5 else None,
        rootfs=Filesystem(rng.choice(["erofs", "ext4"]), _source(rng, version),
                          ostree=rng.random() < 0.2),
        kernel=PathSource("/vmlinuz", Filesystem("fat", _source(rng, version)))
        if rng.random() < 0.5 else None,
        dtbs=PathSource("/dtbs", Filesystem("fat", _source(rng, version)))
        if rng.random() < 0.5 else None,
        extra_cmdline="console=ttyMSM0", kernel_modules=("a", "b"), devices=devices,
    )  # fmt: skip


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    rng = random.Random(0xB007)
    return tuple(encode_fbooprof(_profile(rng, version), version=version)
                 for version in LAYOUTS for _ in range(8))  # fmt: skip


def _varint_damage(rng: random.Random, record: bytes) -> bytes:
    """A boundary number, postcard-encoded, written over a random field position."""
    if len(record) <= 12:
        return record
    at = rng.randrange(10, len(record) - 1)
    value = pc.varint(abs(boundary_int(rng)) % (1 << 64))
    return record[:at] + value + record[at + rng.randint(1, 3):]


def generate(rng: random.Random) -> bytes:
    kind = rng.choices([c for c, _ in _CLASSES], weights=[w for _, w in _CLASSES])[0]
    seeds = _seeds()
    if kind == "record":
        return b"R" + mutate(rng, rng.choice(seeds), start=10)
    if kind == "varint":
        return b"R" + _varint_damage(rng, rng.choice(seeds))
    if kind == "head":
        parts = [rng.choice(seeds) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts) + 1), b"FBPHINT0\x00\x00" + bytes(8))
        stream = b"".join(parts) + _TAIL
        return b"H" + (mutate(rng, stream, start=10) if rng.random() < 0.7 else stream)
    shape = json.loads(json.dumps({"id": "m", "rootfs": {"ext4": {"mbr": {
        "index": 1, "android_sparseimg": {"xz": {"file": "a"}}}}}}))  # fmt: skip
    text = json.dumps(shape).encode()
    return b"M" + mutate(rng, text)


def run(data: bytes) -> str:
    kind, body = data[:1], data[1:]
    if kind == b"R":
        profile, consumed, version = decode_fbooprof_prefix(body)
        validate(profile, require_content=version == 0)
        return f"record v{version} {consumed}"
    if kind == b"H":
        try:
            head = scan_head(body, len(body))
        except NeedMoreBytes:  # impossible: the whole stream is given
            raise AssertionError("asked for more bytes than the stream has") from None
        return f"head {len(head.records)} records, tail at {head.consumed}"
    profile = load_manifest(body)
    validate(profile, files_unhashed=True)
    return f"manifest {profile.id}"
