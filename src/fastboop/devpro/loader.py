"""Strict reading of one device-profile file (YAML or JSON) into a typed value.

The loader works on PyYAML's *node* graph (``compose``), not on constructed Python
objects, because the project's rules need what construction throws away: whether a scalar
was quoted, which tag was written explicitly, and whether a mapping repeats a key. Every
rejection is a :class:`~fastboop.devpro.errors.ProfileError` naming the file, the key path
and what was expected; no other exception escapes for any input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import yaml

from fastboop.devpro.checks import profile_issues, profile_warnings
from fastboop.devpro.errors import ProfileError
from fastboop.devpro.scalars import parse_integer, plain_scalar_kind
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

__all__ = ["MAX_PROFILE_BYTES", "ParsedProfile", "parse_profile"]

#: Real profiles are well under 1 KiB; anything this big is not a profile.
MAX_PROFILE_BYTES = 1 << 20

#: Longer than any u64 spelling with a few separators; such values are out of range.
_MAX_INTEGER_CHARS = 64

U16 = 0xFFFF
U32 = 0xFFFF_FFFF
U64 = 0xFFFF_FFFF_FFFF_FFFF

_TAG_KINDS = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "timestamp",
    "tag:yaml.org,2002:binary": "binary",
    "tag:yaml.org,2002:map": "mapping",
    "tag:yaml.org,2002:seq": "list",
    "tag:yaml.org,2002:set": "set",
    "tag:yaml.org,2002:omap": "ordered mapping",
    "tag:yaml.org,2002:pairs": "pairs",
}

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
    root, explicit = _compose(data, file)
    walker = _Walker(file, explicit)
    profile, bootimg_path = walker.profile(root)
    for issue in profile_issues(profile, bootimg_path=bootimg_path):
        raise ProfileError(file, issue.path, issue.detail, expected=issue.expected)
    warnings = tuple(
        f"{file}: {issue.path}: {issue.detail}"
        for issue in profile_warnings(profile, bootimg_path=bootimg_path)
    )
    return ParsedProfile(profile, warnings)


class _Composer(yaml.SafeLoader):
    """SafeLoader that remembers which scalars carried an explicit tag (``!!str yes``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.explicit_scalars: set[int] = set()

    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        node: yaml.ScalarNode = super().compose_scalar_node(anchor)
        if getattr(event, "tag", None) not in (None, "!"):
            self.explicit_scalars.add(id(node))
        return node


def _compose(text: str, file: str) -> tuple[yaml.Node, set[int]]:
    loader: _Composer | None = None
    try:
        loader = _Composer(text)  # the reader rejects control characters right here
        root = loader.get_single_node()
    except yaml.reader.ReaderError as error:
        raise ProfileError(
            file,
            None,
            f"invalid YAML: unacceptable character #x{error.character:04x} "
            f"at offset {error.position}",
            expected="printable text",
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f" at line {line}" if line is not None else ""
        problem = error.problem or error.context or "syntax error"
        if "expected a single document" in str(error.context):
            raise ProfileError(
                file,
                None,
                f"found a second document{where}; one profile per file",
                expected="a single YAML document",
                line=line,
            ) from None
        raise ProfileError(
            file, None, f"invalid YAML{where}: {problem}", expected="valid YAML", line=line
        ) from None
    except yaml.YAMLError as error:
        raise ProfileError(file, None, f"invalid YAML: {error}", expected="valid YAML") from None
    except RecursionError:
        raise ProfileError(
            file, None, "invalid YAML: nested too deeply", expected="a shallow mapping"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise ProfileError(
            file, "(root)", "expected mapping, got an empty document", expected="mapping"
        )
    return root, loader.explicit_scalars


class _Walker:
    """Turns one document's node graph into a profile, checking as it goes."""

    def __init__(self, file: str, explicit_scalars: set[int]) -> None:
        self.file = file
        self.explicit = explicit_scalars

    def fail(
        self,
        path: str,
        detail: str,
        node: yaml.Node | None = None,
        *,
        expected: str | None = None,
        hint: str | None = None,
    ) -> ProfileError:
        line = node.start_mark.line + 1 if node is not None else None
        return ProfileError(self.file, path, detail, expected=expected, hint=hint, line=line)

    # -- node kinds -------------------------------------------------------------------

    def kind(self, node: yaml.Node) -> str:
        """The type a loader would give ``node``, named for messages."""
        if isinstance(node, yaml.ScalarNode):
            if id(node) in self.explicit or node.style is not None:
                return _TAG_KINDS.get(node.tag, f"value tagged {node.tag}")
            return plain_scalar_kind(node.value)
        return _TAG_KINDS.get(node.tag, f"value tagged {node.tag}")

    def mapping(
        self, node: yaml.Node, path: str, allowed: Iterable[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Check ``node`` is a mapping with unique, known string keys; return them by name."""
        if not isinstance(node, yaml.MappingNode) or self.kind(node) != "mapping":
            raise self.fail(
                path, f"expected mapping, got {self.kind(node)}", node, expected="mapping"
            )
        allowed = frozenset(allowed)
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
                key = f"<{self.kind(key_node)}>"
            if key in entries:
                raise self.fail(
                    path, f"duplicate key '{key}'", key_node, expected="each key at most once"
                )
            if key not in allowed or self.kind(key_node) != "string":
                raise self.fail(
                    path,
                    f"unknown key '{key}'",
                    key_node,
                    expected="one of " + ", ".join(sorted(allowed)),
                    hint=_UNKNOWN_KEY_HINTS.get((path, key)),
                )
            entries[key] = (key_node, value_node)
        return entries

    def required(
        self,
        entries: dict[str, tuple[yaml.Node, yaml.Node]],
        parent: yaml.Node,
        path: str,
        key: str,
    ) -> yaml.Node:
        if key not in entries:
            raise self.fail(
                path, f"missing required key '{key}'", parent, expected=f"a '{key}' key"
            )
        return entries[key][1]

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode) or self.kind(node) != "list":
            raise self.fail(path, f"expected list, got {self.kind(node)}", node, expected="list")
        return list(node.value)

    def string(self, node: yaml.Node, path: str, *, operator: str | None = None) -> str:
        kind = self.kind(node)
        if kind == "string" and isinstance(node, yaml.ScalarNode):
            return self.text(node, path)
        is_scalar = isinstance(node, yaml.ScalarNode)
        example = f"'{node.value}'" if is_scalar and node.value else "'1'"
        if operator is not None and is_scalar:
            raise self.fail(
                path,
                f"value must be a string; quote it, e.g. {operator}: {example}",
                node,
                expected="string",
            )
        hint = None
        if is_scalar and kind != "null":
            key = path.rsplit(".", 1)[-1]
            hint = f"quote it, e.g. {key}: {example}"
        raise self.fail(path, f"expected string, got {kind}", node, expected="string", hint=hint)

    def text(self, node: yaml.ScalarNode, path: str) -> str:
        """The scalar's text; JSON surrogate-pair escapes are joined, lone halves refused."""
        value = str(node.value)
        if any("\ud800" <= c <= "\udfff" for c in value):
            try:
                value = value.encode("utf-16", "surrogatepass").decode("utf-16")
            except UnicodeDecodeError:
                raise self.fail(
                    path,
                    "contains an unpaired UTF-16 surrogate escape",
                    node,
                    expected="valid Unicode text",
                ) from None
        return value

    def integer(self, node: yaml.Node, path: str, maximum: int) -> int:
        kind = self.kind(node)
        if kind != "integer" or not isinstance(node, yaml.ScalarNode):
            raise self.fail(
                path, f"expected integer, got {kind}", node, expected="integer (decimal or 0x hex)"
            )
        text = node.value
        shown_max = f"{maximum:#x}" if "x" in text else str(maximum)
        if len(text) > _MAX_INTEGER_CHARS:  # also keeps int() clear of its digit limit
            raise self.fail(
                path,
                f"value {text[:24]}... out of range (max {shown_max})",
                node,
                expected=f"at most {shown_max}",
            )
        value = parse_integer(text)
        if value is None:
            raise self.fail(
                path,
                f"unsupported integer form '{text}'; write it in decimal or 0x hex",
                node,
                expected="integer (decimal or 0x hex)",
            )
        if value < 0:
            raise self.fail(
                path, f"value {text} out of range (min 0)", node, expected="a non-negative integer"
            )
        if value > maximum:
            raise self.fail(
                path,
                f"value {text} out of range (max {shown_max})",
                node,
                expected=f"at most {shown_max}",
            )
        return value

    def enum_value(self, node: yaml.Node, path: str, choices: Iterable[str]) -> str:
        options = list(choices)
        text = self.string(node, path)
        if text not in options:
            raise self.fail(
                path,
                f"expected one of {', '.join(options)}, got '{text}'",
                node,
                expected="one of " + ", ".join(options),
            )
        return text

    # -- the schema -------------------------------------------------------------------

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
