"""The busy-poll policy (transports/busypoll.py): when to spin before a blocking wait."""

from __future__ import annotations

import pytest

from fastboop.transports.busypoll import MAX_REST, WINDOW, BusyPoll


def test_a_fresh_poller_spins_for_its_window_from_now() -> None:
    poll = BusyPoll(window=0.001)
    assert poll.deadline(10.0) == pytest.approx(10.001)
    assert BusyPoll().window == WINDOW and BusyPoll().max_rest == MAX_REST


def test_a_zero_window_never_spins() -> None:
    poll = BusyPoll(window=0.0)
    assert [poll.deadline(5.0) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_misses_in_a_row_double_the_waits_that_block_at_once_up_to_the_cap() -> None:
    """A peer slower than the window (a LAN device, or one sharing the CPU) costs one
    window per max_rest waits once the back-off has grown."""
    poll = BusyPoll(window=0.001, max_rest=8)
    rests = []
    for _ in range(6):
        assert poll.deadline(0.0) == 0.001  # a spin ...
        poll.miss()  # ... that found nothing
        rests.append(poll.resting)
        for _ in range(poll.resting):
            assert poll.deadline(0.0) == 0.0  # blocks at once
        assert poll.resting == 0
    assert rests == [1, 2, 4, 8, 8, 8]
    assert poll.misses == 6 and poll.hits == 0


def test_hits_halve_the_back_off_so_a_fast_peer_keeps_the_spin() -> None:
    poll = BusyPoll(window=0.001, max_rest=64)
    for _ in range(5):
        poll.miss()  # back-off now 32
    while poll.resting:
        poll.deadline(0.0)
    poll.hit()
    poll.miss()
    assert poll.resting == 16  # halved by the hit, not reset: a flaky peer stays cheap
    while poll.resting:
        poll.deadline(0.0)
    for _ in range(10):
        poll.hit()
    poll.miss()
    assert poll.resting == 1
    assert poll.hits == 11 and poll.misses == 7


@pytest.mark.parametrize(("window", "max_rest"), [(-1e-6, 8), (0.001, 0)])
def test_nonsense_settings_are_refused(window: float, max_rest: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        BusyPoll(window=window, max_rest=max_rest)
