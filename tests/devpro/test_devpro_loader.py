"""The strict loader's schema: every project decision of devpro.md §1-§2 about which keys a
profile has and what each holds (the YAML node level is tests/devpro/test_devpro_yaml.py)."""

from __future__ import annotations

import json

import pytest
import yaml
from devpro_helpers import EXAMPLE, error_of, load, make_profile, replace

from fastboop.devpro.loader import parse_profile
from fastboop.devpro.schema import (
    AndroidBootImage,
    DeviceProfile,
    KernelEncoding,
    KernelSettings,
    MatchEntry,
    ProbeOperator,
    ProbeStep,
)
from fastboop.errors import FastboopError


def test_example_profile_loads_to_the_expected_value() -> None:
    assert load(EXAMPLE) == DeviceProfile(
        id="example-phone",
        display_name="Example Phone X",
        devicetree_name="qcom/sdm845-example-x",
        match=(MatchEntry(vid=0x18D1, pid=0xD00D),),
        probe=(
            ProbeStep(getvar="product", operator=ProbeOperator.EQUALS, value="sdm845"),
            ProbeStep(getvar="partition-type:aging", operator=ProbeOperator.NOT_EXISTS),
        ),
        android_bootimg=AndroidBootImage(
            header_version=2,
            page_size=4096,
            kernel_offset=0x8000,
            kernel=KernelSettings(encoding=KernelEncoding.IMAGE_GZ),
            cmdline_append="console=ttyMSM0,115200n8",
        ),
    )


def test_json_is_read_by_the_same_loader() -> None:
    document = yaml.safe_load(EXAMPLE)
    document["probe"][1]["not_exists"] = None
    assert load(json.dumps(document), "x.json") == load(EXAMPLE)


def test_error_is_a_fastboop_error_with_structured_fields() -> None:
    error = error_of(replace("page_size: 4096", "page_size: '4096'"), file="dev.yaml")
    assert isinstance(error, FastboopError)
    assert error.file == "dev.yaml"
    assert error.path == "boot.fastboot_boot.android_bootimg.page_size"
    assert error.expected == "integer (decimal or 0x hex)"
    assert error.line == 15
    assert str(error) == (
        "dev.yaml: boot.fastboot_boot.android_bootimg.page_size: expected integer, got string"
    )


# -- spec §9 cases 12-17 ----------------------------------------------------------------


def test_case12_unquoted_number_operand_asks_to_quote_it() -> None:
    error = error_of(replace('equals: "sdm845"', "equals: 1"), file="p.yaml")
    assert (
        str(error) == "p.yaml: probe[0].equals: value must be a string; quote it, e.g. equals: '1'"
    )
    assert error.path == "probe[0].equals"


def test_case13_exists_with_a_value_is_rejected() -> None:
    error = error_of(replace("not_exists:", "exists: true"))
    assert (
        str(error)
        == "t.yaml: probe[1].exists: takes no value (write 'exists:' with nothing after it)"
    )


def test_case14_two_operators_are_rejected() -> None:
    text = replace('equals: "sdm845"', 'equals: "sdm845"\n    starts_with: "sdm"')
    assert str(error_of(text)) == (
        "t.yaml: probe[0]: exactly one operator expected, found equals, starts_with"
    )


def test_case15_stage0_at_root_gets_the_boot_profile_hint() -> None:
    error = error_of(EXAMPLE + "stage0: {}\n")
    assert str(error) == (
        "t.yaml: (root): unknown key 'stage0' (stage0 settings belong in boot profiles)"
    )


def test_case16_misplaced_cmdline_append_gets_did_you_mean() -> None:
    text = replace("  fastboot_boot:\n", "  fastboot_boot:\n    cmdline_append: 'x'\n")
    assert str(error_of(text)) == (
        "t.yaml: boot.fastboot_boot: unknown key 'cmdline_append' "
        "(did you mean boot.fastboot_boot.android_bootimg.cmdline_append?)"
    )


def test_case17_vid_out_of_range() -> None:
    error = error_of(replace("vid: 0x18d1", "vid: 0x1_0000"))
    assert str(error) == "t.yaml: match[0].fastboot.vid: value 0x1_0000 out of range (max 0xffff)"


