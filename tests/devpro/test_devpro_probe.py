"""Probe operators, the getvar cache, candidate selection (devpro.md §3, §5, §9 cases 1-11, 20)."""

from __future__ import annotations

import msgspec
import pytest
from devpro_helpers import FakeDevice, load, make_profile
from hypothesis import given
from hypothesis import strategies as st

from fastboop.devpro.errors import AmbiguousProfileError, ProfileNotFoundError
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.probe import (
    GetvarCache,
    GetvarResult,
    ProbeOutcome,
    adapt_getvar,
    evaluate_step,
    is_missing,
    probe_device,
    usb_filter,
)
from fastboop.devpro.schema import ProbeOperator, ProbeStep
from fastboop.devpro.sources import load_pool

pytestmark = pytest.mark.anyio

OKAY = GetvarResult.okay
FAIL = GetvarResult.fail


def step(operator: ProbeOperator, value: str | None = None, name: str = "x") -> ProbeStep:
    return ProbeStep(getvar=name, operator=operator, value=value)


def message(step_: ProbeStep, result: GetvarResult) -> str | None:
    failure = evaluate_step(step_, result)
    return None if failure is None else failure.message


@pytest.fixture
def builtins() -> ProfilePool:
    return load_pool({}, system_dirs=(), include_local=False)


# -- §9 cases 3-11: operator semantics -------------------------------------------------------


def test_case3_starts_with_passes() -> None:
    s = step(ProbeOperator.STARTS_WITH, "S6MQ", "serialno")
    assert message(s, OKAY("S6MQ123456")) is None


def test_case4_starts_with_mismatch_text() -> None:
    s = step(ProbeOperator.STARTS_WITH, "S6MQ", "serialno")
    failure = evaluate_step(s, OKAY("FAJ123456"), index=0)
    assert failure is not None
    assert failure.message == (
        "getvar serialno mismatch: expected 'starts with S6MQ', got 'FAJ123456'"
    )
    assert (failure.expected, failure.actual, failure.device_failure) == (
        "starts with S6MQ",
        "FAJ123456",
        None,
    )


def test_case5_not_equals_fails_on_equal_value() -> None:
    s = step(ProbeOperator.NOT_EQUALS, "sdm845", "product")
    assert message(s, OKAY("sdm845")) == (
        "getvar product mismatch: expected 'not sdm845', got 'sdm845'"
    )


def test_case6_not_equals_passes_on_other_value() -> None:
    assert message(step(ProbeOperator.NOT_EQUALS, "sdm845", "product"), OKAY("beryllium")) is None


def test_case7_not_exists_passes_on_empty_okay() -> None:
    assert message(step(ProbeOperator.NOT_EXISTS), OKAY("")) is None


def test_case8_exists_fails_on_unknown() -> None:
    assert message(step(ProbeOperator.EXISTS), OKAY("unknown")) == "missing getvar x"


def test_case9_not_exists_passes_on_fail() -> None:
    assert message(step(ProbeOperator.NOT_EXISTS), FAIL("not found")) is None


def test_case10_exists_fails_on_fail() -> None:
    assert message(step(ProbeOperator.EXISTS), FAIL("not found")) == "missing getvar x"


def test_case11_equals_on_fail_reports_the_device_message() -> None:
    failure = evaluate_step(step(ProbeOperator.EQUALS, "a"), FAIL("not found"))
    assert failure is not None
    assert failure.message == "getvar x failed: not found"
    assert (failure.actual, failure.device_failure) == (None, "not found")


@pytest.mark.parametrize("operator", [ProbeOperator.STARTS_WITH, ProbeOperator.NOT_EQUALS])
def test_value_operators_fail_on_fail(operator: ProbeOperator) -> None:
    assert message(step(operator, "a"), FAIL("nope")) == "getvar x failed: nope"


def test_equals_is_exact_and_case_sensitive_and_keeps_whitespace() -> None:
    s = step(ProbeOperator.EQUALS, "sdm845", "product")
    assert message(s, OKAY("sdm845")) is None
    assert message(s, OKAY("SDM845")) == "getvar product mismatch: expected 'sdm845', got 'SDM845'"
    assert message(s, OKAY("sdm845 ")) == (
        "getvar product mismatch: expected 'sdm845', got 'sdm845 '"
    )


def test_not_exists_on_present_value() -> None:
    assert message(step(ProbeOperator.NOT_EXISTS), OKAY("raw")) == (
        "getvar x mismatch: expected 'missing', got 'raw'"
    )


