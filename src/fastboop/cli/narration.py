"""What a person is told about a running session, as text and numbers, without a terminal.

:class:`SessionNarrator` folds the session's events into what the boot screen shows: one
line per thing that happened (found, identified, built, uploaded…), the phase the session
is in with its deadline, the upload's rate and ETA, and the serving line's IOPS,
throughput, bytes served and reconnects. It reads the clock it is given, never the
terminal, so :mod:`fastboop.cli.screen` can render it live (rich), as plain lines or as
JSON log records, and tests can drive it with a fake clock.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable

from fastboop import events as ev
from fastboop.console.log import ConsoleLog
from fastboop.machines.session import SessionSnapshot
from fastboop.transports.base import DeviceAddress

Clock = Callable[[], float]

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
RATE_WINDOW_S = 3.0
MIN_SPAN_S = 0.2


def binary_size(count: float) -> str:
    """``31.2 MiB``: bytes in binary units, as the boot screen prints them."""
    value = float(count)
    for unit in UNITS:
        if abs(value) < 1024 or unit == UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def per_second(rate: float | None) -> str:
    return "? B/s" if rate is None else f"{binary_size(rate)}/s"


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``: a countdown or ETA."""
    whole = max(0, round(seconds))
    if whole < 100:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60:02d} s"


def quote(value: str | None) -> str:
    """A device answer in double quotes, so padding, NULs and empty values show."""
    return "no answer" if value is None else json.dumps(value, ensure_ascii=False)


class Announcement(str):
    """A line that only announces a wait; a live display shows the wait itself instead."""

    __slots__ = ()


class RateMeter:
    """Rate of a growing counter over the last few seconds."""

    def __init__(self, clock: Clock, window: float = RATE_WINDOW_S):
        self._clock = clock
        self._window = window
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, value: float) -> None:
        now = self._clock()
        self._samples.append((now, value))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Units per second, decaying to 0 when the counter stops growing; ``None`` until
        the samples span enough time to say."""
        if len(self._samples) < 2:
            return None
        first_t, first_v = self._samples[0]
        last_t, last_v = self._samples[-1]
        span = max(self._clock(), last_t) - first_t
        return (last_v - first_v) / span if span >= MIN_SPAN_S else None

    def reset(self) -> None:
        self._samples.clear()


class Wait:
    """A wait with an optional deadline (``seconds == 0``: no limit)."""

    def __init__(self, what: str, seconds: float, clock: Clock):
        self.what = what
        self.seconds = seconds
        self._clock = clock
        self.started = clock()

    def remaining(self) -> float | None:
        if self.seconds <= 0:
            return None
        return max(0.0, self.seconds - (self._clock() - self.started))

    def elapsed(self) -> float:
        return self._clock() - self.started

    def status(self) -> str:
        left = self.remaining()
        if left is None:
            return f"{self.what} ({duration(self.elapsed())}, no time limit)"
        return f"{self.what} ({duration(left)} left)"


class Upload:
    def __init__(self, total: int, clock: Clock):
        self.total = total
        self.sent = 0
        self._clock = clock
        self.started = clock()
        self.meter = RateMeter(clock)
        self.meter.add(0)

    def update(self, sent: int) -> None:
        self.sent = sent
        self.meter.add(sent)

    def rate(self) -> float | None:
        return self.meter.rate()

    def eta(self) -> float | None:
        rate = self.rate()
        return (self.total - self.sent) / rate if rate else None

    def figures(self) -> str:
        """``25% 4.0 MiB of 15.5 MiB, 16.7 MiB/s, ETA 1 s``"""
        pct = 100 * self.sent // self.total if self.total else 100
        eta = self.eta()
        return (
            f"{pct:3d}% {binary_size(self.sent)} of {binary_size(self.total)}, "
            f"{per_second(self.rate())}, ETA {duration(eta) if eta is not None else '?'}"
        )

    def line(self) -> str:
        return f"uploading {self.figures()}"


class Serving:
    """The serving line's numbers (smoo stats arrive about once a second)."""

    def __init__(self, clock: Clock):
        self.connected = False
        self.connections = 0
        self.stats = ev.ServeStats(ios=0, bytes_read=0, bytes_written=0)
        self.ios = RateMeter(clock)
        self.bytes = RateMeter(clock)

    @property
    def reconnects(self) -> int:
        return max(0, self.connections - 1)

    def line(self) -> str:
        state = "connected" if self.connected else "waiting for the gadget"
        stats = self.stats
        iops = self.ios.rate()
        return (
            f"serving: {state}, {'?' if iops is None else f'{iops:,.0f}'} IOPS, "
            f"{per_second(self.bytes.rate())}, "
            f"{binary_size(stats.bytes_read + stats.bytes_written)} served, "
            f"{self.reconnects} reconnect{'s' if self.reconnects != 1 else ''}"
        )


