"""Writing a profile back out in the schema's own shape (for ``devpro show``).

The output feeds straight back into :func:`~fastboop.devpro.loader.parse_profile`: keys
absent from the profile are left out, strings that some loader could misread (``yes``,
``1e5``) are quoted, and addresses and USB ids are written in hex as people write them.
"""

from __future__ import annotations

from typing import Any

import yaml

from fastboop.devpro.scalars import plain_scalar_kind
from fastboop.devpro.schema import DeviceProfile, ProbeStep

__all__ = ["profile_to_document", "profile_to_yaml"]

_HEX_KEYS = frozenset({"vid", "pid", "base", "kernel_offset", "dtb_offset"})


class _Hex(int):
    """An int that the YAML dumper writes as ``0x…``."""


def _step(step: ProbeStep) -> dict[str, Any]:
    return {"fastboot.getvar": step.getvar, step.operator.value: step.value}


def profile_to_document(profile: DeviceProfile) -> dict[str, Any]:
    """Plain dicts/lists/str/int/None in schema layout; JSON-serialisable as is."""
    image = profile.android_bootimg
    bootimg: dict[str, Any] = {
        "header_version": image.header_version,
        "page_size": image.page_size,
    }
    for key in ("base", "kernel_offset", "dtb_offset"):
        value = getattr(image, key)
        if value is not None:
            bootimg[key] = value
    if image.limits is not None:
        bootimg["limits"] = {
            key: getattr(image.limits, key)
            for key in ("max_kernel_bytes", "max_initrd_bytes", "max_total_bytes")
            if getattr(image.limits, key) is not None
        }
    bootimg["kernel"] = {"encoding": image.kernel.encoding.value}
    if image.initrd is not None:
        bootimg["initrd"] = (
            {} if image.initrd.compress is None else {"compress": image.initrd.compress.value}
        )
    if image.cmdline_append is not None:
        bootimg["cmdline_append"] = image.cmdline_append
    document: dict[str, Any] = {"id": profile.id}
    if profile.display_name is not None:
        document["display_name"] = profile.display_name
    document["devicetree_name"] = profile.devicetree_name
    document["match"] = [{"fastboot": {"vid": m.vid, "pid": m.pid}} for m in profile.match]
    document["probe"] = [_step(step) for step in profile.probe]
    document["boot"] = {"fastboot_boot": {"android_bootimg": bootimg}}
    if profile.machine is not None:
        machine: dict[str, Any] = {"devicetree": profile.machine.devicetree.value}
        if profile.machine.modules:
            machine["modules"] = list(profile.machine.modules)
        document["machine"] = machine
    return document


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Double quotes escape everything (PyYAML mangles NEL inside single quotes).
    safe_plain = plain_scalar_kind(data) == "string" and data.isprintable()
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=None if safe_plain else '"')


def _represent_hex(dumper: yaml.SafeDumper, data: _Hex) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:int", f"{int(data):#x}")


def _represent_none(dumper: yaml.SafeDumper, data: None) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:null", "")


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Hex, _represent_hex)
_Dumper.add_representer(type(None), _represent_none)


def _hexify(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _hexify(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_hexify(item) for item in value]
    if key in _HEX_KEYS and isinstance(value, int):
        return _Hex(value)
    return value


def profile_to_yaml(profile: DeviceProfile) -> str:
    """The profile as YAML text that the strict loader reads back to an equal value."""
    return yaml.dump(
        _hexify(profile_to_document(profile)),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 16,
    )
