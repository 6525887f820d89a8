"""Sessions recorded against the simulated phone, whose journals hold a smoo data plane."""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop import events as ev
from fastboop.backends.standard import StandardBackend, fastboot_limits
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.sources import load_pool
from fastboop.journal import Journal, JournalWriter, read_journal
from fastboop.journal.records import Record
from fastboop.runtime import Session
from fastboop.sim.phone import SimulatedPhone
from fastboop.smoo.traffic import Packet, SmooTraffic
from tests.backends.conftest import KernelOnlyBuilder
from tests.support.debian import debian_kernel
from tests.support.sessions import run_until_phone_is_up

ROOTFS_SIZE = 2 << 20  # 32 of the phone's 64 KiB reads, four at a time: out of order


class Served(msgspec.Struct, kw_only=True):
    journal: Path
    rootfs: Path
    data: bytes


@pytest.fixture(scope="session")
def pool() -> ProfilePool:
    return load_pool(include_local=False)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, pool: ProfilePool) -> Served:
    """One whole session (probe, build, upload, boot, serve) on the simulated phone."""
    root, version = debian_kernel("arm64")
    kernel = (root / "boot" / f"vmlinuz-{version}").read_bytes()
    tmp = tmp_path_factory.mktemp("served")
    rootfs = tmp / "rootfs.img"
    data = random.Random(7).randbytes(ROOTFS_SIZE)  # every block differs
    rootfs.write_bytes(data)
    journal = tmp / "session.fbj"
    config = ev.SessionConfig(rootfs=str(rootfs), device_profile="oneplus-fajita",
                              transports=("sim",), wait_for_device_s=5.0,
                              gadget_timeout_s=5.0)  # fmt: skip

    async def run() -> None:
        async with SimulatedPhone("oneplus-fajita") as phone:
            backend = StandardBackend(devices=phone, gadgets=phone, profiles=pool,
                                      builder=KernelOnlyBuilder(kernel),
                                      limits=fastboot_limits(config))  # fmt: skip
            session = Session(config, backend, journal=journal)
            await run_until_phone_is_up(phone, session)
        assert phone.report.rootfs_size == ROOTFS_SIZE
        assert session.result.state == "done"

    anyio.run(run)
    return Served(journal=journal, rootfs=rootfs, data=data)


def traffic(journal: Journal) -> list[tuple[int, int, Packet]]:
    """Every smoo packet with its record's seq and its index in that record."""
    return [(r.seq, i, packet) for r in journal.records if isinstance(r.body, SmooTraffic)
            for i, packet in enumerate(r.body.packets)]  # fmt: skip


def edited(journal: Journal, seq: int, packets: list[Packet], path: Path) -> Path:
    """``journal`` with record ``seq``'s packets replaced, written to ``path``."""
    records = []
    for record in journal.records:
        if record.seq == seq:
            assert isinstance(record.body, SmooTraffic)
            body = msgspec.structs.replace(record.body, packets=packets)
            record = Record(record.seq, record.t_ns, body)
        records.append(record)
    with JournalWriter(path, journal.header) as writer:
        for record in records:
            writer.append(record.body, record.t_ns)
    assert read_journal(path).records == records
    return path
