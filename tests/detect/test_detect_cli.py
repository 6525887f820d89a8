"""``fastboop detect`` end to end: argv in, stdout/stderr and exit status out.

The simulator listens in the test's event loop; the CLI runs its own loop in a worker
thread, exactly as it would in a separate process.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop.cli.main import main
from fastboop.journal import read_journal
from fastboop.sim.model import load_model
from tests.support.simulators import served

pytestmark = pytest.mark.anyio


async def cli(*argv: str) -> int:
    return await anyio.to_thread.run_sync(main, list(argv))


async def test_detect_tcp_prints_the_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "d.fbj"
    async with served("oneplus-fajita") as (_, port):
        code = await cli(
            "detect",
            "--tcp",
            f"127.0.0.1:{port}",
            "--device-profile",
            "oneplus-fajita",
            "--journal",
            str(journal),
        )
    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        f"tcp:127.0.0.1:{port}",
        f'tcp:127.0.0.1:{port} profile=oneplus-fajita name="OnePlus 6T"',
    ]
    assert f"journal: {journal}" in err
    assert read_journal(journal).complete


async def test_detect_without_device_profile_reports_the_ambiguity(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with served("oneplus-fajita") as (_, port):
        code = await cli("detect", "--tcp", f"127.0.0.1:{port}", "--no-journal")
    out = capsys.readouterr().out
    assert code == 0  # ambiguity is not an error for detect (devpro.md §5)
    assert (
        "ambiguous: 2 profiles match (oneplus-enchilada (OnePlus 6), oneplus-fajita "
        "(OnePlus 6T)); boot needs --device-profile to choose" in out
    )
    assert (
        "  not google-sargo: probe[0] getvar product mismatch: expected 'sargo', "
        "got 'sdm845'" in out
    )


async def test_detect_udp_json(capsys: pytest.CaptureFixture[str]) -> None:
    async with served("oneplus-fajita", "udp") as (_, port):
        code = await cli(
            "detect",
            "--udp",
            f"127.0.0.1:{port}",
            "--device-profile",
            "oneplus-enchilada",
            "--no-journal",
            "--json",
        )
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["matched"] is True
    (device,) = document["devices"]
    assert device["device"]["transport"] == "udp"
    assert device["matches"] == [{"profile": "oneplus-enchilada", "name": "OnePlus 6"}]
    assert device["ambiguous"] is False
    assert document["journal"] is None


async def test_no_match_fails_with_the_spec_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = load_model("oneplus-fajita")
    changed = msgspec.structs.replace(model, getvar={**model.getvar, "product": "msm8998"})
    async with served(changed) as (_, port):
        code = await cli(
            "detect",
            "--tcp",
            f"127.0.0.1:{port}",
            "--device-profile",
            "oneplus-fajita",
            "--no-journal",
        )
    out, err = capsys.readouterr()
    assert code == 1
    assert (
        "  not oneplus-fajita: probe[0] getvar product mismatch: expected 'sdm845', "
        "got 'msm8998'" in out
    )
    assert err.strip().splitlines()[-1] == (
        "fastboop: error: No matching fastboot devices detected."
    )
    assert "Traceback" not in err


async def test_no_match_json(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on this port: the device is simply not there.
    async with served("oneplus-fajita") as (_, port):
        pass
    code = await cli("detect", "--tcp", f"127.0.0.1:{port}", "--no-journal", "--json")
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document == {
        "matched": False,
        "message": "No matching fastboot devices detected.",
        "devices": [],
        "journal": None,
    }


async def test_unknown_profile_and_bad_wait_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await cli("detect", "--device-profile", "nope", "--no-journal") != 0
    assert await cli("detect", "--wait", "-1", "--no-journal") == 2
    err = capsys.readouterr().err
    assert "nope" in err
    assert "--wait" in err
    assert "Traceback" not in err


async def test_wait_gives_up_with_the_spec_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with served("oneplus-fajita") as (_, port):
        pass  # the port is free again: nothing will answer during the wait
    journal = tmp_path / "d.fbj"
    code = await cli(
        "detect", "--tcp", f"127.0.0.1:{port}", "--wait", "0.3", "--journal", str(journal)
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "fastboop: error: No matching fastboot devices detected." in err
    recorded = read_journal(journal)
    assert recorded.complete and recorded.records == []
