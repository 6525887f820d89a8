"""Structured logging setup for the CLI (structlog), on stderr so stdout stays data.

Libraries never configure logging; the CLI calls :func:`configure_logging` once. By
default only warnings show, ``-v`` shows progress details and ``-vv`` debug output;
``--log-json`` emits one JSON object per line for log collectors, and then *everything*
the CLI writes to stderr is such a line: progress (see :mod:`fastboop.cli.screen`) and the
final error too (:func:`log_error`).
"""

from __future__ import annotations

import logging
import sys

import structlog

from fastboop.errors import FastboopError


def configure_logging(verbosity: int = 0, *, json: bool = False) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
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
    structlog.get_logger("fastboop.cli").error(
        error.message,
        error_type=type(error).__name__,
        where=error.where,
        hint=error.hint,
        exit_code=error.exit_code,
    )
