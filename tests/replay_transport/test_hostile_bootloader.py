"""A hostile bootloader in a whole session: the limit it hit is journaled and replays.

Issue 10 §4: when a command runs into its deadline or its INFO/TEXT line cap, the journal
records a typed ``FastbootLimitHit`` right before the probe, upload or boot failure, and
``fastboop replay`` reproduces both — re-driving the machine and re-running the fastboot
exchanges against the transcript — with no divergence.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from fastboop import events as ev
from fastboop.devpro.pool import ProfilePool
from fastboop.fastboot.limits import CommandLimits
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.replay.transcript import reexecute_transcript
from fastboop.sim.model import CommandBehaviour, load_model

from .conftest import record_session

pytestmark = pytest.mark.anyio

ENDLESS = CommandBehaviour(chatter=2000, info_interval=0.005)  # 10 s of talk
VERBOSE = CommandBehaviour(chatter=3_000)
# A boot that succeeded would take the simulated phone off the bus while the host still
# reads the lines; a hung one keeps it there, so the cap alone ends the command.
VERBOSE_HUNG = CommandBehaviour(chatter=3_000, silent=True)
CASES = [
    # (misbehaving step, its behaviour, limits, limit expected, failure event, failure kind)
    ("getvar:product", VERBOSE, CommandLimits(max_info_lines=200), "info_lines",
     ev.ProbeFailed, "protocol"),
    ("getvar:product", ENDLESS, CommandLimits(deadline=0.3, max_info_lines=0), "deadline",
     ev.ProbeFailed, "timeout"),
    ("data", ENDLESS, CommandLimits(deadline=0.3, max_info_lines=0), "deadline",
     ev.UploadFailed, "timeout"),
    ("boot", VERBOSE_HUNG, CommandLimits(max_info_lines=200), "info_lines",
     ev.BootFailed, "protocol"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("step", "behaviour", "limits", "limit", "failure", "kind"),
    CASES,
    ids=[f"{c[0]}-{c[3]}" for c in CASES],
)
async def test_a_limit_hit_is_journaled_and_replays(
    tmp_path: Path,
    pool: ProfilePool,
    arm64_kernel: bytes,
    step: str,
    behaviour: CommandBehaviour,
    limits: CommandLimits,
    limit: str,
    failure: type[ev.ProbeFailed | ev.UploadFailed | ev.BootFailed],
    kind: str,
) -> None:
    fajita = load_model("oneplus-fajita")
    model = msgspec.structs.replace(fajita, behaviour={step: behaviour})
    recorded = await record_session(
        tmp_path, pool, arm64_kernel, model=model, wait_for_device_s=2.0, limits=limits
    )
    assert recorded.state == "failed"
    journal = read_journal(recorded.path)
    bodies = [r.body for r in journal.records]
    hits = [b for b in bodies if isinstance(b, ev.FastbootLimitHit)]
    assert hits, "no FastbootLimitHit journaled"
    command = {"data": "download:", "boot": "boot"}.get(step, step)
    for hit in hits:
        assert hit.limit == limit and hit.command.startswith(command)
        assert hit.allowed == (limits.deadline if limit == "deadline" else limits.max_info_lines)
        if limit == "info_lines":
            assert hit.info_lines == limits.max_info_lines
        following = bodies[bodies.index(hit) + 1]
        assert isinstance(following, failure) and following.kind == kind
        assert hit.command in following.message

    redriven = replay_journal(journal)
    assert redriven.ok, redriven
    rerun = await reexecute_transcript(journal, pool, image=recorded.image)
    assert rerun.ok, rerun
    assert rerun.events >= len(hits) * 2
