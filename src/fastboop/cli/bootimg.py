"""``fastboop bootimg``: build and inspect Android boot images offline.

``build`` does on the PC exactly what a boot session does before ``fastboot boot`` (encode
the kernel for the device, place the DTB, lay out the image), so a user can check or
share the result. ``inspect`` explains any boot image, including ones made by mkbootimg.

Layout flags default to ``None`` so that :func:`layout_from_args` can tell "given" from
"not given": with ``--device-profile`` the profile supplies the base layout (mapped by the
same :func:`~fastboop.backends.payload.layout_for` a boot session uses, so the offline
image is the one the phone would get) and explicit flags override single fields of it.

``build`` is timed against AOSP mkbootimg (issue 15), so this module imports only what
a build uses: no msgspec, ``typing``, ``pathlib`` or ``json`` (paths stay strings; the
JSON summary and the readers behind ``inspect`` load when asked for). It maps the kernel
and the ramdisk rather than reading them (:func:`_map`).
"""

from __future__ import annotations

import argparse
import mmap
import os
import stat
import sys
import warnings

from fastboop.bootimg.builder import plan_assembled_boot_image
from fastboop.bootimg.cmdline import compose_cmdline
from fastboop.bootimg.describe import describe_plan
from fastboop.bootimg.errors import BootImageError
from fastboop.bootimg.kernel import KernelInfo, unwrap_kernel
from fastboop.bootimg.layout import ENCODINGS, BootImageLayout, BootImageLimits, OsVersion
from fastboop.errors import FastboopError, UsageError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Any

    from fastboop.bootimg.kernel import Blob


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bootimg",
        description="Build an Android boot image from a kernel, DTB and initramfs the way "
        "fastboop does before booting a phone, or explain an existing boot image.",
    )
    commands = parser.add_subparsers(dest="bootimg_command", metavar="ACTION", required=True)
    _register_build(commands)
    _register_inspect(commands)


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an integer: {text!r} (use e.g. 4096 or 0x8000)"
        ) from None


