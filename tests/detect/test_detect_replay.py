"""A detect journal replays by re-running its probes against the recorded getvar bytes."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop import events as ev
from fastboop.backends.devices import NetworkDeviceSource, UsbDeviceSource
from fastboop.cli.main import main
from fastboop.detection import DetectRecorder, detect_devices, detect_inputs
from fastboop.devpro.pool import ProfilePool
from fastboop.journal import JournalWriter, Record, Wire, read_journal
from fastboop.replay import Verdict
from fastboop.replay.detect import is_detect_journal, replay_detect_journal
from fastboop.sim.model import CommandBehaviour, load_model
from fastboop.sim.usb_bus import EmulatedDevice, SimUsbBackend
from tests.support.simulators import served

pytestmark = pytest.mark.anyio


async def record_detect(path: Path, pool: ProfilePool, device_profile: str | None = None) -> Path:
    recorder = DetectRecorder(path, detect_inputs(pool, device_profile))
    try:
        async with served("oneplus-fajita") as (_, port):
            source = NetworkDeviceSource("tcp", f"127.0.0.1:{port}")
            await detect_devices(source, pool, device_profile=device_profile, recorder=recorder)
    finally:
        recorder.close()
    return path


def rewrite(path: Path, records: list[Record]) -> Path:
    header = read_journal(path).header
    out = path.with_name("tampered.fbj")
    with JournalWriter(out, header) as writer:
        for record in records:
            writer.append(record.body, record.t_ns)
    return out


async def test_recorded_detect_replays_ok(tmp_path: Path, pool: ProfilePool) -> None:
    journal = read_journal(await record_detect(tmp_path / "d.fbj", pool))
    assert is_detect_journal(journal)
    report = await replay_detect_journal(journal, pool)
    assert report.ok, report
    answered = [r for r in journal.records if isinstance(r.body, ev.GetvarAnswered)]
    assert report.events == len(answered) + 1  # every answer plus ProbeFinished
    assert report.final_state == "matched oneplus-enchilada, oneplus-fajita"
    assert "same commands, answers and matches" in (report.note or "")


async def test_tampered_answer_is_reported_at_its_event(tmp_path: Path, pool: ProfilePool) -> None:
    journal = read_journal(await record_detect(tmp_path / "d.fbj", pool, "oneplus-fajita"))
    records = list(journal.records)
    for index, record in enumerate(records):
        if isinstance(record.body, Wire) and record.body.data == b"OKAYraw":
            tampered = Wire.capture("fastboot", "in", b"OKAYraX")
            records[index] = Record(record.seq, record.t_ns, tampered)
    journal.records = records
    report = await replay_detect_journal(journal, pool)
    assert report.verdict is Verdict.NONDETERMINISM
    answered = next(
        r
        for r in records
        if isinstance(r.body, ev.GetvarAnswered) and r.body.name == "partition-type:op2"
    )
    assert report.seq == answered.seq
    assert report.actual is not None and "raX" in report.actual


async def test_changed_profiles_diverge_and_say_so(tmp_path: Path, pool: ProfilePool) -> None:
    journal = read_journal(await record_detect(tmp_path / "d.fbj", pool, "oneplus-fajita"))
    fajita = pool.get("oneplus-fajita")
    changed = msgspec.structs.replace(fajita, probe=fajita.probe[:1])
    smaller = ProfilePool.of([changed])
    report = await replay_detect_journal(journal, smaller)
    assert report.verdict is Verdict.NONDETERMINISM
    # The first recorded packet the shorter probe never sends is named.
    second = [r for r in journal.records if isinstance(r.body, Wire)][2]
    assert report.seq == second.seq
    assert report.note is not None and "oneplus-fajita" in report.note


async def test_access_denied_device_is_counted_not_rerun(tmp_path: Path, pool: ProfilePool) -> None:
    path = tmp_path / "d.fbj"
    recorder = DetectRecorder(path, detect_inputs(pool, None))
    backend = SimUsbBackend([EmulatedDevice(load_model("oneplus-fajita"), access_denied=True)])
    await detect_devices(UsbDeviceSource(backend=backend), pool, recorder=recorder)
    recorder.close()
    report = await replay_detect_journal(read_journal(path), pool)
    assert report.ok, report
    assert "1 device(s) could not be opened" in (report.note or "")


async def test_cli_detect_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.fbj"
    async with served("oneplus-fajita") as (_, port):
        code = await anyio.to_thread.run_sync(
            main, ["detect", "--tcp", f"127.0.0.1:{port}", "--journal", str(path)]
        )
    assert code == 0
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(main, ["replay", str(path)])
    assert code == 0
    assert "replay ok" in capsys.readouterr().out

    records = list(read_journal(path).records)
    first_out = next(r for r in records if isinstance(r.body, Wire))
    records[first_out.seq] = Record(
        first_out.seq, first_out.t_ns, Wire.capture("fastboot", "out", b"getvar:produce")
    )
    code = await anyio.to_thread.run_sync(main, ["replay", str(rewrite(path, records)), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert (document["verdict"], document["seq"]) == ("nondeterminism", first_out.seq)
    assert document["expected"] == "OUT b'getvar:produce'"


async def test_a_silent_bootloader_times_out_and_replays(tmp_path: Path, pool: ProfilePool) -> None:
    fajita = load_model("oneplus-fajita")
    silent = msgspec.structs.replace(
        fajita, behaviour={"getvar:partition-type:op2": CommandBehaviour(silent=True)}
    )
    path = tmp_path / "d.fbj"
    recorder = DetectRecorder(path, detect_inputs(pool, "oneplus-fajita", timeout=0.2))
    async with served(silent) as (_, port):
        result = await detect_devices(
            NetworkDeviceSource("tcp", f"127.0.0.1:{port}"),
            pool,
            device_profile="oneplus-fajita",
            recorder=recorder,
            timeout=0.2,
        )
    recorder.close()
    (report,) = result.devices
    assert report.error_kind == "timeout"
    assert report.error is not None and "no response from the device within 0.2 s" in report.error
    replayed = await replay_detect_journal(read_journal(path), pool)
    assert replayed.ok, replayed
