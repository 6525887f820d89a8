"""Fuzz family ``journal``: malformed journals through everything that reads one.

Each case is a whole ``.fbj`` file. It goes through what ``fastboop replay`` does with
a journal a user attached to a bug report: open it (header checks), re-drive the machine
(or re-run the probes of a detect journal), re-execute the fastboot transcript when the
machine check passes, list the timeline as ``replay show --json`` does, and export the
pcap. The only errors allowed out are :class:`~fastboop.errors.FastboopError`: the typed,
one-line errors the CLI prints. Verdicts (``invalid_history`` and the rest) are outcomes.

Seeds are real: the recorded sessions in ``replays/`` (format v1, from before the header
checksum), the same sessions in format v2, a v2 session built independently of the
writer, a detect journal, one that needs the upcaster path, and a crash-cut one. The
cases mix, by weight, the classes of damage in ``_journal_cases.py``:

* ``bytes``: random byte-level damage anywhere (``_mutate.mutate``);
* ``record``: one record's field set to a boundary number, a wrong type, a huge or
  nested value, another type's tag, or records reordered, dropped or duplicated, all
  with valid checksums so the typed decoding and the machine see them;
* ``header``: a header field set the same way, checksum valid;
* ``truncate``, ``concat`` (two journals, or trailing junk), ``bomb``, ``checksum``;
* ``smoo``: the smoo data plane's records (``smoo_traffic``) damaged the same way, packet
  by packet: a field set to a boundary number or a wrong type, another packet's tag,
  packets reordered, dropped or duplicated (a lost Response, a Response before its
  Request, a payload out of order), with valid checksums.

Each case also goes through the serving replay: the invariants' check and, when it
passes, re-serving the data plane from the seed's rootfs with the real pump.
"""

from __future__ import annotations

import functools
import io
import random
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
from bench.fuzzing import _journal_cases as cases
from bench.fuzzing._mutate import BOUNDARY_FLOATS, boundary_int, mutate

from fastboop.devpro import load_pool
from fastboop.devpro.pool import ProfilePool
from fastboop.errors import FastboopError
from fastboop.journal import Journal, JournalReader, JournalWriter, read_journal
from fastboop.journal.pcap import journal_to_pcap
from fastboop.journal.records import JournalHeader
from fastboop.journal.schema import UPCASTERS
from fastboop.replay import iter_timeline, replay_journal
from fastboop.replay.detect import is_detect_journal, replay_detect_journal
from fastboop.replay.smoo import reserve_smoo, scan_smoo
from fastboop.replay.smoo_check import SmooDivergence
from fastboop.replay.transcript import reexecute_transcript

NAME = "journal"
DESCRIPTION = "journals (.fbj): header, zstd stream, frames, records; replay, show, pcap"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

REPLAYS = Path(__file__).resolve().parents[2] / "replays"
_CLASSES = (
    ("bytes", 30),
    ("record", 30),
    ("header", 12),
    ("truncate", 8),
    ("concat", 8),
    ("bomb", 4),
    ("checksum", 8),
    ("smoo", 20),
)
_NAMES = [name for name, _ in _CLASSES]
STALL = 1.0  # seconds a re-served case may go without a Response before it is judged
_WEIGHTS = [weight for _, weight in _CLASSES]


def setup() -> None:
    _pool()
    _seeds()
    UPCASTERS.setdefault(("bootloader_message", 0), _old_bootloader_message)


@functools.cache
def _pool() -> ProfilePool:
    return load_pool()


def _old_bootloader_message(body: dict[str, Any]) -> dict[str, Any]:
    """The upcaster of the ``upcast`` seed: v0 called the field ``line``."""
    body["text"] = body.pop("line")
    return body


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    seeds = [path.read_bytes() for path in sorted(REPLAYS.glob("*.fbj"))]
    seeds.append(cases.session_journal(2))
    seeds.append(cases.session_journal(1))
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(REPLAYS.glob("*.fbj")):  # the same sessions through the writer
            seeds.append(_rewrite(read_journal(path), Path(tmp) / "v2.fbj"))
        seeds.append(_crash_cut(Path(tmp) / "cut.fbj"))
    seeds.append(_detect_journal())
    seeds.append(_upcast_journal())
    seeds.append(cases.smoo_session_journal())
    return tuple(seeds)


def _rewrite(journal: Journal, path: Path) -> bytes:
    header = msgspec.structs.replace(journal.header, format_version=2)
    with JournalWriter(path, header) as writer:
        for record in journal.records:
            writer.append(record.body, record.t_ns)
    return path.read_bytes()


