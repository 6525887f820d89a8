"""Transcript re-execution: run a session's fastboot effects again against its own bytes.

Re-driving the machine (:mod:`fastboop.replay.redrive`) proves the *decisions* replay; it
feeds recorded events in and never runs I/O code. This module checks the other half, the
code that *talks to the phone*: every recorded ``ProbeDevice``, ``UploadImage`` and
``BootImage`` effect is executed again by the real
:class:`~fastboop.backends.standard.StandardBackend` — real device profiles, real
:class:`~fastboop.fastboot.FastbootClient` — over a
:class:`~fastboop.transports.replay.ReplayTransport` that serves the recorded device
answers and asserts every host packet is byte-identical to the recorded one (replay.md
§3). The events each handler emits must equal the recorded ones, too.

The boot image itself is journaled by digest only, so uploading needs the image bytes:
pass ``image`` (checked against the recorded ``BuildFinished.image_sha256``); without it
the upload's packets are skipped and the report says so. The build is never re-run (its
inputs include a clock reading); the image digest is what ties it to the upload.

Re-execution looks ahead within each task, so it works on a :class:`Journal` in memory.
Only :func:`needed_by_transcript` records matter to it — effects, the events its tasks
emit and fastboot packets — so ``read_journal(path, keep=needed_by_transcript)`` loads a
long session without its serving phase (smoo packets, serve statistics), which is almost
all of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import takewhile

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.backends.ports import BuiltPayload
from fastboop.backends.standard import StandardBackend, fastboot_limits
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.schema import DeviceProfile
from fastboop.errors import FastboopError
from fastboop.fastboot.limits import CommandLimits
from fastboop.journal.errors import JournalFormatError
from fastboop.journal.reader import Journal
from fastboop.journal.records import Record, Wire
from fastboop.replay.compare import earliest, event_difference, transcript_difference
from fastboop.replay.redrive import CONTEXT_RECORDS, ReplayReport, Verdict, describe
from fastboop.runtime.backend import EffectContext
from fastboop.smoo.link import GadgetLink
from fastboop.transports.base import DeviceAddress, Direction, Transport, TransportError
from fastboop.transports.replay import ReplayTransport, WireTranscript

__all__ = ["ImageMismatch", "needed_by_transcript", "reexecute_transcript"]

# What each re-run handler reports, and which recorded event ends it.
_TASK_EVENTS: dict[type[fx.Effect], tuple[type[ev.Event], ...]] = {
    fx.ProbeDevice: (
        ev.GetvarAnswered, ev.BootloaderMessage, ev.FastbootLimitHit, ev.ProbeFinished,
        ev.ProbeFailed,
    ),
    fx.BuildPayload: (ev.BuildFinished, ev.BuildFailed),
    fx.UploadImage: (
        ev.BootloaderMessage, ev.TransferProgress, ev.FastbootLimitHit, ev.UploadAccepted,
        ev.UploadFailed,
    ),
    fx.BootImage: (ev.BootloaderMessage, ev.FastbootLimitHit, ev.BootAccepted, ev.BootFailed),
}  # fmt: skip
_TERMINAL = (
    ev.ProbeFinished,
    ev.ProbeFailed,
    ev.BuildFinished,
    ev.BuildFailed,
    ev.UploadAccepted,
    ev.UploadFailed,
    ev.BootAccepted,
    ev.BootFailed,
)
_FAILED = (ev.ProbeFailed, ev.UploadFailed, ev.BootFailed)
_NEEDED: tuple[type, ...] = (fx.Effect, *{k for kinds in _TASK_EVENTS.values() for k in kinds})


def needed_by_transcript(record: Record) -> bool:
    """Whether re-execution reads ``record`` (see the module docstring)."""
    body = record.body
    if isinstance(body, Wire):
        return body.channel == "fastboot"
    return isinstance(body, _NEEDED)


class ImageMismatch(FastboopError):
    """``--image`` is not the image the recorded session built and uploaded."""


class _ReplayDevices:
    """The backend's device source: every open hands out the journal's transcript."""

    def __init__(self, transcript: WireTranscript):
        self.transcript = transcript
        self.opened: list[ReplayTransport] = []
        self.timeouts = False
        self.failure: str | None = None
        self.deadline = False

    async def watch(self, on_change: object) -> None:  # pragma: no cover - never watched
        raise NotImplementedError

    async def open(self, device: DeviceAddress) -> Transport:
        if self.failure is not None and self.transcript.peek() is None:
            raise TransportError(self.failure)  # the recorded open failed: nothing was sent
        transport = ReplayTransport(
            self.transcript,
            address=device,
            timeouts=self.timeouts,
            failure=self.failure,
            deadline=self.deadline,
        )
        self.opened.append(transport)
        return transport

    def expect_ending(self, *, timeouts: bool, failure: str | None, deadline: bool) -> None:
        """How the current task's packets end: as recorded, in a timeout (a command's
        deadline, maybe) or an I/O error. Each task starts at replayed time 0."""
        self.timeouts, self.failure, self.deadline = timeouts, failure, deadline
        for transport in self.opened:
            transport.timeouts, transport.failure = timeouts, failure
            transport.deadline = deadline
            transport.restart_clock()


class _NoGadgets:
    async def find(
        self, booted: DeviceAddress
    ) -> tuple[DeviceAddress, GadgetLink]:  # pragma: no cover - never asked
        raise TransportError("transcript replay does not serve", address=booted)


class _RecordedImage:
    """The builder: hands back the given image with the recorded summary and inputs."""

    def __init__(self, image: bytes, recorded: ev.BuildFinished):
        self.image = image
        self.recorded = recorded

    def build(
        self, profile: DeviceProfile, rootfs: str, device: DeviceAddress | None = None
    ) -> BuiltPayload:
        return BuiltPayload(
            image=self.image, summary=self.recorded.summary, inputs=dict(self.recorded.inputs)
        )


def _recorded_limits(journal: Journal, started: ev.SessionStarted | None) -> CommandLimits | None:
    """The session's fastboot limits; a journal is untrusted, so they are checked here."""
    if started is None:
        return None
    try:
        return fastboot_limits(started.config)
    except ValueError as error:
        raise JournalFormatError(
            f"the recorded session's fastboot limits are impossible: {error}", where=journal.path
        ) from None


