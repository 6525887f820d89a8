"""``/etc/stage0/<key>`` settings and kernel cmdline composition (stage0.md §5, §6).

The host builds one "extra cmdline" string from its inputs, then sorts each token: keys
the stage0 PID1 understands become settings files in the initramfs (and leave the
kernel cmdline), everything else passes through to the kernel. Pure functions: the
clock and host locale are inputs, so tests and replays are deterministic.
"""

from __future__ import annotations

import re

import msgspec

from fastboop.errors import UsageError

SETTING_KEYS = frozenset(
    {
        "stage0.rootfs", "stage0.serial", "stage0.fb", "stage0.yeetfstab", "ostree",
        "smoo.acm", "smoo.break", "smoo.queue_count", "smoo.queue_depth", "smoo.queue_size",
        "smoo.max_io_bytes", "smoo.max_io", "smoo.vendor", "smoo.vendor_id", "smoo.product",
        "smoo.product_id", "smoo.mimic_fastboot", "smoo.log", "firstboot.locale",
        "firstboot.locale-messages", "firstboot.keymap", "firstboot.timezone",
        "smoo.host_timeout",  # project addition: the PID1's wait for the host, in seconds
        "stage0.subvol",  # project addition: the btrfs subvolume that is the root
        "stage0.on_failure",  # project addition: what PID1 does after a fatal error
        "stage0.loop",  # project addition: the root is this image inside the served fs
        "stage0.loop_rootfs",  # project addition: and this is its filesystem
    }
)  # fmt: skip
BARE_FLAGS = frozenset({"stage0.fb", "stage0.yeetfstab", "smoo.acm", "smoo.mimic_fastboot"})
FIRSTBOOT_KEYS = (
    "firstboot.locale",
    "firstboot.locale-messages",
    "firstboot.keymap",
    "firstboot.timezone",
)
DEFAULT_MAX_IO = 1048576
#: ``smoo.host_timeout`` bounds, as stage0's config.c checks them (it keeps its 30 s default
#: for anything else): PID1's wait for the host to finish the smoo handshake (§8.2 step 13).
HOST_TIMEOUT_DEFAULT_S = 30
HOST_TIMEOUT_MAX_S = 86400
ROOTFS_KINDS = ("erofs", "ext4", "btrfs", "squashfs", "iso9660")
#: ``stage0.loop`` images stacked at most (config.c's LOOP_MAX_IMAGES).
LOOP_MAX_IMAGES = 8
#: ``stage0.on_failure`` values, as stage0's config.c accepts them; the default is the first.
FAILURE_ACTIONS = ("bootloader", "restart", "panic")


class Firstboot(msgspec.Struct, frozen=True):
    """Host locale facts handed to systemd-firstboot on the device."""

    locale: str = "en_US.UTF-8"
    locale_messages: str = "en_US.UTF-8"
    keymap: str = "us"
    timezone: str = "UTC"

    def as_settings(self) -> dict[str, str]:
        return dict(zip(FIRSTBOOT_KEYS, (self.locale, self.locale_messages, self.keymap,
                                         self.timezone), strict=True))  # fmt: skip


class HostFacts(msgspec.Struct, frozen=True):
    """What fastboop learned about the device and host (fastboot IDs, clock, locale)."""

    usb_vid: int | None = None
    usb_pid: int | None = None
    usb_serial: str | None = None
    clock_usec: int | None = None
    firstboot: Firstboot = Firstboot()


class CmdlineOptions(msgspec.Struct, frozen=True):
    """User and profile choices that shape settings and the cmdline (CLI flags)."""

    serial: bool = False
    mimic_fastboot: bool = True
    system_time: bool = True
    systemd_firstboot: bool = True
    smoo_queue_count: int | None = None
    smoo_queue_depth: int | None = None
    smoo_max_io: int = DEFAULT_MAX_IO
    smoo_host_timeout: int | None = None  # seconds; None: stage0's default (30 s)
    ostree_deployment: str | None = None
    profile_extra_cmdline: str = ""
    device_extra_cmdline: str = ""
    cmdline_append: str = ""
    device_cmdline_append: str = ""  # the device profile's cmdline_append (§6.4)


