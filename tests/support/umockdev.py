"""Running a umockdev testbed script (``tests/transports/umockdev``) from a test.

The testbed runs in Debian's python3 (umockdev's API is GObject introspection, which only
that python has) under ``umockdev-wrapper``; it starts the probe, our code in the project's
python, which inherits the preload and so sees the testbed's sysfs instead of the host's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

UMOCKDEV_SCRIPTS = Path(__file__).parents[1] / "transports" / "umockdev"
SYSTEM_PYTHON = "/usr/bin/python3"
ROOT = Path(__file__).parents[2]


def umockdev_missing() -> str | None:
    if shutil.which("umockdev-wrapper") is None:
        return "umockdev-wrapper not installed"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('UMockdev', '1.0')"],
        capture_output=True, check=False,
    )
    return "gir1.2-umockdev-1.0 / python3-gi not installed" if probe.returncode else None


def run_testbed(
    bed: str, bed_args: list[str], probe: str, probe_args: list[str],
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``umockdev-wrapper python3 BED BED_ARGS... PYTHON PROBE PROBE_ARGS...``; fails if it fails.

    ``env`` is added to the environment of both. The result's stdout is the transcript:
    the bed's ``bed:`` lines and every probe line prefixed with ``probe:``.
    """
    missing = umockdev_missing()
    if missing is not None:
        pytest.fail(f"{missing}: run ./scripts/setup")
    environment = dict(os.environ, PYTHONPATH=str(ROOT / "src"), **(env or {}))
    environment.pop("UMOCKDEV_DIR", None)
    result = subprocess.run(
        ["umockdev-wrapper", SYSTEM_PYTHON, str(UMOCKDEV_SCRIPTS / bed), *bed_args,
         sys.executable, str(UMOCKDEV_SCRIPTS / probe), *probe_args],
        capture_output=True, text=True, timeout=120, env=environment, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def probe_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The probe's own lines from a transcript, without the ``probe: `` prefix."""
    return [line.removeprefix("probe: ") for line in result.stdout.splitlines()
            if line.startswith("probe: ")]
