"""Property: any recorded getvar exchange replays identically, and any changed byte of a
recorded command is caught at exactly its record."""

from __future__ import annotations

import anyio
import hypothesis.strategies as st
from hypothesis import given, settings

from fastboop.fastboot import FastbootClient, FastbootDeviceFailure, FastbootError
from fastboop.journal import Record, Wire
from fastboop.transports.base import TappedTransport, Transport
from fastboop.transports.memory import ExpectWrite, Reply, ScriptedTransport
from fastboop.transports.replay import ReplayTransport, WireTranscript

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-:_.0123456789", min_size=1, max_size=40)
values = st.binary(max_size=60).filter(lambda b: b"\0" not in b)
answers = st.tuples(st.sampled_from([b"OKAY", b"FAIL"]), values, st.lists(values, max_size=2))
Steps = list[tuple[str, tuple[bytes, bytes, list[bytes]]]]
exchanges = st.lists(st.tuples(names, answers), min_size=1, max_size=6, unique_by=lambda x: x[0])


async def ask_all(transport: Transport, queried: list[str]) -> list[tuple[str, str]]:
    client = FastbootClient(transport, timeout=1)
    results = []
    for name in queried:
        try:
            results.append(("ok", await client.getvar(name)))
        except FastbootDeviceFailure as failure:
            results.append(("fail", failure.device_message))
        except FastbootError as error:  # e.g. bytes a real device would never send
            results.append(("error", type(error).__name__))
            break
    return results


def record(steps: Steps) -> tuple[list[tuple[str, str]], list[Record]]:
    script: list[ExpectWrite | Reply] = []
    for name, (status, value, infos) in steps:
        script.append(ExpectWrite(b"getvar:" + name.encode()))
        script += [Reply(b"INFO" + info) for info in infos]
        script.append(Reply(status + value))
    records: list[Record] = []

    def tap(direction: str, data: bytes | memoryview, /) -> None:
        records.append(Record(len(records), 0, Wire.capture("fastboot", direction, bytes(data))))

    queried = [name for name, _ in steps]
    live = anyio.run(ask_all, TappedTransport(ScriptedTransport(script), tap), queried)
    return live, records


@settings(max_examples=60, deadline=None)
@given(exchanges)
def test_replay_reproduces_the_recorded_results(steps: Steps) -> None:
    live, records = record(steps)
    transcript = WireTranscript(records)
    queried = [name for name, _ in steps][: len(live)]
    replayed = anyio.run(ask_all, ReplayTransport(transcript), queried)
    assert replayed == live
    assert transcript.divergence is None
    assert transcript.finished


@settings(max_examples=60, deadline=None)
@given(exchanges, st.data())
def test_a_changed_command_byte_diverges_at_its_record(steps: Steps, data: st.DataObject) -> None:
    live, records = record(steps)
    outs = [r for r in records if isinstance(r.body, Wire) and r.body.direction == "out"]
    target = data.draw(st.sampled_from(outs))
    assert isinstance(target.body, Wire) and target.body.data is not None
    position = data.draw(st.integers(0, len(target.body.data) - 1))
    changed = bytearray(target.body.data)
    changed[position] ^= data.draw(st.integers(1, 255))
    records[target.seq] = Record(target.seq, 0, Wire.capture("fastboot", "out", bytes(changed)))
    transcript = WireTranscript(records)
    queried = [name for name, _ in steps][: len(live)]
    anyio.run(ask_all, ReplayTransport(transcript), queried)
    assert transcript.divergence is not None
    assert transcript.divergence.seq == target.seq