@pytest.mark.parametrize(
    ("value", "missing"),
    [
        ("", True),
        ("  \t", True),
        ("unknown", True),
        ("UnKnOwN", True),
        (" unknown\n", True),
        ("raw", False),
        ("unknown2", False),
        ("0", False),
    ],
)
def test_missing_values(value: str, missing: bool) -> None:
    assert is_missing(value) is missing
    assert (message(step(ProbeOperator.EXISTS), OKAY(value)) is None) is not missing
    assert (message(step(ProbeOperator.NOT_EXISTS), OKAY(value)) is None) is missing


# -- the cache (case 1) ----------------------------------------------------------------------


async def test_case1_two_cached_reads_send_one_getvar() -> None:
    device = FakeDevice({"product": "sdm845"})
    cache = GetvarCache(device.getvar)
    assert await cache("product") == OKAY("sdm845")
    assert await cache("product") == OKAY("sdm845")
    assert device.asked == ["product"]
    assert cache.sent == ["product"]


async def test_fail_answers_are_not_cached() -> None:
    device = FakeDevice({})
    cache = GetvarCache(device.getvar)
    await cache("x")
    await cache("x")
    assert device.asked == ["x", "x"]


async def test_two_profiles_probing_product_send_it_once(builtins: ProfilePool) -> None:
    device = FakeDevice({"product": "beryllium"})
    outcome = await probe_device(builtins, 0x18D1, 0xD00D, device.getvar)
    assert device.asked.count("product") == 1
    assert outcome.matched_ids == ["xiaomi-beryllium-ebbg", "xiaomi-beryllium-tianma"]


# -- probing a pool (cases 2, 20) ------------------------------------------------------------


async def test_case2_one_match_one_mismatch_both_recorded() -> None:
    pool = ProfilePool.of(
        [
            load(make_profile("a", probe="  - fastboot.getvar: product\n    equals: 'one'\n")),
            load(make_profile("b", probe="  - fastboot.getvar: product\n    equals: 'two'\n")),
        ]
    )
    outcome = await probe_device(pool, 0x18D1, 0xD00D, FakeDevice({"product": "two"}).getvar)
    assert [a.profile_id for a in outcome.attempts] == ["a", "b"]
    assert outcome.matched_ids == ["b"]
    failure = outcome.attempts[0].failure
    assert failure is not None
    assert (failure.step_index, failure.expected, failure.actual) == (0, "one", "two")
    assert outcome.selected() == "b"


async def test_case20_oneplus_6t_in_auto_mode_is_ambiguous(builtins: ProfilePool) -> None:
    device = FakeDevice({"product": "sdm845", "partition-type:op2": "raw", "serialno": "abc"})
    outcome = await probe_device(builtins, 0x18D1, 0xD00D, device.getvar)
    assert outcome.matched_ids == ["oneplus-enchilada", "oneplus-fajita"]
    assert outcome.ambiguous
    with pytest.raises(AmbiguousProfileError) as caught:
        outcome.selected()
    assert str(caught.value) == (
        "multiple device profiles matched 18d1:d00d: oneplus-enchilada (OnePlus 6), "
        "oneplus-fajita (OnePlus 6T). --device-profile which-one, guv?"
    )


async def test_ambiguity_message_names_the_serial(builtins: ProfilePool) -> None:
    device = FakeDevice({"product": "beryllium"})
    outcome = await probe_device(builtins, 0x18D1, 0xD00D, device.getvar, serial="abc123")
    with pytest.raises(AmbiguousProfileError, match=r"matched 18d1:d00d serial=abc123: xiaomi"):
        outcome.selected()


async def test_shift_axolotl_probe_stops_at_first_failing_step(builtins: ProfilePool) -> None:
    device = FakeDevice({"serialno": "FAJ123456", "product": "sdm845"})
    outcome = await probe_device(builtins, 0x18D1, 0xD00D, device.getvar)
    shift = next(a for a in outcome.attempts if a.profile_id == "shift-axolotl")
    assert shift.failure is not None
    assert shift.failure.message == (
        "getvar serialno mismatch: expected 'starts with S6MQ', got 'FAJ123456'"
    )
    assert outcome.matched_ids == []
    assert outcome.selected() is None


async def test_only_candidates_with_matching_vid_and_pid_are_probed(builtins: ProfilePool) -> None:
    device = FakeDevice({"product": "sargo"})
    outcome = await probe_device(builtins, 0x18D1, 0x4EE0, device.getvar)
    # The virtual phones share Google's fastboot ids; their probe tells them apart.
    assert [a.profile_id for a in outcome.attempts] == ["google-sargo", "vm-arm64", "vm-x86_64"]
    assert outcome.selected() == "google-sargo"
    none = await probe_device(builtins, 0x18D1, 0x1234, device.getvar)
    assert none.attempts == ()


