"""Record a session, then replay and inspect its journal from code.

Every session can write a journal: each event and effect in order, with the raw fastboot
and smoo bytes. ``fastboop.replay_file(path)`` re-drives a fresh state machine from it — no
phone, no clock — and reports the first divergence, if any; ``fastboop.read_journal``
gives the records themselves, for a timeline or a bug report.
Run: python docs/examples/replay_programmatically.py ROOTFS
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio

import fastboop
from fastboop.events import Event
from fastboop.journal import Outcome
from fastboop.replay import ReplayReport, state_at


async def main(rootfs: str) -> tuple[ReplayReport, fastboop.SessionSnapshot]:
    with tempfile.TemporaryDirectory() as scratch:
        journal = Path(scratch) / "session.fbj"
        async with fastboop.SimulatedPhone("oneplus-fajita") as phone:
            await fastboop.boot(rootfs, device_profile="oneplus-fajita", devices=phone,
                                gadgets=phone, journal=journal, serve_duration=1.0)

        report = fastboop.replay_file(journal)  # re-drive: same effects, same final state?
        print(report.summary())

        recorded = fastboop.read_journal(journal)
        events = [r for r in recorded.records if isinstance(r.body, Event)]
        print(f"{len(events)} events, first {type(events[0].body).__name__}")
        outcome = recorded.records[-1].body
        assert isinstance(outcome, Outcome)
        print("ended", outcome.snapshot.state, "-", outcome.snapshot.outcome)

        uploaded = next(r.seq for r in events if r.body.__class__.__name__ == "UploadAccepted")
        _, snapshot = state_at(recorded, uploaded)  # the machine right after the upload
        print(f"after record {uploaded}: {snapshot.state}, {snapshot.bytes_sent} bytes sent")
        return report, snapshot


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