class Composed(msgspec.Struct, frozen=True):
    extra: str  # the §6.1 string
    settings: dict[str, str]  # sorted by key
    stage0_cmdline: str  # §6.4 stage0 part
    cmdline: str  # device profile cmdline_append + stage0 part


def parse_size(text: str) -> int:
    """``--smoo-max-io`` values: bytes, or k/kb/kib, m/mb/mib, g/gb/gib (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg](?:i?b)?)?\s*", text.lower())
    if not match:
        raise UsageError(f"bad size {text!r}", hint="use e.g. 1048576, 512k or 1m")
    value = int(match.group(1))
    unit = (match.group(2) or " ")[0]
    return value * {" ": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


def check_host_timeout(seconds: int) -> int:
    """Reject a ``smoo.host_timeout`` the device would ignore: stage0 would warn and keep
    its 30 s default, so the user's intent would be lost silently on the phone."""
    if not 1 <= seconds <= HOST_TIMEOUT_MAX_S:
        raise UsageError(
            f"smoo host timeout {seconds} s out of range",
            hint=f"use 1 to {HOST_TIMEOUT_MAX_S} seconds; stage0's default is "
            f"{HOST_TIMEOUT_DEFAULT_S}",
        )
    return seconds


def extra_cmdline(options: CmdlineOptions, host: HostFacts) -> str:
    """The §6.1 "extra cmdline" string, in its fixed order."""
    parts: list[str] = []
    if options.ostree_deployment:
        parts.append(f"ostree=/{options.ostree_deployment.lstrip('/')}")
    profile = " ".join(
        p.strip() for p in (options.profile_extra_cmdline, options.device_extra_cmdline)
        if p.strip()
    )  # fmt: skip
    parts += [p for p in (profile, options.cmdline_append.strip()) if p]
    if options.system_time and host.clock_usec is not None:
        parts.append(f"systemd.clock_usec={host.clock_usec}")
    if options.smoo_queue_count is not None:
        parts.append(f"smoo.queue_count={options.smoo_queue_count}")
    if options.smoo_queue_depth is not None:
        parts.append(f"smoo.queue_depth={options.smoo_queue_depth}")
    if options.smoo_host_timeout is not None:
        parts.append(f"smoo.host_timeout={check_host_timeout(options.smoo_host_timeout)}")
    parts.append(f"smoo.max_io_bytes={options.smoo_max_io}")
    return " ".join(parts)


