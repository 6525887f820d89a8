"""The fuzz campaign's short run (what CI runs of ``bench/fuzz.py``), and the runner itself.

Every family in ``bench/fuzzing/`` runs its first ``SHORT_CASES`` cases (fixed seed, so
the same cases on every machine) and must find nothing: no uncaught exception, no hang,
no peak memory over 512 MiB. The full campaign (a million cases a family) is run by hand
and its results are in docs/reliability.md.

The runner is tested against a family that misbehaves on purpose, so a green short run
means the detectors were watching.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import fuzz

FUZZ = Path(fuzz.__file__)


def campaign(*args: str) -> tuple[int, list[dict[str, Any]]]:
    result = subprocess.run(
        [sys.executable, str(FUZZ), "--json", *args], capture_output=True, text=True
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout.splitlines()[-1])


def test_every_family_survives_its_short_campaign() -> None:
    code, results = campaign("--short")
    assert {r["family"] for r in results} == set(fuzz.family_names())
    assert "journal" in {r["family"] for r in results}
    for result in results:
        assert result["findings"] == [], result
        assert result["cases"] == fuzz.SHORT_CASES, result
        assert result["peak_mib"] < 512
    assert code == 0


MISBEHAVING = '''
import os, random, time
NAME = "misbehaving"
DESCRIPTION = "fails in every way the runner must catch"
EXPECTED = (ValueError,)

def generate(rng: random.Random) -> bytes:  # rare failures: two hangs in 200 cases
    return bytes(rng.choices(range(7), weights=(88, 3, 3, 1, 2, 2, 2)))

def run(data: bytes) -> str:
    kind = data[0]
    if kind == 1:
        raise KeyError("a bug")
    if kind == 2:
        raise ValueError("bad input, said clearly")
    if kind == 3:
        time.sleep(3600)
    if kind == 4:
        hog = bytearray(150 << 20)
        hog[::4096] = b"x" * len(hog[::4096])
        return "hog"
    if kind == 5:
        os.abort()
    if kind == 6:
        for _ in range(100):
            os.open("/dev/null", os.O_RDONLY)  # never closed
        return "leak"
    return "ok"
'''


def test_the_runner_reports_exceptions_hangs_memory_and_crashes(tmp_path: Path) -> None:
    (tmp_path / "misbehaving.py").write_text(MISBEHAVING)
    code, (result,) = campaign(
        "--families-dir", str(tmp_path), "--cases", "200", "--timeout", "10",
        "--memory-limit", "100", "--budget", "120",
    )  # fmt: skip
    assert code == 1
    kinds = {finding["type"] for finding in result["findings"]}
    assert kinds == {"exception", "hang", "memory", "crash", "descriptors"}
    errors = [f["error"] for f in result["findings"] if f["type"] == "exception"]
    assert errors and all(e.startswith("KeyError") for e in errors)
    assert result["outcomes"]["ValueError"] > 0  # an expected error is an outcome
    assert result["cases"] == 200  # every case ran, a fresh worker after each finding
    # Any finding is regenerated from (seed, index) alone.
    bug = next(f for f in result["findings"] if f["type"] == "exception")
    rerun = subprocess.run(
        [sys.executable, str(FUZZ), "--families-dir", str(tmp_path), "--family", "misbehaving",
         "--reproduce", str(bug["index"]), "--dump", str(tmp_path / "case.bin")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert rerun.returncode != 0 and "KeyError: 'a bug'" in rerun.stderr
    assert (tmp_path / "case.bin").read_bytes() == b"\x01"
