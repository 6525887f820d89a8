"""The simulated phone's download RAM is reused from one download to the next (issue 15),
and reuse never leaks one download's bytes into another's image."""

from __future__ import annotations

import os

from fastboop.fastboot.protocol import encode_response
from fastboop.sim import load_model
from fastboop.sim.bootloader import Send, SimulatedBootloader
from fastboop.sim.ram import DownloadRam

SARGO = load_model("google-sargo")


def download_in_place(bootloader: SimulatedBootloader, image: bytes, piece: int = 4096) -> None:
    """``download`` with the data received in place, as the TCP server does."""
    assert bootloader.receive(b"download:%08x" % len(image)) == [
        Send(encode_response("DATA", b"%08x" % len(image)))
    ]
    done = 0
    while done < len(image):
        view = bootloader.data_buffer(piece)
        view[:] = image[done : done + len(view)]
        outputs = bootloader.data_filled(len(view))
        done += len(view)
    assert outputs == [Send(encode_response("OKAY"))]


def boot(bootloader: SimulatedBootloader) -> None:
    assert bootloader.receive(b"boot") == [Send(encode_response("OKAY"))]


def test_sessions_of_one_phone_reuse_its_ram_and_boot_their_own_image() -> None:
    ram = DownloadRam()
    first, second, third = os.urandom(1 << 20), os.urandom(1 << 20), os.urandom(100_000)
    booted = []
    for image in (first, second, third):
        session = SimulatedBootloader(SARGO, ram=ram)
        download_in_place(session, image)
        boot(session)
        booted += session.booted_images
        session.release()
    assert booted == [first, second, third]  # each a copy: later downloads leave it be
    assert ram.reused == 2  # the 1 MiB region served the second and the (smaller) third


def test_an_unbooted_download_gives_its_ram_back_when_the_session_ends() -> None:
    ram = DownloadRam()
    dropped = SimulatedBootloader(SARGO, ram=ram)
    download_in_place(dropped, b"\xaa" * 8192)
    assert ram.reused == 0
    dropped.release()  # the connection ended without a boot
    session = SimulatedBootloader(SARGO, ram=ram)
    download_in_place(session, b"\x55" * 8192)
    assert ram.reused == 1
    assert session.downloaded == b"\x55" * 8192
    assert dropped.downloaded is None


def test_a_larger_download_gets_new_ram_and_a_second_download_in_a_session_reuses() -> None:
    ram = DownloadRam()
    session = SimulatedBootloader(SARGO, ram=ram)
    download_in_place(session, b"a" * 4096)
    download_in_place(session, b"b" * 65536)  # the first's region is too small
    assert ram.reused == 0
    download_in_place(session, b"c" * 10000)  # the 64 KiB one fits
    assert ram.reused == 1
    boot(session)
    assert session.booted_images == [b"c" * 10000]


def test_a_download_in_progress_is_not_handed_to_another_session() -> None:
    ram = DownloadRam()
    one, two = SimulatedBootloader(SARGO, ram=ram), SimulatedBootloader(SARGO, ram=ram)
    for session, fill in ((one, b"1"), (two, b"2")):
        session.receive(b"download:%08x" % 4096)
        view = session.data_buffer(4096)
        view[:] = fill * 4096
        session.data_filled(4096)
    assert ram.reused == 0
    assert (one.downloaded, two.downloaded) == (b"1" * 4096, b"2" * 4096)
