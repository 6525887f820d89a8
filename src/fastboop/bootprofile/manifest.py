"""The boot-profile manifest: the YAML/JSON form people write, read and printed back.

Field names and shapes are the reference's (``BootProfileManifest`` and gibblox's
pipeline sources), so a manifest written for it compiles here and the other way round:

.. code-block:: yaml

    id: pmos-fajita
    rootfs:
      ext4:
        mbr:
          index: 1
          android_sparseimg:
            xz:
              file: ./pmos-oneplus-fajita.img.xz
    kernel: {path: /vmlinuz, fat: {mbr: {index: 0, android_sparseimg: {xz: {file: ...}}}}}
    stage0:
      kernel_modules: [ff-memless]
      devices:
        oneplus-fajita: {extra_cmdline: console=ttyMSM0,115200n8}

Container steps take their inner source flattened into the same mapping (as above) or
under ``source:``; ``casync`` takes an index URL or a mapping. ``extra_modules`` (the
name older reference releases used) is read as ``kernel_modules``. Unknown keys are
errors, named with their path, as the reference's ``deny_unknown_fields`` makes them.
Device-tree overlays are DTS text, compiled with ``dtc -@`` (and decompiled for ``show``).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import yaml

from fastboop.bootprofile.schema import (
    FILESYSTEMS,
    STEP_NAMES,
    AndroidSparse,
    BootProfile,
    BootProfileError,
    Casync,
    Content,
    Device,
    File,
    Filesystem,
    Gpt,
    Http,
    InjectMac,
    Mbr,
    PathSource,
    Source,
    Tar,
    Xz,
)

MAX_DEPTH = 16  # gibblox-pipeline's MAX_PIPELINE_DEPTH


def _fail(where: str, message: str, hint: str | None = None) -> BootProfileError:
    return BootProfileError(f"{where}: {message}" if where else message, hint=hint)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(where, f"unknown field {unknown[0]!r}", hint=f"allowed: "
                    f"{', '.join(sorted(allowed))}")  # fmt: skip


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected a string, got {type(value).__name__}")
    return value


def _opt_str(data: dict[str, Any], key: str, where: str) -> str | None:
    return None if data.get(key) is None else _str(data[key], f"{where}.{key}")


def _u32(data: dict[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 32:
        raise _fail(f"{where}.{key}", f"expected an unsigned 32-bit integer, got {value!r}")
    return value


def _content(data: dict[str, Any], where: str) -> Content | None:
    raw = data.get("content")
    if raw is None:
        return None
    here = f"{where}.content"
    body = _mapping(raw, here)
    _only(body, {"digest", "size_bytes"}, here)
    size = body.get("size_bytes")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 1 << 64:
        raise _fail(f"{here}.size_bytes", f"expected a byte count, got {size!r}")
    return Content(_str(body.get("digest"), f"{here}.digest"), size)


_KINDS = set(STEP_NAMES.values())


def parse_source(value: Any, where: str, depth: int = 0) -> Source:
    """One pipeline step (and everything below it)."""
    if depth > MAX_DEPTH:
        raise _fail(where, f"pipeline deeper than {MAX_DEPTH} steps")
    data = _mapping(value, where)
    kinds = [k for k in data if k in _KINDS]
    if len(kinds) != 1:
        raise _fail(where, "expected exactly one of " + ", ".join(sorted(_KINDS)) +
                    (f", found {', '.join(kinds)}" if kinds else ""))  # fmt: skip
    kind = kinds[0]
    here = f"{where}.{kind}"
    if kind == "http":
        _only(data, {"http", "cors_safelisted_mode", "content"}, where)
        cors = data.get("cors_safelisted_mode", False)
        if not isinstance(cors, bool):
            raise _fail(f"{where}.cors_safelisted_mode", "expected true or false")
        return Http(_str(data["http"], here), cors, _content(data, where))
    if kind == "file":
        _only(data, {"file", "content"}, where)
        return File(_str(data["file"], here), _content(data, where))
    if kind == "casync":
        _only(data, {"casync"}, where)
        body = data["casync"]
        if isinstance(body, str):
            return Casync(body)
        body = _mapping(body, here)
        _only(body, {"index", "chunk_store", "content"}, here)
        return Casync(_str(body.get("index"), f"{here}.index"), _opt_str(body, "chunk_store", here),
                      _content(body, here))  # fmt: skip
    if kind == "xz":
        _only(data, {"xz", "content"}, where)
        body = data["xz"]
        if isinstance(body, dict) and set(body) == {"source"}:
            body = body["source"]
        return Xz(parse_source(body, here, depth + 1), _content(data, where))
    body = _mapping(data[kind], here)
    _only(data, {kind}, where)
    fields = {"tar": {"entry"}, "android_sparseimg": set(),
              "mbr": {"partuuid", "index", "lba_size"},
              "gpt": {"partlabel", "partuuid", "index", "lba_size"}}[kind]  # fmt: skip
    rest = {k: v for k, v in body.items() if k not in fields | {"content"}}
    if set(rest) == {"source"}:
        rest = rest["source"]
    inner_source = parse_source(rest, here, depth + 1)
    content = _content(body, here)
    if kind == "tar":
        return Tar(_str(body.get("entry"), f"{here}.entry"), inner_source, content)
    if kind == "android_sparseimg":
        return AndroidSparse(inner_source, content)
    if kind == "mbr":
        return Mbr(inner_source, _opt_str(body, "partuuid", here), _u32(body, "index", here),
                   _u32(body, "lba_size", here), content)  # fmt: skip
    return Gpt(inner_source, _opt_str(body, "partlabel", here), _opt_str(body, "partuuid", here),
               _u32(body, "index", here), _u32(body, "lba_size", here), content)  # fmt: skip


def parse_filesystem(
    data: dict[str, Any], where: str, extra: frozenset[str] = frozenset()
) -> Filesystem:
    kinds = [k for k in data if k in (*FILESYSTEMS, "ostree")]
    if len(kinds) != 1:
        raise _fail(where, "expected exactly one of erofs, ext4, fat, ostree" +
                    (f", found {', '.join(kinds)}" if kinds else ""))  # fmt: skip
    _only(data, {kinds[0], *extra}, where)
    kind = kinds[0]
    if kind == "ostree":
        body = _mapping(data["ostree"], f"{where}.ostree")
        inner_fs = parse_filesystem(body, f"{where}.ostree")
        if inner_fs.ostree:
            raise _fail(f"{where}.ostree", "ostree inside ostree")
        return Filesystem(inner_fs.kind, inner_fs.source, ostree=True)
    return Filesystem(kind, parse_source(data[kind], f"{where}.{kind}"))


def _path_source(value: Any, where: str) -> PathSource:
    data = _mapping(value, where)
    return PathSource(_str(data.get("path"), f"{where}.path"),
                      parse_filesystem(data, where, frozenset({"path"})))  # fmt: skip


def _modules(data: dict[str, Any], where: str) -> tuple[str, ...]:
    names = [k for k in ("kernel_modules", "extra_modules") if k in data]
    if len(names) > 1:
        raise _fail(where, "kernel_modules and extra_modules both given (they are one list)")
    if not names:
        return ()
    raw = data[names[0]]
    if not isinstance(raw, list):
        raise _fail(f"{where}.{names[0]}", "expected a list of module names")
    return tuple(_str(v, f"{where}.{names[0]}[{i}]") for i, v in enumerate(raw))


def _overlays(data: dict[str, Any], where: str) -> tuple[bytes, ...]:
    raw = data.get("dt_overlays") or []
    if not isinstance(raw, list):
        raise _fail(f"{where}.dt_overlays", "expected a list of DTS texts")
    return tuple(compile_dts(_str(v, f"{where}.dt_overlays[{i}]"), f"{where}.dt_overlays[{i}]")
                 for i, v in enumerate(raw))  # fmt: skip


def _device(value: Any, where: str) -> Device:
    data = _mapping(value or {}, where)
    _only(data, {"dt_overlays", "extra_cmdline", "stage0"}, where)
    stage0 = _mapping(data.get("stage0") or {}, f"{where}.stage0")
    _only(stage0, {"kernel_modules", "extra_modules", "inject_mac"}, f"{where}.stage0")
    mac = None
    if stage0.get("inject_mac") is not None:
        here = f"{where}.stage0.inject_mac"
        body = _mapping(stage0["inject_mac"], here)
        _only(body, {"wifi", "bluetooth"}, here)
        mac = InjectMac(_opt_str(body, "wifi", here), _opt_str(body, "bluetooth", here))
    return Device(_overlays(data, where), _opt_str(data, "extra_cmdline", where),
                  _modules(stage0, f"{where}.stage0"), mac)  # fmt: skip


def parse_manifest(data: Any) -> BootProfile:
    """A manifest (already parsed from YAML or JSON) as a boot profile, overlays compiled."""
    data = _mapping(data, "manifest")
    _only(data, {"id", "display_name", "rootfs", "kernel", "dtbs", "dt_overlays",
                 "extra_cmdline", "stage0"}, "")  # fmt: skip
    stage0 = _mapping(data.get("stage0") or {}, "stage0")
    _only(stage0, {"kernel_modules", "extra_modules", "devices", "inject_mac"}, "stage0")
    if "inject_mac" in stage0:
        raise _fail("stage0.inject_mac", "MAC injection is per device",
                    hint="put it under stage0.devices.<device-profile-id>.stage0")
    devices = _mapping(stage0.get("devices") or {}, "stage0.devices")
    for key in ("id", "rootfs"):
        if data.get(key) is None:
            raise _fail(key, "missing (a boot profile needs an id and a rootfs)")
    return BootProfile(
        id=_str(data.get("id"), "id"),
        display_name=_opt_str(data, "display_name", ""),
        rootfs=parse_filesystem(_mapping(data.get("rootfs"), "rootfs"), "rootfs"),
        kernel=_path_source(data["kernel"], "kernel") if data.get("kernel") is not None else None,
        dtbs=_path_source(data["dtbs"], "dtbs") if data.get("dtbs") is not None else None,
        dt_overlays=_overlays(data, ""),
        extra_cmdline=_opt_str(data, "extra_cmdline", ""),
        kernel_modules=_modules(stage0, "stage0"),
        devices={
            _str(k, "stage0.devices"): _device(v, f"stage0.devices.{k}")
            for k, v in sorted(devices.items())
        },
    )


def load_manifest(text: bytes | str) -> BootProfile:
    """Parse YAML (JSON is YAML too) into a boot profile."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", error)
        raise BootProfileError(f"not YAML or JSON: {where}{problem}") from None
    return parse_manifest(data)


