"""What goes into the boot image: the reference's boot-time options, as one value.

:class:`BootOptions` is what ``fastboop boot`` builds from its flags and what an embedding
program passes to :func:`fastboop.boot`; the names follow the reference's ``boot`` (``dtb``,
``dtbo``, ``augment``, ``stage0``, ``ostree``, ``smoo_queue_count``…). Paths may be ``str`` or
any ``os.PathLike``. :meth:`BootOptions.prepare` checks every named file (it exists, is a
file, is readable: one clear line each, before any device is awaited), reads it once, and
returns the payload builder a session or a build-only run uses, so both build the very
same image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastboop.errors import UsageError
from fastboop.runtime.preflight import PathArg, check_input_file

if TYPE_CHECKING:  # the builder pulls in the whole build stack; load it when used
    from fastboop.artifact.open import ArtifactOptions
    from fastboop.backends.payload import Stage0PayloadBuilder

DEFAULT_SMOO_MAX_IO = 1 << 20


@dataclass(frozen=True, kw_only=True)
class BootOptions:
    """Choices about the boot image and stage0; every field is optional.

    ``dtb``/``dtbo``/``augment``/``stage0``/``abl_exorcist`` are files; ``ostree`` is
    ``"auto"`` or a deployment path; ``require_modules`` adds modules (and their
    dependencies) to stage0; ``partition``/``boot_partition``/``kernel_version`` override
    which volume is the root, which is ``/boot`` and which kernel is booted;
    ``boot_profile`` picks one of a channel's boot profiles by id;
    ``cmdline_append`` extra kernel arguments; ``serial_console`` a USB serial console
    (CDC-ACM); ``impersonate_fastboot`` lets the gadget present fastboot's USB ids so
    existing udev rules apply; ``system_time`` passes the host clock
    (off: a reproducible image); the ``smoo_*`` values tune stage0's block device;
    ``smoo_host_timeout`` is how long stage0 waits for this host, in seconds.
    """

    dtb: PathArg | None = None
    dtbo: Sequence[PathArg] = ()
    augment: PathArg | None = None
    stage0: PathArg | None = None
    ostree: str | None = None
    abl_exorcist: PathArg | None = None
    require_modules: Sequence[str] = ()
    partition: str | None = None
    boot_partition: str | None = None
    kernel_version: str | None = None
    boot_profile: str | None = None
    cmdline_append: str = ""
    serial_console: bool = False
    impersonate_fastboot: bool = True
    system_time: bool = True
    systemd_firstboot: bool = True
    smoo_queue_count: int | None = None
    smoo_queue_depth: int | None = None
    smoo_max_io: int = DEFAULT_SMOO_MAX_IO
    smoo_host_timeout: int | None = None
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def check(self) -> None:
        """Reject values stage0 would ignore or that cannot work, before any device."""
        from fastboop.stage0.settings import check_host_timeout

        for name in ("smoo_queue_count", "smoo_queue_depth"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 0xFFFF:
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} {value} out of range", hint="use 1 to 65535")
        if self.smoo_max_io <= 0:
            raise UsageError(f"--smoo-max-io {self.smoo_max_io} must be more than 0",
                             hint="use e.g. 1m (the default) or 512k")  # fmt: skip
        if self.smoo_host_timeout is not None:
            check_host_timeout(self.smoo_host_timeout)
        if self.ostree is not None and not self.ostree.strip():
            raise UsageError("--ostree is empty", hint="use auto or a deployment path")

    def artifact_options(self) -> ArtifactOptions:
        from fastboop.artifact.open import ArtifactOptions

        return ArtifactOptions(partition=self.partition, boot_partition=self.boot_partition,
                               kernel_version=self.kernel_version,
                               boot_profile=self.boot_profile)  # fmt: skip

    def prepare(self) -> Stage0PayloadBuilder:
        """Check everything, read the named files once, return the payload builder."""
        from fastboop.backends.payload import PayloadInputs, Stage0PayloadBuilder
        from fastboop.stage0.settings import CmdlineOptions

        self.check()

        def read(path: PathArg | None, what: str) -> bytes | None:
            if path is None:
                return None
            return check_input_file(path, what).read_bytes()

        inputs = PayloadInputs(
            dtb=read(self.dtb, "--dtb file"),
            dtb_overlays=tuple(read(path, "--dtbo file") or b"" for path in self.dtbo),
            augment=read(self.augment, "--augment cpio"),
            pid1=read(self.stage0, "--stage0 binary"),
            ostree=self.ostree,
            abl_exorcist=read(self.abl_exorcist, "--abl-exorcist shim"),
        )
        options = CmdlineOptions(
            serial=self.serial_console,
            mimic_fastboot=self.impersonate_fastboot,
            system_time=self.system_time,
            systemd_firstboot=self.systemd_firstboot,
            smoo_queue_count=self.smoo_queue_count,
            smoo_queue_depth=self.smoo_queue_depth,
            smoo_max_io=self.smoo_max_io,
            smoo_host_timeout=self.smoo_host_timeout,
            cmdline_append=self.cmdline_append,
        )
        return Stage0PayloadBuilder(
            options=options,
            extra_modules=tuple(self.require_modules),
            artifact_options=self.artifact_options(),
            clock=self.clock,
            inputs=inputs,
        )
