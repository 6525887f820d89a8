"""A real session recorded against the simulated phone, for re-execution tests."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fastboop import events as ev
from fastboop.backends.standard import StandardBackend, fastboot_limits
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.sources import load_pool
from fastboop.fastboot.limits import CommandLimits
from fastboop.journal import Journal, JournalWriter, read_journal
from fastboop.runtime import Session
from fastboop.sim.model import BootloaderModel
from fastboop.sim.phone import SimulatedPhone
from tests.backends.conftest import KernelOnlyBuilder
from tests.support.debian import debian_kernel
from tests.support.sessions import run_until_phone_is_up


class Recorded(msgspec.Struct, kw_only=True):
    path: Path
    image: bytes | None
    state: str


@pytest.fixture(scope="session")
def pool() -> ProfilePool:
    return load_pool(include_local=False)


@pytest.fixture(scope="session")
def arm64_kernel() -> bytes:
    root, version = debian_kernel("arm64")
    return (root / "boot" / f"vmlinuz-{version}").read_bytes()


async def record_session(
    tmp_path: Path,
    pool: ProfilePool,
    kernel: bytes,
    *,
    model: str | BootloaderModel = "oneplus-fajita",
    wait_for_device_s: float = 5.0,
    limits: CommandLimits | None = None,
) -> Recorded:
    """Run a whole session (probe, build, upload, boot, serve) and keep its journal."""
    rootfs = tmp_path / "rootfs.img"
    rootfs.write_bytes(bytes(range(256)) * (4096 * 16 // 256))
    journal = tmp_path / "session.fbj"
    config = ev.SessionConfig(
        rootfs=str(rootfs),
        device_profile="oneplus-fajita",
        transports=("sim",),
        wait_for_device_s=wait_for_device_s,
        gadget_timeout_s=5.0,
    )
    if limits is not None:
        config = msgspec.structs.replace(
            config,
            fastboot_deadline_s=limits.deadline,
            fastboot_max_info_lines=limits.max_info_lines,
        )
    async with SimulatedPhone(model) as phone:
        backend = StandardBackend(
            devices=phone,
            gadgets=phone,
            profiles=pool,
            builder=KernelOnlyBuilder(kernel),
            limits=fastboot_limits(config),
        )
        session = Session(config, backend, journal=journal)
        await run_until_phone_is_up(phone, session)
    return Recorded(path=journal, image=phone.report.booted_image, state=session.result.state)


def rewrite(journal: Journal, path: Path) -> Path:
    """Write ``journal`` (possibly edited) back to disk as a real journal file."""
    with JournalWriter(path, journal.header) as writer:
        for record in journal.records:
            writer.append(record.body, record.t_ns)
    assert read_journal(path).records == journal.records
    return path
