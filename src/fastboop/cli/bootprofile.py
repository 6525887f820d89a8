"""``fastboop bootprofile``: compile, show and check boot profiles.

A boot profile says where an image's parts come from when a plain path is not enough:
the root filesystem, and the kernel and DTBs from another filesystem, each through a
pipeline of steps (http/file, xz, android_sparseimg, mbr/gpt, tar), plus stage0
additions per device. It is written as YAML or JSON (the manifest) and compiled to the
binary FBOOPROF record the reference fastboop reads too. ``fastboop boot``, ``stage0``
and ``rootfs`` take a compiled profile, or a channel (records followed by the image),
wherever they take an image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from fastboop.cli.output import help_text
from fastboop.cli.parser import HelpFormatter
from fastboop.errors import FastboopError, UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bootprofile",
        description=help_text(__doc__),
        epilog=(
            "examples:\n"
            "  fastboop bootprofile create pmos.yaml -o pmos.fbp\n"
            "  fastboop bootprofile show pmos.fbp\n"
            "  fastboop bootprofile validate pmos.fbp pmos.yaml\n"
            "  cat pmos.fbp pmos-oneplus-fajita.img.xz > pmos.channel   # a channel\n"
            "  fastboop stage0 pmos.channel --device-profile oneplus-fajita --json"
        ),
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(dest="bootprofile_action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="compile a manifest (YAML/JSON) into an FBOOPROF record",
        description="Compile MANIFEST into the binary boot profile. Device-tree overlays "
        "are compiled with dtc; local 'file' sources without 'content' get their SHA-512 "
        "and size filled in by hashing the file, as the reference does. The result is "
        "validated before it is written.")  # fmt: skip
    create.add_argument("manifest", type=Path, metavar="MANIFEST")
    create.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help="where to write the compiled profile ('-' for stdout)")
    create.add_argument("--json", action="store_true", help="print a summary as JSON")
    create.set_defaults(handler=create_profile)
    show = actions.add_parser(
        "show", help="print a compiled profile (or a channel's profiles) as YAML",
        description="Print the boot profile in FILE as a manifest, overlays decompiled. "
        "FILE may be a channel: each boot profile in its head is printed.")  # fmt: skip
    show.add_argument("file", type=Path, metavar="FILE")
    show.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    show.set_defaults(handler=show_profile)
    check = actions.add_parser(
        "validate", help="check manifests and compiled profiles; exit 1 if any is invalid",
        description="Check each FILE (a manifest, a compiled profile or a channel) against "
        "the reference's rules: pipeline shapes and selectors, digests, filesystems. "
        "One line per file.")  # fmt: skip
    check.add_argument("files", type=Path, nargs="+", metavar="FILE")
    check.add_argument("--json", action="store_true", help="print a JSON array instead")
    check.set_defaults(handler=validate_profiles)


def _read(path: Path) -> bytes:
    try:
        return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read: {error.strerror}", where=str(path)) from None


def _profiles(path: Path, data: bytes) -> list[tuple[Any, int]]:
    """(profile, format version) from a manifest, a record or a channel head."""
    from fastboop.blocks import BytesSource
    from fastboop.bootprofile.manifest import load_manifest
    from fastboop.channel.intake import read_head
    from fastboop.channel.magic import has_records

    source = BytesSource(data, identity=f"file:{path}")
    if has_records(source):
        head = read_head(source, where=str(path))
        if not head.boot_profiles:
            raise UsageError("no boot profile records in it", where=str(path))
        return list(zip(head.boot_profiles, head.boot_versions, strict=True))
    try:
        return [(load_manifest(data), 0)]
    except FastboopError as error:
        raise type(error)(error.message, where=str(path), hint=error.hint) from None


def create_profile(args: argparse.Namespace) -> int:
    from fastboop.blocks import FileSource
    from fastboop.bootprofile.binary import encode_fbooprof
    from fastboop.bootprofile.content import sha512_of
    from fastboop.bootprofile.manifest import load_manifest
    from fastboop.bootprofile.validate import validate

    try:
        profile = load_manifest(_read(args.manifest))
    except FastboopError as error:
        raise type(error)(error.message, where=str(args.manifest), hint=error.hint) from None
    hashed: list[str] = []

    def digest(path: str) -> Any:
        from fastboop.bootprofile.schema import Content

        with FileSource(path) as source:
            hashed.append(path)
            return Content(sha512_of(source), source.size)

    profile = fill_file_content(profile, digest)
    validate(profile)
    record = encode_fbooprof(profile)
    if str(args.output) == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write a binary profile to a terminal",
                             hint="use -o FILE, or redirect stdout")  # fmt: skip
        sys.stdout.buffer.write(record)
    else:
        args.output.write_bytes(record)
    if args.json:
        print(json.dumps({"id": profile.id, "output": str(args.output), "bytes": len(record),
                          "sha256": hashlib.sha256(record).hexdigest(),
                          "hashed_files": hashed}))  # fmt: skip
    elif not args.quiet and str(args.output) != "-":
        extra = f"; hashed {len(hashed)} local file(s)" if hashed else ""
        print(f"{args.output}: boot profile {profile.id!r}, {len(record)} bytes{extra}",
              file=sys.stderr)  # fmt: skip
    return 0


def fill_file_content(profile: Any, digest: Any) -> Any:
    """``profile`` with ``content`` filled in for every local ``file`` step lacking it."""
    import msgspec

    from fastboop.bootprofile.schema import File, PathSource, inner

    cache: dict[str, Any] = {}

    def fill(source: Any) -> Any:
        if isinstance(source, File):
            if source.content is not None:
                return source
            resolved = str(Path(source.path).resolve())
            if resolved not in cache:
                cache[resolved] = digest(resolved)
            return msgspec.structs.replace(source, content=cache[resolved])
        nested = inner(source)
        return source if nested is None else msgspec.structs.replace(source, source=fill(nested))

    def fs(filesystem: Any) -> Any:
        return msgspec.structs.replace(filesystem, source=fill(filesystem.source))

    parts = {key: msgspec.structs.replace(part, filesystem=fs(part.filesystem))
             for key in ("kernel", "dtbs") if isinstance(part := getattr(profile, key),
                                                         PathSource)}  # fmt: skip
    return msgspec.structs.replace(profile, rootfs=fs(profile.rootfs), **parts)


def show_profile(args: argparse.Namespace) -> int:
    from fastboop.bootprofile.manifest import dump_manifest, profile_manifest

    found = _profiles(args.file, _read(args.file))
    if args.json:
        out = [profile_manifest(p) | {"format_version": v} for p, v in found]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
        return 0
    for index, (profile, version) in enumerate(found):
        if len(found) > 1 or version:
            print(f"{'---' + chr(10) if index else ''}# FBOOPROF format version {version}")
        print(dump_manifest(profile), end="")
    return 0


def validate_profiles(args: argparse.Namespace) -> int:
    from fastboop.bootprofile.validate import validate

    results: list[dict[str, Any]] = []
    for path in args.files:
        try:
            found = _profiles(path, _read(path))
            for profile, version in found:
                validate(profile, require_content=version == 0,
                         files_unhashed=_is_manifest(path))  # fmt: skip
            results.append({"file": str(path), "valid": True,
                            "ids": [p.id for p, _ in found]})  # fmt: skip
        except FastboopError as error:
            results.append({"file": str(path), "valid": False, "error": str(error)})
    if args.json:
        print(json.dumps(results))
    else:
        for result in results:
            if result["valid"]:
                print(f"{result['file']}: ok ({', '.join(result['ids'])})")
            else:
                print(f"{result['file']}: invalid: {result['error']}")
    return 0 if all(r["valid"] for r in results) else 1


def _is_manifest(path: Path) -> bool:
    """Manifests may leave local files' content out: create fills it in."""
    try:
        return not path.read_bytes()[:8].startswith(b"FBOO")
    except OSError:
        return False