def _register_build(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = commands.add_parser(
        "build",
        help="build a boot image",
        description="Build a boot image. The kernel may be a raw or EFI-stub arm64 Image, "
        "gzip/lz4/zstd/xz compressed, or an EFI zboot image; it is re-encoded as "
        "--kernel-encoding says. Addresses are --base plus the offsets.",
        epilog="examples: fastboop bootimg build --kernel vmlinuz --dtb sdm845-oneplus-"
        "enchilada.dtb --initrd stage0.cpio --header-version 2 --page-size 4096 "
        "--kernel-encoding image.gz -o boot.img; or the same layout from the profile: "
        "fastboop bootimg build --device-profile oneplus-enchilada --kernel vmlinuz "
        "--dtb sdm845-oneplus-enchilada.dtb --initrd stage0.cpio -o boot.img",
    )
    build.add_argument("--kernel", required=True, help="kernel file (any format)")
    build.add_argument("--dtb", help="device tree blob for the board")
    build.add_argument(
        "--dtbo", action="append", default=[],
        help="overlay applied to --dtb with fdtoverlay (repeatable, applied in order)",
    )  # fmt: skip
    build.add_argument("--initrd", help="initramfs (the ramdisk section)")
    build.add_argument(
        "--cmdline", default="",
        help="kernel command line (max 1536 bytes), after the profile's cmdline_append",
    )  # fmt: skip
    build.add_argument(
        "--device-profile", metavar="ID",
        help="take the layout and cmdline_append from this device profile; the layout "
        "flags below override single fields of it",
    )  # fmt: skip
    build.add_argument("-o", "--output", required=True, help="where to write")
    layout = build.add_argument_group("layout (normally from the device profile)")
    layout.add_argument("--header-version", type=_int, help="boot header version, 0 to 4")
    layout.add_argument("--page-size", type=_int, help="flash page size, e.g. 2048 or 4096")
    layout.add_argument("--base", type=_int, help="load base address (default 0)")
    for name, what in (
        ("kernel", "0x8000"), ("ramdisk", "0x1000000"), ("second", "0xf00000"),
        ("tags", "0x100"), ("dtb", "0x1f00000"),
    ):  # fmt: skip
        layout.add_argument(f"--{name}-offset", type=_int, help=f"default {what}")
    layout.add_argument(
        "--kernel-encoding", choices=ENCODINGS, help="how the device wants the kernel"
    )
    layout.add_argument("--arch", choices=("arm64", "x86_64"), help="device CPU (default arm64)")
    for name in ("kernel", "initrd", "total"):
        layout.add_argument(f"--max-{name}-bytes", type=_int, help=f"{name} size limit")
    build.add_argument("--os-version", default="", help="Android OS version, e.g. 11.0.0")
    build.add_argument("--os-patch-level", default="", help="security patch level, e.g. 2021-03")
    build.add_argument("--json", action="store_true", help="print a JSON summary")
    build.set_defaults(handler=run_build)


def _register_inspect(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="explain a boot image",
        description="Show a boot image's header, sections, command line, what kind of "
        "kernel it carries (format, architecture, version) and which board its DTB is for.",
    )
    inspect.add_argument("image", help="boot image file")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.set_defaults(handler=run_inspect)


def layout_from_args(
    args: argparse.Namespace, base: BootImageLayout | None = None
) -> BootImageLayout:
    """The layout from ``base`` (a device profile's, when given) overridden by flags."""
    fields: dict[str, Any] = {}
    for name in (
        "header_version", "page_size", "base", "kernel_offset", "ramdisk_offset",
        "second_offset", "tags_offset", "dtb_offset", "kernel_encoding", "arch",
    ):  # fmt: skip
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    limits = {
        f"max_{n}_bytes": getattr(args, f"max_{n}_bytes")
        for n in ("kernel", "initrd", "total")
        if getattr(args, f"max_{n}_bytes", None) is not None
    }
    if base is not None:
        if limits:
            fields["limits"] = base.limits.replace(**limits)
        return base.replace(**fields)
    missing = [flag for flag in ("header_version", "page_size") if flag not in fields]
    if missing:
        flags = " and ".join("--" + m.replace("_", "-") for m in missing)
        raise UsageError(f"{flags} required", hint="give the device's boot image layout")
    return BootImageLayout(**fields, limits=BootImageLimits(**limits))


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise FastboopError(f"cannot read {what}: {error.strerror}", where=path) from None


def _map(path: str, what: str) -> Blob:
    """A regular file as a read-only map, anything else (a pipe; a file system that
    cannot map) as its bytes.

    The build only looks at a raw kernel's header, its tail and its banner, hashes it
    and writes it out, so a map lets all of that run on the page cache's own pages:
    reading 33 MB into fresh memory cost ~20 ms of page faults on the benchmark machine
    (bench/peers.py; mkbootimg reads its kernel twice).
    """
    try:
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size:
                try:
                    return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                except OSError:
                    pass  # read it instead, below
            return file.read()
    except OSError as error:
        raise FastboopError(f"cannot read {what}: {error.strerror}", where=path) from None


def _refuse_to_overwrite_an_input(args: argparse.Namespace) -> None:
    """Writing the image over one of its own (mapped) inputs would cut that input short
    while it is being copied: a crash (SIGBUS), not an image."""
    try:
        output = os.stat(args.output)
    except OSError:
        return  # not there yet (or not a path stat can see): nothing to overwrite
    for what in ("kernel", "initrd", "dtb"):
        path = getattr(args, what)
        if path is not None and os.path.exists(path) and os.path.samestat(os.stat(path), output):
            raise UsageError(f"the output {args.output} is the {what} file",
                             hint="write the boot image to another file")  # fmt: skip


def _report_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        print(f"fastboop: warning: {warning.message}", file=sys.stderr)


def profile_layout(profile_id: str, arch: str | None) -> tuple[BootImageLayout, str]:
    """(layout, cmdline_append) of a device profile, for a kernel of ``arch``.

    The layout's architecture comes from ``--arch`` or else the kernel itself, as in a
    boot session, so a profile never makes the image claim a CPU the kernel is not for.
    """
    from fastboop.backends.payload import layout_for
    from fastboop.devpro.bootparams import boot_image_params
    from fastboop.devpro.sources import load_pool

    params = boot_image_params(load_pool().get(profile_id))
    return layout_for(params, arch or "arm64"), params.cmdline_append or ""


def run_build(args: argparse.Namespace) -> int:
    kernel = _map(args.kernel, "kernel")
    unwrapped = None
    base, cmdline = None, args.cmdline
    if args.device_profile:
        unwrapped = _unwrap(kernel)  # once: for the profile's arch here and to build below
        arch = args.arch or (unwrapped[0].arch if unwrapped else None)
        base, append = profile_layout(args.device_profile, arch)
        cmdline = compose_cmdline(append, args.cmdline)
    layout = layout_from_args(args, base)
    dtb = _read(args.dtb, "DTB") if args.dtb else None
    if args.dtbo:
        if dtb is None:
            raise UsageError("--dtbo needs --dtb", hint="overlays apply to a base DTB")
        from fastboop.bootimg.overlay import apply_overlays  # runs a tool: only when asked

        dtb = apply_overlays(dtb, [_read(p, "overlay") for p in args.dtbo])
    ramdisk = _map(args.initrd, "initrd") if args.initrd else b""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan, kernel_info = plan_assembled_boot_image(
            layout,
            kernel,
            ramdisk=ramdisk,
            dtb=dtb,
            cmdline=cmdline,
            os_version=OsVersion.parse(args.os_version, args.os_patch_level),
            unwrapped=unwrapped,
        )
    _report_warnings(caught)
    _refuse_to_overwrite_an_input(args)
    try:
        with open(args.output, "wb") as out:
            size = plan.write(out)  # piece by piece: the image is never held whole
    except OSError as error:
        raise FastboopError(f"cannot write: {error.strerror}", where=args.output) from None
    summary = describe_plan(plan, kernel_info)
    if args.json:
        import json

        print(json.dumps({"output": args.output, **summary}, indent=2))
    else:
        print(
            f"wrote {args.output}: {size} bytes, header v{layout.header_version}, "
            f"kernel {layout.kernel_encoding} ({summary['kernel']['size']} bytes)"
        )
    return 0


def _unwrap(kernel: Blob) -> tuple[KernelInfo, Blob] | None:
    """The kernel unwrapped, or None when it cannot be (assembly reports why, later)."""
    try:
        return unwrap_kernel(kernel)
    except BootImageError:
        return None


def run_inspect(args: argparse.Namespace) -> int:
    import json

    from fastboop.bootimg.describe import describe_image, describe_vendor_boot
    from fastboop.bootimg.errors import MalformedBootImageError
    from fastboop.bootimg.header import VENDOR_BOOT_MAGIC
    from fastboop.bootimg.parser import parse_boot_image
    from fastboop.bootimg.vendor_boot import parse_vendor_boot_image

    data = _read(args.image, "boot image")
    vendor = data[:8] == VENDOR_BOOT_MAGIC
    try:
        if vendor:
            summary = describe_vendor_boot(parse_vendor_boot_image(data))
        else:
            summary = describe_image(parse_boot_image(data))
    except MalformedBootImageError as error:
        raise MalformedBootImageError(
            error.message, where=args.image, hint=error.hint
        ) from None
    summary = {"file": args.image, "file_size": len(data), **summary}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render_vendor_text(summary) if vendor else render_text(summary))
    return 0