def _crash_cut(path: Path) -> bytes:
    """A session's journal as a crash leaves it: the stream never ended."""
    writer = JournalWriter(path, JournalHeader(**cases.header_fields()))
    for record in cases.session_records()[:15]:
        writer.append(record.body, record.t_ns)
    data = path.read_bytes()
    writer.close()
    return data


_DETECT_INPUTS = {
    "session": "detect",
    "device_profile": "",
    "transfer_timeout": "30.0",
    "fastboot_deadline": "60.0",
    "fastboot_max_info_lines": "1000",
}


@functools.cache
def _detect_journal() -> bytes:
    fields = cases.header_fields(inputs=dict(_DETECT_INPUTS))
    bodies = [r.body for r in cases.session_records()]
    detect = [
        b for b in bodies if type(b).__name__ in ("DeviceArrived", "GetvarAnswered", "Wire")
    ][:5]
    detect.append({"type": "probe_finished", "matched": ["oneplus-fajita"]})
    payloads = [cases.record_payload(i, i, body) for i, body in enumerate(detect)]
    return cases.journal_bytes(payloads, fields)


def _upcast_journal() -> bytes:
    fields = cases.header_fields()
    fields["schemas"] = dict(fields["schemas"], bootloader_message=0)
    records = cases.plain_records()
    records.insert(3, [3, 0, {"type": "bootloader_message", "line": "erasing nothing"}])
    payloads = [cases.record_payload(i, r[1], r[2]) for i, r in enumerate(records)]
    return cases.journal_bytes(payloads, fields)


# --- generating a case ---------------------------------------------------------------------


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    kind = rng.choices(_NAMES, _WEIGHTS)[0]
    if kind == "bytes":
        return mutate(rng, seed, start=rng.choice((0, cases.header_size(seed))))
    if kind == "record":
        return _damaged_records(rng)
    if kind == "smoo":
        return _damaged_traffic(rng)
    if kind == "header":
        return _damaged_header(rng)
    if kind == "truncate":
        return seed[: rng.randrange(len(seed) + 1)]
    if kind == "concat":
        other = rng.choice(_seeds())
        tail = rng.choice((other, other[: rng.randrange(len(other) + 1)], rng.randbytes(9)))
        return cases.concatenated(seed, tail)
    if kind == "bomb":
        return cases.bomb(rng.choice(cases.BOMB_KINDS), rng.choice((1 << 20, 64 << 20, 3 << 30)))
    if rng.random() < 0.5:
        return cases.bad_frame_checksum(rng.randrange(64), rng.choice((1, -1, 1 << 31)))
    return cases.flipped(seed, rng.randrange(cases.header_size(seed)), rng.randrange(256))


def _value(rng: random.Random) -> Any:
    """Something a field should not hold (or, sometimes, should)."""
    pick = rng.randrange(10)
    if pick < 4:
        return boundary_int(rng)
    if pick == 4:
        return rng.choice(BOUNDARY_FLOATS)
    if pick == 5:
        return rng.choice(("", "x" * rng.choice((1, 64, 4096, 300_000)), "é\x00"))
    if pick == 6:
        return rng.randbytes(rng.choice((0, 1, 32, 600)))
    if pick == 7:
        return rng.choice((None, True, [], {}, [1, 2], {"type": "wire"}))
    if pick == 8:
        nested: Any = 0
        for _ in range(rng.choice((2, 10, 100))):
            nested = [nested] if rng.random() < 0.5 else {"type": nested}
        return nested
    return rng.choice(("device_arrived", "outcome", "wire", "fault", "nope", "type"))


def _damaged_records(rng: random.Random) -> bytes:
    records = cases.plain_records()
    for _ in range(rng.choice((1, 1, 2, 3))):
        action = rng.randrange(6)
        index = rng.randrange(len(records))
        if action == 0:  # seq or t_ns
            records[index][rng.choice((0, 1))] = _value(rng)
        elif action in (1, 2) and isinstance(records[index][2], dict):  # a body field
            body = records[index][2]
            key = rng.choice([*body, "size", "type", "extra"]) if action == 1 else "type"
            body[key] = _value(rng)
        elif action == 3:
            records[index][2] = _value(rng)
        elif action == 4:
            other = rng.randrange(len(records))
            records[index], records[other] = records[other], records[index]
        else:
            del records[index]
    payloads = [msgspec.msgpack.encode(r) for r in records]
    if payloads and rng.random() < 0.3:  # raw msgpack damage under a valid checksum
        index = rng.randrange(len(payloads))
        payloads[index] = mutate(rng, payloads[index])
    if payloads and rng.random() < 0.02:  # nesting deeper than any decoder recursion limit
        depth = rng.choice((1000, 100_000))
        payloads[rng.randrange(len(payloads))] = b"\x93\x00\x00" + b"\x91" * depth + b"\xc0"
    return cases.journal_bytes(payloads, end=rng.random() < 0.8)