class SessionNarrator:
    """Folds events into lines and live numbers; see the module docstring."""

    def __init__(self, clock: Clock = time.monotonic):
        self._clock = clock
        self.config: ev.SessionConfig | None = None
        self.phase = "starting"
        self.wait: Wait | None = None
        self.upload: Upload | None = None
        self.serving: Serving | None = None
        self.serial: str | None = None
        self.device: str | None = None
        self.profile: str | None = None
        self._pending_failure: str | None = None
        self._phase_started = clock()
        self.console = ConsoleLog()  # the phone's serial console (--serial-console)

    def elapsed_in_phase(self) -> float:
        return self._clock() - self._phase_started

    def _enter(self, phase: str, wait: Wait | None = None) -> None:
        self.phase = phase
        self.wait = wait
        self._phase_started = self._clock()

    def lines(self, event: ev.AnyEvent) -> list[str]:
        """Update the state; return the lines this event is worth (often none)."""
        out: list[str] = []
        if self._pending_failure is not None and not event.OBSERVATION:
            # The session carried on after a failed step: it is retrying.
            out.append(f"{self._pending_failure}; trying again")
            self._pending_failure = None
        out += self._describe(event)
        return out

    def _describe(self, event: ev.AnyEvent) -> list[str]:
        cfg = self.config
        if isinstance(event, ev.SessionStarted):
            self.config = cfg = event.config
            if cfg.serve_gadget is not None:
                what = f"waiting for the smoo gadget {describe_ids(cfg.serve_gadget)}"
                self._enter("gadget", Wait(what, cfg.gadget_timeout_s, self._clock))
                return [Announcement(what)]
            where = ", ".join(cfg.transports)
            self._enter("device", Wait(f"waiting for a fastboot device ({where})",
                                       cfg.wait_for_device_s, self._clock))  # fmt: skip
            seconds = cfg.wait_for_device_s
            limit = f"up to {duration(seconds)}" if seconds > 0 else "no time limit"
            return [Announcement(f"waiting for a fastboot device on {where} ({limit})")]
        if isinstance(event, ev.DeviceArrived):
            d = event.device
            self.device = f"{d.transport} {d.location}"
            self.serial = d.serial
            ids = f" [{d.vid:04x}:{d.pid:04x}]" if d.vid is not None and d.pid is not None else ""
            serial = f" serial {d.serial}" if d.serial else ""  # TCP/UDP: known after getvar
            self._enter("probe")
            return [f"found {d.transport} device {d.location}{ids}{serial}"]
        if isinstance(event, ev.DeviceLeft):
            if self.phase in ("boot", "gadget", "serve"):
                return []  # a booted phone leaves fastboot mode: expected, not news
            return [f"device left: {event.device.transport} {event.device.location}"]
        if isinstance(event, ev.GetvarAnswered):
            if event.name == "serialno" and event.value:
                self.serial = event.value
            answer = quote(event.value) if event.failure is None else f"FAIL {event.failure}"
            return [f"  getvar {event.name}: {answer}"]
        if isinstance(event, ev.ProbeFinished):
            return self._probe_finished(event)
        if isinstance(event, ev.BuildFinished):
            self._enter("upload")
            self.upload = Upload(event.image_size, self._clock)  # it starts right away
            head = f"built boot image: {binary_size(event.image_size)}, " \
                   f"sha256 {event.image_sha256[:16]}"  # fmt: skip
            return [f"{head}; {event.summary}" if event.summary else head]
        if isinstance(event, ev.TransferProgress):
            if self.upload is None or event.total != self.upload.total or \
                    event.sent < self.upload.sent:  # fmt: skip
                self.upload = Upload(event.total, self._clock)  # a retry starts over
                self._enter("upload")
            self.upload.update(event.sent)
            return []
        if isinstance(event, ev.BootloaderMessage):
            return [f"(bootloader) {event.text}"]
        if isinstance(event, ev.UploadAccepted):
            took = self._clock() - self.upload.started if self.upload else 0.0
            rate = f", {binary_size(event.size / took)}/s" if took and took > 0.05 else ""
            self.upload = None
            self._enter("boot")
            return [f"uploaded {binary_size(event.size)} to RAM in {took:.1f} s{rate}"]
        if isinstance(event, ev.BootAccepted):
            seconds = cfg.gadget_timeout_s if cfg else 0.0
            self._enter("gadget", Wait("booting; waiting for stage0 to come back on USB",
                                       seconds, self._clock))  # fmt: skip
            limit = f"up to {duration(seconds)}" if seconds > 0 else "with no time limit"
            return [Announcement(f"booting; waiting {limit} for stage0 to come back on USB")]
        if isinstance(event, ev.GadgetFound):
            serving = self.serving = self.serving or Serving(self._clock)
            serving.connected = True
            serving.connections += 1
            serving.ios.add(serving.stats.ios)  # rates count from the connection on
            serving.bytes.add(serving.stats.bytes_read + serving.stats.bytes_written)
            self._enter("serve")
            d = event.device
            where = f"{d.transport} {d.location} {describe_ids(d)}"
            if serving.connections > 1:
                return [f"smoo gadget reconnected: {where}; serving again"]
            return [f"smoo gadget connected: {where}; serving the rootfs (Ctrl-C stops)"]
        if isinstance(event, ev.ServeStats):
            serving = self.serving = self.serving or Serving(self._clock)
            serving.stats = event
            serving.ios.add(event.ios)
            serving.bytes.add(event.bytes_read + event.bytes_written)
            return []
        if isinstance(event, ev.GadgetLost):
            seconds = cfg.gadget_reconnect_timeout_s if cfg else 0.0
            if self.serving is not None:
                self.serving.connected = False
                self.serving.ios.reset()
                self.serving.bytes.reset()
            self._enter("gadget", Wait("waiting for the smoo gadget to come back", seconds,
                                       self._clock))  # fmt: skip
            return [f"smoo gadget disconnected ({event.reason}); waiting for it to come back"]
        if isinstance(event, ev.ConsoleOutput):
            return [f"console: {line}" for line in self.console.feed(event.data)]
        if isinstance(event, ev.CancelRequested):
            return [f"stopping: {event.reason}"]
        if isinstance(event, ev.ProbeFailed | ev.UploadFailed | ev.BootFailed):
            self._pending_failure = f"{_step(event)} failed: {event.kind}: {event.message}"
            return []
        if isinstance(event, ev.BuildFailed | ev.ServeFailed):
            self._pending_failure = f"{_step(event)} failed: {event.message}"
            return []
        return []

    def _probe_finished(self, event: ev.ProbeFinished) -> list[str]:
        serial = f" (serial {self.serial})" if self.serial else ""
        if len(event.matched) == 1:
            self.profile = event.matched[0]
            self._enter("build")
            return [f"identified as {event.matched[0]}{serial}"]
        if event.matched:
            return [f"several profiles match{serial}: {', '.join(event.matched)}"]
        lines = [f"no device profile matches {self.device or 'the device'}{serial}; skipped:"]
        lines += [
            f"  {m.profile}: {m.step}: expected {_quoted(m.expected)}, got {_quoted(m.actual)}"
            for m in event.mismatches
        ]
        cfg = self.config
        where = ", ".join(cfg.transports) if cfg else "usb"
        self._enter("device", Wait(f"waiting for a fastboot device ({where})",
                                   cfg.wait_for_device_s if cfg else 0, self._clock))  # fmt: skip
        return lines

    def status(self) -> str | None:
        """The live line for the current phase (``None`` while nothing is pending)."""
        if self.phase == "upload" and self.upload is not None:
            return self.upload.line()
        if self.phase == "serve" and self.serving is not None:
            return self.serving.line()
        if self.wait is not None:
            return self.wait.status()
        what = {"probe": "identifying the device", "build": "building the boot image",
                "boot": "booting", "upload": "uploading"}.get(self.phase)  # fmt: skip
        return f"{what} ({duration(self.elapsed_in_phase())})" if what else None


def describe_ids(address: DeviceAddress) -> str:
    """``[18d1:d00d] serial abc``, with ``*`` for what is not known or not asked for."""
    vid = f"{address.vid:04x}" if address.vid is not None else "*"
    pid = f"{address.pid:04x}" if address.pid is not None else "*"
    return f"[{vid}:{pid}] serial {address.serial or '*'}"


def _step(event: ev.AnyEvent) -> str:
    return {
        ev.ProbeFailed: "identifying the device",
        ev.UploadFailed: "upload",
        ev.BootFailed: "boot",
        ev.BuildFailed: "build",
        ev.ServeFailed: "serving",
    }.get(type(event), type(event).__name__)


def _quoted(text: str) -> str:
    """Mismatch values are always quoted; ``FAIL …`` (no value at all) stays bare."""
    if text.startswith("FAIL") or (text.startswith('"') and text.endswith('"')):
        return text
    return quote(text)


def result_line(result: SessionSnapshot) -> str:
    return f"session {result.state}: {result.outcome}" if result.outcome else \
        f"session {result.state}"  # fmt: skip
