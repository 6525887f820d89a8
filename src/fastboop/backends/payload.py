"""The real payload builder: rootfs image in, Android boot image out.

It ties the sans-I/O builders together: open the rootfs (any supported format), let
:func:`~fastboop.stage0.build.build_stage0` pick the kernel, DTB and module closure and
write the initramfs around the device-side PID1, encode the kernel the way the device
profile says, and lay out the boot image. What the journal cannot derive — kernel version,
DTB path, module list, the host clock that ``systemd.clock_usec`` carries — is returned as
``inputs`` so it is recorded with the build.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import msgspec

from fastboop.artifact.open import ArtifactOptions, open_artifact
from fastboop.backends.ports import BuiltPayload
from fastboop.bootimg.builder import assemble_boot_image
from fastboop.bootimg.layout import BootImageLayout, BootImageLimits
from fastboop.bootimg.shim import abl_exorcist_cmdline, wrap_with_abl_exorcist
from fastboop.devpro.bootparams import BootImageParams, boot_image_params
from fastboop.devpro.schema import DeviceProfile
from fastboop.stage0.binaries import DeviceBinaryNotFound, find_pid1, kernel_arch
from fastboop.stage0.build import build_stage0
from fastboop.stage0.settings import CmdlineOptions, HostFacts
from fastboop.transports.base import DeviceAddress

Pid1NotFound = DeviceBinaryNotFound  # the name callers knew it by


def layout_for(params: BootImageParams, arch: str) -> BootImageLayout:
    encoding = "image" if params.kernel_compression == "none" else {
        "gzip": "image.gz",
        "lz4": "image.lz4",
        "zstd": "image.zst",
    }[params.kernel_compression]
    return BootImageLayout(
        header_version=params.header_version,
        page_size=params.page_size,
        base=params.base,
        kernel_offset=params.kernel_offset,
        dtb_offset=params.dtb_offset,
        limits=BootImageLimits(
            max_kernel_bytes=params.max_kernel_bytes or 0,
            max_initrd_bytes=params.max_initrd_bytes or 0,
            max_total_bytes=params.max_total_bytes or 0,
        ),
        kernel_encoding=encoding + ("+dtb" if params.append_dtb else ""),
        arch=arch,  # type: ignore[arg-type]
    )


class PayloadInputs(msgspec.Struct, frozen=True, kw_only=True):
    """Files the user hands the build (the reference's ``boot`` options), already read.

    ``dtb`` replaces the profile's DTB lookup (``--dtb``), ``dtb_overlays`` are applied to it
    in order (``--dtbo``), ``augment`` is a newc cpio whose entries win (``--augment``),
    ``pid1`` replaces the shipped stage0 ``/init`` (``--stage0``), ``ostree`` boots an OSTree
    deployment (``auto`` or its path), ``abl_exorcist`` is the shim placed before the kernel
    (``--abl-exorcist``, bootimg.md §11). Each is recorded in the build's journal inputs by
    digest, so a replay knows what went in.
    """

    dtb: bytes | None = None
    dtb_overlays: tuple[bytes, ...] = ()
    augment: bytes | None = None
    pid1: bytes | None = None
    ostree: str | None = None
    abl_exorcist: bytes | None = None

    def digests(self) -> dict[str, str]:
        files = {"dtb_file": self.dtb, "augment": self.augment, "stage0_file": self.pid1,
                 "abl_exorcist": self.abl_exorcist}  # fmt: skip
        out = {key: _digest(data) for key, data in files.items() if data is not None}
        if self.dtb_overlays:
            out["dtbo"] = " ".join(_digest(data) for data in self.dtb_overlays)
        if self.ostree is not None:
            out["ostree"] = self.ostree
        return out


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _usb_id(device: DeviceAddress | None, profile: DeviceProfile, field: str) -> int | None:
    """The USB id stage0's gadget takes (stage0.md §9): the fastboot device's own, or, for
    a device found over fastboot TCP/UDP (which has none), the one its profile matches in
    fastboot mode over USB. Either way the gadget looks like the phone it booted."""
    value: int | None = getattr(device, field) if device is not None else None
    if value is None and profile.match:
        value = getattr(profile.match[0], field)
    return value


class Stage0PayloadBuilder:
    """Builds ``fastboot boot`` payloads from unmodified rootfs images."""

    def __init__(
        self,
        *,
        options: CmdlineOptions | None = None,
        extra_modules: tuple[str, ...] = (),
        artifact_options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
        clock: Callable[[], float] = time.time,
        pid1: Callable[[str], bytes] = find_pid1,
        inputs: PayloadInputs | None = None,
    ):
        self.options = options or CmdlineOptions()
        self.extra_modules = extra_modules
        self.artifact_options = artifact_options  # --partition, --boot-partition, --kernel-version
        self.clock = clock
        self.inputs = inputs or PayloadInputs()
        given_pid1 = self.inputs.pid1
        self.pid1 = pid1 if given_pid1 is None else (lambda arch: given_pid1)

    def build(
        self, profile: DeviceProfile, rootfs: str, device: DeviceAddress | None = None
    ) -> BuiltPayload:
        params = boot_image_params(profile)
        # A channel's boot profiles are chosen by their stage0.devices: this device's.
        chosen = self.artifact_options.replace(device_profile=profile.id)
        artifact = open_artifact(rootfs, chosen)
        clock_usec = int(self.clock() * 1_000_000)
        host = HostFacts(
            usb_vid=_usb_id(device, profile, "vid"),
            usb_pid=_usb_id(device, profile, "pid"),
            usb_serial=device.serial if device else None,
            clock_usec=clock_usec,
        )
        options = msgspec.structs.replace(
            self.options, device_cmdline_append=params.cmdline_append or ""
        )
        given = self.inputs
        stage0 = build_stage0(
            artifact,
            pid1=lambda kernel: self.pid1(kernel_arch(kernel)),
            devicetree_name=params.devicetree_name,
            machine_devicetree=params.devicetree_provided,
            dtb=given.dtb,
            dtb_overlays=given.dtb_overlays,
            augment=given.augment,
            ostree=given.ostree,
            kernel_version=self.artifact_options.kernel_version,
            profile_modules=params.machine_modules,
            user_modules=self.extra_modules,
            options=options,
            host=host,
        )
        kernel, cmdline = stage0.kernel, stage0.cmdline
        if given.abl_exorcist is not None:
            kernel = wrap_with_abl_exorcist(given.abl_exorcist, kernel)
            cmdline = abl_exorcist_cmdline(cmdline)
        layout = layout_for(params, kernel_arch(stage0.kernel))
        image = assemble_boot_image(
            layout,
            kernel,
            ramdisk=stage0.initramfs,
            dtb=stage0.dtb,
            cmdline=cmdline,
        )
        summary = (
            f"kernel {stage0.kver}, {len(stage0.modules)} modules, "
            f"DTB {stage0.dtb_path or 'none'}"
        )
        if len(artifact.volumes) > 1:  # say where things came from on a disk image
            summary += (f"; root {artifact.root.name}, kernel from "
                        f"{stage0.sources.get('kernel', artifact.root.name)}")  # fmt: skip
        inputs = {
            "root": f"{artifact.root.describe()}"
            + (f", subvolume {artifact.subvol!r}" if artifact.subvol else ""),
            "kernel": stage0.kernel_path,
            "kernel_version": stage0.kver,
            "dtb": stage0.dtb_path or "",
            "modules": " ".join(stage0.modules),
            "cmdline": cmdline,
            "clock_usec": str(clock_usec),
            "header_version": str(layout.header_version),
            "page_size": str(layout.page_size),
            "kernel_encoding": layout.kernel_encoding,
            "initramfs_bytes": str(len(stage0.initramfs)),
            **given.digests(),
        }
        if "ostree" in stage0.settings:  # --ostree, or a profile that boots OSTree: which one
            inputs["ostree_deployment"] = stage0.settings["ostree"]
        return BuiltPayload(image=image, summary=summary, inputs=inputs, notes=stage0.notes)