# -- unknown keys at every level ---------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("id: example-phone", "id: example-phone\ncolour: red", "(root)"),
        ("  - fastboot: {", "  - colour: red\n    fastboot: {", "match[0]"),
        ("vid: 0x18d1,", "vid: 0x18d1, colour: red,", "match[0].fastboot"),
        ('    equals: "sdm845"', '    equals: "sdm845"\n    colour: red', "probe[0]"),
        ("  fastboot_boot:", "  colour: red\n  fastboot_boot:", "boot"),
        ("    android_bootimg:", "    colour: red\n    android_bootimg:", "boot.fastboot_boot"),
        (
            "      page_size: 4096",
            "      page_size: 4096\n      colour: red",
            "boot.fastboot_boot.android_bootimg",
        ),
        (
            "{ encoding: image.gz }",
            "{ encoding: image.gz, colour: red }",
            "boot.fastboot_boot.android_bootimg.kernel",
        ),
        (
            "      page_size: 4096",
            "      page_size: 4096\n      limits: { colour: red }",
            "boot.fastboot_boot.android_bootimg.limits",
        ),
        (
            "      page_size: 4096",
            "      page_size: 4096\n      initrd: { colour: red }",
            "boot.fastboot_boot.android_bootimg.initrd",
        ),
    ],
)
def test_unknown_keys_are_rejected_at_every_level(old: str, new: str, path: str) -> None:
    error = error_of(replace(old, new))
    assert str(error) == f"t.yaml: {path}: unknown key 'colour'"
    assert error.path == path


def test_merge_keys_are_unknown_keys() -> None:
    text = "base: &b {vid: 1}\n" + EXAMPLE
    assert "unknown key 'base'" in str(error_of(text))


# -- §2.2 messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("id: example-phone\n", "", "(root): missing required key 'id'"),
        (
            "devicetree_name: qcom/sdm845-example-x\n",
            "",
            "(root): missing required key 'devicetree_name'",
        ),
        ("vid: 0x18d1, ", "", "match[0].fastboot: missing required key 'vid'"),
        (
            "      page_size: 4096\n",
            "",
            "boot.fastboot_boot.android_bootimg: missing required key 'page_size'",
        ),
        (
            "      kernel: { encoding: image.gz }\n",
            "",
            "boot.fastboot_boot.android_bootimg: missing required key 'kernel'",
        ),
        (
            "{ encoding: image.gz }",
            "{}",
            "boot.fastboot_boot.android_bootimg.kernel: missing required key 'encoding'",
        ),
        (
            "    android_bootimg:\n",
            "    androidbootimg:\n",
            "boot.fastboot_boot: unknown key 'androidbootimg'",
        ),
        (
            "  - fastboot.getvar: product\n",
            "  - ",
            "probe[0]: missing required key 'fastboot.getvar'",
        ),
    ],
)
def test_missing_required_keys(old: str, new: str, message: str) -> None:
    assert str(error_of(replace(old, new))) == f"t.yaml: {message}"


def test_missing_probe_key_is_an_error_but_empty_probe_is_fine() -> None:
    without = make_profile(probe="").replace("probe:\n", "")
    assert str(error_of(without)) == "t.yaml: (root): missing required key 'probe'"
    assert load(make_profile(probe="").replace("probe:\n", "probe: []\n")).probe == ()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("id: example-phone", "id: [a]", "id: expected string, got list"),
        (
            "display_name: Example Phone X",
            "display_name: 12",
            "display_name: expected string, got integer",
        ),
        (
            "match:\n  - fastboot: { vid: 0x18d1, pid: 0xd00d }",
            "match: {}",
            "match: expected list, got mapping",
        ),
        (
            "  - fastboot: {",
            "  - fastboot: [1]\n  - fastboot: {",
            "match[0].fastboot: expected mapping, got list",
        ),
        ("pid: 0xd00d", "pid: '0xd00d'", "match[0].fastboot.pid: expected integer, got string"),
        ("pid: 0xd00d", "pid: true", "match[0].fastboot.pid: expected integer, got boolean"),
        ("pid: 0xd00d", "pid: 1.5", "match[0].fastboot.pid: expected integer, got float"),
        ("pid: 0xd00d", "pid: ~", "match[0].fastboot.pid: expected integer, got null"),
        (
            "fastboot.getvar: product",
            "fastboot.getvar: 12",
            "probe[0].fastboot.getvar: expected string, got integer",
        ),
        (
            "display_name: Example Phone X",
            "display_name: {a: 1}",
            "display_name: expected string, got mapping",
        ),
    ],
)
def test_wrong_types(old: str, new: str, message: str) -> None:
    assert str(error_of(replace(old, new))).startswith(f"t.yaml: {message}")


def test_no_operator_lists_the_operators() -> None:
    text = replace('    equals: "sdm845"\n', "")
    assert str(error_of(text)) == (
        "t.yaml: probe[0]: no operator; expected one of "
        "equals, starts_with, not_equals, exists, not_exists"
    )


@pytest.mark.parametrize("value", ["'x'", "''", "0", "[]", "false"])
def test_not_exists_takes_no_value(value: str) -> None:
    error = error_of(replace("not_exists:", f"not_exists: {value}"))
    assert str(error) == (
        "t.yaml: probe[1].not_exists: takes no value (write 'not_exists:' with nothing after it)"
    )


