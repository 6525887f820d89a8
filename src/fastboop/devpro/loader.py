"""Strict reading of one device-profile file (YAML or JSON) into a typed value.

The loader works on PyYAML's *node* graph (``compose``), not on constructed Python
objects, because the project's rules need what construction throws away: whether a scalar
was quoted, which tag was written explicitly, and whether a mapping repeats a key. Reading
nodes is :mod:`fastboop.devpro.yamlnodes`; this module is the profile's schema: which
keys there are, which are required, and what each holds. Every rejection is a
:class:`~fastboop.devpro.errors.ProfileError` naming the file, the key path and what was
expected; no other exception escapes for any input.
"""

from __future__ import annotations

import msgspec
import yaml

from fastboop.devpro.checks import profile_issues, profile_warnings
from fastboop.devpro.errors import ProfileError
from fastboop.devpro.schema import (
    AndroidBootImage,
    BootLimits,
    Compression,
    DeviceProfile,
    DevicetreeSource,
    InitrdSettings,
    KernelEncoding,
    KernelSettings,
    MachineSettings,
    MatchEntry,
    ProbeOperator,
    ProbeStep,
)
from fastboop.devpro.yamlnodes import NodeReader, compose_document

__all__ = ["MAX_PROFILE_BYTES", "ParsedProfile", "parse_profile"]

#: Real profiles are well under 1 KiB; anything this big is not a profile.
MAX_PROFILE_BYTES = 1 << 20

U16 = 0xFFFF
U32 = 0xFFFF_FFFF
U64 = 0xFFFF_FFFF_FFFF_FFFF

_OPERATORS = tuple(op.value for op in ProbeOperator)

_UNKNOWN_KEY_HINTS = {
    ("(root)", "stage0"): "stage0 settings belong in boot profiles",
    ("boot.fastboot_boot", "cmdline_append"): (
        "did you mean boot.fastboot_boot.android_bootimg.cmdline_append?"
    ),
}


class ParsedProfile(msgspec.Struct, frozen=True):
    """A valid profile plus warnings (``<file>: <path>: <text>``) about odd but legal values."""

    profile: DeviceProfile
    warnings: tuple[str, ...] = ()


def parse_profile(data: bytes | str, *, file: str) -> ParsedProfile:
    """Validate one profile document; ``file`` names it in every message.

    Raises :class:`ProfileError` for anything that is not exactly one valid profile.
    """
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(
            file,
            None,
            f"file is too large ({len(data)} bytes; max {MAX_PROFILE_BYTES})",
            expected="one small device profile",
        )
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ProfileError(
                file, None, f"not valid UTF-8 (byte {error.start})", expected="UTF-8 text"
            ) from None
    root, explicit = compose_document(data, file)
    walker = _Walker(file, explicit)
    profile, bootimg_path = walker.profile(root)
    for issue in profile_issues(profile, bootimg_path=bootimg_path):
        raise ProfileError(file, issue.path, issue.detail, expected=issue.expected)
    warnings = tuple(
        f"{file}: {issue.path}: {issue.detail}"
        for issue in profile_warnings(profile, bootimg_path=bootimg_path)
    )
    return ParsedProfile(profile, warnings)


