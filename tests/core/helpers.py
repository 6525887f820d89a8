"""Event scripts for driving the session machine in tests."""

from __future__ import annotations

from fastboop import events as ev
from fastboop.transports.base import DeviceAddress

PHONE = DeviceAddress(transport="sim", location="sim:0", vid=0x18D1, pid=0xD00D, serial="f00d")
OTHER = DeviceAddress(transport="sim", location="sim:1", vid=0x18D1, pid=0xD00D, serial="beef")
GADGET = DeviceAddress(transport="sim", location="sim:0", vid=0x18D1, pid=0xD00D, serial="f00d")


def config(**overrides: object) -> ev.SessionConfig:
    values: dict[str, object] = {"rootfs": "rootfs.ero", "serve_duration_s": 5.0}
    values.update(overrides)
    return ev.SessionConfig(**values)  # type: ignore[arg-type]


def happy_path(cfg: ev.SessionConfig | None = None) -> list[ev.AnyEvent]:
    """A whole successful session, as the runtime would feed it."""
    return [
        ev.SessionStarted(config=cfg or config()),
        ev.DeviceArrived(device=PHONE),
        ev.GetvarAnswered(name="product", value="sdm845"),
        ev.ProbeFinished(matched=("oneplus-fajita",)),
        ev.BuildFinished(image_sha256="ab" * 32, image_size=4096),
        ev.TransferProgress(sent=2048, total=4096),
        ev.TransferProgress(sent=4096, total=4096),
        ev.UploadAccepted(size=4096),
        ev.BootAccepted(),
        ev.DeviceLeft(device=PHONE),
        ev.GadgetFound(device=GADGET),
        ev.ServeStats(ios=3, bytes_read=12288, bytes_written=0),
        ev.ServeEnded(reason="stopped by user"),
    ]
