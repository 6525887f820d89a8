"""The sans-I/O conversation both clients drive, driven here by hand: no link, no clock.

Each command is a generator of actions; the test plays the driver, answering ``NOW``
with whatever time it likes, a ``Receive`` with packets, or throwing a link failure in.
So the rules — what is sent, when a deadline passes, which error a failure becomes —
are checked without sockets or sleeping.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastboop.fastboot.conversation import (
    NOW,
    FastbootConversation,
    Receive,
    Send,
    SendData,
)
from fastboop.fastboot.errors import (
    FastbootDeadlineExceeded,
    FastbootTimeout,
    FastbootTransportError,
)
from fastboop.fastboot.payload import Payload
from fastboop.transports.errors import TransportError


def conversation(**options: Any) -> FastbootConversation:
    options = {"deadline": 10.0, "max_info_lines": 100, "timeout": 3.0, **options}
    return FastbootConversation("test:device", **options)


def play(steps: Any, answers: list[Any]) -> tuple[list[Any], Any]:
    """Drive ``steps`` with ``answers`` in order (an exception is thrown in); returns the
    actions seen and the command's value."""
    try:
        actions = [next(steps)]
    except StopIteration as stop:
        return [], stop.value
    for answer in answers:
        try:
            if isinstance(answer, BaseException):
                actions.append(steps.throw(answer))
            else:
                actions.append(steps.send(answer))
        except StopIteration as stop:
            return actions, stop.value
    raise AssertionError(f"the command did not finish; last action {actions[-1]!r}")


def test_getvar_is_a_send_then_reads_until_okay_and_is_cached() -> None:
    talk = conversation()
    actions, value = play(talk.getvar("product"), [0.0, None, 0.0, b"INFOhello", 1.0, b"OKAYx"])
    assert [type(a) for a in actions] == [type(NOW), Send, type(NOW), Receive, type(NOW), Receive]
    send, receive = actions[1], actions[3]
    assert (send.packet, send.timeout) == (b"getvar:product", 3.0)
    assert (receive.timeout, receive.limit) == (3.0, 10.0)  # the nearer of the two
    assert actions[5].limit == 9.0  # the deadline counts from the command, by NOW
    assert value == "x"
    assert play(talk.getvar("product"), []) == ([], "x")  # cached: not one action


def test_the_deadline_passes_by_the_drivers_time_alone() -> None:
    steps = conversation().getvar("product")
    with pytest.raises(FastbootDeadlineExceeded) as caught:
        play(steps, [0.0, None, 0.0, b"INFOa", 6.0, b"INFOb", 10.5])
    assert caught.value.info_lines == 2


def test_link_failures_become_the_typed_kinds() -> None:
    with pytest.raises(FastbootTransportError, match="unplugged"):
        play(conversation().boot(), [0.0, TransportError("unplugged")])
    with pytest.raises(FastbootTimeout, match="within 3 s") as caught:
        play(conversation().boot(), [0.0, None, 0.0, TimeoutError(), 3.0])
    assert not isinstance(caught.value, FastbootDeadlineExceeded)  # 7 s of deadline left


def test_download_sends_its_data_phase_as_one_action_and_not_on_the_devices_clock() -> None:
    payload = Payload.of(bytes(2500))
    marks: list[tuple[int, int]] = []
    steps = conversation(chunk_size=1000).download(payload, lambda *m: marks.append(m))
    answers = [
        0.0, None, 0.0, b"OKAY0x10000",  # the max-download-size check
        0.0, None, 0.0, b"DATA000009c4",  # download:000009c4
        1.0,  # before the data phase
    ]
    actions = [next(steps)]
    for answer in answers:
        actions.append(steps.send(answer))
    data = actions[-1]
    assert isinstance(data, SendData) and data.payload is payload and data.chunk_size == 1000
    data.on_sent(1200)  # a link reports progress however it cut its writes
    data.on_sent(1300)
    assert marks == [(1000, 2500), (2000, 2500), (2500, 2500)]
    assert steps.send(None) is NOW  # the data phase is over
    assert steps.send(100.0) is NOW  # 99 s of sending: the host's time, not the device's
    receive = steps.send(100.5)
    assert isinstance(receive, Receive) and receive.limit == pytest.approx(10.0 - 1.5)
    with pytest.raises(StopIteration):
        steps.send(b"OKAY")
