"""bench/peers.py's verdicts: what decides "met" for issue 15's goals.

Speed is never asserted in tests; what is tested here is the rule that turns measured
ratios into the printed verdict, because issue 15's acceptance reads those verdicts. The
same-work rule (boot image v4 against fastboop's own v3) must not be a check that cannot
fail: a v4 slower in every run is NOT met.
"""

from __future__ import annotations

from bench.peerlib import _same_work_verdict, _verdict


def test_a_plain_goal_bounds_the_median_ratio() -> None:
    assert _verdict(0.9, 1.0) == "<= 1: met"
    assert _verdict(1.01, 1.0) == "<= 1: NOT met"
    assert _verdict(310_000, 300_000, at_least=True) == ">= 300000: met"


def test_same_work_noise_around_one_is_met_and_says_why() -> None:
    verdict = _same_work_verdict([1.01, 0.99, 1.02, 0.98, 1.014], 1.0)
    assert verdict == "<= 1: met (same work: slower in 3 of 5 runs, p = 0.50)"


def test_same_work_slower_in_every_run_is_not_met() -> None:
    verdict = _same_work_verdict([1.01, 1.03, 1.02, 1.05, 1.01], 1.0)
    assert verdict.startswith("<= 1: NOT met (same work: slower in 5 of 5 runs")


def test_same_work_below_the_bound_is_met_whatever_the_runs() -> None:
    assert _same_work_verdict([0.99, 0.98, 1.2, 0.97, 0.99], 1.0).startswith("<= 1: met")
