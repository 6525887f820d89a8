"""Hypothesis strategies, one per class of malformed journal that issue 10 names.

Each draws the parameters of a builder in ``bench/fuzzing/_journal_cases.py`` (the same
builders the ``journal`` fuzz family uses), so the tests and the campaign generate the
same classes: bombs, truncations, out-of-range numbers, bad checksums, concatenations.
"""

from __future__ import annotations

from typing import Any

from bench.fuzzing import _journal_cases as cases
from bench.fuzzing._mutate import BOUNDARY_INTS
from hypothesis import strategies as st

FORMATS = st.sampled_from((1, 2))
I64_MIN, U64_MAX = -(1 << 63), (1 << 64) - 1  # what msgpack can hold


def below(value: int) -> st.SearchStrategy[int]:
    boundary = [v for v in BOUNDARY_INTS if v < value]
    return st.integers(I64_MIN, value - 1) | st.sampled_from(boundary)


def at_least(value: int) -> st.SearchStrategy[int]:
    boundary = [v for v in BOUNDARY_INTS if v >= value]
    return st.integers(value, U64_MAX) | st.sampled_from(boundary)


@st.composite
def valid_journals(draw: st.DrawFn) -> bytes:
    return cases.session_journal(draw(FORMATS))


@st.composite
def bombs(draw: st.DrawFn) -> bytes:
    """A ~100 KB journal whose stream expands to up to 3 GiB."""
    kind = draw(st.sampled_from(cases.BOMB_KINDS))
    size = draw(st.sampled_from((1 << 20, 256 << 20, 3 << 30)) | st.integers(1, 3 << 30))
    return cases.bomb(kind, size)


@st.composite
def truncations(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid journal cut at any byte; also returns where its stream starts."""
    data = draw(valid_journals())
    return cases.truncated(data, draw(st.integers(0, len(data) - 1))), cases.header_size(data)


# Header fields and values that are out of range for them (checksum fixed up).
_BAD_HEADER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "format_version": below(1) | at_least(3),
    "machine_version": below(0),
    "schemas.device_arrived": below(0) | st.just(-(1 << 62)) | at_least(1 << 32),
    "schemas.wire": below(0),
    "created_unix": st.sampled_from((float("nan"), float("inf"), -1.0, 1e300)),
    "machine_hash": st.text(max_size=70).filter(lambda s: len(s) != 64),
}


@st.composite
def out_of_range_headers(draw: st.DrawFn) -> tuple[str, Any, bytes]:
    field = draw(st.sampled_from(sorted(_BAD_HEADER_VALUES)))
    value = draw(_BAD_HEADER_VALUES[field])
    version = draw(FORMATS)
    return field, value, cases.header_with(field, value, format_version=version)


def _record_index(kind: str) -> int:
    records = cases.session_records()
    return next(i for i, r in enumerate(records) if type(r.body).__name__ == kind)


@st.composite
def out_of_range_records(draw: st.DrawFn) -> tuple[tuple[Any, ...], Any, bytes]:
    """A record whose seq, time or packet size is impossible (frame checksums valid)."""
    wire = _record_index("Wire")
    path, values = draw(
        st.sampled_from(
            (
                ((1,), below(0) | at_least(1 << 63)),
                ((0,), below(0)),
                ((2, "size"), at_least(1 << 32) | below(0)),
                ((2, "size"), st.integers(0, 1 << 20).filter(lambda n: n != 14)),
            )
        )
    )
    value = draw(values)
    index = 0 if path[0] in (0, 1) else wire
    if path == (1,):
        index = draw(st.integers(0, len(cases.session_records()) - 1))
    return path, value, cases.record_with(index, path, value)


@st.composite
def header_flips(draw: st.DrawFn) -> bytes:
    """A v2 journal with one bit flipped anywhere in its header block."""
    data = cases.session_journal(2)
    position = draw(st.integers(0, cases.header_size(data) - 1))
    return cases.flipped(data, position, 1 << draw(st.integers(0, 7)))


@st.composite
def bad_frame_checksums(draw: st.DrawFn) -> tuple[int, bytes]:
    index = draw(st.integers(0, len(cases.session_records()) - 1))
    delta = draw(st.sampled_from((1, -1, 1 << 31)) | st.integers(1, 0xFFFFFFFF))
    return index, cases.bad_frame_checksum(index, delta)


@st.composite
def concatenations(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(first journal, what follows it): a second journal, part of one, or junk."""
    first = draw(valid_journals())
    second = draw(valid_journals())
    tail = draw(
        st.sampled_from(("journal", "prefix", "junk"))
        .flatmap(
            lambda kind: st.just(second)
            if kind == "journal"
            else st.integers(1, len(second)).map(lambda n: second[:n])
            if kind == "prefix"
            else st.binary(min_size=1, max_size=64)
        )
    )
    return first, tail