def classify(extra: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Split tokens into setting writes (``None`` = drop) and pass-through tokens (§6.2)."""
    writes: list[tuple[str, str | None]] = []
    passthrough: list[str] = []
    for token in extra.split():
        key, eq, value = token.partition("=")
        if eq and key in SETTING_KEYS:
            writes.append((key, value or None))
        elif not eq and token in BARE_FLAGS:
            writes.append((token, "1"))
        elif key == "systemd.set_credential" and eq:
            cred, colon, cvalue = value.partition(":")
            if colon and cred in FIRSTBOOT_KEYS:
                writes.append((cred, cvalue or None))
            else:
                passthrough.append(token)
        else:
            passthrough.append(token)
    return writes, passthrough


def compose(
    rootfs_kind: str,
    options: CmdlineOptions,
    host: HostFacts,
    *,
    subvol: str | None = None,
    loop: tuple[str, str] | None = None,
) -> Composed:
    """Settings map and kernel cmdline with the §6.3 precedence.

    ``subvol`` (a btrfs root inside a subvolume, e.g. Fedora's ``root``) is written as
    ``stage0.subvol`` together with ``stage0.rootfs``, last: both describe the served
    bytes, which the artifact decides, not a cmdline token. So is ``loop``, ``(paths,
    filesystem)`` of the root image inside the served filesystem (Fedora's older live media:
    ``LiveOS/rootfs.img``, ext4, inside squashfs), or of a ``:``-separated stack of them, top
    first (Ubuntu's layered squashfs in the served ISO), as ``stage0.loop``/``loop_rootfs``.
    """
    if rootfs_kind not in ROOTFS_KINDS:
        raise UsageError(f"stage0.rootfs must be one of {', '.join(ROOTFS_KINDS)}, "
                         f"not {rootfs_kind!r}")  # fmt: skip
    if loop is not None and (loop[1] not in ROOTFS_KINDS or not _valid_loop_path(loop[0])):
        raise UsageError(f"bad root image {loop[0]!r} ({loop[1]}) inside the {rootfs_kind} root",
                         hint="a relative path without '..' to an "
                              f"{'/'.join(ROOTFS_KINDS)} image")  # fmt: skip
    if subvol is not None and (rootfs_kind != "btrfs" or not _valid_subvol(subvol)):
        raise UsageError(f"bad btrfs subvolume {subvol!r} for a {rootfs_kind} root",
                         hint="a subvolume path without commas or spaces, btrfs roots only")
    extra = extra_cmdline(options, host)
    writes, passthrough = classify(extra)
    settings: dict[str, str] = {}
    if options.serial:
        settings["smoo.acm"] = "1"
    if options.mimic_fastboot:
        settings["smoo.mimic_fastboot"] = "1"
    if host.usb_vid is not None:
        settings["smoo.vendor"] = f"0x{host.usb_vid:04x}"
    if host.usb_pid is not None:
        settings["smoo.product"] = f"0x{host.usb_pid:04x}"
    if host.usb_serial and host.usb_serial.strip():
        settings["stage0.serial"] = host.usb_serial.strip()
    if options.systemd_firstboot:
        settings.update(host.firstboot.as_settings())
    for key, value in writes:
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    if settings.get("stage0.on_failure", FAILURE_ACTIONS[0]) not in FAILURE_ACTIONS:
        # stage0 would warn and reboot to the bootloader anyway: say so before the build.
        raise UsageError(f"stage0.on_failure={settings['stage0.on_failure']}: not a known "
                         "action", hint=f"use one of {', '.join(FAILURE_ACTIONS)}")
    if subvol is not None:
        settings["stage0.subvol"] = subvol
    if loop is not None:
        settings["stage0.loop"], settings["stage0.loop_rootfs"] = loop
    settings["stage0.rootfs"] = rootfs_kind
    stage0_part = " ".join(
        (["plymouth.ignore-serial-consoles"] if options.serial else []) + passthrough
    )
    cmdline = " ".join(p for p in (options.device_cmdline_append.strip(), stage0_part) if p)
    return Composed(extra, dict(sorted(settings.items())), stage0_part, cmdline)


def _valid_subvol(subvol: str) -> bool:
    """What stage0's config.c accepts: it goes into the mount data string (``subvol=``)."""
    return 0 < len(subvol.encode()) < 256 and all(0x21 <= ord(c) != 0x7F and c != ","
                                                  for c in subvol)  # fmt: skip


def _valid_loop_path(paths: str) -> bool:
    """What stage0's config.c accepts for ``stage0.loop``: up to 8 ``:``-separated relative
    paths, no empty or ``..`` components, printable."""
    images = paths.split(":")
    return (0 < len(paths.encode()) < 256 and len(images) <= LOOP_MAX_IMAGES
            and all(image and all(part not in ("", "..") for part in image.split("/"))
                    for image in images)
            and all(ord(c) >= 0x20 and ord(c) != 0x7F for c in paths))  # fmt: skip


def settings_files(settings: dict[str, str]) -> dict[str, bytes]:
    """``etc/stage0/<key>`` → ``value\\n`` for every setting."""
    return {f"etc/stage0/{k}": f"{v}\n".encode() for k, v in sorted(settings.items())}
