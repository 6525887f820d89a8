"""``fastboop devpro``: list, show and validate device profiles.

Device profiles tell fastboop what a phone is (USB ids plus read-only getvar checks) and
how to boot it (boot-image layout). This command shows which profiles are in force and
where each came from, and checks profile files before they are installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from fastboop.cli.parser import HelpFormatter
from fastboop.devpro.document import profile_to_document, profile_to_yaml
from fastboop.devpro.errors import ProfileError
from fastboop.devpro.pool import PoolEntry, ProfilePool
from fastboop.devpro.schema import DeviceProfile
from fastboop.devpro.sources import load_pool, load_profile_file

_DESCRIPTION = (
    "Device profiles tell fastboop what a phone is (USB ids plus read-only getvar checks) "
    "and how to boot it (boot-image layout). This command shows which profiles are in "
    "force and where each came from, and checks profile files before they are installed."
)
_SOURCES_HELP = (
    "Profiles come from the built-ins, then FASTBOOP_SCHEMA_PATH directories, then "
    "$XDG_CONFIG_HOME/fastboop/devpro (default ~/.config/fastboop/devpro), then "
    "/usr/share/fastboop/devpro. A local profile replaces a built-in with the same id; "
    "the same id in two local files is an error."
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "devpro",
        description=f"{textwrap.fill(_DESCRIPTION, 78)}\n\n{textwrap.fill(_SOURCES_HELP, 78)}",
        epilog=(
            "examples:\n"
            "  fastboop devpro list\n"
            "  fastboop devpro show oneplus-fajita\n"
            "  fastboop devpro validate ~/.config/fastboop/devpro/*.yaml"
        ),
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(dest="devpro_action", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list",
        help="list the profiles in force, sorted by id, tagged with their sources",
        description="List every device profile in force as `ID  NAME  [sources]`.",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON array instead")
    listing.add_argument("--markdown", action="store_true",
                         help="print the supported-devices table (docs/supported-devices.md)")
    listing.set_defaults(handler=list_profiles)

    show = actions.add_parser(
        "show",
        help="print one profile as YAML (or JSON)",
        description=(
            "Print the profile in force for ID in the profile file format, preceded by a "
            "comment naming its source file and SHA-256. The output is itself a valid "
            "profile file."
        ),
    )
    show.add_argument("id", metavar="ID", help="profile id, e.g. oneplus-fajita")
    show.add_argument("--json", action="store_true", help="print JSON with the source info")
    show.set_defaults(handler=show_profile)

    validate = actions.add_parser(
        "validate",
        help="check profile files strictly; exit 1 if any is invalid",
        description=(
            "Check each FILE against the device-profile schema: unknown keys, types, "
            "operators, ranges. Prints one line per file; an invalid file's line names "
            "the key path and what was expected."
        ),
    )
    validate.add_argument(
        "files", metavar="FILE", nargs="+", type=Path, help="profile file (YAML or JSON)"
    )
    validate.add_argument("--json", action="store_true", help="print a JSON array of results")
    validate.set_defaults(handler=validate_files)


def _pool() -> ProfilePool:
    pool = load_pool()
    for warning in pool.warnings:
        print(f"fastboop: warning: {warning}", file=sys.stderr)
    return pool


def _entry_json(entry: PoolEntry) -> dict[str, Any]:
    return {
        "id": entry.profile.id,
        "display_name": entry.profile.display_name,
        "sources": [source.value for source in entry.defined_in],
        "origin": entry.loaded.origin,
        "sha256": entry.loaded.sha256,
    }


def list_profiles(args: argparse.Namespace) -> int:
    pool = _pool()
    if args.markdown:
        print(supported_devices_table(pool), end="")
        return 0
    if args.json:
        print(json.dumps([_entry_json(entry) for entry in pool.entries()], indent=2))
        return 0
    for entry in pool.entries():
        name = entry.profile.display_name
        line = f"{entry.profile.id:<40} " + (f"{name:<24} " if name else "")
        print(f"{line}[{entry.tags}]")
    return 0


def show_profile(args: argparse.Namespace) -> int:
    entry = _pool().entry(args.id)
    if args.json:
        document = _entry_json(entry) | {"profile": profile_to_document(entry.profile)}
        print(json.dumps(document, indent=2))
        return 0
    print(f"# source: {entry.loaded.origin} [{entry.tags}] sha256={entry.loaded.sha256}")
    print(profile_to_yaml(entry.profile), end="")
    return 0


def validate_files(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    failed = False
    for path in args.files:
        try:
            loaded, warnings = load_profile_file(path)
        except ProfileError as error:
            failed = True
            results.append(
                {
                    "file": str(path),
                    "ok": False,
                    "error": str(error),
                    "path": error.path,
                    "expected": error.expected,
                    "line": error.line,
                }
            )
            if not args.json:
                print(f"fastboop: error: {error}", file=sys.stderr)
            continue
        results.append(
            {
                "file": str(path),
                "ok": True,
                "id": loaded.profile.id,
                "sha256": loaded.sha256,
                "warnings": list(warnings),
            }
        )
        if not args.json:
            for warning in warnings:
                print(f"fastboop: warning: {warning}", file=sys.stderr)
            print(f"{path}: ok ({loaded.profile.id})")
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


_OPERATORS = {"equals": "= {}", "starts_with": "starts with {}", "not_equals": "≠ {}",
              "exists": "answered", "not_exists": "not answered"}  # fmt: skip


def supported_devices_table(pool: ProfilePool) -> str:
    """The Markdown table of docs/supported-devices.md, one row per profile in ``pool``.

    Generated, never written by hand (a test compares the page with the built-in
    profiles), so the documentation cannot drift from what fastboop actually knows.
    """
    from fastboop.devpro.bootparams import boot_image_params

    profiles = [entry.profile for entry in pool.entries()]

    def identity(profile: DeviceProfile) -> tuple[object, ...]:
        return (tuple(profile.match), tuple(profile.probe))

    rows = ["| Device | Profile | USB id | Identified by (getvar) | Boot image | Device tree |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for profile in profiles:
        params = boot_image_params(profile)
        ids = ", ".join(f"`{m.vid:04x}:{m.pid:04x}`" for m in profile.match)
        probes = "; ".join(
            f"`{step.getvar}` " + _OPERATORS[step.operator.value].format(f'"{step.value}"')
            for step in profile.probe
        ) or "USB id only"
        twins = [other.id for other in profiles
                 if other.id != profile.id and identity(other) == identity(profile)]
        if twins:
            probes += f" (same as {', '.join(twins)}: boot needs `--device-profile`)"
        kernel = profile.android_bootimg.kernel.encoding.value
        page = f"{params.page_size // 1024} KiB" if params.page_size >= 1024 else \
            f"{params.page_size} B"  # fmt: skip
        tree = (f"the machine's own (`{params.devicetree_name}`)" if params.devicetree_provided
                else f"`{params.devicetree_name}`")  # fmt: skip
        rows.append(f"| {profile.display_name or profile.id} | `{profile.id}` | {ids} | "
                    f"{probes} | v{params.header_version}, {page} pages, kernel {kernel} | "
                    f"{tree} |")  # fmt: skip
    return "\n".join(rows) + "\n"