# -- back to a manifest -----------------------------------------------------------------------


def _content_out(content: Content | None) -> dict[str, Any]:
    return {} if content is None else {"content": {"digest": content.digest,
                                                   "size_bytes": content.size_bytes}}


def source_manifest(source: Source) -> dict[str, Any]:
    """The reference's serialized form: containers flatten their inner step."""
    if isinstance(source, Http):
        out: dict[str, Any] = {"http": source.url}
        if source.cors_safelisted_mode:
            out["cors_safelisted_mode"] = True
        return out | _content_out(source.content)
    if isinstance(source, File):
        return {"file": source.path} | _content_out(source.content)
    if isinstance(source, Casync):
        body: dict[str, Any] = {"index": source.index}
        if source.chunk_store is not None:
            body["chunk_store"] = source.chunk_store
        return {"casync": body | _content_out(source.content)}
    if isinstance(source, Xz):
        return {"xz": source_manifest(source.source)} | _content_out(source.content)
    if isinstance(source, Tar):
        return {"tar": {"entry": source.entry} | source_manifest(source.source)
                | _content_out(source.content)}  # fmt: skip
    if isinstance(source, AndroidSparse):
        return {"android_sparseimg": source_manifest(source.source)
                | _content_out(source.content)}  # fmt: skip
    fields: dict[str, Any] = {}
    if isinstance(source, Gpt) and source.partlabel is not None:
        fields["partlabel"] = source.partlabel
    for key in ("partuuid", "index", "lba_size"):
        if getattr(source, key) is not None:
            fields[key] = getattr(source, key)
    name = "mbr" if isinstance(source, Mbr) else "gpt"
    return {name: fields | source_manifest(source.source) | _content_out(source.content)}


