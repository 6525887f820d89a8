"""The strict loader's YAML level (devpro.md §2): scalars typed as the text says, not as a
YAML 1.1 loader would guess; integers in decimal or 0x hex only; whole documents that are
not one readable profile (fastboop.devpro.yamlnodes)."""

from __future__ import annotations

import json

import pytest
import yaml
from devpro_helpers import EXAMPLE, error_of, load, replace

from fastboop.devpro.errors import ProfileError
from fastboop.devpro.loader import parse_profile

# -- scalar typing -----------------------------------------------------------------------


@pytest.mark.parametrize("word", ["yes", "No", "ON", "off", "True", "false"])
def test_unquoted_yaml11_booleans_rejected_in_string_fields_with_quote_advice(word: str) -> None:
    error = error_of(replace('equals: "sdm845"', f"equals: {word}"))
    assert str(error) == (
        f"t.yaml: probe[0].equals: value must be a string; quote it, e.g. equals: '{word}'"
    )
    error = error_of(replace("display_name: Example Phone X", f"display_name: {word}"))
    assert str(error) == (
        "t.yaml: display_name: expected string, got boolean "
        f"(quote it, e.g. display_name: '{word}')"
    )


@pytest.mark.parametrize("word", ["'yes'", '"on"', "!!str off", "|\n      no"])
def test_quoted_or_tagged_booleans_are_strings(word: str) -> None:
    text = replace('equals: "sdm845"', f"equals: {word}")
    assert load(text).probe[0].value in ("yes", "on", "off", "no\n")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("1e5", "float"),
        ("0o17", "integer"),
        ("2024-01-01", "timestamp"),
        (".inf", "float"),
        ("0755", "integer"),
        ("null", "null"),
    ],
)
def test_scalars_any_loader_reads_as_non_strings_are_rejected(value: str, kind: str) -> None:
    error = error_of(replace("id: example-phone", f"id: {value}"))
    assert str(error).startswith(f"t.yaml: id: expected string, got {kind}")


def test_integers_accept_decimal_and_hex() -> None:
    image = load(
        replace(
            "kernel_offset: 0x8000",
            "kernel_offset: 32768\n      base: 0X10".replace("0X10", "0x1_0"),
        )
    ).android_bootimg
    assert (image.kernel_offset, image.base) == (0x8000, 0x10)


@pytest.mark.parametrize("text", ["0755", "0o17", "0b101", "+5", "1:30", "0x"])
def test_ambiguous_integer_spellings_are_rejected(text: str) -> None:
    error = error_of(replace("kernel_offset: 0x8000", f"kernel_offset: {text}"))
    assert error.path == "boot.fastboot_boot.android_bootimg.kernel_offset"
    assert error.expected == "integer (decimal or 0x hex)"


def test_negative_integers_are_rejected() -> None:
    error = error_of(replace("kernel_offset: 0x8000", "kernel_offset: -1"))
    assert str(error) == (
        "t.yaml: boot.fastboot_boot.android_bootimg.kernel_offset: value -1 out of range (min 0)"
    )


def test_u64_fields_accept_the_full_range_and_no_more() -> None:
    top = "0xffffffffffffffff"
    assert (
        load(
            replace("kernel_offset: 0x8000", f"kernel_offset: {top}")
        ).android_bootimg.kernel_offset
        == 2**64 - 1
    )
    error = error_of(replace("kernel_offset: 0x8000", "kernel_offset: 18446744073709551616"))
    assert error.detail == "value 18446744073709551616 out of range (max 18446744073709551615)"


# -- whole-file problems -----------------------------------------------------------------


def test_one_profile_per_file() -> None:
    error = error_of(EXAMPLE + "---\n" + EXAMPLE)
    assert error.path is None
    assert str(error) == "t.yaml: found a second document at line 19; one profile per file"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "t.yaml: (root): expected mapping, got an empty document"),
        ("- a\n", "t.yaml: (root): expected mapping, got list"),
        (
            "id: [\n",
            "t.yaml: invalid YAML at line 2: expected the node content, but found '<stream end>'",
        ),
        (b"id: \xff\n", "t.yaml: not valid UTF-8 (byte 4)"),
    ],
)
def test_unreadable_documents(data: str | bytes, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, file="t.yaml")
    assert str(caught.value) == message


def test_oversized_input_is_refused_before_parsing() -> None:
    error = error_of("#" * (1 << 20) + "x")
    assert error.detail.startswith("file is too large")


def test_deep_nesting_is_a_profile_error() -> None:
    error = error_of("id: " + "[" * 600 + "]" * 600)
    assert error.detail == "invalid YAML: nested too deeply"


def test_json_surrogate_pairs_are_joined_and_lone_halves_rejected() -> None:
    doc = yaml.safe_load(EXAMPLE)
    doc["display_name"] = "\U0001f600"
    assert load(json.dumps(doc)).display_name == "\U0001f600"
    text = json.dumps(doc).replace("\\ude00", "")
    error = error_of(text)
    assert error.path == "display_name"
    assert error.detail == "contains an unpaired UTF-16 surrogate escape"


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\ufffe"])
def test_control_characters_are_a_profile_error(char: str) -> None:
    assert error_of(EXAMPLE + char).detail.startswith("invalid YAML: unacceptable character")


def test_absurdly_long_integers_are_out_of_range_not_a_crash() -> None:
    error = error_of(replace("kernel_offset: 0x8000", "kernel_offset: " + "9" * 5000))
    assert error.detail == f"value {'9' * 24}... out of range (max 18446744073709551615)"
