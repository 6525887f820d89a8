"""Untrusted profile text: only ProfileError, never a crash; dump/load round-trips."""

from __future__ import annotations

import json

import yaml
from devpro_helpers import EXAMPLE, profiles
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.devpro.document import profile_to_document, profile_to_yaml
from fastboop.devpro.errors import ProfileError
from fastboop.devpro.loader import parse_profile
from fastboop.devpro.schema import DeviceProfile


def parse_or_error(data: str | bytes) -> DeviceProfile | ProfileError:
    try:
        return parse_profile(data, file="fuzz.yaml").profile
    except ProfileError as error:
        assert str(error).startswith("fuzz.yaml: ")
        return error


@given(st.text(max_size=300))
def test_arbitrary_text_gives_a_profile_or_a_profile_error(text: str) -> None:
    parse_or_error(text)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_profile_or_a_profile_error(data: bytes) -> None:
    parse_or_error(data)


_yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_yaml_values = st.recursive(
    _yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.data())
def test_structurally_mutated_profiles_never_crash(data: st.DataObject) -> None:
    """Replace one value anywhere in a valid document with an arbitrary YAML value."""
    document = yaml.safe_load(EXAMPLE)
    node = document
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or data.draw(st.booleans()):
            node[key] = data.draw(_yaml_values)
            break
        node = child
    parse_or_error(yaml.safe_dump(document))


@given(st.text(max_size=40), st.integers(0, len(EXAMPLE)))
def test_text_spliced_into_a_valid_profile_never_crashes(insert: str, at: int) -> None:
    parse_or_error(EXAMPLE[:at] + insert + EXAMPLE[at:])


@settings(max_examples=60)
@given(profiles())
def test_yaml_dump_round_trips(profile: DeviceProfile) -> None:
    assert parse_profile(profile_to_yaml(profile), file="rt.yaml").profile == profile


@settings(max_examples=60)
@given(profiles())
def test_json_document_round_trips(profile: DeviceProfile) -> None:
    text = json.dumps(profile_to_document(profile))
    assert parse_profile(text, file="rt.json").profile == profile


@given(st.text(max_size=200))
def test_every_error_says_what_was_expected(text: str) -> None:
    result = parse_or_error(text)
    if isinstance(result, ProfileError):
        assert result.expected