@pytest.mark.parametrize("value", ["", " ~", " null"])
def test_exists_accepts_empty_or_null(value: str) -> None:
    step = load(replace("not_exists:", f"exists:{value}")).probe[1]
    assert step == ProbeStep(getvar="partition-type:aging", operator=ProbeOperator.EXISTS)


def test_duplicate_keys_are_rejected() -> None:
    text = replace('equals: "sdm845"', 'equals: "sdm845"\n    equals: "sdm670"')
    error = error_of(text)
    assert str(error) == "t.yaml: probe[0]: duplicate key 'equals'"
    assert error.line == 9
    assert "duplicate key 'id'" in str(error_of(EXAMPLE + "id: other\n"))


# -- boot image checks -------------------------------------------------------------------


def test_header_version_is_checked_at_load() -> None:
    error = error_of(replace("header_version: 2", "header_version: 3"))
    assert str(error) == (
        "t.yaml: boot.fastboot_boot.android_bootimg.header_version: value 3 out of range (max 2)"
    )


@pytest.mark.parametrize("size", [0, 3000, 4095])
def test_page_size_must_be_a_nonzero_power_of_two(size: int) -> None:
    error = error_of(replace("page_size: 4096", f"page_size: {size}"))
    assert error.detail == f"value {size} is not a power of two"


@pytest.mark.parametrize(
    ("size", "warns"), [(1024, True), (2048, False), (16384, False), (32768, True)]
)
def test_unusual_page_size_loads_with_a_warning(size: int, warns: bool) -> None:
    parsed = parse_profile(replace("page_size: 4096", f"page_size: {size}"), file="t.yaml")
    assert parsed.profile.android_bootimg.page_size == size
    expected = (
        (
            f"t.yaml: boot.fastboot_boot.android_bootimg.page_size: page size {size} is unusual "
            "(bootloaders use 2048-16384)",
        )
        if warns
        else ()
    )
    assert parsed.warnings == expected


def test_initrd_compress_other_than_none_warns_it_is_ignored() -> None:
    text = replace(
        "      page_size: 4096", "      page_size: 4096\n      initrd: { compress: zstd }"
    )
    parsed = parse_profile(text, file="t.yaml")
    assert parsed.warnings == (
        "t.yaml: boot.fastboot_boot.android_bootimg.initrd.compress: 'zstd' is ignored: "
        "the initramfs is always an uncompressed cpio",
    )
    none = replace(
        "      page_size: 4096", "      page_size: 4096\n      initrd: { compress: none }"
    )
    assert parse_profile(none, file="t.yaml").warnings == ()


def test_bad_encoding_lists_the_choices() -> None:
    error = error_of(replace("encoding: image.gz", "encoding: image.bz2"))
    assert str(error).startswith(
        "t.yaml: boot.fastboot_boot.android_bootimg.kernel.encoding: expected one of image, "
        "image+dtb, image.gz"
    )


def test_bootimg_alias_is_accepted_and_used_in_paths() -> None:
    aliased = replace("    android_bootimg:", "    bootimg:")
    assert load(aliased) == load(EXAMPLE)
    error = error_of(replace("header_version: 2", "header_version: 9", aliased))
    assert error.path == "boot.fastboot_boot.bootimg.header_version"


def test_alias_and_canonical_together_are_rejected() -> None:
    text = EXAMPLE.replace("    android_bootimg:", "    bootimg: {}\n    android_bootimg:")
    assert str(error_of(text)) == (
        "t.yaml: boot.fastboot_boot: both 'android_bootimg' and its alias 'bootimg' given"
    )


# -- identity and probe-name checks ------------------------------------------------------


def test_empty_id_and_empty_match_are_rejected() -> None:
    assert str(error_of(replace("id: example-phone", "id: ''"))) == "t.yaml: id: must not be empty"
    text = replace("match:\n  - fastboot: { vid: 0x18d1, pid: 0xd00d }", "match: []")
    assert str(error_of(text)) == "t.yaml: match: expected at least 1 entry, got an empty list"


def test_getvar_name_must_fit_the_command_limit() -> None:
    ok = "v" * 57
    assert load(replace("fastboot.getvar: product", f"fastboot.getvar: {ok}")).probe[0].getvar == ok
    error = error_of(replace("fastboot.getvar: product", f"fastboot.getvar: {ok}v"))
    assert error.path == "probe[0].fastboot.getvar"
    assert error.expected == "at most 57 bytes"


def test_getvar_name_must_be_nonempty_printable_ascii() -> None:
    assert error_of(replace("fastboot.getvar: product", "fastboot.getvar: ''")).detail == (
        "must not be empty"
    )
    assert (
        "non-ASCII"
        in error_of(replace("fastboot.getvar: product", "fastboot.getvar: prödukt")).detail
    )
