"""Library logging: structlog when the program configured it, stdlib logging otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import structlog

from fastboop import logs
from fastboop.logs import configure_logging, get_logger

SRC = Path(__file__).resolve().parents[2] / "src" / "fastboop"


def test_unconfigured_records_go_to_stdlib_logging_not_stdout(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not structlog.is_configured()
    log = get_logger("fastboop.test").bind(device="1-2")
    with caplog.at_level(logging.INFO, logger="fastboop.test"):
        log.info("probing", attempt=2)
        log.debug("not shown at INFO")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("fastboop.test", "INFO", "probing device='1-2' attempt=2")
    ]
    assert capsys.readouterr().out == ""


def test_configured_structlog_gets_the_records(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(1, json=True)
    get_logger("fastboop.test").bind(device="1-2").warning("lost", reason="unplugged")
    out, err = capsys.readouterr()
    assert out == ""
    assert '"event": "lost"' in err and '"device": "1-2"' in err and '"reason": "unplugged"' in err


def test_no_library_module_asks_structlog_for_a_logger_directly() -> None:
    """structlog's unconfigured default prints on stdout; library code must not reach it."""
    offenders = [
        str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
        if path.name != "logs.py" and "structlog.get_logger(" in path.read_text()
    ]  # fmt: skip
    assert offenders == []


def test_level_numbers_are_loggings() -> None:
    assert (logs.DEBUG, logs.INFO, logs.WARNING, logs.ERROR) == (
        logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)  # fmt: skip
