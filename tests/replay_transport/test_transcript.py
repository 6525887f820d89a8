"""Transcript re-execution of a recorded session: fastboot effects re-run byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.cli.main import main
from fastboop.devpro.pool import ProfilePool
from fastboop.journal import Journal, Record, Wire, read_journal
from fastboop.replay import Verdict, replay_journal
from fastboop.replay.transcript import ImageMismatch, reexecute_transcript
from fastboop.sim.model import load_model
from tests.backends.conftest import KernelOnlyBuilder

from .conftest import Recorded, record_session, rewrite

pytestmark = pytest.mark.anyio


@pytest.fixture
async def recorded(tmp_path: Path, pool: ProfilePool, arm64_kernel: bytes) -> Recorded:
    result = await record_session(tmp_path, pool, arm64_kernel)
    assert result.state == "done"
    assert result.image is not None
    return result


def replace_wire(journal: Journal, find: bytes, replacement: bytes) -> int:
    """Swap one recorded packet's bytes in place; return its seq."""
    for index, record in enumerate(journal.records):
        body = record.body
        if isinstance(body, Wire) and body.data == find:
            tampered = Wire.capture(body.channel, body.direction, replacement)
            journal.records[index] = Record(record.seq, record.t_ns, tampered)
            return record.seq
    raise AssertionError(f"{find!r} not recorded")


async def test_reexecution_with_the_image_is_byte_identical(
    recorded: Recorded, pool: ProfilePool
) -> None:
    journal = read_journal(recorded.path)
    assert replay_journal(journal).ok
    report = await reexecute_transcript(journal, pool, image=recorded.image)
    assert report.ok, report
    effects = [r.body for r in journal.records if isinstance(r.body, fx.Effect)]
    wanted = [
        e
        for e in effects
        if isinstance(e, fx.ProbeDevice | fx.BuildPayload | fx.UploadImage | fx.BootImage)
    ]
    assert report.effects == len(wanted)
    wires = [r for r in journal.records if isinstance(r.body, Wire)]
    assert f"against {len(wires)} recorded packets" in (report.note or "")
    # The upload's data went by digest, and was still checked.
    assert any(isinstance(w.body, Wire) and w.body.data is None for w in wires)


async def test_without_the_image_the_upload_is_skipped_and_said_so(
    recorded: Recorded, pool: ProfilePool
) -> None:
    report = await reexecute_transcript(read_journal(recorded.path), pool)
    assert report.ok, report
    assert "upload not re-run without the boot image" in (report.note or "")


async def test_a_different_image_is_refused(recorded: Recorded, pool: ProfilePool) -> None:
    with pytest.raises(ImageMismatch):
        await reexecute_transcript(
            read_journal(recorded.path), pool, image=(recorded.image or b"") + b"\0"
        )


async def test_tampered_command_byte_is_reported_at_its_record(
    recorded: Recorded, pool: ProfilePool
) -> None:
    journal = read_journal(recorded.path)
    seq = replace_wire(journal, b"getvar:partition-type:op2", b"getvar:partition-type:op3")
    report = await reexecute_transcript(journal, pool, image=recorded.image)
    assert report.verdict is Verdict.NONDETERMINISM
    assert report.seq == seq
    assert report.expected == "OUT b'getvar:partition-type:op3'"
    assert report.actual is not None
    assert report.actual.startswith("OUT b'getvar:partition-type:op2'")


async def test_tampered_answer_byte_diverges_where_its_consequence_shows(
    recorded: Recorded, pool: ProfilePool
) -> None:
    journal = read_journal(recorded.path)
    tampered = replace_wire(journal, b"OKAYsdm845", b"OKAYsdm846")
    answered = next(
        r.seq
        for r in journal.records
        if isinstance(r.body, ev.GetvarAnswered) and r.body.name == "product"
    )
    next_command = next(
        r.seq
        for r in journal.records
        if isinstance(r.body, Wire) and r.body.data == b"getvar:partition-type:op2"
    )
    report = await reexecute_transcript(journal, pool, image=recorded.image)
    assert report.verdict is Verdict.NONDETERMINISM
    # With 'sdm846' the profile fails its first step, so the re-run neither reports
    # 'sdm845' nor asks for partition-type:op2; whichever the journal recorded first (the
    # event and the next command race in a live session) is the divergence.
    assert report.seq == min(answered, next_command)
    assert report.seq > tampered
    if report.seq == answered:
        assert report.actual is not None and "sdm846" in report.actual
    else:
        assert report.expected == "OUT b'getvar:partition-type:op2'"


async def test_tampered_download_data_is_caught_by_its_digest(
    recorded: Recorded, pool: ProfilePool
) -> None:
    journal = read_journal(recorded.path)
    for index, record in enumerate(journal.records):
        body = record.body
        if isinstance(body, Wire) and body.sha256 is not None and body.direction == "out":
            flipped = body.sha256[:-1] + ("0" if body.sha256[-1] != "0" else "1")
            journal.records[index] = Record(
                record.seq, record.t_ns, msgspec.structs.replace(body, sha256=flipped)
            )
            seq = record.seq
            break
    report = await reexecute_transcript(journal, pool, image=recorded.image)
    assert report.verdict is Verdict.NONDETERMINISM
    assert report.seq == seq
    assert "different sha256" in (report.actual or "")


async def test_cli_transcript_ok_and_divergence(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "boot.img"
    image.write_bytes(recorded.image or b"")
    code = await anyio.to_thread.run_sync(
        main, ["replay", str(recorded.path), "--transcript", "--image", str(image)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "replay ok" in out and "byte-identical" in out

    journal = read_journal(recorded.path)
    seq = replace_wire(journal, b"getvar:product", b"getvar:produce")
    tampered = rewrite(journal, tmp_path / "tampered.fbj")
    code = await anyio.to_thread.run_sync(main, ["replay", str(tampered), "--transcript", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert (document["verdict"], document["seq"]) == ("nondeterminism", seq)


async def test_a_recorded_unplug_mid_download_replays_as_recorded(
    tmp_path: Path, pool: ProfilePool, arm64_kernel: bytes
) -> None:
    model = msgspec.structs.replace(load_model("oneplus-fajita"), unplug_after_bytes=3 << 20)
    recorded = await record_session(
        tmp_path, pool, arm64_kernel, model=model, wait_for_device_s=0.3
    )
    journal = read_journal(recorded.path)
    failed = [r.body for r in journal.records if isinstance(r.body, ev.UploadFailed)]
    # The machine may retry once the phone is back (timing decides); each try failed.
    assert failed and {f.kind for f in failed} == {"transport"}
    assert replay_journal(journal).ok
    built = next(r.body for r in journal.records if isinstance(r.body, ev.BuildFinished))
    image = KernelOnlyBuilder(arm64_kernel).build(pool.get("oneplus-fajita"), "").image
    assert hashlib.sha256(image).hexdigest() == built.image_sha256
    report = await reexecute_transcript(journal, pool, image=image)
    assert report.ok, report
