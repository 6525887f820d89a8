"""Logging: the library's loggers, and the CLI's set-up (structlog on stderr).

The library never configures logging and never prints. Its modules log through
:func:`get_logger`, which hands each record to structlog when the program configured
structlog (the CLI does, in :func:`configure_logging`), and to the standard ``logging``
module otherwise, under the same logger name (``fastboop.smoo``, …). An embedding program
therefore sees fastboop's records wherever it sends its own, and one that configured
nothing gets only warnings, on stderr (``logging``'s last resort) — never a line on its
stdout, where structlog's unconfigured default would print.

The CLI calls :func:`configure_logging` once; structlog itself is imported and configured
only when the first record at or above the chosen level is logged (or a JSON error is
written), because importing it costs 50-100 ms (it brings rich's traceback machinery and
asyncio) and most commands log nothing. By
default only warnings show, ``-v`` shows progress details and ``-vv`` debug output;
``--log-json`` emits one JSON object per line for log collectors, and then *everything*
the CLI writes to stderr is such a line: progress (see :mod:`fastboop.cli.screen`) and the
final error too (:func:`log_error`).
"""

from __future__ import annotations

import sys

from fastboop.errors import FastboopError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, TextIO

# ``logging``'s level numbers, so that a command which logs nothing never imports
# ``logging`` (with its ``traceback``, ``string`` and ``locale``: ~3 ms at start-up).
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
_LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}

#: (level, json) asked for by :func:`configure_logging`, applied on first need.
_pending: tuple[int, bool] | None = None


class LibraryLogger:
    """What :func:`get_logger` returns: structlog's methods, routed as described above."""

    __slots__ = ("_context", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None):
        self._name = name
        self._context = context or {}

    def bind(self, **fields: Any) -> LibraryLogger:
        return LibraryLogger(self._name, {**self._context, **fields})

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False
             ) -> None:  # fmt: skip
        if _pending is not None and level < _pending[0]:
            return  # below the CLI's level: not worth importing structlog for
        structlog = _configured_structlog()
        if structlog is not None:
            logger = structlog.get_logger(self._name).bind(**self._context)
            method = _LEVEL_NAMES[level]
            if exc_info:
                fields = {**fields, "exc_info": True}
            getattr(logger, method)(event, **fields)
            return
        import logging

        stdlib = logging.getLogger(self._name)
        if stdlib.isEnabledFor(level):
            pairs = "".join(f" {k}={v!r}" for k, v in {**self._context, **fields}.items())
            stdlib.log(level, "%s%s", event, pairs, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._log(ERROR, event, fields, exc_info=True)


def get_logger(name: str) -> LibraryLogger:
    """The logger for a fastboop module (see the module docstring)."""
    return LibraryLogger(name)


def configure_logging(verbosity: int = 0, *, json: bool = False) -> None:
    """Route records to structlog on stderr at ``verbosity`` (0 warnings, 1 info, 2 debug),
    as JSON with ``json``: recorded now, applied when the first record needs it."""
    global _pending
    _pending = ({0: WARNING, 1: INFO}.get(verbosity, DEBUG), json)


def _configured_structlog() -> ModuleType | None:
    """structlog, if the CLI asked for it (configured now, the first time) or the program
    configured it itself; else None."""
    global _pending
    if _pending is not None:
        level, json = _pending
        _pending = None
        _apply(level, json)
    module = sys.modules.get("structlog")
    return module if module is not None and module.is_configured() else None


def _apply(level: int, json: bool) -> None:
    import structlog

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Resolve sys.stderr per logger, not once: it may be swapped (tests, daemons).
        logger_factory=lambda *args: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def log_error(error: FastboopError, *, json: bool = False) -> None:
    """The one line a failed command ends with: plain text, or a JSON log record."""
    if not json:
        print(f"fastboop: error: {error}", file=sys.stderr)
        return
    if _configured_structlog() is None:  # the CLI always configures; a library caller may not
        _apply(WARNING, True)
    import structlog

    structlog.get_logger("fastboop.cli").error(
        error.message,
        error_type=type(error).__name__,
        where=error.where,
        hint=error.hint,
        exit_code=error.exit_code,
    )


def json_record(text: str, *, level: str = "info", logger: str = "fastboop.cli",
                **fields: Any) -> bytes:
    """One log line shaped like structlog's JSON output (event, level, logger, timestamp).

    For lines the CLI shows whatever the log level (progress, the journal's path), so that
    ``--log-json`` keeps stderr all JSON without turning them into warnings.
    """
    from datetime import UTC, datetime

    import msgspec

    record = {"event": str(text), "level": level, "logger": logger,
              "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), **fields}
    return msgspec.json.encode(record)


def say(text: str, *, json: bool = False, stream: TextIO | None = None, **fields: Any) -> None:
    """A line for people on stderr: plain text, or with ``--log-json`` a JSON record."""
    out = stream or sys.stderr
    out.write((json_record(text, **fields).decode() if json else text) + "\n")
    out.flush()
