"""``detect`` lines and the ``--output`` rule (devpro.md §5)."""

from __future__ import annotations

import pytest

from fastboop.devpro.probe import ProbeAttempt, ProbeOutcome, StepFailure
from fastboop.devpro.schema import ProbeOperator
from fastboop.devpro.selection import detect_lines, require_device_profile_for_output
from fastboop.errors import UsageError

FAILED = StepFailure(
    step_index=0,
    getvar="product",
    operator=ProbeOperator.EQUALS,
    expected="a",
    actual="b",
    device_failure=None,
    message="getvar product mismatch: expected 'a', got 'b'",
)


def test_detect_prints_every_match_with_unknown_for_missing_names() -> None:
    outcome = ProbeOutcome(
        vid=0x18D1,
        pid=0xD00D,
        attempts=(
            ProbeAttempt(profile_id="a", display_name="Phone A"),
            ProbeAttempt(profile_id="b", display_name=None, failure=FAILED),
            ProbeAttempt(profile_id="c", display_name=None),
        ),
    )
    assert detect_lines(outcome) == [
        '18d1:d00d profile=a name="Phone A"',
        '18d1:d00d profile=c name="unknown"',
    ]


def test_detect_with_no_match_prints_nothing() -> None:
    outcome = ProbeOutcome(
        vid=1, pid=2, attempts=(ProbeAttempt(profile_id="b", display_name=None, failure=FAILED),)
    )
    assert detect_lines(outcome) == []


def test_output_requires_device_profile() -> None:
    with pytest.raises(UsageError) as caught:
        require_device_profile_for_output(None)
    assert str(caught.value) == (
        "--device-profile is required when using --output; "
        "profile auto-detection needs a connected device"
    )
    assert caught.value.exit_code == 2
    assert require_device_profile_for_output("google-sargo") == "google-sargo"
