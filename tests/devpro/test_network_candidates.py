"""Network devices (fastboot TCP/UDP) have no USB ids: every profile is a candidate."""

from __future__ import annotations

import pytest

from fastboop.devpro.probe import GetvarResult, candidate_profiles, probe_device
from fastboop.devpro.sources import load_pool

pytestmark = pytest.mark.anyio


def test_no_usb_ids_means_every_profile_is_a_candidate() -> None:
    pool = load_pool(include_local=False)
    assert [p.id for p in candidate_profiles(pool, None, None)] == pool.ids
    assert [p.id for p in candidate_profiles(pool, None, None, "google-sargo")] == ["google-sargo"]


async def test_probes_alone_decide_for_a_network_device() -> None:
    pool = load_pool(include_local=False)
    answers = {"product": "sdm845", "partition-type:op2": "raw"}

    async def getvar(name: str) -> GetvarResult:
        if name in answers:
            return GetvarResult.okay(answers[name])
        return GetvarResult.fail("unknown variable")

    outcome = await probe_device(pool, None, None, getvar)
    assert set(outcome.matched_ids) == {"oneplus-enchilada", "oneplus-fajita"}
    assert len(outcome.attempts) == len(pool.ids)
