"""Interface recognition and endpoint selection (smoo.md §2.2-§2.3)."""

from __future__ import annotations

from fastboop.smoo.discovery import EndpointInfo, SmooEndpoints, is_smoo_triple, pick_endpoints


def test_triples() -> None:
    assert is_smoo_triple((0xFF, 0x42, 0x03), mimic=True)
    assert not is_smoo_triple((0xFF, 0x53, 0x4D), mimic=True)
    assert is_smoo_triple((0xFF, 0x53, 0x4D), mimic=False)
    assert not is_smoo_triple((0xFF, 0x42, 0x03), mimic=False)


def test_first_endpoint_of_each_kind_wins_whatever_the_addresses() -> None:
    endpoints = [
        EndpointInfo(0x83, 0x03),  # interrupt IN
        EndpointInfo(0x84, 0x03),  # a second interrupt IN: ignored
        EndpointInfo(0x05, 0x03),  # interrupt OUT
        EndpointInfo(0x81, 0x02),  # bulk IN
        EndpointInfo(0x01, 0x02),  # bulk OUT
    ]
    assert pick_endpoints(endpoints) == SmooEndpoints(
        interrupt_in=0x83, interrupt_out=0x05, bulk_in=0x81, bulk_out=0x01
    )


def test_fastboot_bulk_pair_alone_is_not_smoo() -> None:
    assert pick_endpoints([EndpointInfo(0x81, 0x02), EndpointInfo(0x01, 0x02)]) is None