def _filesystem_manifest(fs: Filesystem) -> dict[str, Any]:
    body = {fs.kind: source_manifest(fs.source)}
    return {"ostree": body} if fs.ostree else body


def profile_manifest(profile: BootProfile) -> dict[str, Any]:
    """The manifest of a compiled profile (overlays decompiled), fields as the reference
    orders and omits them."""
    out: dict[str, Any] = {"id": profile.id}
    if profile.display_name is not None:
        out["display_name"] = profile.display_name
    out["rootfs"] = _filesystem_manifest(profile.rootfs)
    for key in ("kernel", "dtbs"):
        part: PathSource | None = getattr(profile, key)
        if part is not None:
            out[key] = {"path": part.path} | _filesystem_manifest(part.filesystem)
    if profile.dt_overlays:
        out["dt_overlays"] = [decompile_dtbo(o) for o in profile.dt_overlays]
    if profile.extra_cmdline is not None:
        out["extra_cmdline"] = profile.extra_cmdline
    stage0: dict[str, Any] = {}
    if profile.kernel_modules:
        stage0["kernel_modules"] = list(profile.kernel_modules)
    if profile.devices:
        stage0["devices"] = {k: _device_manifest(d) for k, d in sorted(profile.devices.items())}
    if stage0:
        out["stage0"] = stage0
    return out


