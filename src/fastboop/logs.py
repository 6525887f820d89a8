"""Structured logging setup for the CLI (structlog), on stderr so stdout stays data.

Libraries never configure logging; the CLI calls :func:`configure_logging` once. By
default only warnings show, ``-v`` shows progress details and ``-vv`` debug output;
``--log-json`` emits one JSON object per line for log collectors.
"""

from __future__ import annotations

import logging
import sys

import structlog


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
