"""The built-in simulator models match the built-in device profiles (devpro.md §6)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.fastboot.protocol import is_missing, parse_max_download_size
from fastboop.sim import ModelError, available_models, load_model, parse_model

# (id, pid, probes) straight from devpro.md §6; every built-in profile matches vid 0x18d1.
PROFILES = {
    "arrow-db410c": (0xD00D, [("product", "equals", "MSM8916"), ("variant", "equals", "SBC eMMC")]),
    "google-sargo": (0x4EE0, [("product", "equals", "sargo")]),
    "oneplus-enchilada": (
        0xD00D, [("product", "equals", "sdm845"), ("partition-type:op2", "equals", "raw")]
    ),
    "oneplus-fajita": (
        0xD00D, [("product", "equals", "sdm845"), ("partition-type:op2", "equals", "raw")]
    ),
    "samsung-gt510": (
        0xD00D,
        [
            ("product", "equals", "lk2nd-msm8916"),
            ("lk2nd:compatible", "equals", "samsung,gt510wifi"),
        ],
    ),
    "shift-axolotl": (
        0xD00D, [("serialno", "starts_with", "S6MQ"), ("product", "equals", "sdm845")]
    ),
    "xiaomi-beryllium-ebbg": (0xD00D, [("product", "equals", "beryllium")]),
    "xiaomi-beryllium-tianma": (0xD00D, [("product", "equals", "beryllium")]),
    # the project's virtual phones (issue 14): a product no real phone answers
    "vm-arm64": (0x4EE0, [("product", "equals", "fastboop-vm-arm64")]),
    "vm-x86_64": (0x4EE0, [("product", "equals", "fastboop-vm-x86_64")]),
}


def test_one_model_per_builtin_profile() -> None:
    assert available_models() == sorted(PROFILES)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_model_answers_its_profile_probes(name: str) -> None:
    model = load_model(name)
    pid, probes = PROFILES[name]
    assert model.name == name
    assert (model.vid, model.pid) == (0x18D1, pid)
    for variable, operator, expected in probes:
        value = model.variable(variable)
        assert value is not None
        if operator == "equals":
            assert value == expected
        else:
            assert value.startswith(expected)
    advertised = parse_max_download_size(model.variable("max-download-size") or "")
    assert advertised == model.max_download_size


def test_unknown_variables_are_none_and_missing_is_detectable() -> None:
    model = load_model("oneplus-fajita")
    assert model.variable("partition-type:aging") is None
    assert is_missing(model.variable("version-bootloader") or "")


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match="oneplus-fajita"):
        load_model("nokia-3310")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("name: x\nvid: 1\npid: 2\nserial: s\nmax_download_size: 10\ncolour: red\n", "colour"),
        ("name: x\nvid: 0x10000\npid: 2\nserial: s\nmax_download_size: 10\n", "16-bit"),
        ("name: x\nvid: 1\npid: 2\nserial: s\n", "max_download_size"),
        ("name: [unclosed\n", "YAML"),
        ("name: x\nvid: 1\npid: 2\nserial: s\nmax_download_size: 0\n", "max_download_size"),
    ],
)
def test_invalid_models_are_typed_errors(document: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_model(document, where="test.yaml")


def test_model_from_a_path(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "mine.yaml"  # type: ignore[operator]
    path.write_text("name: mine\nvid: 0x1234\npid: 0x5678\nserial: abc\nmax_download_size: 4096\n")
    model = load_model(str(path))
    assert (model.name, model.vid, model.variable("serialno")) == ("mine", 0x1234, "abc")


@settings(deadline=None)
@given(st.text(max_size=200))
def test_fuzz_model_documents_only_raise_model_errors(document: str) -> None:
    with contextlib.suppress(ModelError):
        parse_model(document)
