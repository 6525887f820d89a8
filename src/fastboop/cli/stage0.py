"""``fastboop stage0``: build the stage0 initramfs (and extract kernel + DTB) from a rootfs.

Runs the same synthesis a boot does, without a phone: handy to check module selection
(``--explain-modules``), to feed other tools, or to boot by hand with ``fastboot boot``.
``--device-profile`` takes any profile in force, local ones included (directories in
``FASTBOOP_SCHEMA_PATH``, see ``fastboop devpro list``). An x86 kernel boots without a
DTB, so none is looked up for it: the kernel, the initramfs and ``kernel_cmdline`` (JSON)
are then what e.g. qemu's ``-kernel``, ``-initrd`` and ``-append`` take.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from fastboop.artifact.open import Artifact, open_artifact
from fastboop.cli.artifact_options import add_artifact_options, artifact_options
from fastboop.cli.output import help_text
from fastboop.cli.parser import HelpFormatter
from fastboop.errors import UsageError
from fastboop.stage0.build import Stage0Result, build_stage0
from fastboop.stage0.cpio import compress
from fastboop.stage0.settings import CmdlineOptions, HostFacts, parse_size


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "stage0",
        description=help_text(__doc__),
        formatter_class=HelpFormatter,
        epilog="Example: fastboop stage0 debian.erofs --dtb-name qcom/sdm845-oneplus-fajita "
        "--stage0 ./stage0-aarch64 -o initrd.cpio --explain-modules",
    )
    p.add_argument("rootfs", metavar="ROOTFS",
                   help="rootfs image, directory or http(s) URL")  # fmt: skip
    add_artifact_options(p.add_argument_group("volumes and kernel"))
    dt = p.add_argument_group("device tree")
    dt.add_argument("--device-profile", metavar="ID",
                    help="device profile id (supplies the DTB name and cmdline)")  # fmt: skip
    dt.add_argument(
        "--dtb-name",
        metavar="NAME",
        help="devicetree name to find in the rootfs, e.g. qcom/sdm845-oneplus-fajita",
    )
    dt.add_argument("--dtb", type=Path, metavar="FILE", help="use this DTB file instead")
    dt.add_argument("--dtbo", type=Path, action="append", default=[], metavar="FILE",
                    help="apply this compiled DT overlay (repeatable, in order)")  # fmt: skip
    dt.add_argument("--inject-mac", action="append", default=[], metavar="KIND:COMPATIBLE",
                    help="derive a stable MAC for the node with this compatible; KIND is "
                         "wifi or bluetooth (repeatable)")  # fmt: skip
    dt.add_argument("--no-dt-modules", action="store_true",
                    help="do not derive USB controller/PHY modules from the DTB")  # fmt: skip
    m = p.add_argument_group("kernel and modules")
    m.add_argument("--require-module", action="append", default=[], metavar="NAME",
                   help="also include this module and its dependencies (repeatable)")  # fmt: skip
    m.add_argument("--rootfs-type", choices=["erofs", "ext4", "btrfs", "squashfs", "iso9660"],
                   help="filesystem the device mounts (default: the root's)")  # fmt: skip
    m.add_argument("--ostree", metavar="auto|PATH",
                   help="boot an OSTree deployment: 'auto' (newest boot entry) or its "
                        "ostree= path")  # fmt: skip
    m.add_argument("--explain-modules", action="store_true",
                   help="print why each module is included")  # fmt: skip
    i = p.add_argument_group("initramfs")
    i.add_argument("--stage0", type=Path, metavar="FILE", help="the device-side PID1 binary")
    i.add_argument("--augment", type=Path, metavar="CPIO",
                   help="newc cpio (plain, or gzip/zstd/xz/lz4 as the kernel reads them) "
                        "whose entries take precedence")  # fmt: skip
    i.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the initramfs")
    i.add_argument("--compress", choices=["none", "gzip", "zstd", "lz4"], default="none",
                   help="compress the written initramfs (boots use none)")  # fmt: skip
    i.add_argument("--kernel-out", type=Path, metavar="FILE", help="write the kernel image")
    i.add_argument("--dtb-out", type=Path, metavar="FILE", help="write the DTB")
    c = p.add_argument_group("settings and cmdline")
    c.add_argument("--serial", action="store_true", help="add a USB serial console (ACM)")
    c.add_argument("--cmdline-append", default="", metavar="ARGS", help="extra kernel args")
    c.add_argument("--no-impersonate-fastboot", action="store_true",
                   help="present smoo's own USB interface triple")  # fmt: skip
    c.add_argument(
        "--no-system-time",
        action="store_true",
        help="do not pass the host clock (makes the cmdline reproducible)",
    )
    c.add_argument("--smoo-max-io", default="1m", metavar="SIZE", help="largest smoo request")
    c.add_argument("--smoo-queue-count", type=int, metavar="N")
    c.add_argument("--smoo-queue-depth", type=int, metavar="N")
    c.add_argument("--smoo-host-timeout", type=int, metavar="SECONDS",
                   help="how long the device waits for the host to find it and finish the "
                        "smoo handshake before giving up (stage0's default: 30)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    p.set_defaults(handler=run)


def _mac_target(text: str) -> tuple[str, str]:
    kind, sep, compatible = text.partition(":")
    if not sep or kind not in ("wifi", "bluetooth") or not compatible:
        raise UsageError(f"bad --inject-mac {text!r}", hint="use wifi:COMPATIBLE or "
                         "bluetooth:COMPATIBLE, e.g. wifi:qcom,wcn3990-wifi")  # fmt: skip
    return kind, compatible


def run(args: argparse.Namespace) -> int:
    import time

    dtb_name = args.dtb_name
    device_append = ""
    machine_dt = False
    machine_modules: tuple[str, ...] = ()
    if args.device_profile:  # (imported here: profiles need YAML, stage0 alone does not)
        from fastboop.channel.profiles import session_pool
        from fastboop.devpro.bootparams import boot_image_params

        # A channel's device profiles restrict the pool to themselves.
        params = boot_image_params(session_pool(args.rootfs).get(args.device_profile))
        dtb_name = dtb_name or params.devicetree_name
        device_append = params.cmdline_append or ""
        machine_dt = params.devicetree_provided and not args.dtb_name
        machine_modules = params.machine_modules
    # Without --stage0, the PID1 fastboop ships for the kernel's architecture.
    pid1: bytes | Callable[[bytes], bytes]
    if args.stage0:
        pid1 = args.stage0.read_bytes()
    else:
        from fastboop.stage0.binaries import find_pid1, kernel_arch

        pid1 = lambda kernel: find_pid1(kernel_arch(kernel))  # noqa: E731
    augment = args.augment.read_bytes() if args.augment else None
    options = CmdlineOptions(
        serial=args.serial,
        mimic_fastboot=not args.no_impersonate_fastboot,
        system_time=not args.no_system_time,
        smoo_queue_count=args.smoo_queue_count,
        smoo_queue_depth=args.smoo_queue_depth,
        smoo_max_io=parse_size(args.smoo_max_io),
        smoo_host_timeout=args.smoo_host_timeout,
        cmdline_append=args.cmdline_append,
        device_cmdline_append=device_append,
    )
    artifact = open_artifact(args.rootfs, artifact_options(args))
    result = build_stage0(
        artifact,
        pid1=pid1,
        rootfs_kind=args.rootfs_type,
        devicetree_name=dtb_name,
        machine_devicetree=machine_dt,
        dtb=args.dtb.read_bytes() if args.dtb else None,
        kernel_version=args.kernel_version,
        keep_kernel=bool(args.kernel_out),
        dt_modules=not args.no_dt_modules,
        dtb_overlays=[path.read_bytes() for path in args.dtbo],
        inject_mac=[_mac_target(text) for text in args.inject_mac],
        profile_modules=machine_modules,
        user_modules=args.require_module,
        augment=augment,
        ostree=args.ostree,
        options=options,
        host=HostFacts(clock_usec=time.time_ns() // 1000),
    )
    if args.output:
        args.output.write_bytes(compress(result.initramfs, args.compress))
    if args.kernel_out:
        args.kernel_out.write_bytes(result.kernel)
    if args.dtb_out and result.dtb is not None:
        args.dtb_out.write_bytes(result.dtb)
    if args.json:
        print(msgspec.json.encode(summary(result, artifact)).decode())
    else:
        _print(result, args, artifact)
    return 0


def summary(result: Stage0Result, artifact: Artifact | None = None) -> dict[str, Any]:
    out = artifact.as_json() if artifact is not None else {}
    out.pop("notes", None)  # they are among the result's notes
    return out | {
        "kernel": result.kernel_path,
        "kver": result.kver,
        "dtb": result.dtb_path,
        # Which file was chosen for each role, from which volume, and why.
        "files": {
            "kernel": {
                "path": result.kernel_path,
                "volume": result.sources.get("kernel"),
                "why": result.kernel_rule,
            },
            "dtb": {"path": result.dtb_path, "volume": result.sources.get("dtb")},
            "modules": {"path": result.modules_dir, "volume": result.sources.get("modules")},
        },
        "initramfs_bytes": len(result.initramfs),
        "modules": [{"name": m, "reason": result.reasons.get(m, "")} for m in result.modules],
        "settings": result.settings,
        "cmdline": result.stage0_cmdline,
        # What the kernel gets: the device profile's cmdline_append, then the stage0 part.
        "kernel_cmdline": result.cmdline,
        "warnings": list(result.warnings),
        "notes": list(result.notes),
    }


def _print(result: Stage0Result, args: argparse.Namespace, artifact: Artifact) -> None:
    roles = artifact.roles
    if len(artifact.volumes) > 1 or artifact.subvol:
        for label, role in (("root:", roles.root), ("boot:", roles.boot), ("esp:", roles.esp)):
            if role is not None:
                volume = artifact.volumes[role.volume].describe()
                subvol = f", subvolume {role.subvol!r}" if role.subvol else ""
                print(f"{label:<10} {volume}{subvol} ({role.why})")

    def source(role: str) -> str:
        return f" from {result.sources[role]}" if len(artifact.volumes) > 1 and role in \
            result.sources else ""  # fmt: skip

    print(f"kernel:    {result.kernel_path} ({result.kver}){source('kernel')}")
    print(f"dtb:       {result.dtb_path or 'none'}{source('dtb') if result.dtb_path else ''}")
    print(f"modules:   {len(result.modules)}")
    if args.explain_modules:
        for name in result.modules:
            print(f"  {name:<28} {result.reasons.get(name, '')}")
    print(f"initramfs: {len(result.initramfs)} bytes" + (f" -> {args.output}" if args.output
                                                          else ""))  # fmt: skip
    print(f"cmdline:   {result.cmdline}")
    for note in result.notes:
        print(f"note:      {note}")
    for warning in result.warnings:
        print(f"warning:   {warning}")
