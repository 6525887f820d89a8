"""A session served from one partition of a disk image replays from that same partition.

Two partitions of the same size look alike to the export's geometry check; only the
journaled volume choice (``--partition``) tells replay which one the phone was served.
"""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop import events as ev
from fastboop.artifact.open import ArtifactOptions
from fastboop.backends.exports import open_export
from fastboop.cli.parser import build_parser
from fastboop.cli.serve import serve
from fastboop.devpro.pool import ProfilePool
from fastboop.journal import read_journal
from fastboop.replay import Verdict
from fastboop.runtime import Session
from fastboop.runtime.facade import prepare_session, replay_recording
from fastboop.runtime.options import BootOptions
from fastboop.sim.gadget import SimGadget
from fastboop.sim.phone import SimulatedPhone
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from tests.backends.conftest import KernelOnlyBuilder
from tests.rootfs.disk_images import Part, disk, ext4, tree
from tests.smoo_usb.helpers import HANG_GUARD, PID, SERIAL, VID, gadget_device
from tests.support.debian import debian_kernel
from tests.support.sessions import run_until_phone_is_up


def two_alike_roots(tmp: Path) -> Path:
    """A GPT disk with two 8 MiB ext4 roots: the guess serves the first."""
    roots = []
    for name in ("a", "b"):
        files = {"etc/os-release": f"ID={name}\n".encode(), "sbin/init": name.encode()}
        roots.append(ext4(tmp / f"{name}.ext4", tree(tmp / f"tree-{name}", files),
                          label=f"root_{name}", uuid=f"{name * 8}-1111-1111-1111-111111111111"))
    return disk(tmp / "disk.img", "gpt", [Part(root, name=f"root_{n}")
                                          for root, n in zip(roots, "ab", strict=True)])


def served_bytes(image: Path, options: ArtifactOptions) -> bytes:
    export, source = open_export(str(image), options)
    try:
        return source.read(0, export.spec.size_bytes)
    finally:
        source.close()


@pytest.fixture(scope="module")
def partition_two(tmp_path_factory: pytest.TempPathFactory, pool: ProfilePool) -> tuple[Path, Path]:
    """(journal, disk) of a session that served ``--partition 2`` of the disk."""
    root, version = debian_kernel("arm64")
    kernel = (root / "boot" / f"vmlinuz-{version}").read_bytes()
    tmp = tmp_path_factory.mktemp("volumes")
    image = two_alike_roots(tmp)
    journal = tmp / "session.fbj"

    async def run() -> None:
        async with SimulatedPhone("oneplus-fajita") as phone:
            session = prepare_session(
                image, device_profile="oneplus-fajita", options=BootOptions(partition="2"),
                builder=KernelOnlyBuilder(kernel), devices=phone, gadgets=phone,
                transports=("sim",), journal=journal, preflight=False, wait=5.0,
                gadget_timeout=5.0, profiles=pool,
            )  # fmt: skip
            await run_until_phone_is_up(phone, session)
        assert session.result.state == "done", session.result.outcome
        second = served_bytes(image, ArtifactOptions(partition="2"))
        assert phone.report.rootfs_sha256 == hashlib.sha256(second).hexdigest()

    anyio.run(run)
    return journal, image


def test_the_journal_names_the_volume_that_was_served(partition_two: tuple[Path, Path]) -> None:
    journal, _ = partition_two
    [started] = [r.body for r in read_journal(journal).records
                 if isinstance(r.body, ev.SessionStarted)]  # fmt: skip
    assert started.config.volumes == ev.RootfsVolumes(partition="2")


def test_replay_re_serves_the_partition_the_session_served(
    partition_two: tuple[Path, Path],
) -> None:
    journal, image = partition_two
    # The guess is the other partition, of the very same geometry: only the journal knows.
    guessed, chosen = (served_bytes(image, ArtifactOptions(partition=p)) for p in (None, "2"))
    assert len(guessed) == len(chosen) and guessed != chosen
    report = anyio.run(partial(replay_recording, journal))
    assert report.verdict is Verdict.OK, report
    assert f"from {image}, identical" in report.note


def test_fastboop_serve_journals_its_partition_and_replays_from_it(tmp_path: Path) -> None:
    """The serve-only command (``fastboop serve DISK --partition 2``) the same way."""
    image = two_alike_roots(tmp_path)
    journal = tmp_path / "serve.fbj"
    args = build_parser().parse_args([
        "serve", str(image), "--partition", "2", "--vid", hex(VID), "--pid", hex(PID),
        "--serial", SERIAL, "--journal", str(journal)])  # fmt: skip
    export, _ = open_export(str(image), ArtifactOptions(partition="2"))
    chosen = served_bytes(image, ArtifactOptions(partition="2"))
    gadget = SimGadget()
    read: list[bytes] = []

    async def phone(session: Session) -> None:
        await gadget.wait_for_export(export.spec.export_id)
        blocks = 64 * 1024 // export.spec.block_size
        read.append((await gadget.read(export.spec.export_id, 0, blocks)).data)
        session.cancel("interrupted (Ctrl-C)")

    async def run() -> None:
        bus = SimGadgetUsbBackend(gadgets=[gadget_device(gadget)])
        with anyio.fail_after(HANG_GUARD):
            await serve(args, on_event=lambda event: None, backend=bus, handle_signals=False,
                        alongside=phone)  # fmt: skip

    anyio.run(run)
    assert read == [chosen[: 64 * 1024]]
    report = anyio.run(partial(replay_recording, journal))
    assert report.verdict is Verdict.OK, report
    assert f"from {image}, identical" in report.note


def test_a_journal_from_before_volumes_were_recorded_reads_with_the_guess() -> None:
    old = msgspec.msgpack.encode({"rootfs": "disk.img", "transports": ["sim"]})
    config = msgspec.msgpack.decode(old, type=ev.SessionConfig)
    assert config.volumes == ev.RootfsVolumes() and config.volumes.partition is None
