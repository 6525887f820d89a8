"""Events: everything that reaches a session from outside, as typed, versioned values.

The session machine is a pure fold over these. Each event type is a frozen
``msgspec.Struct`` in one tagged union (tag field ``type``), and carries a schema
``VERSION``: when a type's fields change incompatibly, bump it and register an upcaster in
:mod:`fastboop.journal.schema` so old journals still replay.

Two kinds of event exist, and the distinction is explicit rather than inferred:

* **control** events can change the machine's state (``DeviceArrived``, ``UploadFailed``…);
* **observations** only update counters and never change state or emit effects
  (``TransferProgress``, ``ServeStats``, ``GetvarAnswered``, ``BootloaderMessage``). They
  dominate long sessions, so the machine folds them without a trip through ``transitions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

import msgspec

from fastboop.transports.base import DeviceAddress

if TYPE_CHECKING:  # the artifact stack is heavy; events only copy three of its options
    from fastboop.artifact.open import ArtifactOptions


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event. ``VERSION`` is the schema version of the concrete type."""

    VERSION: ClassVar[int] = 1
    OBSERVATION: ClassVar[bool] = False


class RootfsVolumes(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Which volumes of the rootfs artifact the user named (``--partition``,
    ``--boot-partition``, ``--boot-profile``; ``None``: fastboop's guess).

    They pick the bytes the phone is served: two partitions of one disk image may have the
    same size, so the export's geometry cannot tell them apart. The machine ignores them;
    they travel in :class:`SessionConfig` so a replay re-serves the very volume the session
    served. Journals written before they were recorded read as all guesses.
    """

    partition: str | None = None
    boot_partition: str | None = None
    boot_profile: str | None = None

    @classmethod
    def chosen_in(cls, options: ArtifactOptions) -> RootfsVolumes:
        """The volume choices of the options the session's export is opened with."""
        return cls(partition=options.partition, boot_partition=options.boot_partition,
                   boot_profile=options.boot_profile)  # fmt: skip


class SessionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the machine's decisions depend on besides events.

    It travels inside :class:`SessionStarted`, so a replay re-drives the machine with the
    very configuration the recorded session had.
    """

    rootfs: str
    device_profile: str | None = None
    transports: tuple[str, ...] = ("usb",)
    wait_for_device_s: float = 0.0  # 0 = wait forever
    probe_timeout_s: float = 30.0
    build_timeout_s: float = 600.0
    upload_timeout_s: float = 600.0
    boot_timeout_s: float = 60.0
    gadget_timeout_s: float = 60.0
    serve_duration_s: float = 0.0  # 0 = serve until stopped
    max_attempts: int = 3
    gadget_reconnect_timeout_s: float = 30.0
    # Serve-only sessions (``fastboop serve``) skip fastboot: the phone was booted already
    # and ``serve_gadget`` describes the gadget to wait for (VID/PID/serial).
    serve_gadget: DeviceAddress | None = None
    # Per fastboot command (0 = no limit): how long it may keep the host waiting, and how
    # many INFO/TEXT lines it may send (fastboop.fastboot.limits). Journals written before
    # these existed read with the defaults, which no recorded session came near.
    fastboot_deadline_s: float = 120.0
    fastboot_max_info_lines: int = 1000
    volumes: RootfsVolumes = RootfsVolumes()


class ProfileMismatch(msgspec.Struct, frozen=True, kw_only=True):
    """Why one profile did not match: its first failing probe step."""

    profile: str
    step: str
    expected: str
    actual: str


# --- session ------------------------------------------------------------------------------


class SessionStarted(Event, frozen=True, tag="session_started"):
    """The first event of every session: ``config`` is what the machine decides by
    besides events, so a replay starts from the same place."""

    config: SessionConfig


class CancelRequested(Event, frozen=True, tag="cancel_requested"):
    """Someone asked the session to stop (Ctrl-C, the UI, an embedding app):
    every active state takes it and winds down cleanly."""

    reason: str = "cancelled by user"


class TimerFired(Event, frozen=True, tag="timer_fired"):
    """A timer the machine started ran out; ``timer_id`` tells a stale firing, of a
    timer since cancelled or restarted under the same ``name``, apart."""

    name: str
    timer_id: int


# --- detection and probing ----------------------------------------------------------------


class DeviceArrived(Event, frozen=True, tag="device_arrived"):
    """A device in fastboot mode appeared on a watched bus or address."""

    device: DeviceAddress


class DeviceLeft(Event, frozen=True, tag="device_left"):
    """A device seen before is gone from the bus (unplugged, or rebooted)."""

    device: DeviceAddress


class GetvarAnswered(Event, frozen=True, tag="getvar_answered"):
    """One probe getvar's answer: ``value`` on OKAY, ``failure`` (the device's
    message) on FAIL. An observation: journaled for replay and ``detect``, never a
    transition."""

    OBSERVATION: ClassVar[bool] = True
    name: str
    value: str | None = None
    failure: str | None = None


class ProbeFinished(Event, frozen=True, tag="probe_finished"):
    """The probe ran to the end; ``matched`` lists every profile that matched."""

    matched: tuple[str, ...]
    mismatches: tuple[ProfileMismatch, ...] = ()


class ProbeFailed(Event, frozen=True, tag="probe_failed"):
    """The probe could not run (I/O error, timeout): not a mismatch."""

    kind: str
    message: str


# --- build --------------------------------------------------------------------------------


class BuildFinished(Event, frozen=True, tag="build_finished"):
    """The boot image is built. ``inputs`` records what went into it that the journal
    cannot derive: kernel version, DTB, module list, and the host clock reading that
    ``systemd.clock_usec`` carries (replay.md §5.2)."""

    image_sha256: str
    image_size: int
    summary: str = ""
    inputs: dict[str, str] = {}


class BuildFailed(Event, frozen=True, tag="build_failed"):
    """The boot image could not be built; ``message`` says what was wrong and where."""

    message: str


# --- upload and boot ----------------------------------------------------------------------


class TransferProgress(Event, frozen=True, tag="transfer_progress"):
    """Bytes of the upload sent so far, of ``total`` (an observation, for progress bars)."""

    OBSERVATION: ClassVar[bool] = True
    sent: int
    total: int


class BootloaderMessage(Event, frozen=True, tag="bootloader_message"):
    """An INFO or TEXT line the bootloader printed."""

    OBSERVATION: ClassVar[bool] = True
    text: str


class FastbootLimitHit(Event, frozen=True, tag="fastboot_limit_hit"):
    """A bootloader ran into one of the client's per-command limits (issue 10 §4).

    ``limit`` is ``deadline`` (``allowed`` seconds passed without a final status) or
    ``info_lines`` (more than ``allowed`` INFO/TEXT lines); ``info_lines`` is how many the
    command had accepted. The probe, upload or boot failure that follows says the rest.
    """

    OBSERVATION: ClassVar[bool] = True
    command: str
    limit: Literal["deadline", "info_lines"]
    allowed: float
    info_lines: int


class UploadAccepted(Event, frozen=True, tag="upload_accepted"):
    """The bootloader took the whole ``download`` of ``size`` bytes."""

    size: int


class UploadFailed(Event, frozen=True, tag="upload_failed"):
    """The ``download`` did not complete; ``kind`` lets the machine tell a retryable
    timeout from a refusal."""

    kind: str  # fastboot error kind: bad_argument, transport, timeout, protocol, device_fail
    message: str


class BootAccepted(Event, frozen=True, tag="boot_accepted"):
    """The bootloader answered OKAY to ``boot``: the kernel is starting from RAM."""

    pass


class BootFailed(Event, frozen=True, tag="boot_failed"):
    """The bootloader refused ``boot`` or the command failed; ``kind`` as in UploadFailed."""

    kind: str
    message: str


# --- gadget and serving -------------------------------------------------------------------


class GadgetFound(Event, frozen=True, tag="gadget_found"):
    """The booted phone's smoo gadget is on the bus and claimed: serving starts.

    The gadget's smoo session id is not known yet: it arrives with the handshake, in the
    smoo host's ``Connected`` event. Journals written when this carried an always-zero
    ``session_id`` still read (unknown fields are ignored).
    """

    device: DeviceAddress


class GadgetLost(Event, frozen=True, tag="gadget_lost"):
    """The gadget went away while serving without shutting down (a cable, a reset):
    the machine waits for it to come back."""

    reason: str


class ServeStats(Event, frozen=True, tag="serve_stats"):
    """The smoo host's counters so far for this serve (I/Os, bytes the phone read and
    wrote, requests in flight): an observation, for progress lines and the UI."""

    OBSERVATION: ClassVar[bool] = True
    ios: int
    bytes_read: int
    bytes_written: int
    in_flight: int = 0
    in_flight_peak: int = 0


class ConsoleOutput(Event, frozen=True, tag="console_output"):
    """Bytes the phone wrote to its USB serial console (CDC-ACM, ``--serial-console``):
    stage0 forwards the kernel log there, a getty takes over after switch_root.

    Raw bytes, as they arrived, batched. The journal keeps the first 1 MiB of a session's
    console (``fastboop.runtime.session.CONSOLE_JOURNAL_LIMIT``); past that it records only
    how many bytes came (``omitted``), so a phone left logging for days cannot fill the
    disk, while live watchers still get every byte.
    """

    OBSERVATION: ClassVar[bool] = True
    data: bytes
    omitted: int = 0
    #: The bulk-IN endpoint the bytes came from (0x81-0x8F), as the gadget's descriptors
    #: name it; ``None`` when no USB endpoint was read (the in-process simulated phone) or
    #: the journal predates it: the pcap export then assumes stage0's usual 0x83.
    endpoint: Annotated[int, msgspec.Meta(ge=0x81, le=0x8F)] | None = None


class ServeEnded(Event, frozen=True, tag="serve_ended"):
    """Serving is over as it should be (the phone shut the gadget down, or the serve
    time ran out)."""

    reason: str


class ServeFailed(Event, frozen=True, tag="serve_failed"):
    """Serving could not go on (the rootfs could not be opened, the smoo session
    failed): the session fails with ``message``."""

    message: str


EVENT_TYPES: tuple[type[Event], ...] = (
    SessionStarted,
    CancelRequested,
    TimerFired,
    DeviceArrived,
    DeviceLeft,
    GetvarAnswered,
    ProbeFinished,
    ProbeFailed,
    BuildFinished,
    BuildFailed,
    TransferProgress,
    BootloaderMessage,
    FastbootLimitHit,
    UploadAccepted,
    UploadFailed,
    BootAccepted,
    BootFailed,
    GadgetFound,
    GadgetLost,
    ServeStats,
    ConsoleOutput,
    ServeEnded,
    ServeFailed,
)

AnyEvent = (
    SessionStarted
    | CancelRequested
    | TimerFired
    | DeviceArrived
    | DeviceLeft
    | GetvarAnswered
    | ProbeFinished
    | ProbeFailed
    | BuildFinished
    | BuildFailed
    | TransferProgress
    | BootloaderMessage
    | FastbootLimitHit
    | UploadAccepted
    | UploadFailed
    | BootAccepted
    | BootFailed
    | GadgetFound
    | GadgetLost
    | ServeStats
    | ConsoleOutput
    | ServeEnded
    | ServeFailed
)
