"""``fastboop rootfs ls|cat|inspect``: look inside a rootfs image without mounting it.

Useful to check what fastboop will find (kernel, modules, DTBs) before booting, and to
debug images: it goes through exactly the readers and container layers the boot uses.
"""

from __future__ import annotations

import stat as statmod

from fastboop.artifact.open import ArtifactOptions, open_artifact
from fastboop.cli.artifact_options import add_artifact_options, artifact_options
from fastboop.cli.filewrite import write_file
from fastboop.cli.output import help_text
from fastboop.errors import FastboopError
from fastboop.rootfs.fs import Filesystem, Stat

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any


def _add_common(parser: argparse.ArgumentParser, *, kernel_version: bool = False) -> None:
    parser.add_argument("rootfs", metavar="ROOTFS",
                        help="image file, directory or http(s) URL (compressed, sparse or "
                             "partitioned images are unwrapped automatically; a disk's "
                             "volumes show as one tree: the root, /boot on it)")  # fmt: skip
    add_artifact_options(parser, kernel_version=kernel_version)


def register(subparsers: Any) -> None:
    from fastboop.cli.parser import HelpFormatter

    parser = subparsers.add_parser(
        "rootfs",
        description=help_text(__doc__),
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="rootfs_command", metavar="ACTION", required=True)

    ls = sub.add_parser("ls", help="list a directory (symlinks are followed)")
    _add_common(ls)
    ls.add_argument("path", nargs="?", default="/", metavar="PATH")
    ls.add_argument("-l", "--long", action="store_true", help="show mode, size and targets")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=run_ls)

    cat = sub.add_parser(
        "cat", help="write a file's bytes to stdout",
        description="Write a file's bytes to stdout, e.g.\n"
        "  fastboop rootfs cat IMAGE /boot/vmlinuz > vmlinuz\n"
        "When stdout is a file, a large compressed file is decoded on every core at\n"
        "once; into a pipe it streams in order.",
    )  # fmt: skip
    _add_common(cat)
    cat.add_argument("path", metavar="PATH")
    cat.set_defaults(handler=run_cat, exit_at_once=True)  # see cli.main._exit_at_once
    # (plain_arguments below gives what this parser gives: tests/cli/test_plain_arguments.py)

    inspect = sub.add_parser("inspect", help="format, layers, kernels and modules found")
    _add_common(inspect, kernel_version=True)  # inspect reports the kernel it would pick
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=run_inspect)


def plain_arguments(words: Sequence[str]) -> dict[str, Any] | None:
    """``rootfs cat IMAGE PATH`` as the ``cat`` parser above parses it, without argparse
    (see :func:`fastboop.cli.main.plain_arguments`: the caller has checked that no word
    is an option); None for any other action or number of words."""
    if len(words) != 3 or words[0] != "cat":
        return None
    return {"rootfs_command": "cat", "rootfs": words[1], "path": words[2], "partition": None,
            "boot_partition": None, "boot_profile": None, "handler": run_cat,
            "exit_at_once": True}  # fmt: skip


def _open(args: argparse.Namespace) -> Filesystem:
    return open_artifact(args.rootfs, artifact_options(args)).fs


def _entry(fs: Filesystem, path: str, name: str) -> dict[str, Any]:
    full = f"{path.rstrip('/')}/{name}"
    st: Stat = fs.lstat(full)
    entry: dict[str, Any] = {"name": name, "type": st.type.value,
                             "mode": f"{st.permissions:04o}", "size": st.size}  # fmt: skip
    if st.is_symlink:
        entry["target"] = fs.readlink(full)
    return entry


def run_ls(args: argparse.Namespace) -> int:
    fs = _open(args)
    entries = [_entry(fs, args.path, n) for n in fs.listdir(args.path)]
    if args.json:
        import msgspec

        print(msgspec.json.encode(entries).decode())
        return 0
    for e in entries:
        if args.long:
            target = f" -> {e['target']}" if "target" in e else ""
            print(f"{statmod.filemode(_mode(e))} {e['size']:>10} {e['name']}{target}")
        else:
            print(e["name"] + ("/" if e["type"] == "dir" else ""))
    return 0


def _mode(entry: dict[str, Any]) -> int:
    kinds = {"dir": statmod.S_IFDIR, "symlink": statmod.S_IFLNK, "file": statmod.S_IFREG,
             "chardev": statmod.S_IFCHR, "blockdev": statmod.S_IFBLK, "fifo": statmod.S_IFIFO,
             "socket": statmod.S_IFSOCK}  # fmt: skip
    return kinds[entry["type"]] | int(entry["mode"], 8)


def run_cat(args: argparse.Namespace) -> int:
    write_file(_open(args), args.path)
    return 0


def inspect_rootfs(
    spec: str,
    options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
) -> dict[str, Any]:
    """The facts ``inspect`` prints: volumes and their roles, kernel, modules, OSTree."""
    from fastboop.stage0.discover import find_kernel, module_dirs
    from fastboop.stage0.ostree import list_deployments

    artifact = open_artifact(spec, options)
    fs = artifact.fs
    info: dict[str, Any] = artifact.as_json() | {"rootfs": spec, "format": artifact.rootfs_kind,
                                                 "layers": list(artifact.root.layers)}  # fmt: skip
    info["module_dirs"] = [d.path for d in module_dirs(fs)]
    info["ostree_deployments"] = [d.path for d in list_deployments(fs)]
    try:
        choice = find_kernel(fs, kernel_version=options.kernel_version,
                             boot_first=artifact.roles.boot is not None)  # fmt: skip
        info["kernel"] = {"path": choice.kernel_path, "kver": choice.kver, "rule": choice.rule,
                          "volume": artifact.origin(choice.kernel_path),
                          "others": list(choice.others),
                          "warnings": list(choice.warnings)}  # fmt: skip
    except FastboopError as error:  # no kernel is a fact to report here, not a failure
        info["kernel"] = {"error": str(error)}
    return info


def run_inspect(args: argparse.Namespace) -> int:
    info = inspect_rootfs(args.rootfs, artifact_options(args))
    if args.json:
        import msgspec

        print(msgspec.json.encode(info).decode())
        return 0
    print(f"format:  {info['format']}" + (f" (inside {' / '.join(info['layers'])})"
                                            if info["layers"] else ""))  # fmt: skip
    several = len(info["volumes"]) > 1
    if several or info["roles"]["root"]["subvol"]:
        for volume in info["volumes"]:
            roles = [f"{name} ({role['why']})" for name, role in info["roles"].items()
                     if role is not None and role["index"] == volume["index"]]  # fmt: skip
            label = f" {volume['label']!r}" if volume["label"] else ""
            print(f"volume:  {volume['name']}: {volume['fs'] or 'unknown'}{label}"
                  + (f"; {'; '.join(roles)}" if roles else ""))  # fmt: skip
    for note in info["notes"]:
        print(f"note:    {note}")
    kernel = info["kernel"]
    if "error" in kernel:
        print(f"kernel:  none ({kernel['error']})")
    else:
        where = f", {kernel['volume']}" if several else ""
        print(f"kernel:  {kernel['path']} (version {kernel['kver'] or 'unknown'}{where})")
        for other in kernel["others"]:
            print(f"also:    {other}")
        for warning in kernel["warnings"]:
            print(f"warning: {warning}")
    print("modules: " + (", ".join(info["module_dirs"]) or "none"))
    for path in info["ostree_deployments"]:
        print(f"ostree:  {path}")
    return 0
