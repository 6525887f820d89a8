"""Standard USB descriptors: what the simulators pack parses back the same, and any bytes a
device sends (over USB/IP they come from the network) parse or raise DescriptorError."""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
from hypothesis import given, settings

from fastboop import usb_descriptors as d
from fastboop.sim.usb_bus import (
    INTERFACE_KINDS,
    configuration_descriptor,
    endpoint_descriptor,
    interface_descriptor,
)
from fastboop.usb_descriptors import DescriptorError


def packed_configuration(kinds: list[str]) -> bytes:
    settings_ = [
        (interface_descriptor(number, INTERFACE_KINDS[kind][0], len(INTERFACE_KINDS[kind][1])),
         [endpoint_descriptor(address, kind_) for address, kind_ in INTERFACE_KINDS[kind][1]])
        for number, kind in enumerate(kinds)
    ]  # fmt: skip
    return d.pack_configuration(configuration_descriptor(len(kinds)), settings_)


def test_a_packed_configuration_parses_back() -> None:
    raw = packed_configuration(["cdc-data", "smoo-mimic"])
    assert d.configuration_length(raw[:9]) == len(raw) == 9 + 2 * 9 + 6 * 7
    config = d.parse_configuration(raw)
    assert config.descriptor.bNumInterfaces == 2
    [[(cdc, _)], [(smoo, endpoints)]] = config.interfaces
    assert cdc.bInterfaceClass == 0x0A
    assert (smoo.bInterfaceClass, smoo.bInterfaceSubClass) == (0xFF, 0x42)
    assert [(e.bEndpointAddress, e.bmAttributes, e.wMaxPacketSize) for e in endpoints] == [
        (0x81, 3, 1024), (0x01, 3, 1024), (0x82, 2, 512), (0x02, 2, 512)]
    assert config.endpoint_types()[0x81] == (3, 1)


def test_alternate_settings_and_class_specific_descriptors() -> None:
    """A real device's shape: an association before the interface, a class descriptor after
    it, two alternate settings of one interface (pyusb asks by position)."""
    iad = bytes([8, 0x0B, 0, 1, 0xFF, 0, 0, 0])
    intf0 = bytes([9, 4, 0, 0, 0, 0xFF, 0x42, 0x03, 0])
    class_specific = bytes([5, 0x24, 0, 0x10, 0x01])
    intf0_alt1 = bytes([9, 4, 0, 1, 1, 0xFF, 0x42, 0x03, 0])
    ep = bytes([7, 5, 0x81, 2, 0x00, 0x02, 0])
    body = iad + intf0 + class_specific + intf0_alt1 + ep
    raw = bytes([9, 2, 9 + len(body), 0, 1, 1, 0, 0x80, 50]) + body
    config = d.parse_configuration(raw)
    assert list(config.descriptor.extra_descriptors) == list(iad)
    first, second = config.interfaces[0]
    assert list(first[0].extra_descriptors) == list(class_specific)
    assert (first[1], second[0].bAlternateSetting) == ([], 1)
    assert second[1][0].wMaxPacketSize == 512


def test_device_descriptor_round_trip() -> None:
    desc = d.Descriptor(bLength=18, bDescriptorType=1, bcdUSB=0x200, bDeviceClass=0,
                        bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=64,
                        idVendor=0x18D1, idProduct=0x4EE0, bcdDevice=0x100, iManufacturer=1,
                        iProduct=2, iSerialNumber=3, bNumConfigurations=1)  # fmt: skip
    back = d.parse_device(d.pack_device(desc))
    assert {f: getattr(back, f) for f in d.DEVICE_FIELDS} == {
        f: getattr(desc, f) for f in d.DEVICE_FIELDS}


def test_string_descriptors() -> None:
    assert d.string_descriptor(0, None) == bytes([4, 3, 0x09, 0x04])
    assert d.string_descriptor(3, None) is None
    assert d.string_descriptor(3, "ab") == bytes([6, 3]) + "ab".encode("utf-16-le")
    assert len(d.string_descriptor(1, "x" * 300) or b"") == 254  # one byte holds the length


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                         max_size=6))
def test_any_configuration_bytes_parse_or_raise_descriptor_error(
    tail: bytes, edits: list[tuple[int, int]]
) -> None:
    raw = bytearray(packed_configuration(["smoo-mimic"]) + tail)
    for offset, value in edits:
        raw[offset % len(raw)] = value
    with contextlib.suppress(DescriptorError):
        config = d.parse_configuration(bytes(raw))
        for alternates in config.interfaces:
            for intf, endpoints in alternates:
                assert intf.bDescriptorType == 4
                assert all(ep.bDescriptorType == 5 for ep in endpoints)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_any_device_bytes_parse_or_raise_descriptor_error(raw: bytes) -> None:
    with contextlib.suppress(DescriptorError):
        assert d.parse_device(raw).bDescriptorType == 1


def test_the_setup_packet_matches_the_standard_layout() -> None:
    # GET_DESCRIPTOR(DEVICE), 18 bytes: the first request a host sends (USB 2.0 §9.4.3)
    packed = d.pack_setup(0x80, 0x06, 0x0100, 0, 18)
    assert packed == bytes.fromhex("8006000100001200")
    assert d.parse_setup(packed) == (0x80, 0x06, 0x0100, 0, 18)


@given(st.binary(min_size=8, max_size=8))
def test_every_setup_packet_parses_and_packs_back(raw: bytes) -> None:
    assert d.pack_setup(*d.parse_setup(raw)) == raw