class _Walker(NodeReader):
    """Turns one document's node graph into a profile, checking as it goes."""

    unknown_key_hints = _UNKNOWN_KEY_HINTS

    def profile(self, root: yaml.Node) -> tuple[DeviceProfile, str]:
        path = "(root)"
        keys = ("id", "display_name", "devicetree_name", "match", "probe", "boot", "machine")
        entries = self.mapping(root, path, keys)
        profile_id = self.string(self.required(entries, root, path, "id"), "id")
        display_name = None
        if "display_name" in entries:
            display_name = self.string(entries["display_name"][1], "display_name")
        dt_name = self.string(
            self.required(entries, root, path, "devicetree_name"), "devicetree_name"
        )
        match_node = self.required(entries, root, path, "match")
        matches = tuple(
            self.match_entry(item, f"match[{index}]")
            for index, item in enumerate(self.sequence(match_node, "match"))
        )
        probe_node = self.required(entries, root, path, "probe")
        steps = tuple(
            self.probe_step(item, f"probe[{index}]")
            for index, item in enumerate(self.sequence(probe_node, "probe"))
        )
        image, bootimg_path = self.boot(self.required(entries, root, path, "boot"))
        profile = DeviceProfile(
            id=profile_id,
            display_name=display_name,
            devicetree_name=dt_name,
            match=matches,
            probe=steps,
            android_bootimg=image,
            machine=self.machine(entries["machine"][1]) if "machine" in entries else None,
        )
        return profile, bootimg_path

    def machine(self, node: yaml.Node) -> MachineSettings:
        entries = self.mapping(node, "machine", ("devicetree", "modules"))
        source = DevicetreeSource.ROOTFS
        if "devicetree" in entries:
            source = DevicetreeSource(self.enum_value(
                entries["devicetree"][1], "machine.devicetree", (d.value for d in DevicetreeSource)
            ))  # fmt: skip
        modules: tuple[str, ...] = ()
        if "modules" in entries:
            items = self.sequence(entries["modules"][1], "machine.modules")
            modules = tuple(self.string(item, f"machine.modules[{index}]")
                            for index, item in enumerate(items))  # fmt: skip
        return MachineSettings(devicetree=source, modules=modules)

    def match_entry(self, node: yaml.Node, path: str) -> MatchEntry:
        entries = self.mapping(node, path, ("fastboot",))
        inner_path = f"{path}.fastboot"
        inner = self.required(entries, node, path, "fastboot")
        ids = self.mapping(inner, inner_path, ("vid", "pid"))
        vid = self.integer(self.required(ids, inner, inner_path, "vid"), f"{inner_path}.vid", U16)
        pid = self.integer(self.required(ids, inner, inner_path, "pid"), f"{inner_path}.pid", U16)
        return MatchEntry(vid=vid, pid=pid)

    def probe_step(self, node: yaml.Node, path: str) -> ProbeStep:
        entries = self.mapping(node, path, ("fastboot.getvar", *_OPERATORS))
        operators = [key for key in entries if key in _OPERATORS]
        if not operators:
            raise self.fail(
                path,
                "no operator; expected one of " + ", ".join(_OPERATORS),
                node,
                expected="one of " + ", ".join(_OPERATORS),
            )
        if len(operators) > 1:
            raise self.fail(
                path,
                "exactly one operator expected, found " + ", ".join(operators),
                node,
                expected="exactly one operator",
            )
        name_node = self.required(entries, node, path, "fastboot.getvar")
        name = self.string(name_node, f"{path}.fastboot.getvar")
        operator = ProbeOperator(operators[0])
        op_path = f"{path}.{operator.value}"
        value_node = entries[operator.value][1]
        if operator.takes_value:
            value: str | None = self.string(value_node, op_path, operator=operator.value)
        else:
            if self.kind(value_node) != "null":
                raise self.fail(
                    op_path,
                    f"takes no value (write '{operator.value}:' with nothing after it)",
                    value_node,
                    expected="no value",
                )
            value = None
        return ProbeStep(getvar=name, operator=operator, value=value)

    def boot(self, node: yaml.Node) -> tuple[AndroidBootImage, str]:
        entries = self.mapping(node, "boot", ("fastboot_boot",))
        inner = self.required(entries, node, "boot", "fastboot_boot")
        path = "boot.fastboot_boot"
        choices = self.mapping(inner, path, ("android_bootimg", "bootimg"))
        if "android_bootimg" in choices and "bootimg" in choices:
            raise self.fail(
                path,
                "both 'android_bootimg' and its alias 'bootimg' given",
                inner,
                expected="only one of android_bootimg, bootimg",
            )
        key = "bootimg" if "bootimg" in choices else "android_bootimg"
        image_node = self.required(choices, inner, path, key)
        image_path = f"{path}.{key}"
        return self.android_bootimg(image_node, image_path), image_path

    def android_bootimg(self, node: yaml.Node, path: str) -> AndroidBootImage:
        keys = (
            "header_version",
            "page_size",
            "base",
            "kernel_offset",
            "dtb_offset",
            "limits",
            "kernel",
            "initrd",
            "cmdline_append",
        )
        entries = self.mapping(node, path, keys)

        def optional_u64(key: str) -> int | None:
            if key not in entries:
                return None
            return self.integer(entries[key][1], f"{path}.{key}", U64)

        header_version = self.integer(
            self.required(entries, node, path, "header_version"), f"{path}.header_version", U32
        )
        page_size = self.integer(
            self.required(entries, node, path, "page_size"), f"{path}.page_size", U32
        )
        base = optional_u64("base")
        kernel_offset = optional_u64("kernel_offset")
        dtb_offset = optional_u64("dtb_offset")
        limits = None
        if "limits" in entries:
            limits = self.limits(entries["limits"][1], f"{path}.limits")
        kernel_node = self.required(entries, node, path, "kernel")
        kernel_path = f"{path}.kernel"
        kernel_keys = self.mapping(kernel_node, kernel_path, ("encoding",))
        encoding = self.enum_value(
            self.required(kernel_keys, kernel_node, kernel_path, "encoding"),
            f"{kernel_path}.encoding",
            (e.value for e in KernelEncoding),
        )
        initrd = None
        if "initrd" in entries:
            initrd_node = entries["initrd"][1]
            initrd_keys = self.mapping(initrd_node, f"{path}.initrd", ("compress",))
            compress = None
            if "compress" in initrd_keys:
                compress = Compression(
                    self.enum_value(
                        initrd_keys["compress"][1],
                        f"{path}.initrd.compress",
                        (c.value for c in Compression),
                    )
                )
            initrd = InitrdSettings(compress=compress)
        cmdline = None
        if "cmdline_append" in entries:
            cmdline = self.string(entries["cmdline_append"][1], f"{path}.cmdline_append")
        return AndroidBootImage(
            header_version=header_version,
            page_size=page_size,
            base=base,
            kernel_offset=kernel_offset,
            dtb_offset=dtb_offset,
            limits=limits,
            kernel=KernelSettings(encoding=KernelEncoding(encoding)),
            initrd=initrd,
            cmdline_append=cmdline,
        )

    def limits(self, node: yaml.Node, path: str) -> BootLimits:
        keys = ("max_kernel_bytes", "max_initrd_bytes", "max_total_bytes")
        entries = self.mapping(node, path, keys)
        values = {
            key: self.integer(entries[key][1], f"{path}.{key}", U64)
            for key in keys
            if key in entries
        }
        return BootLimits(**values)
