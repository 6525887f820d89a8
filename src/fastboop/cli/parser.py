"""The ``fastboop`` command line's parser: argparse, with each command's parser built only
when that command is chosen.

``--help`` lists every command from :data:`COMMANDS` without importing any of them; when
argparse reaches a command, its module is imported and its ``register(subparsers)`` builds
its parser. :mod:`fastboop.cli.main` imports this module only for a command line it does
not run without a parser (argparse with ``re``, ``enum``, ``gettext`` and ``locale`` is
~35 M instructions, ~10 ms: see ``main.plain_arguments``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fastboop._version import __version__
from fastboop.cli.exit_codes import exit_codes_help

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from typing import Any

# name -> (module, one-line summary for `fastboop --help`), in the order --help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "boot": ("fastboop.cli.boot",
             "boot a phone in fastboot mode from a rootfs image (nothing is flashed)"),
    "devices": ("fastboop.cli.devices",
                "list fastboot devices, like `fastboot devices` (-l: where, and the profile)"),
    "detect": ("fastboop.cli.detect",
               "list connected fastboot devices and the device profiles they match"),
    "demo": ("fastboop.cli.demo",
             "run a whole session against a simulated phone (no hardware needed)"),
    "replay": ("fastboop.cli.replay",
               "re-drive a recorded session offline and report the first divergence"),
    "serve": ("fastboop.cli.serve",
              "serve a rootfs image to a smoo gadget that is already up (no fastboot)"),
    "stage0": ("fastboop.cli.stage0", "build the stage0 initramfs from a rootfs image"),
    "rootfs": ("fastboop.cli.rootfs", "list, print or inspect files inside a rootfs image"),
    "bootimg": ("fastboop.cli.bootimg", "build or inspect Android boot images"),
    "devpro": ("fastboop.cli.devpro", "list, show and validate device profiles"),
    "bootprofile": ("fastboop.cli.bootprofile",
                    "compile, show and validate boot profiles (the reference's FBOOPROF)"),
    "sim": ("fastboop.cli.sim", "run a simulated phone in fastboot mode (TCP/UDP)"),
    "stage": ("fastboop.cli.stage",
              "load a file into a fastboot device's RAM, like `fastboot stage` (no boot)"),
    "ui": ("fastboop.cli.ui",
           "boot from the browser, watch sessions live, debug journals on a timeline"),
}  # fmt: skip

DESCRIPTION = (
    "Boot Linux on a phone straight from this PC, without flashing anything. "
    "The phone waits in fastboot mode; fastboop identifies it, builds a boot image "
    "from an unmodified distro rootfs, boots it from RAM and serves the rootfs "
    "over USB. Every session is journaled and can be replayed offline."
)


if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    _SubParsers = argparse._SubParsersAction


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal on stdout,
    else 80. (Importing ``shutil`` brings ``bz2``, ``lzma`` and ``fnmatch``.)"""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout (None), closed, not a terminal
        return 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter for every fastboop parser: descriptions and epilogs as
    written, the width found without ``shutil``.

    argparse makes a formatter on every ``add_argument`` (to check the metavar), and the
    stock one imports ``shutil`` for the width each time a command line is parsed: ~7 M
    instructions of a ``fastboop stage0`` that never prints help."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse's parser with :class:`HelpFormatter` by default.

    ``add_subparsers`` makes its children of the parser's own class, so every nested
    action parser (``rootfs cat``, ``devpro list``) gets it too: with the stock
    formatter, each of their ``add_argument`` calls imported ``shutil`` (~2 ms of a
    ``rootfs cat``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)


class _LazyCommands(_SubParsers):
    """Sub-commands whose parsers are built only when chosen.

    ``--help`` lists every command from :data:`COMMANDS` without importing any of them.
    When argparse reaches a command, its module is imported and its ``register`` builds
    its parser: the only one made besides the top level's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._modules: dict[str, str] = {}
        self._loading: str | None = None

    def add_lazy(self, name: str, module: str, summary: str) -> None:
        """``name`` is a valid choice and ``--help`` lists it with ``summary``; no parser
        is made for it until :meth:`load` (an ``ArgumentParser`` costs ~0.1 ms, most of
        it gettext looking for translations, and ``fastboop`` has 14 commands)."""
        self._modules[name] = module
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), summary))
        self._name_parser_map[name] = None  # type: ignore[assignment] # made by load()

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name != self._loading:
            return super().add_parser(name, **kwargs)
        # The command's module registering its parser, where add_lazy left None.
        kwargs.pop("help", None)
        kwargs.setdefault("prog", f"{self._prog_prefix} {name}")
        parser: argparse.ArgumentParser = self._parser_class(**kwargs)
        self._name_parser_map[name] = parser
        return parser

    def load(self, name: str) -> argparse.ArgumentParser:
        module_name = self._modules.pop(name, None)
        if module_name is not None:
            self._loading = name
            try:
                importlib.import_module(module_name).register(self)
            finally:
                self._loading = None
            _add_common_flags_everywhere(self._name_parser_map[name])
        return self._name_parser_map[name]

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        if values and values[0] in self._modules:
            self.load(values[0])
        super().__call__(parser, namespace, values, option_string)


def add_common_flags(parser: argparse.ArgumentParser, *, suppress_defaults: bool = False) -> None:
    """-v, -q and --log-json, accepted before the command and after it.

    After the command the defaults are suppressed, so an option given before the command
    is not reset by the command's own parser.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress_defaults else value

    parser.add_argument(
        "-v", "--verbose", action="count", default=default(0),
        help="show more log detail on stderr (-v info, -vv debug)",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False),
        help="print no progress, only the result and errors (never control characters)",
    )  # fmt: skip
    parser.add_argument(
        "--log-json", action="store_true", default=default(False),
        help="write logs and progress to stderr as JSON lines only (for log collectors)",
    )  # fmt: skip


def _add_common_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    """A command's parser and its actions' parsers (``devpro list``) all take them."""
    add_common_flags(parser, suppress_defaults=True)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                _add_common_flags_everywhere(child)


class _TopLevel(Parser):
    """The ``fastboop`` parser: its description and epilog (the exit codes) are wrapped
    when help is printed, not by every command (``textwrap``: ~0.5 ms)."""

    def format_help(self) -> str:
        if self.description is None:
            import textwrap

            self.description = textwrap.fill(DESCRIPTION, 79)
            self.epilog = (
                "Try `fastboop demo` to run a whole session against a simulated phone.\n"
                "`fastboop COMMAND --help` explains each command, with examples.\n\n"
                + exit_codes_help()
            )
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = _TopLevel(prog="fastboop")
    parser.add_argument("--version", action="version", version=f"fastboop {__version__}")
    add_common_flags(parser)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, action=_LazyCommands
    )
    assert isinstance(commands, _LazyCommands)
    for name, (module, summary) in COMMANDS.items():
        commands.add_lazy(name, module, summary)
    return parser