def _check_image(journal: Journal, image: bytes | None) -> ev.BuildFinished | None:
    built = [r.body for r in journal.records if isinstance(r.body, ev.BuildFinished)]
    if image is None or not built:
        return built[-1] if built else None
    digest = hashlib.sha256(image).hexdigest()
    if digest != built[-1].image_sha256:
        raise ImageMismatch(
            f"the image's sha256 is {digest[:16]}…, the session built "
            f"{built[-1].image_sha256[:16]}… ({built[-1].image_size} bytes)",
            hint="pass the boot image that session uploaded, e.g. one saved with "
            "`fastboop sim --save-boot`",
        )
    return built[-1]


def _task_span(
    records: Sequence[Record], start: int, kinds: tuple[type[ev.Event], ...]
) -> tuple[list[Record], Record | None]:
    """The recorded events a task emitted after ``records[start]``, and its last one."""
    emitted: list[Record] = []
    for record in records[start + 1 :]:
        body = record.body
        if isinstance(body, fx.ProbeDevice | fx.UploadImage | fx.BootImage | fx.BuildPayload):
            break  # the next device task started: this one was cancelled
        if isinstance(body, kinds):
            emitted.append(record)
            if isinstance(body, _TERMINAL):
                return emitted, record
    return emitted, None


class _Reexecutor:
    def __init__(self, journal: Journal, pool: ProfilePool, image: bytes | None):
        self.journal = journal
        self.records = journal.records
        self.transcript = WireTranscript(self.records, channel="fastboot")
        self.devices = _ReplayDevices(self.transcript)
        built = _check_image(journal, image)
        self.image = image
        recorded_build = built or ev.BuildFinished(image_sha256="", image_size=0)
        builder = _RecordedImage(image or b"", recorded_build)
        started = next(
            (r.body for r in self.records if isinstance(r.body, ev.SessionStarted)), None
        )
        self.backend = StandardBackend(
            devices=self.devices,
            gadgets=_NoGadgets(),
            profiles=pool,
            builder=builder,
            limits=_recorded_limits(journal, started),
        )
        self.effects = 0
        self.events = 0
        self.skipped: list[str] = []
        self.produced: list[ev.AnyEvent] = []
        self.pending_release: list[fx.ReleaseDevice] = []

    def report(self, verdict: Verdict, **fields: object) -> ReplayReport:
        seq = fields.get("seq")
        before = [r for r in self.records if not isinstance(seq, int) or r.seq < seq]
        return ReplayReport(
            verdict=verdict,
            journal=self.journal.path,
            events=self.events,
            effects=self.effects,
            final_state="transcript",
            context=[describe(r) for r in before[-CONTEXT_RECORDS:]],
            **fields,  # type: ignore[arg-type]
        )

    def diverged(self, seq: int | None, expected: str, actual: str) -> ReplayReport:
        return self.report(Verdict.NONDETERMINISM, seq=seq, expected=expected, actual=actual)

    async def run(self) -> ReplayReport:
        try:
            for index, record in enumerate(self.records):
                body = record.body
                if isinstance(body, fx.ReleaseDevice):
                    self.pending_release.append(body)  # applied before the next device task
                    continue
                if not isinstance(body, fx.Effect):
                    continue
                kinds = _TASK_EVENTS.get(type(body))
                if kinds is None:
                    continue
                problem = await self._run_effect(index, body, kinds)
                if problem is not None:
                    return problem
            await self._release_pending()
        finally:
            await self.backend.aclose()
        leftover = transcript_difference(self.transcript, before=None)
        if leftover is not None:
            return self.diverged(leftover.seq, leftover.expected, leftover.actual)
        notes = [
            f"transcript: re-ran {self.effects} fastboot effects ({self.events} events) "
            f"against {self.transcript.total} recorded packets; byte-identical"
        ]
        notes += self.skipped
        return self.report(Verdict.OK, note="; ".join(notes))

    async def _run_effect(
        self, index: int, effect: fx.Effect, kinds: tuple[type[ev.Event], ...]
    ) -> ReplayReport | None:
        recorded, last = _task_span(self.records, index, kinds)
        end_seq = last.seq if last is not None else None
        if last is None:
            # Cancelled before it finished: its packets cannot be judged; skip them.
            following = [
                r.seq
                for r in self.records[index + 1 :]
                if isinstance(r.body, fx.ProbeDevice | fx.UploadImage | fx.BootImage)
            ]
            skipped = self.transcript.skip_to(following[0] if following else 1 << 62)
            self.skipped.append(
                f"{type(effect).__name__} at #{self.records[index].seq} did not finish "
                f"when recorded; {skipped} packet(s) not re-run"
            )
            return None
        if isinstance(effect, fx.BuildPayload) and isinstance(last.body, ev.BuildFailed):
            self.skipped.append("the recorded build failed; builds are not re-run")
            return None
        if isinstance(effect, fx.BuildPayload | fx.UploadImage) and self.image is None:
            skipped = self.transcript.skip_to(end_seq) if end_seq is not None else 0
            if isinstance(effect, fx.UploadImage):
                self.skipped.append(
                    f"upload not re-run without the boot image ({skipped} packet(s) "
                    "skipped; pass --image)"
                )
            return None
        # The runtime runs ReleaseDevice as a task of its own, so the next device task can
        # win the race and reuse the old handle (its getvar cache included). The journal
        # shows which happened: answers with no packet at all came from the old client.
        reused = (
            self.pending_release
            and not any(
                isinstance(r.body, Wire) and r.body.channel == "fastboot"
                for r in takewhile(lambda r: r.seq < last.seq, self.records[index + 1 :])
            )
            and any(isinstance(r.body, ev.GetvarAnswered) for r in recorded)
        )
        if reused:
            self.skipped.append(
                f"{type(effect).__name__} at #{self.records[index].seq} reused the previous "
                "device handle (its ReleaseDevice ran late when recorded)"
            )
        else:
            await self._release_pending()
        kind = last.body.kind if isinstance(last.body, _FAILED) else None
        message = last.body.message if isinstance(last.body, _FAILED) else None
        self.devices.expect_ending(
            timeouts=kind == "timeout",
            failure=message if kind == "transport" else None,
            deadline=any(
                isinstance(r.body, ev.FastbootLimitHit) and r.body.limit == "deadline"
                for r in recorded
            ),
        )
        self.transcript.limit = last.seq
        # One event list for the whole run: the backend keeps its fastboot client (and the
        # client's INFO callback, bound to the probe's context) across effects, as it does
        # in a live session, so later effects may report through an earlier context.
        start = len(self.produced)

        def ignore_wire(channel: str, direction: Direction, data: bytes | memoryview) -> None:
            pass  # the replay transport already checks every packet

        ctx = EffectContext(self.produced.append, ignore_wire)
        try:
            await self._dispatch(effect, ctx)
        finally:
            self.transcript.limit = None
            self.devices.expect_ending(timeouts=False, failure=None, deadline=False)
        produced = self.produced[start:]
        if reused:
            await self._release_pending()
        self.effects += 1
        difference = earliest(
            transcript_difference(self.transcript, before=last.seq),
            event_difference(recorded, produced, after=last.seq, key=_comparable),
        )
        if difference is not None:
            return self.diverged(difference.seq, difference.expected, difference.actual)
        self.events += len(recorded)
        return None

    async def _release_pending(self) -> None:
        while self.pending_release:
            await self.backend.release_device(self.pending_release.pop(0))

    async def _dispatch(self, effect: fx.Effect, ctx: EffectContext) -> None:
        backend = self.backend
        if isinstance(effect, fx.ProbeDevice):
            await backend.probe_device(effect, ctx)
        elif isinstance(effect, fx.BuildPayload):
            await backend.build_payload(effect, ctx)
        elif isinstance(effect, fx.UploadImage):
            await backend.upload_image(effect, ctx)
        elif isinstance(effect, fx.BootImage):
            await backend.boot_image(effect, ctx)


def _comparable(body: object) -> object:
    """Events as compared: a build's summary and inputs are not re-derived, only its image."""
    if isinstance(body, ev.BuildFinished):
        return (body.image_sha256, body.image_size)
    return body


async def reexecute_transcript(
    journal: Journal, pool: ProfilePool, *, image: bytes | None = None
) -> ReplayReport:
    """Re-run ``journal``'s fastboot effects byte for byte; see the module docstring.

    Raises :class:`ImageMismatch` when ``image`` is not the recorded boot image.
    """
    return await _Reexecutor(journal, pool, image).run()
