"""Standard USB descriptors (USB 2.0 §9.6) as bytes and as pyusb's attribute bags, and
the setup packet every control transfer starts with (§9.3).

pyusb backends hand pyusb *attribute bags*: objects whose attributes are the descriptor's
fields (``bLength``, ``idVendor``, ...). A backend that has raw descriptors (a USB/IP
device answers ``GET_DESCRIPTOR`` with bytes) parses them here; a backend that makes
devices up (the simulators) builds bags and packs them into the bytes a real device would
send. One layout, so the two sides cannot drift apart.

The setup packet has one home here too: the host sides that send one (the USB/IP bus,
smoo's recorder and its replay) pack it with :func:`pack_setup`, and the simulated devices
that answer one, and the journal's readers, unpack it with :func:`parse_setup`.

Descriptors from a device are untrusted: every parser checks lengths and raises
:class:`DescriptorError`. Descriptors that are not device, configuration, interface or
endpoint descriptors (class-specific ones, interface associations, SuperSpeed companions)
are kept as the ``extra_descriptors`` bytes of the descriptor before them, as libusb does.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from fastboop.errors import FastboopError

DEVICE: Final = 1
CONFIGURATION: Final = 2
STRING: Final = 3
INTERFACE: Final = 4
ENDPOINT: Final = 5

_DEVICE = struct.Struct("<BBHBBBBHHHBBBB")
_CONFIGURATION = struct.Struct("<BBHBBBBB")
_INTERFACE = struct.Struct("<BBBBBBBBB")
_ENDPOINT = struct.Struct("<BBBBHB")
_SETUP = struct.Struct("<BBHHH")

DEVICE_FIELDS: Final = ("bLength", "bDescriptorType", "bcdUSB", "bDeviceClass",
                        "bDeviceSubClass", "bDeviceProtocol", "bMaxPacketSize0", "idVendor",
                        "idProduct", "bcdDevice", "iManufacturer", "iProduct",
                        "iSerialNumber", "bNumConfigurations")  # fmt: skip
CONFIGURATION_FIELDS: Final = ("bLength", "bDescriptorType", "wTotalLength", "bNumInterfaces",
                               "bConfigurationValue", "iConfiguration", "bmAttributes",
                               "bMaxPower")  # fmt: skip
INTERFACE_FIELDS: Final = ("bLength", "bDescriptorType", "bInterfaceNumber",
                           "bAlternateSetting", "bNumEndpoints", "bInterfaceClass",
                           "bInterfaceSubClass", "bInterfaceProtocol", "iInterface")  # fmt: skip
ENDPOINT_FIELDS: Final = ("bLength", "bDescriptorType", "bEndpointAddress", "bmAttributes",
                          "wMaxPacketSize", "bInterval")  # fmt: skip


class DescriptorError(FastboopError):
    """A device sent descriptor bytes that do not parse."""


class Descriptor:
    """Attribute bag in the shape pyusb's ``_set_attr`` reads; ``extra_descriptors`` holds
    the raw bytes of the class-specific descriptors that followed it."""

    def __init__(self, **fields: Any):
        self.extra_descriptors: list[int] = []
        self.__dict__.update(fields)

    def __getattr__(self, name: str) -> Any:  # fields are dynamic; tell the type checker
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"Descriptor({self.__dict__!r})"


class Configuration:
    """One configuration: its descriptor, and per interface number the alternate settings
    in the order the device listed them, each with its endpoints."""

    def __init__(self, descriptor: Descriptor):
        self.descriptor = descriptor
        self.interfaces: list[list[tuple[Descriptor, list[Descriptor]]]] = []

    def setting(self, interface_index: int, alternate_index: int) -> tuple[Descriptor,
                                                                           list[Descriptor]]:
        """By position, as pyusb asks; ``IndexError`` past the end (pyusb's stop signal)."""
        return self.interfaces[interface_index][alternate_index]

    def endpoint_types(self) -> dict[int, tuple[int, int]]:
        """``bEndpointAddress`` -> (transfer type, bInterval) of every endpoint listed."""
        return {
            ep.bEndpointAddress: (ep.bmAttributes & 0x03, ep.bInterval)
            for alternates in self.interfaces for _, endpoints in alternates
            for ep in endpoints
        }  # fmt: skip


def _fields(layout: struct.Struct, names: tuple[str, ...], raw: bytes, what: str) -> Descriptor:
    if len(raw) < layout.size:
        raise DescriptorError(f"{what} descriptor is {len(raw)} bytes, not {layout.size}")
    return Descriptor(**dict(zip(names, layout.unpack_from(raw), strict=True)))


def parse_device(raw: bytes) -> Descriptor:
    """The 18-byte device descriptor."""
    desc = _fields(_DEVICE, DEVICE_FIELDS, raw, "device")
    if desc.bDescriptorType != DEVICE or desc.bLength < _DEVICE.size:
        raise DescriptorError("device descriptor has the wrong type or length")
    return desc


def configuration_length(head: bytes) -> int:
    """``wTotalLength`` of a configuration descriptor's first 9 bytes."""
    return parse_configuration_head(head).wTotalLength  # type: ignore[no-any-return]


def parse_configuration_head(raw: bytes) -> Descriptor:
    desc = _fields(_CONFIGURATION, CONFIGURATION_FIELDS, raw, "configuration")
    if desc.bDescriptorType != CONFIGURATION or desc.bLength < _CONFIGURATION.size:
        raise DescriptorError("configuration descriptor has the wrong type or length")
    if desc.wTotalLength < _CONFIGURATION.size:
        raise DescriptorError(f"configuration wTotalLength {desc.wTotalLength} is too short")
    return desc


def parse_configuration(raw: bytes) -> Configuration:
    """A whole configuration (``wTotalLength`` bytes): interfaces, alternates, endpoints."""
    config = Configuration(parse_configuration_head(raw))
    end = min(len(raw), config.descriptor.wTotalLength)
    offset = config.descriptor.bLength
    owner: Descriptor = config.descriptor
    endpoints: list[Descriptor] | None = None
    numbers: dict[int, int] = {}  # bInterfaceNumber -> index in config.interfaces
    while offset + 2 <= end:
        length, kind = raw[offset], raw[offset + 1]
        if length < 2 or offset + length > end:
            raise DescriptorError(f"descriptor at offset {offset} of the configuration has "
                                  f"length {length}, past its end {end}")
        body = raw[offset : offset + length]
        if kind == INTERFACE and length >= _INTERFACE.size:
            owner = _fields(_INTERFACE, INTERFACE_FIELDS, body, "interface")
            endpoints = []
            index = numbers.setdefault(owner.bInterfaceNumber, len(config.interfaces))
            if index == len(config.interfaces):
                config.interfaces.append([])
            config.interfaces[index].append((owner, endpoints))
        elif kind == ENDPOINT and length >= _ENDPOINT.size and endpoints is not None:
            owner = _fields(_ENDPOINT, ENDPOINT_FIELDS, body, "endpoint")
            owner.bRefresh = body[7] if length >= 9 else 0  # audio endpoints are 9 bytes
            owner.bSynchAddress = body[8] if length >= 9 else 0
            endpoints.append(owner)
        else:
            owner.extra_descriptors.extend(body)
        offset += length
    return config


def pack_device(desc: Descriptor) -> bytes:
    return _DEVICE.pack(*(getattr(desc, name) for name in DEVICE_FIELDS))


def pack_configuration(config: Descriptor,
                       settings: list[tuple[Descriptor, list[Descriptor]]]) -> bytes:
    """The bytes ``GET_DESCRIPTOR(CONFIGURATION)`` returns, ``wTotalLength`` filled in."""
    body = b"".join(
        _INTERFACE.pack(*(getattr(intf, name) for name in INTERFACE_FIELDS))
        + bytes(intf.extra_descriptors)
        + b"".join(_ENDPOINT.pack(*(getattr(ep, name) for name in ENDPOINT_FIELDS))
                   + bytes(ep.extra_descriptors) for ep in endpoints)
        for intf, endpoints in settings
    )  # fmt: skip
    head_fields = [getattr(config, name) for name in CONFIGURATION_FIELDS]
    head_fields[2] = _CONFIGURATION.size + len(config.extra_descriptors) + len(body)
    return _CONFIGURATION.pack(*head_fields) + bytes(config.extra_descriptors) + body


def string_descriptor(index: int, text: str | None) -> bytes | None:
    """``GET_DESCRIPTOR(STRING, index)``: index 0 lists one LANGID (en-US); ``None`` when
    the device has no such string (it stalls)."""
    if index == 0:
        return bytes([4, STRING, 0x09, 0x04])
    if text is None:
        return None
    encoded = text.encode("utf-16-le")[:252]
    return bytes([2 + len(encoded), STRING]) + encoded


def pack_setup(request_type: int, request: int, value: int, index: int, length: int) -> bytes:
    """The 8-byte setup packet: ``bmRequestType``, ``bRequest``, ``wValue``, ``wIndex``,
    ``wLength`` (little-endian)."""
    return _SETUP.pack(request_type, request, value, index, length)


def parse_setup(setup: bytes) -> tuple[int, int, int, int, int]:
    """``(request_type, request, value, index, length)`` of an 8-byte setup packet (every
    caller holds exactly 8: the USB/IP codec and the journal's types check that)."""
    request_type, request, value, index, length = _SETUP.unpack(setup)
    return request_type, request, value, index, length


__all__ = [
    "Configuration",
    "Descriptor",
    "DescriptorError",
    "configuration_length",
    "pack_configuration",
    "pack_device",
    "pack_setup",
    "parse_configuration",
    "parse_configuration_head",
    "parse_device",
    "parse_setup",
    "string_descriptor",
]
