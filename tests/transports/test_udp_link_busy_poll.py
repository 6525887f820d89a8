"""The UDP data phase's spin before each blocking wait (UdpLink.busy_poll, issue 15).

The client polls its socket for a short window before it sleeps for an acknowledgement.
These tests check that this changes nothing the protocol promises (fastboot.md §8.3):
each packet is answered exactly once, a lost reply is retransmitted after the retry
interval (not after the spin window), a late reply is still taken, and a duplicate of
an old reply is never taken for a new one. The device is the simulator's own sans-I/O
UDP session on a real socket, in a thread of its own, with a script that drops, delays
or repeats its acknowledgements of download data.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

from fastboop.fastboot import udp_wire
from fastboop.fastboot.payload import Payload
from fastboop.sim import SimulatedBootloader, load_model
from fastboop.sim.udp_device import UdpDeviceSession
from fastboop.transports.busypoll import BusyPoll
from fastboop.transports.udp_link import UdpLink, open_udp_link

IMAGE = bytes(range(251)) * 1000  # 251,000 bytes: 180 packets of 1396
PACKETS = -(-len(IMAGE) // 1396)

# For the n-th data packet the device hears (from 1, retransmissions counted), the
# delays after which it sends its reply: [] drops it, [0.0, 0.0] sends it twice.
Script = Callable[[int], list[float]]


class Device:
    """A simulated phone on 127.0.0.1 answering one client from a thread."""

    def __init__(self, script: Script):
        self.script = script
        self.bootloader = SimulatedBootloader(load_model("google-sargo"))
        self.session = UdpDeviceSession(lambda: self.bootloader)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.data_seqs: list[int] = []  # the sequence number of every data packet heard
        self._stop = threading.Event()

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, address = self.sock.recvfrom(1 << 16)
            except TimeoutError:
                continue
            delays = [0.0]
            if self.bootloader.state == "data" and len(datagram) > udp_wire.HEADER_SIZE:
                self.data_seqs.append(udp_wire.decode_header(datagram)[2])
                delays = self.script(len(self.data_seqs))
            reply = self.session.handle(datagram)
            for delay in delays if reply is not None else []:
                time.sleep(delay)
                self.sock.sendto(reply.datagram, address)

    @contextlib.contextmanager
    def running(self) -> Iterator[Device]:
        thread = threading.Thread(target=self.serve, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.sock.close()


def download(device: Device, poll: BusyPoll, *, retry_interval: float = 2.0) -> UdpLink:
    """``download`` + the data phase + ``boot`` from this thread, blocking."""
    link = open_udp_link("127.0.0.1", device.port, retry_interval=retry_interval)
    link.busy_poll = poll
    link.send(b"download:%08x" % len(IMAGE), timeout=10)
    assert link.receive(64, timeout=10) == b"DATA%08x" % len(IMAGE)
    link.send_data(Payload.of(IMAGE), timeout=10, on_sent=lambda n: None)
    assert link.receive(64, timeout=10) == b"OKAY"
    link.send(b"boot", timeout=10)
    assert link.receive(64, timeout=10) == b"OKAY"
    link.close()
    return link


def test_prompt_replies_are_caught_by_the_spin() -> None:
    """The window is far beyond any scheduling delay: nearly every wait is a hit (a
    stalled thread on a loaded machine may cost a miss or two, and the waits after it)."""
    poll = BusyPoll(window=0.5)
    with Device(lambda n: [0.0]).running() as device:
        download(device, poll)
    assert device.bootloader.booted_images == [IMAGE]
    assert len(device.data_seqs) == PACKETS  # nothing was sent twice
    assert poll.hits >= PACKETS - 10 and poll.misses <= 2


def test_a_reply_later_than_the_window_is_still_taken_and_the_spin_backs_off() -> None:
    """Every acknowledgement comes 3 ms late, 30 windows: each spin gives up (a miss),
    the client sleeps until the reply instead of retransmitting (the retry interval is
    2 s), and after a few misses it stops spinning for most packets."""
    poll = BusyPoll(window=0.0001)
    with Device(lambda n: [0.003]).running() as device:
        download(device, poll)
    assert device.bootloader.booted_images == [IMAGE]
    assert len(device.data_seqs) == PACKETS  # no retransmission: a late reply is a reply
    # A client thread stalled for over 3 ms between its send and its spin (a loaded
    # machine) finds the reply already there: a hit, as in the prompt-reply test above.
    assert poll.hits <= 2
    assert 3 <= poll.misses <= 12  # 1 + 2 + 4 + ... waits without a spin between misses


def test_a_lost_reply_is_retransmitted_after_the_retry_interval_not_the_window() -> None:
    """The device drops its acknowledgement of the 50th data packet: the client's spin
    ends, it sleeps, and after the retry interval it sends the same packet again, once;
    the device re-sends its saved reply without storing the data twice."""
    poll = BusyPoll(window=0.05)
    with Device(lambda n: [] if n == 50 else [0.0]).running() as device:
        started = time.monotonic()
        download(device, poll, retry_interval=0.3)
        took = time.monotonic() - started
    assert device.bootloader.booted_images == [IMAGE]
    seqs = device.data_seqs
    assert len(seqs) == PACKETS + 1 and seqs[49] == seqs[50]  # exactly one resend
    assert len(set(seqs)) == PACKETS
    assert poll.misses >= 1  # the spin on the dropped reply ran its window out ...
    assert took >= 0.3  # ... and the resend waited for the retry interval, not the window


def test_a_duplicate_reply_is_not_taken_for_the_next_one() -> None:
    """The device sends every acknowledgement twice. The spin finds the copy of the last
    packet's acknowledgement first; the client must skip it as stale and wait for the
    reply to the packet it just sent, or it would run ahead of the device."""
    poll = BusyPoll(window=0.5)
    with Device(lambda n: [0.0, 0.0]).running() as device:
        download(device, poll)
    assert device.bootloader.booted_images == [IMAGE]
    assert device.data_seqs == sorted(set(device.data_seqs))  # each packet once, in order
    assert len(device.data_seqs) == PACKETS
    assert poll.hits > PACKETS  # the copies were read too, while spinning
