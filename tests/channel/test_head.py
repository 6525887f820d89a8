"""Channel heads: CHANNELS.md's accept, warn and fail rules, boot-profile choice, and the
device profiles a channel carries restricting matching to themselves."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fastboop.blocks import BytesSource
from fastboop.bootprofile.binary import encode_fbooprof
from fastboop.bootprofile.schema import BootProfile, Content, Device, File, Filesystem
from fastboop.channel.head import MAX_RECORDS, ChannelError, NeedMoreBytes, scan_head
from fastboop.channel.intake import (
    AmbiguousBootProfileError,
    choose_boot_profile,
    open_channel,
    read_head,
)
from fastboop.channel.profiles import session_pool
from fastboop.devpro.binary import encode_fboodevp
from fastboop.devpro.sources import load_pool
from fastboop.errors import UsageError
from fastboop.rootfs.errors import UnsupportedError

CONTENT = Content("sha512:" + "a" * 128, 4096)


def profile(pid: str, devices: tuple[str, ...] = (), overlay: bytes = b"") -> BootProfile:
    return BootProfile(id=pid, rootfs=Filesystem("erofs", File("root.ero", CONTENT)),
                       dt_overlays=(overlay,) if overlay else (),
                       devices={d: Device() for d in devices})  # fmt: skip


def devpro(pid: str) -> bytes:
    fajita = load_pool(include_local=False).get("oneplus-fajita")
    return encode_fboodevp(msgspec.structs.replace(fajita, id=pid))


EROFS_TAIL = bytes(1024) + b"\xe2\xe1\xf5\xe0" + bytes(3068)


def test_records_then_tail() -> None:
    head_bytes = encode_fbooprof(profile("a")) + devpro("my-fajita") + encode_fbooprof(
        profile("b", ("my-fajita",)))
    stream = head_bytes + EROFS_TAIL
    head = scan_head(stream, len(stream))
    assert [r.kind for r in head.records] == ["boot-profile", "device-profile", "boot-profile"]
    assert [p.id for p in head.boot_profiles] == ["a", "b"]
    assert [d.id for d in head.device_profiles] == ["my-fajita"]
    assert head.consumed == len(head_bytes) and not head.warnings
    channel = open_channel(BytesSource(stream), spec="c")
    assert channel.tail is not None and channel.tail.read(0, 4096) == EROFS_TAIL
    only = scan_head(head_bytes, len(head_bytes))  # records only: no tail
    assert only.consumed == len(head_bytes)
    assert open_channel(BytesSource(head_bytes), spec="c").tail is None


def test_invalid_first_record_fails_later_one_warns() -> None:
    good = encode_fbooprof(profile("a"))
    broken = good[:13] + b"\x09" + good[14:]  # rootfs: an unknown filesystem variant
    with pytest.raises(ChannelError, match="invalid boot profile record at byte 0"):
        scan_head(broken + EROFS_TAIL, len(broken) + 4096)
    stream = good + broken + EROFS_TAIL
    head = scan_head(stream, len(stream))
    assert [p.id for p in head.boot_profiles] == ["a"]
    assert head.consumed == len(good)  # the tail starts at the invalid record
    assert head.warnings and "invalid boot profile record at byte" in head.warnings[0]
    # A record that decodes but fails validation counts as invalid too.
    unsafe = encode_fbooprof(msgspec.structs.replace(
        profile("fat-root"), rootfs=Filesystem("fat", File("x", CONTENT))))  # fmt: skip
    with pytest.raises(ChannelError, match="cannot be the root"):
        scan_head(unsafe, len(unsafe))
    bad_devpro = devpro("x")[:-3]
    with pytest.raises(ChannelError, match="invalid device profile record at byte 0"):
        scan_head(bad_devpro, len(bad_devpro))
    # CHANNELS.md's invalid-head fixtures: a truncated record first fails; after a valid
    # one it warns, naming where it ends, and the scan stops there.
    with pytest.raises(ChannelError, match=r"at byte 0: .*unexpected end of data"):
        scan_head(good[:-5], len(good) - 5)
    for kind, cut in (("boot", good[:-5]), ("device", devpro("d")[:40])):
        head = scan_head(good + cut, len(good) + len(cut))
        assert head.consumed == len(good) and len(head.warnings) == 1
        assert head.warnings[0].startswith(
            f"invalid {kind} profile record at byte {len(good)} ends the head scan: ")


def test_hints_skipped_index_and_legacy_refused() -> None:
    hints = b"FBPHINT0\x00\x00" + (4).to_bytes(4, "little") + (3).to_bytes(4, "little") + \
        b"meta" + b"pay"  # fmt: skip
    stream = encode_fbooprof(profile("a")) + hints + EROFS_TAIL
    head = scan_head(stream, len(stream))
    assert [r.kind for r in head.records] == ["boot-profile", "pipeline-hints"]
    assert head.consumed == len(stream) - len(EROFS_TAIL)
    with pytest.raises(UnsupportedError, match="indexed channels"):
        scan_head(b"FBCHIDX0" + bytes(100), 108)
    with pytest.raises(UnsupportedError, match="legacy FBCH profile bundle"):
        read_head(BytesSource(b"FBCH\x01\x00\x00\x00fixture-profile"), where="c")


def test_large_records_fetch_more_and_the_cap() -> None:
    big = encode_fbooprof(profile("big", overlay=b"\xd0\x0d\xfe\xed" + bytes(300_000)))
    stream = big + EROFS_TAIL
    with pytest.raises(NeedMoreBytes):
        scan_head(stream[:65536], len(stream))
    head = read_head(BytesSource(stream), where="c")
    assert head.boot_profiles[0].id == "big" and head.consumed == len(big)
    many = encode_fbooprof(profile("m")) * (MAX_RECORDS + 1)
    with pytest.raises(ChannelError, match=f"more than {MAX_RECORDS} records"):
        scan_head(many, len(many))


def test_choosing_a_boot_profile() -> None:
    generic, fajita, enchilada = profile("generic"), profile("f", ("oneplus-fajita",)), \
        profile("e", ("oneplus-enchilada",))  # fmt: skip
    profiles = [fajita, enchilada]
    assert choose_boot_profile(profiles, device_profile="oneplus-fajita", requested=None) is fajita
    assert choose_boot_profile([], device_profile="x", requested=None) is None
    with pytest.raises(AmbiguousBootProfileError, match="--boot-profile"):
        choose_boot_profile([generic, fajita], device_profile="oneplus-fajita", requested=None)
    assert choose_boot_profile([generic, fajita], device_profile="oneplus-fajita",
                               requested="generic") is generic  # fmt: skip
    with pytest.raises(UsageError, match="none of the channel's boot profiles"):
        choose_boot_profile(profiles, device_profile="google-sargo", requested=None)
    with pytest.raises(UsageError, match="not for device 'oneplus-enchilada'"):
        choose_boot_profile(profiles, device_profile="oneplus-enchilada", requested="f")
    with pytest.raises(UsageError, match="no such boot profile"):
        choose_boot_profile(profiles, device_profile=None, requested="nope")


def test_channel_device_profiles_restrict_the_pool(tmp_path: Path) -> None:
    channel = tmp_path / "c.channel"
    channel.write_bytes(devpro("my-fajita") + devpro("my-enchilada") + EROFS_TAIL)
    pool = session_pool(channel)
    assert pool.ids == ["my-enchilada", "my-fajita"]
    assert all(entry.tags == "channel" for entry in pool.entries())
    plain = tmp_path / "plain.img"
    plain.write_bytes(EROFS_TAIL)
    assert "oneplus-fajita" in session_pool(plain).ids  # no records: the usual pool