async def test_empty_probe_matches_on_vid_pid_alone() -> None:
    pool = ProfilePool.of([load(make_profile("bare", probe="").replace("probe:\n", "probe: []\n"))])
    device = FakeDevice({})
    outcome = await probe_device(pool, 0x18D1, 0xD00D, device.getvar)
    assert outcome.matched_ids == ["bare"]
    assert device.asked == []


async def test_device_profile_probes_only_that_profile(builtins: ProfilePool) -> None:
    device = FakeDevice({"product": "sdm845", "partition-type:op2": "raw"})
    outcome = await probe_device(
        builtins, 0x18D1, 0xD00D, device.getvar, device_profile="oneplus-fajita"
    )
    assert [a.profile_id for a in outcome.attempts] == ["oneplus-fajita"]
    assert outcome.selected() == "oneplus-fajita"


async def test_transport_errors_propagate(builtins: ProfilePool) -> None:
    async def broken(name: str) -> GetvarResult:
        raise ConnectionResetError("usb gone")

    with pytest.raises(ConnectionResetError):
        await probe_device(builtins, 0x18D1, 0xD00D, broken)


# -- prefilter ---------------------------------------------------------------------------------


def test_builtin_usb_filter_in_first_appearance_order(builtins: ProfilePool) -> None:
    assert usb_filter(builtins) == [(0x18D1, 0xD00D), (0x18D1, 0x4EE0)]


def test_usb_filter_for_one_profile(builtins: ProfilePool) -> None:
    assert usb_filter(builtins, "google-sargo") == [(0x18D1, 0x4EE0)]
    with pytest.raises(ProfileNotFoundError):
        usb_filter(builtins, "nope")


def test_usb_filter_dedupes_across_and_within_profiles() -> None:
    two = "  - fastboot: { vid: 1, pid: 2 }\n  - fastboot: { vid: 1, pid: 2 }\n"
    pool = ProfilePool.of(
        [
            load(make_profile("a", match=two)),
            load(make_profile("b", match="  - fastboot: {vid: 3, pid: 4}\n" + two)),
        ]
    )
    assert usb_filter(pool) == [(1, 2), (3, 4)]


class DeviceFailure(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(f"fastboot failure: {message}")
        self.message = message


async def test_adapt_getvar_maps_values_and_device_failures() -> None:
    async def client_getvar(name: str) -> str:
        if name == "product":
            return "sdm845"
        if name == "gone":
            raise ConnectionResetError("usb gone")
        raise DeviceFailure("unknown variable")

    getvar = adapt_getvar(client_getvar, DeviceFailure, lambda error: error.message)
    assert await getvar("product") == OKAY("sdm845")
    assert await getvar("x") == FAIL("unknown variable")
    plain = adapt_getvar(client_getvar, DeviceFailure)
    assert await plain("x") == FAIL("fastboot failure: unknown variable")
    with pytest.raises(ConnectionResetError):
        await getvar("gone")


# -- properties ----------------------------------------------------------------------------

_results = st.builds(GetvarResult.okay, st.text(max_size=12)) | st.builds(
    GetvarResult.fail, st.text(max_size=12)
)


@given(_results, st.text(max_size=8))
def test_exists_and_not_exists_are_exact_opposites(result: GetvarResult, name: str) -> None:
    exists = evaluate_step(step(ProbeOperator.EXISTS, name=name or "x"), result)
    not_exists = evaluate_step(step(ProbeOperator.NOT_EXISTS, name=name or "x"), result)
    assert (exists is None) != (not_exists is None)


@given(_results, st.text(max_size=8))
def test_equals_and_not_equals_split_okay_answers_and_both_fail_on_fail(
    result: GetvarResult, operand: str
) -> None:
    equals = evaluate_step(step(ProbeOperator.EQUALS, operand), result)
    not_equals = evaluate_step(step(ProbeOperator.NOT_EQUALS, operand), result)
    if result.ok:
        assert (equals is None) != (not_equals is None)
    else:
        assert equals is not None and not_equals is not None
        assert equals.message == not_equals.message == f"getvar x failed: {result.failure}"


async def test_outcome_survives_a_msgspec_json_round_trip(builtins: ProfilePool) -> None:
    device = FakeDevice({"product": "sdm845", "partition-type:op2": "raw", "serialno": "FAJ1"})
    outcome = await probe_device(builtins, 0x18D1, 0xD00D, device.getvar, serial="FAJ1")
    encoded = msgspec.json.encode(outcome)
    assert msgspec.json.decode(encoded, type=ProbeOutcome) == outcome
    assert b'"operator":"starts_with"' in encoded
