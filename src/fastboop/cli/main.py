"""``fastboop`` command line entry point.

Each sub-command lives in its own module under :mod:`fastboop.cli` and exposes
``register(subparsers)``; :mod:`fastboop.cli.parser` wires them into one argparse parser,
and this module runs the chosen command and turns expected errors
(:class:`~fastboop.errors.FastboopError`) into one clear line and an exit code, never a
traceback.

Start-up is kept small on purpose (``fastboop --version`` and ``--help`` in a few tens of
milliseconds, see ``bench/startup.py``): the parser knows each command only by name and
summary until it is chosen, and nothing here imports the runtime, structlog or asyncio.
A command line of plain words that a command takes as they are (``fastboop rootfs cat
IMAGE PATH``, which has to keep pace with ``fsck.erofs``) runs without argparse at all:
see :func:`plain_arguments`.
"""

from __future__ import annotations

import gc
import os
import sys

from fastboop.errors import FastboopError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

#: Command lines of plain words run without argparse: (command, action) -> the module
#: whose ``plain_arguments(words)`` gives what argparse would make of the words after the
#: command, or None when it needs argparse. Each is a one-shot command that ends with
#: ``os._exit`` (``exit_at_once``) and runs without garbage collection (:func:`main`).
PLAIN_COMMANDS: dict[tuple[str, str], str] = {("rootfs", "cat"): "fastboop.cli.rootfs"}


class Arguments:
    """A command line parsed without argparse: its values as attributes, as in the
    ``argparse.Namespace`` argparse would have made (``vars()`` gives the same dict)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Arguments({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def plain_arguments(argv: Sequence[str]) -> Arguments | None:
    """``argv`` parsed without argparse, when it is a command and only plain words that
    the command takes as they are (``rootfs cat IMAGE PATH``); else None.

    Importing argparse (with ``re``, ``enum``, ``gettext``, ``locale``) and building the
    parsers is ~32 M instructions, ~10 ms: a sixth of a ``rootfs cat`` of a 33 MB kernel,
    whose peer ``fsck.erofs`` is done in ~40 ms. For words none of which starts with
    ``-`` argparse has no option, ``--help`` or ``--`` to interpret, so what it makes of
    them is fixed: each word fills the next positional, and every option keeps its
    default. Any other command line, a wrong number of words included, goes to argparse,
    so help and usage errors are exactly its own. (tests/cli/test_plain_arguments.py checks
    that both give the same values.)
    """
    module = _plain_command(argv)
    if module is None:
        return None
    __import__(module)  # (importlib's import_module would import importlib and warnings)
    values = sys.modules[module].plain_arguments(argv[1:])
    if values is None:
        return None
    return Arguments(command=argv[0], verbose=0, quiet=False, log_json=False, **values)


def _plain_command(argv: Sequence[str]) -> str | None:
    """The module of the :data:`PLAIN_COMMANDS` entry whose plain words ``argv`` are (no
    word starts with ``-``), or None. Imports nothing."""
    if len(argv) < 2 or any(word.startswith("-") for word in argv):
        return None
    return PLAIN_COMMANDS.get((argv[0], argv[1]))


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    one_shot = argv is None and _plain_command(words) is not None
    if one_shot:
        # A one-shot command that ends with os._exit: nothing it makes needs collecting
        # before the exit reclaims it all (reference counting still frees everything
        # that is not a cycle, and decoding makes none). The collector would only walk
        # the objects start-up and decoding make: ~12 M instructions (4 %) of a
        # ``rootfs cat`` of a 33 MB kernel.
        gc.disable()
    args: Any = plain_arguments(words)
    if args is None:
        if one_shot:  # a wrong number of words: argparse explains
            gc.enable()
        from fastboop.cli.parser import build_parser

        args = build_parser().parse_args(argv)
    if argv is None:  # the program itself, not a caller: see _freeze_start_up
        _freeze_start_up()
    from fastboop.logs import configure_logging, log_error

    configure_logging(args.verbose, json=args.log_json)

    def report(error: FastboopError) -> int:
        log_error(error, json=args.log_json)
        if getattr(args, "json", False):  # scripts reading stdout learn it there too
            _json_error(error)
        return error.exit_code

    try:
        code: int = args.handler(args)
    except FastboopError as error:
        return report(error)
    except BaseExceptionGroup as group:
        # Errors raised inside task groups arrive wrapped; a user error is still one line.
        user_error = _user_error(group)
        if user_error is None:
            raise
        return report(user_error)
    except KeyboardInterrupt:
        from fastboop.cli.exit_codes import ExitCode

        log_error(FastboopError("interrupted"), json=args.log_json)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`fastboop replay show … | head`): not an error of ours.
        from fastboop.cli.exit_codes import ExitCode

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OUTPUT_CLOSED
    if argv is None and getattr(args, "exit_at_once", False):
        _exit_at_once(code)
    return code


def _exit_at_once(code: int) -> None:
    """End the process now, without the interpreter's teardown, for a command whose
    parser says it holds nothing that needs one (``exit_at_once``: ``rootfs cat``, which
    has written its file with ``os.write`` and keeps no threads, journal or children).
    The teardown frees every object one by one: ~3.5 ms of a ~60 ms ``rootfs cat``. Only
    when ``main`` is the program; stdout and stderr are flushed first, and if that fails
    the normal exit reports it."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def _freeze_start_up() -> None:
    """Exempt what start-up made (modules, classes, the parser) from garbage collection.

    None of it is garbage until the process ends, yet every full collection walks all
    of it, and so does the one at exit: ~30 M instructions of a short command such as
    ``fastboop stage0`` or ``rootfs cat`` (~5 %). ``gc.freeze`` moves those objects to
    the permanent generation, as pre-fork servers do; what the command makes afterwards
    is collected as before. Only when ``main`` runs as the program (``argv`` from the
    command line): a test calling ``main([...])`` many times keeps its garbage collectable.
    """
    gc.freeze()


def _json_error(error: FastboopError) -> None:
    import json

    document = {"type": "error", "message": error.message, "where": error.where,
                "hint": error.hint, "exit_code": error.exit_code}  # fmt: skip
    print(json.dumps(document), flush=True)


def _user_error(group: BaseExceptionGroup) -> FastboopError | None:
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        else:
            leaves.append(error)

    collect(group)
    errors = [leaf for leaf in leaves if isinstance(leaf, FastboopError)]
    if errors and len(errors) == len(leaves):
        return errors[0]
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
