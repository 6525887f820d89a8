"""Loader-independent scalar typing (devpro.md §1)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fastboop.devpro.scalars import parse_integer, plain_scalar_kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("sdm845", "string"),
        ("S6MQ", "string"),
        ("image.gz+dtb", "string"),
        ("qcom/sdm845-oneplus-fajita", "string"),
        ("console=ttyMSM0,115200n8", "string"),
        ("e5", "string"),
        ("-", "string"),
        ("yes", "boolean"),
        ("oFF", "boolean"),
        ("TRUE", "boolean"),
        ("~", "null"),
        ("", "null"),
        ("NULL", "null"),
        ("42", "integer"),
        ("0x2A", "integer"),
        ("0o52", "integer"),  # YAML 1.2 octal
        ("052", "integer"),  # YAML 1.1 octal
        ("0b101010", "integer"),
        ("1_000", "integer"),
        ("1:30", "integer"),  # YAML 1.1 sexagesimal
        ("1e5", "float"),  # YAML 1.2 float, a string to PyYAML
        ("1.5", "float"),
        ("1.2.3", "float"),  # YAML 1.1 spec regex
        (".5", "float"),
        ("-.inf", "float"),
        (".NaN", "float"),
        ("2024-01-31", "timestamp"),
        ("<<", "merge key"),
        ("=", "value key"),
        ("2001-12-14t21:59:43.10-05:00", "timestamp"),
    ],
)
def test_plain_scalar_kinds(text: str, kind: str) -> None:
    assert plain_scalar_kind(text) == kind


@given(st.text(max_size=12))
def test_a_string_to_us_is_a_string_to_pyyaml(text: str) -> None:
    """Whatever we call a string, PyYAML's YAML 1.1 resolver must agree."""
    if plain_scalar_kind(text) != "string":
        return
    resolved = yaml.SafeLoader.resolve(yaml.SafeLoader, yaml.ScalarNode, text, (True, False))  # type: ignore[arg-type,no-untyped-call]
    # PyYAML's pseudo-type for '!', '&', '*', which cannot be written as plain scalars.
    pseudo = dict.fromkeys("!&*", "tag:yaml.org,2002:yaml")
    assert resolved == pseudo.get(text, "tag:yaml.org,2002:str")


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("4096", 4096), ("0x8000", 0x8000), ("0xffff_ffff", 0xFFFFFFFF), ("-1", -1),
     ("1_000", 1000), ("0755", None), ("0o17", None), ("+5", None), ("0x", None), ("1__0", None),
     ("_1", None), ("1_", None), ("0X10", None), ("1:30", None)],
)  # fmt: skip
def test_parse_integer_accepts_only_decimal_and_hex(text: str, value: int | None) -> None:
    assert parse_integer(text) == value