def render_vendor_text(s: dict[str, Any]) -> str:
    lines = [
        f"file:           {s['file']} ({s['file_size']} bytes)",
        f"vendor_boot:    v{s['header_version']}, {s['header_size']} bytes, "
        f"page size {s['page_size']}",
    ]
    if s["name"]:
        lines.append(f"board name:     {s['name']}")
    lines.append(
        "addresses:      " + ", ".join(f"{k} {v:#010x}" for k, v in s["addresses"].items())
    )
    lines.append(f"vendor cmdline: {s['cmdline'] or '(empty)'}")
    lines.append("sections:")
    for sec in s["sections"]:
        lines.append(f"  {sec['name']:<20} offset {sec['offset']:#010x}  {sec['size']:>10} bytes")
    for r in s["ramdisks"]:
        lines.append(f"ramdisk {r['name']!r}: {r['type']}, {r['size']} bytes at {r['offset']}")
    lines.extend(_dtb_lines(s["dtbs"]))
    return "\n".join(lines)


def render_text(s: dict[str, Any]) -> str:
    lines = [
        f"file:           {s['file']} ({s['file_size']} bytes)",
        f"header:         v{s['header_version']}, {s['header_size']} bytes, "
        f"page size {s['page_size']}",
    ]
    if s["qcdt_size"] is not None:
        lines.append(f"legacy QCDT:    offset 40 holds a QCDT size ({s['qcdt_size']} bytes)")
    if s["os_version"] != "0.0.0" or s["os_patch_level"]:
        lines.append(f"os version:     {s['os_version']} patch level {s['os_patch_level'] or '-'}")
    if s["name"]:
        lines.append(f"board name:     {s['name']}")
    if s["id"] is not None:
        state = "matches the sections" if s["id_matches"] else "does not match (not mkbootimg's)"
        lines.append(f"id:             {s['id'][:40]} ({state})")
    if s["addresses"]:
        lines.append(
            "addresses:      " + ", ".join(f"{k} {v:#010x}" for k, v in s["addresses"].items())
        )
    lines.append(f"cmdline:        {s['cmdline'] or '(empty)'}")
    lines.append("sections:")
    for sec in s["sections"]:
        lines.append(f"  {sec['name']:<14} offset {sec['offset']:#010x}  {sec['size']:>10} bytes")
    k = s["kernel"]
    if "error" in k:
        lines.append(f"kernel:         not recognised: {k['error']}")
    else:
        stub = ", EFI stub" if k["efi_stub"] else ""
        lines.append(
            f"kernel:         {' > '.join(k['layers'])} ({k['arch'] or 'unknown arch'}{stub}, "
            f"{k['raw_size']} bytes unpacked)"
        )
        if k["version"]:
            lines.append(f"kernel version: {k['version']}")
    lines.extend(_dtb_lines(s["dtbs"]))
    return "\n".join(lines)


def _dtb_lines(dtbs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for d in dtbs:
        if "error" in d:
            lines.append(f"dtb ({d['where']}): {d['size']} bytes, not a valid DTB: {d['error']}")
        else:
            lines.append(
                f"dtb ({d['where']}): {d['size']} bytes, model {d['model']!r}, "
                f"compatible {' '.join(d['compatible'])}"
            )
    return lines or ["dtb:            none"]
