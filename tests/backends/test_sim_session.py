"""Whole sessions through the standard backend against the simulated phone.

The fastboot client speaks the real wire format to the simulated bootloader and the smoo
host speaks it to the simulated gadget; the journal of each session must replay.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import msgspec
import pytest

from fastboop import events as ev
from fastboop.backends.standard import StandardBackend
from fastboop.devpro.pool import ProfilePool
from fastboop.journal import Wire, read_journal
from fastboop.replay import replay_journal
from fastboop.runtime import Session
from fastboop.sim.model import CommandBehaviour, load_model
from fastboop.sim.phone import SimulatedPhone
from tests.support.http_range import range_server
from tests.support.sessions import run_until_phone_is_up

from .conftest import KernelOnlyBuilder

pytestmark = pytest.mark.anyio


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs.img"
    path.write_bytes(bytes(range(256)) * (4096 * 64 // 256))  # 256 KiB, whole blocks
    return path


def config(rootfs: Path | str, **overrides: object) -> ev.SessionConfig:
    values: dict[str, object] = {
        "rootfs": str(rootfs),
        "device_profile": "oneplus-fajita",
        "transports": ("sim",),
        "wait_for_device_s": 5.0,
        "gadget_timeout_s": 5.0,
    }
    values.update(overrides)
    return ev.SessionConfig(**values)  # type: ignore[arg-type]


async def run(
    phone: SimulatedPhone,
    cfg: ev.SessionConfig,
    pool: ProfilePool,
    builder: KernelOnlyBuilder,
    journal: Path,
) -> Session:
    backend = StandardBackend(devices=phone, gadgets=phone, profiles=pool, builder=builder)
    session = Session(cfg, backend, journal=journal)
    await run_until_phone_is_up(phone, session)
    return session


async def test_full_session_serves_the_exact_rootfs(
    tmp_path: Path, rootfs: Path, pool: ProfilePool, builder: KernelOnlyBuilder
) -> None:
    journal = tmp_path / "s.fbj"
    async with SimulatedPhone("oneplus-fajita") as phone:
        session = await run(phone, config(rootfs), pool, builder, journal)
    result = session.result
    assert result.state == "done", result.outcome
    assert result.profile == "oneplus-fajita"
    assert phone.report.rootfs_sha256 == hashlib.sha256(rootfs.read_bytes()).hexdigest()
    assert phone.bootloader.booted_images == [phone.report.booted_image]
    assert hashlib.sha256(phone.report.booted_image or b"").hexdigest() == result.image_sha256
    # Nothing but getvar, download and boot ever reached the bootloader.
    commands = {c.split(":")[0] for c in phone.bootloader.commands}
    assert commands == {"getvar", "download", "boot"}
    assert phone.bootloader.refused == []

    recorded = read_journal(journal)
    wires = [r.body for r in recorded.records if isinstance(r.body, Wire)]
    assert wires[0] == Wire.capture("fastboot", "out", b"getvar:product")
    assert any(w.direction == "in" and w.data == b"OKAYsdm845" for w in wires)
    report = replay_journal(recorded)
    assert report.ok, report


async def test_profile_mismatch_fails_with_first_failing_step(
    tmp_path: Path, rootfs: Path, pool: ProfilePool, builder: KernelOnlyBuilder
) -> None:
    model = load_model("oneplus-fajita")
    changed = msgspec.structs.replace(model, getvar={**model.getvar, "product": "msm8998"})
    async with SimulatedPhone(changed) as phone:
        session = await run(
            phone, config(rootfs, wait_for_device_s=0.5), pool, builder, tmp_path / "s.fbj"
        )
    result = session.result
    assert result.state == "failed"
    assert result.outcome is not None
    assert result.outcome.startswith("timed out: no fastboot device matching a device profile")
    assert result.skipped == (phone.address,)
    (mismatch,) = result.mismatches
    assert mismatch.profile == "oneplus-fajita"
    assert (mismatch.expected, mismatch.actual) == ("sdm845", "msm8998")
    assert builder.calls == 0
    assert replay_journal(read_journal(tmp_path / "s.fbj")).ok


async def test_upload_fail_is_reported_with_the_device_message(
    tmp_path: Path, rootfs: Path, pool: ProfilePool, builder: KernelOnlyBuilder
) -> None:
    refusal = CommandBehaviour(fail="download not allowed in this state")
    failing = msgspec.structs.replace(load_model("oneplus-fajita"), behaviour={"download": refusal})
    async with SimulatedPhone(failing) as phone:
        session = await run(phone, config(rootfs), pool, builder, tmp_path / "s.fbj")
    result = session.result
    assert result.state == "failed"
    assert result.outcome is not None
    assert result.outcome.startswith("device_fail: ")
    assert "download not allowed in this state" in result.outcome
    assert phone.bootloader.booted_images == []
    assert replay_journal(read_journal(tmp_path / "s.fbj")).ok


async def test_unbootable_image_times_out_waiting_for_stage0(
    tmp_path: Path, rootfs: Path, pool: ProfilePool, builder: KernelOnlyBuilder
) -> None:
    class Garbage(KernelOnlyBuilder):
        def build(self, profile, rootfs, device=None):  # type: ignore[no-untyped-def]
            built = super().build(profile, rootfs, device)
            return msgspec.structs.replace(built, image=b"NOT-A-BOOT-IMAGE" + built.image[16:])

    async with SimulatedPhone("oneplus-fajita") as phone:
        session = await run(
            phone, config(rootfs, gadget_timeout_s=0.3), pool, Garbage(builder.kernel),
            tmp_path / "s.fbj",
        )
    assert session.result.state == "failed"
    assert session.result.outcome == "timed out: stage0 never came back on USB as a smoo gadget"
    assert phone.report.boot_error is not None


async def test_rootfs_is_served_from_an_http_url_with_range_requests(
    tmp_path: Path, pool: ProfilePool, builder: KernelOnlyBuilder
) -> None:
    """`fastboop boot https://…/rootfs.erofs`: the phone reads the image over smoo while the
    host fetches only what is asked for, through the rootfs HTTP reader and its cache."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text('PRETTY_NAME="served over HTTP"\n')
    (tree / "blob").write_bytes(os.urandom(300_000))
    site = tmp_path / "site"
    site.mkdir()
    image = site / "rootfs.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tree)], check=True)
    with range_server(site) as base:
        url = f"{base}/rootfs.erofs"
        async with SimulatedPhone("oneplus-fajita") as phone:
            session = await run(phone, config(url), pool, builder, tmp_path / "j.fbj")
    assert session.result.state == "done", session.result.outcome
    assert phone.report.rootfs_sha256 == hashlib.sha256(image.read_bytes()).hexdigest()
