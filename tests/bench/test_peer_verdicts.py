"""bench/peers.py's verdicts: what decides "met" for issue 15's goals.

Speed is never asserted in tests; what is tested here is the rule that turns measured
ratios into the printed verdict, because issue 15's acceptance reads those verdicts. The
same-work rule (boot image v4 against fastboop's own v3) must not be a check that cannot
fail: a v4 slower in every run is NOT met.
"""

from __future__ import annotations

import contextlib
import sys

from bench.peerlib import Pair, Report, _same_work_verdict, _verdict, measure_report


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


def test_a_self_summarising_side_is_quoted_and_its_median_judged() -> None:
    """A VM pair reports n reads from one boot: the quoted lines and the at-least goal."""
    script = (
        "print('run 1: noise'); print('ratio served / virtio:      median 0.42 (min 0.3)');"
        "print('served (smoo): median 12 MiB/s')"
    )
    chosen = Pair("vm", "a VM", lambda work: contextlib.nullcontext(), at_least=0.5)
    report = Report([sys.executable, "-c", script], quote=r"^(served|ratio)",
                    median=r"ratio served / virtio:\s+median ([\d.]+)")  # fmt: skip
    lines = measure_report(chosen, report, 5)
    assert lines[0] == "## vm: a VM (n = 5 in one run)"
    assert lines[2:] == [
        "  ratio served / virtio:      median 0.42 (min 0.3)",
        "  served (smoo): median 12 MiB/s",
        "  median 0.42: >= 0.5: NOT met",
    ]