def _damaged_traffic(rng: random.Random) -> bytes:
    """The smoo seed with its data-plane packets damaged (see the module docstring)."""
    records = [msgspec.to_builtins(r, builtin_types=(bytes,)) for r in
               cases.smoo_session_records()]  # fmt: skip
    batches = [r[2]["packets"] for r in records if r[2].get("type") == "smoo_traffic"]
    for _ in range(rng.choice((1, 1, 2, 3))):
        packets = rng.choice(batches)
        if not packets:
            continue
        index = rng.randrange(len(packets))
        action = rng.randrange(7)
        if action == 0 and isinstance(packets[index], list) and packets[index]:
            field = rng.randrange(len(packets[index]))
            packets[index][field] = _value(rng)
        elif action == 1 and isinstance(packets[index], list) and packets[index]:
            packets[index][0] = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, "1"))
        elif action == 2:  # a byte of a Request/Response/control packet flipped
            packet = packets[index]
            if isinstance(packet, list) and len(packet) > 1 and isinstance(packet[-1], bytes):
                data = bytearray(packet[-1])
                if data:
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                packet[-1] = bytes(data)
        elif action == 3:
            other = rng.randrange(len(packets))
            packets[index], packets[other] = packets[other], packets[index]
        elif action == 4:
            del packets[index]
        elif action == 5:
            packets.insert(rng.randrange(len(packets) + 1), packets[index])
        else:
            packets.insert(index, packets.pop(rng.randrange(len(packets))))
    return cases.journal_bytes(msgspec.msgpack.encode(r) for r in records)


def _damaged_header(rng: random.Random) -> bytes:
    fields = cases.header_fields(format_version=rng.choice((1, 2, 2, 2)))
    if rng.random() < 0.25:  # a detect journal: its inputs are read as options
        fields["inputs"] = {**_DETECT_INPUTS, rng.choice(list(_DETECT_INPUTS)): str(_value(rng))}
    for _ in range(rng.choice((1, 1, 2))):
        field = rng.choice([*fields, "schemas.device_arrived", "schemas.wire", "extra"])
        value = _value(rng) if rng.random() < 0.8 else boundary_int(rng)
        if field.startswith("schemas.") and isinstance(fields["schemas"], dict):
            fields["schemas"] = {**fields["schemas"], field[8:]: value}
        else:
            fields[field] = value
    seed = rng.choice((cases.session_journal(2), _detect_journal()))
    head = cases.header_block(fields, checksum=rng.random() < 0.9)
    return head + seed[cases.header_size(seed) :]


# --- running a case ------------------------------------------------------------------------


def run(data: bytes) -> str:
    """What ``fastboop replay`` (and ``show --json``, ``export-pcap``) does with ``data``."""
    reader = JournalReader.from_bytes(data)
    if is_detect_journal(reader):
        report = anyio.run(replay_detect_journal, reader, _pool())
    else:
        report = replay_journal(reader)
        if report.ok:
            journal = _materialize(JournalReader.from_bytes(data))
            report = anyio.run(_reexecute, journal)
    for record, _, text in iter_timeline(JournalReader.from_bytes(data)):
        msgspec.json.encode({"seq": record.seq, "t_ms": record.t_ns / 1e6, "record": record.body})
        assert text
    journal_to_pcap(JournalReader.from_bytes(data), io.BytesIO())
    if report.ok and not is_detect_journal(JournalReader.from_bytes(data)):
        scan = scan_smoo(JournalReader.from_bytes(data))
        if scan.divergence is not None:
            return "nondeterminism"
        if scan.links:
            try:
                anyio.run(partial(reserve_smoo, JournalReader.from_bytes(data),
                                  cases.smoo_export(), stall=STALL,
                                  writable=bool(scan.writes_succeeded)))  # fmt: skip
            except SmooDivergence:
                return "nondeterminism"
    return report.verdict.value


def _materialize(reader: JournalReader) -> Journal:
    records = list(reader)
    return Journal(
        path=reader.path,
        header=reader.header,
        records=records,
        truncated=reader.truncated,
        damage=reader.damage,
    )


async def _reexecute(journal: Journal) -> Any:
    return await reexecute_transcript(journal, _pool())
