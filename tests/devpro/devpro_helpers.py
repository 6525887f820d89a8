"""Helpers shared by the device-profile tests (imported as a plain module)."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import strategies as st

from fastboop.devpro.errors import ProfileError
from fastboop.devpro.loader import parse_profile
from fastboop.devpro.probe import GetvarResult
from fastboop.devpro.schema import (
    AndroidBootImage,
    BootLimits,
    Compression,
    DeviceProfile,
    DevicetreeSource,
    InitrdSettings,
    KernelEncoding,
    KernelSettings,
    MachineSettings,
    MatchEntry,
    ProbeOperator,
    ProbeStep,
)

#: devpro.md §7, the fictional example profile.
EXAMPLE = textwrap.dedent(
    """\
    id: example-phone
    display_name: Example Phone X
    devicetree_name: qcom/sdm845-example-x
    match:
      - fastboot: { vid: 0x18d1, pid: 0xd00d }
    probe:
      - fastboot.getvar: product
        equals: "sdm845"
      - fastboot.getvar: "partition-type:aging"
        not_exists:
    boot:
      fastboot_boot:
        android_bootimg:
          header_version: 2
          page_size: 4096
          kernel_offset: 0x8000
          kernel: { encoding: image.gz }
          cmdline_append: "console=ttyMSM0,115200n8"
    """
)


def make_profile(
    profile_id: str = "p",
    *,
    probe: str = "  - fastboot.getvar: product\n    equals: 'sdm845'\n",
    match: str = "  - fastboot: { vid: 0x18d1, pid: 0xd00d }\n",
    display_name: str | None = None,
) -> str:
    """YAML text of a small valid profile, with the interesting parts replaceable."""
    name = f"display_name: '{display_name}'\n" if display_name else ""
    return (
        f"id: '{profile_id}'\n{name}devicetree_name: qcom/x\n"
        f"match:\n{match}probe:\n{probe}"
        "boot:\n  fastboot_boot:\n    android_bootimg:\n"
        "      header_version: 2\n      page_size: 4096\n      kernel: { encoding: image }\n"
    )


def load(text: str, file: str = "t.yaml") -> DeviceProfile:
    return parse_profile(text, file=file).profile


def error_of(text: str, file: str = "t.yaml") -> ProfileError:
    """The ProfileError loading ``text`` raises (the test fails if it loads)."""
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, file=file)
    return caught.value


def replace(old: str, new: str, text: str = EXAMPLE) -> str:
    """``text`` (the spec's example profile) with the first ``old`` made ``new``."""
    assert old in text, old
    return text.replace(old, new, 1)


class FakeDevice:
    """A fastboot device's getvar answers: a value (OKAY) or ``("FAIL", message)``.

    Records every name it was asked for, so tests can count commands on the wire.
    """

    def __init__(self, answers: dict[str, str | tuple[str, str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def getvar(self, name: str) -> GetvarResult:
        self.asked.append(name)
        answer = self.answers.get(name, ("FAIL", "GetVar Variable Not found"))
        if isinstance(answer, tuple):
            return GetvarResult.fail(answer[1])
        return GetvarResult.okay(answer)


# -- hypothesis strategies for valid profiles ------------------------------------------------

_U64 = st.integers(0, 2**64 - 1)
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_getvar_names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=57
)


def _steps() -> st.SearchStrategy[ProbeStep]:
    return st.builds(
        lambda name, op, value: ProbeStep(
            getvar=name, operator=op, value=value if op.takes_value else None
        ),
        _getvar_names,
        st.sampled_from(ProbeOperator),
        _text,
    )


def profiles() -> st.SearchStrategy[DeviceProfile]:
    """Every valid :class:`DeviceProfile` shape, including all optional fields."""
    image = st.builds(
        AndroidBootImage,
        header_version=st.integers(0, 2),
        page_size=st.integers(0, 31).map(lambda shift: 1 << shift),
        kernel=st.builds(KernelSettings, encoding=st.sampled_from(KernelEncoding)),
        base=st.none() | _U64,
        kernel_offset=st.none() | _U64,
        dtb_offset=st.none() | _U64,
        limits=st.none()
        | st.builds(
            BootLimits,
            max_kernel_bytes=st.none() | _U64,
            max_initrd_bytes=st.none() | _U64,
            max_total_bytes=st.none() | _U64,
        ),
        initrd=st.none()
        | st.builds(InitrdSettings, compress=st.none() | st.sampled_from(Compression)),
        cmdline_append=st.none() | _text,
    )
    return st.builds(
        DeviceProfile,
        id=_text.filter(bool),
        display_name=st.none() | _text,
        devicetree_name=_text.filter(lambda name: bool(name.lstrip("/"))),
        match=st.lists(
            st.builds(MatchEntry, vid=st.integers(0, 0xFFFF), pid=st.integers(0, 0xFFFF)),
            min_size=1,
            max_size=3,
        ).map(tuple),
        probe=st.lists(_steps(), max_size=4).map(tuple),
        android_bootimg=image,
        machine=st.none() | st.builds(
            MachineSettings,
            devicetree=st.sampled_from(DevicetreeSource),
            modules=st.lists(st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True), max_size=3,
                             unique_by=lambda m: m.replace("-", "_")).map(tuple),
        ),
    )
