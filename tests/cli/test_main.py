"""The entry point: lazy sub-commands, common flags in either position, exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastboop.cli.exit_codes import MEANINGS, ExitCode
from fastboop.cli.main import main
from fastboop.cli.parser import COMMANDS, build_parser
from tests.support.imports import fastboop_imports, python_imports

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("fastboop.runtime", "fastboop.events", "structlog", "asyncio", "trio", "msgspec",
         "typing", "rich")  # fmt: skip


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_command_and_no_runtime(argv: list[str]) -> None:
    probe = fastboop_imports(argv)
    assert probe.exit_code == 0
    entry = ("fastboop.cli", "fastboop.cli.main", "fastboop.cli.parser", "fastboop.cli.exit_codes")
    probe.assert_none_of([*HEAVY, "fastboop.cli"], allowed=entry)  # no command module


def test_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^    {name}\s", out, re.M), name
    codes = re.findall(r"^  (\d+)\s+\S", out.split("exit codes:")[1], re.M)
    assert [int(code) for code in codes] == [int(code) for code in ExitCode]


def test_every_command_module_registers_its_parser() -> None:
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args([name, "--help"])
        assert stopped.value.code == 0


def test_common_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["-q", "-v", "--log-json", "devpro", "list"])
    after = parser.parse_args(["devpro", "list", "-q", "-v", "--log-json"])
    neither = parser.parse_args(["devpro", "list"])
    for args in (before, after):
        assert (args.quiet, args.verbose, args.log_json) == (True, 1, True)
    assert (neither.quiet, neither.verbose, neither.log_json) == (False, 0, False)


def test_unknown_command_is_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "fastboop.cli.main", "frobnicate"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == ExitCode.USAGE
    assert "invalid choice: 'frobnicate'" in done.stderr


def _documented_codes(text: str) -> list[int]:
    """The codes of the first Markdown table whose header row starts with `| Exit code`."""
    section = text.split("| Exit code", 1)[1]
    rows = re.findall(r"^\| `?(\d+)`? \|", section.split("\n\n", 1)[0], re.M)
    return [int(code) for code in rows]


@pytest.mark.parametrize("document", ["README.md", "docs/cli.md"])
def test_exit_codes_are_documented_exactly(document: str) -> None:
    assert _documented_codes((REPO / document).read_text()) == [int(c) for c in ExitCode]
    assert set(MEANINGS) == set(ExitCode)


def test_signal_exit_codes_are_128_plus_the_signal() -> None:
    import signal

    assert ExitCode.INTERRUPTED == 128 + signal.SIGINT
    assert ExitCode.OUTPUT_CLOSED == 128 + signal.SIGPIPE
    assert ExitCode.TERMINATED == 128 + signal.SIGTERM


#: Libraries ``rootfs cat`` of a plain EROFS image never needs: container decoders, the
#: decompression cache's helpers, stdlib logging (nothing is logged), and argparse with
#: what it brings (its command line is plain words: cli.main.plain_arguments). (``lzma``
#: and ``bz2`` come with ``shutil``, which argparse's formatter imports.)
NOT_ON_THE_READ_PATH = ("zstandard", "xxhash", "gzip", "difflib", "tempfile", "json",
                        "logging", "hashlib", "signal", "structlog", "asyncio",
                        "argparse", "re", "gettext", "locale", "fastboop.cli.parser",
                        "google_crc32c",  # one superblock CRC: crc32c_short
                        "importlib", "warnings",  # plain imports, not import_module
                        "enum", "functools", "collections",  # values.Constant, TYPE_CHECKING
                        # the models on the path are plain values (fastboop.values)
                        "msgspec", "uuid", "shutil", "pathlib", "typing",
                        # containers a bare filesystem image never needs
                        "fastboop.rootfs.partitions", "fastboop.rootfs.layers",
                        "fastboop.rootfs.tar", "fastboop.rootfs.zip",
                        "fastboop.rootfs.compressed", "fastboop.artifact.coalesce")  # fmt: skip


def test_rootfs_cat_imports_only_what_it_uses(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "boot" / "file").write_bytes(b"fastboop " * 5000)
    image = tmp_path / "image.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tree)], check=True)
    probe = fastboop_imports(["rootfs", "cat", str(image), "/boot/file"])
    assert probe.stdout == "fastboop " * 5000
    assert probe.exit_code == 0
    probe.assert_none_of(NOT_ON_THE_READ_PATH)


@pytest.mark.parametrize("as_program", [True, False])
def test_start_up_objects_are_frozen_only_when_main_is_the_program(
    tmp_path: Path, as_program: bool
) -> None:
    """``fastboop`` itself exempts start-up's objects from collection (gc.freeze); a
    library caller of ``main([...])`` keeps its garbage collectable."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "file").write_text("x\n")
    image = tmp_path / "image.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tmp_path / "tree")], check=True)
    argv = ["rootfs", "ls", str(image), "/"]  # (cat, as the program, ends in os._exit)
    call = "main()" if as_program else f"main({argv!r})"
    probe = (
        "import gc, sys\n"
        "from fastboop.cli.main import main\n"
        f"sys.argv = ['fastboop', *{argv!r}]\n"
        f"code = {call}\n"
        "print(code, gc.get_freeze_count() > 0, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout == "file\n"
    assert done.stderr.strip().splitlines()[-1] == f"0 {as_program}"


@pytest.mark.parametrize("action", ["cat", "ls"])
def test_rootfs_cat_as_the_program_skips_the_interpreters_teardown(
    tmp_path: Path, action: str
) -> None:
    """`rootfs cat` ends with os._exit once its output is out (atexit handlers do not
    run); other commands, and callers of main([...]), return as usual."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "file").write_bytes(b"fastboop " * 9000)
    image = tmp_path / "image.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tmp_path / "tree")],
                   check=True)  # fmt: skip
    argv = ["rootfs", action, str(image), "/file" if action == "cat" else "/"]
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('teardown', file=sys.stderr))\n"
        "from fastboop.cli.main import main\n"
        f"sys.argv = ['fastboop', *{argv!r}]\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert done.stdout == (b"fastboop " * 9000 if action == "cat" else b"file\n")
    assert (b"teardown" in done.stderr) == (action == "ls")


def test_parsing_a_command_line_imports_no_shutil() -> None:
    """argparse's stock formatter imports ``shutil`` (with ``bz2``, ``lzma``) for the
    terminal width on every ``add_argument``; fastboop's parsers find it without."""
    probe = python_imports(
        "from fastboop.cli.parser import build_parser\n"
        "print(build_parser().parse_args(['stage0', 'rootfs.ero', '-o', 'initrd']).command)\n"
    )
    assert probe.stdout.strip() == "stage0"
    probe.assert_none_of(("shutil", "bz2", "lzma"))


@pytest.mark.parametrize("columns", [None, "57", "0", "wide"])
def test_help_width_is_shutils(columns: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from fastboop.cli.parser import HelpFormatter, terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
    assert HelpFormatter("fastboop")._width == shutil.get_terminal_size().columns - 2
