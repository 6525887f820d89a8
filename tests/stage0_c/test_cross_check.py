"""The C encoders in stage0/src/smoo_proto.c produce the same bytes as the Python core."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.smoo import protocol as p

from .conftest import ask

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
ops = st.sampled_from(list(p.Op))


@settings(max_examples=200)
@given(op=ops, rid=u32, eid=u32, lba=u64, n=u32, flags=u32)
def test_request(proto_tool: subprocess.Popen[str], op: p.Op, rid: int, eid: int, lba: int,
                 n: int, flags: int) -> None:
    expected = p.Request(op, rid, eid, lba, n, flags).encode().hex()
    assert ask(proto_tool, f"request {int(op)} {rid} {eid} {lba} {n} {flags}") == expected


@settings(max_examples=200)
@given(op=ops, status=st.integers(0, 255), rid=u32, eid=u32, lba=u64, n=u32, flags=u32)
def test_response(proto_tool: subprocess.Popen[str], op: p.Op, status: int, rid: int, eid: int,
                  lba: int, n: int, flags: int) -> None:
    expected = p.Response(op, status, rid, eid, lba, n, flags).encode().hex()
    assert ask(proto_tool, f"response {int(op)} {status} {rid} {eid} {lba} {n} {flags}") == expected


@given(count=u32, session=u64, active=st.booleans())
def test_status(proto_tool: subprocess.Popen[str], count: int, session: int, active: bool) -> None:
    status = p.Status(export_count=count, session_id=session, flags=int(active))
    assert ask(proto_tool, f"status {int(active)} {count} {session}") == status.encode().hex()


def test_ident(proto_tool: subprocess.Popen[str]) -> None:
    assert ask(proto_tool, "ident 0 1") == p.Ident(0, 1).encode().hex()


@given(st.lists(st.tuples(st.integers(1, 2**32 - 1), st.integers(9, 16), st.integers(0, 2**30)),
                max_size=32, unique_by=lambda t: t[0]))
def test_config_exports(proto_tool: subprocess.Popen[str],
                        entries: list[tuple[int, int, int]]) -> None:
    specs = [p.ExportSpec(eid, 1 << shift, (1 << shift) * n) for eid, shift, n in entries]
    line = " ".join(f"{s.export_id} {s.block_size} {s.size_bytes}" for s in specs)
    assert ask(proto_tool, f"config {len(specs)} {line}") == p.encode_config_exports(specs).hex()


@given(block_size=u32, count=u64,
       identity=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), max_size=40))
def test_export_id(proto_tool: subprocess.Popen[str], block_size: int, count: int,
                   identity: str) -> None:
    expected = p.derive_export_id(identity, block_size, count)
    assert int(ask(proto_tool, f"exportid {block_size} {count} {identity}"), 16) == expected


@settings(max_examples=300)
@given(st.one_of(st.binary(min_size=28, max_size=28), st.binary(max_size=40)))
def test_request_decoders_agree(proto_tool: subprocess.Popen[str], data: bytes) -> None:
    answer = ask(proto_tool, f"decode_request {data.hex()}")
    try:
        r = p.decode_request(data)
    except p.SmooProtocolError:
        assert answer.startswith("err")
        return
    assert answer == f"ok {int(r.op)} {r.request_id} {r.export_id} {r.lba} {r.num_blocks} {r.flags}"
