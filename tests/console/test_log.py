"""ConsoleLog: the serial console's byte stream as display lines, in a bounded ring."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastboop.console.log import MAX_LINE, ConsoleLog, clean_line

KMSG = (b"[    0.000000] Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org)\r\r\n"
        b"[    0.000000] Machine model: linux,dummy-virt\r\r\n")


def test_forwarder_records_become_lines_without_carriage_returns() -> None:
    log = ConsoleLog()
    assert log.feed(KMSG) == [
        "[    0.000000] Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org)",
        "[    0.000000] Machine model: linux,dummy-virt",
    ]
    assert log.partial == "" and log.total == len(KMSG)


def test_a_line_and_a_utf8_character_cut_between_packets() -> None:
    log = ConsoleLog()
    text = "[    1.5] systemd[1]: Reached target Gerätedateien\r\n".encode()
    cut = text.index(b"\xc3") + 1  # inside the two bytes of "ä"
    assert log.feed(text[:cut]) == []
    assert log.partial.startswith("[    1.5] systemd[1]")
    assert log.feed(text[cut:]) == ["[    1.5] systemd[1]: Reached target Gerätedateien"]


def test_a_prompt_without_newline_is_the_partial_line() -> None:
    log = ConsoleLog()
    log.feed(b"Debian GNU/Linux 12 phone ttyGS0\r\n\r\nphone login: ")
    assert log.lines() == ["Debian GNU/Linux 12 phone ttyGS0", "", "phone login: "]


def test_colours_and_carriage_return_overwrites_are_what_a_terminal_shows() -> None:
    assert clean_line(b"[\x1b[0;32m  OK  \x1b[0m] Started \x1b]0;title\x07getty") == \
        "[  OK  ] Started getty"
    assert clean_line(b"progress 10%\rprogress 100%\r") == "progress 100%"
    assert clean_line(b"bell\x07 and \x00nul\tkept tab") == "bell and nul\tkept tab"
    assert clean_line(b"\xff\xfe broken utf-8") == "\ufffd\ufffd broken utf-8"


def test_the_ring_keeps_only_the_last_lines() -> None:
    log = ConsoleLog(limit=100)
    for n in range(50):
        log.feed(f"line {n:02d} ......\n".encode())
    kept = log.lines()
    assert kept[-1] == "line 49 ......"
    assert sum(len(line) + 1 for line in kept) <= 100
    assert log.dropped_lines == 50 - len(kept)
    assert kept == [f"line {n:02d} ......" for n in range(50 - len(kept), 50)]


def test_a_line_that_never_ends_is_cut_so_memory_stays_bounded() -> None:
    log = ConsoleLog(limit=10 * MAX_LINE)
    done = log.feed(b"x" * (3 * MAX_LINE + 5))
    assert done == ["x" * MAX_LINE] * 3
    assert log.partial == "xxxxx"
    assert log.feed(b"y" * (MAX_LINE + 1) + b"\n") == ["xxxxx" + "y" * (MAX_LINE - 5), "y" * 6]


@given(st.lists(st.binary(max_size=64), max_size=40), st.integers(1, 300), st.integers(1, 50))
def test_any_chunking_gives_the_same_lines_within_the_limit(chunks: list[bytes], limit: int,
                                                           max_line: int) -> None:
    whole = ConsoleLog(limit=limit, max_line=max_line)
    pieces = ConsoleLog(limit=limit, max_line=max_line)
    stream = b"".join(chunks)
    expected = whole.feed(stream)
    got = [line for chunk in chunks for line in pieces.feed(chunk)]
    assert got == expected
    assert pieces.lines() == whole.lines()
    kept = pieces.lines()[:-1] if pieces.partial else pieces.lines()
    # bounded: the ring holds at most ``limit`` characters, or its single newest line
    assert len(kept) <= 1 or sum(len(line) + 1 for line in kept) <= limit