def _device_manifest(device: Device) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if device.dt_overlays:
        out["dt_overlays"] = [decompile_dtbo(o) for o in device.dt_overlays]
    if device.extra_cmdline is not None:
        out["extra_cmdline"] = device.extra_cmdline
    stage0: dict[str, Any] = {}
    if device.kernel_modules:
        stage0["kernel_modules"] = list(device.kernel_modules)
    if device.inject_mac is not None:
        mac = {k: v for k, v in (("wifi", device.inject_mac.wifi),
                                 ("bluetooth", device.inject_mac.bluetooth)) if v is not None}
        stage0["inject_mac"] = mac  # fmt: skip
    if stage0:
        out["stage0"] = stage0
    return out


def dump_manifest(profile: BootProfile) -> str:
    return yaml.safe_dump(profile_manifest(profile), sort_keys=False, allow_unicode=True)


# -- device-tree overlays ---------------------------------------------------------------------


def _dtc(args: list[str], data: bytes, what: str) -> bytes:
    if shutil.which("dtc") is None:
        raise BootProfileError(f"{what}: dtc is needed for device-tree overlays",
                               hint="apt install device-tree-compiler")  # fmt: skip
    run = subprocess.run(["dtc", "-q", *args], input=data, capture_output=True, check=False)
    if run.returncode:
        detail = run.stderr.decode(errors="replace").strip().splitlines()
        raise BootProfileError(f"{what}: dtc failed: {detail[-1] if detail else run.returncode}")
    return run.stdout


def compile_dts(text: str, where: str) -> bytes:
    return _dtc(["-@", "-I", "dts", "-O", "dtb", "-o", "-", "-"], text.encode(), where)


def decompile_dtbo(blob: bytes) -> str:
    return _dtc(["-I", "dtb", "-O", "dts", "-o", "-", "-"], blob, "dt overlay").decode()
