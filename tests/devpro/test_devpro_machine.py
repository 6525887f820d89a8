"""The ``machine`` section (project addition to devpro.md §2): a machine that supplies its
own device tree, and the kernel modules its hardware needs that no DT names."""

from __future__ import annotations

import pytest
from devpro_helpers import make_profile

from fastboop.devpro.binary import decode_fboodevp, encode_fboodevp
from fastboop.devpro.document import profile_to_yaml
from fastboop.devpro.errors import ProfileError
from fastboop.devpro.loader import parse_profile
from fastboop.devpro.schema import DevicetreeSource, MachineSettings


def with_machine(section: str) -> str:
    return make_profile() + section


def parse(text: str) -> object:
    return parse_profile(text, file="p.yaml").profile


def test_machine_section_is_read() -> None:
    profile = parse_profile(with_machine(
        "machine:\n  devicetree: provided\n  modules: [usbip_vudc, virtio-net]\n"
    ), file="p.yaml").profile
    assert profile.machine == MachineSettings(devicetree=DevicetreeSource.PROVIDED,
                                              modules=("usbip_vudc", "virtio-net"))
    assert profile.devicetree_provided
    assert profile.machine_modules == ("usbip_vudc", "virtio-net")


def test_defaults_without_the_section_or_its_keys() -> None:
    plain = parse_profile(make_profile(), file="p.yaml").profile
    assert plain.machine is None and not plain.devicetree_provided
    assert plain.machine_modules == ()
    empty = parse_profile(with_machine("machine: {}\n"), file="p.yaml").profile
    assert empty.machine == MachineSettings()
    assert empty.machine.devicetree is DevicetreeSource.ROOTFS


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("machine:\n  devicetree: qemu\n", "machine.devicetree: expected one of rootfs, provided"),
        ("machine:\n  modules: usbip_vudc\n", "machine.modules: expected list, got string"),
        ("machine:\n  modules: [1]\n", r"machine.modules\[0\]: expected string, got integer"),
        ("machine:\n  modules: [a/b.ko]\n", r"machine.modules\[0\]: 'a/b.ko' is not a kernel"),
        ("machine:\n  modules: [a_b, a-b]\n", r"machine.modules\[1\]: module 'a-b' is listed"),
        ("machine:\n  dtb: none\n", "machine: unknown key 'dtb'"),
    ],
)
def test_bad_machine_sections_are_one_clear_error(section: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile(with_machine(section), file="p.yaml")


def test_fboodevp_keeps_version_0_without_it_and_writes_version_1_with_it() -> None:
    plain = parse_profile(make_profile(), file="p.yaml").profile
    assert encode_fboodevp(plain)[8:10] == b"\x00\x00"  # what the reference reads
    machine = parse_profile(with_machine("machine:\n  devicetree: provided\n  modules: [x]\n"),
                            file="p.yaml").profile  # fmt: skip
    record = encode_fboodevp(machine)
    assert record[8:10] == b"\x01\x00"
    assert record.endswith(b"\x01\x01\x01x")  # provided, one module, "x"
    assert decode_fboodevp(record) == machine


def test_yaml_round_trip() -> None:
    profile = parse_profile(with_machine("machine:\n  devicetree: provided\n  modules: [m]\n"),
                            file="p.yaml").profile  # fmt: skip
    assert parse_profile(profile_to_yaml(profile), file="again.yaml").profile == profile
