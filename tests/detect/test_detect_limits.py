"""``detect`` against a hostile bootloader: limits apply, are journaled, and replay.

The deadline case uses a transfer timeout *shorter* than the deadline, with lines coming
faster than the timeout: only the deadline can stop it, and a replay — where no time
passes — must still report the deadline, not a timeout, at the same packet.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fastboop import events as ev
from fastboop.backends.devices import NetworkDeviceSource
from fastboop.detection import DetectRecorder, detect_devices, detect_inputs
from fastboop.devpro.pool import ProfilePool
from fastboop.fastboot.limits import CommandLimits
from fastboop.journal import read_journal
from fastboop.replay.detect import replay_detect_journal
from fastboop.sim.model import CommandBehaviour, load_model
from tests.support.simulators import served

pytestmark = pytest.mark.anyio

CASES = [
    (CommandBehaviour(chatter=5000), CommandLimits(max_info_lines=300), 30.0, "info_lines",
     "protocol"),
    # Lines every 20 ms, a 1.5 s transfer timeout (generous against a loaded machine's
    # stalls), a 2.5 s deadline: it is the deadline that ends the command.
    (CommandBehaviour(chatter=1000, info_interval=0.02), CommandLimits(deadline=2.5), 1.5,
     "deadline", "timeout"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("behaviour", "limits", "timeout", "limit", "kind"), CASES, ids=["info_lines", "deadline"]
)
async def test_detect_stops_a_hostile_bootloader_and_replays_it(
    tmp_path: Path,
    pool: ProfilePool,
    behaviour: CommandBehaviour,
    limits: CommandLimits,
    timeout: float,
    limit: str,
    kind: str,
) -> None:
    model = msgspec.structs.replace(
        load_model("oneplus-fajita"), behaviour={"getvar:product": behaviour}
    )
    path = tmp_path / "detect.fbj"
    recorder = DetectRecorder(path, detect_inputs(pool, None, timeout=timeout, limits=limits))
    try:
        async with served(model) as (_, port):
            result = await detect_devices(
                NetworkDeviceSource("tcp", f"127.0.0.1:{port}"),
                pool,
                recorder=recorder,
                timeout=timeout,
                limits=limits,
            )
    finally:
        recorder.close()
    [report] = result.devices
    assert report.error_kind == kind and "getvar:product" in (report.error or "")

    journal = read_journal(path)
    bodies = [r.body for r in journal.records]
    [hit] = [b for b in bodies if isinstance(b, ev.FastbootLimitHit)]
    assert (hit.command, hit.limit) == ("getvar:product", limit)
    assert isinstance(bodies[bodies.index(hit) + 1], ev.ProbeFailed)
    replayed = await replay_detect_journal(journal, pool)
    assert replayed.ok, replayed
