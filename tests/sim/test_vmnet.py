"""The virtual phone's network link (fastboop.sim.vmnet): the real passt, started and always
stopped, and what happens when it is missing."""

from __future__ import annotations

import errno
import socket
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from fastboop.sim.qemu import free_port
from fastboop.sim.vmnet import PASST_MTU, NetLink, PasstError, open_link, passt_link


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            assert error.errno == errno.EADDRINUSE
            return True
    return False


def test_passt_listens_for_qemu_forwards_the_port_and_stops(tmp_path: Path) -> None:
    """While the link is open passt holds the forwarded port and its socket for qemu's
    ``-netdev stream``; once it is closed, neither is left behind."""
    port = free_port()

    async def main() -> NetLink:
        async with passt_link(tmp_path, port) as link:
            assert (tmp_path / "passt.sock").is_socket()
            assert _port_taken(port)
            return link

    link = anyio.run(main)
    assert link.backend == "passt" and link.mtu == PASST_MTU
    assert link.netdev == ("stream,id=net0,server=off,addr.type=unix,"
                           f"addr.path={tmp_path / 'passt.sock'}")  # fmt: skip
    assert not _port_taken(port)
    with socket.socket(socket.AF_UNIX) as client, pytest.raises(OSError):
        client.connect(str(tmp_path / "passt.sock"))


def test_without_passt_slirp_needs_nothing_passt_is_an_error_and_auto_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no passt on it

    async def main(net: str) -> NetLink:
        async with AsyncExitStack() as stack:
            return await open_link(stack, net, tmp_path, 4321)

    link = anyio.run(main, "slirp")
    assert link.backend == "slirp" and link.mtu is None
    assert "hostfwd=tcp:127.0.0.1:4321-10.0.2.15:3240" in link.netdev
    assert "restrict=on" in link.netdev
    with pytest.raises(PasstError, match=r"^passt is not installed") as caught:
        anyio.run(main, "passt")
    assert caught.value.hint is not None and "apt-get install passt" in caught.value.hint

    assert anyio.run(main, "auto") == link  # the default: passt if it can, else slirp


def test_a_passt_that_cannot_start_is_said_in_one_line(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A passt that exits at once (here: a stand-in on PATH that fails like a broken
    install) is a PasstError naming its exit status and its last words."""
    fake = tmp_path / "passt"
    fake.write_text("#!/bin/sh\necho 'passt: cannot open /dev/net/tun' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))

    async def main() -> NetLink:
        async with AsyncExitStack() as stack:
            return await open_link(stack, "passt", tmp_path, 4321)

    with pytest.raises(PasstError, match=r"passt exited with status 1: passt: cannot open"):
        anyio.run(main)

    async def auto() -> NetLink:
        async with AsyncExitStack() as stack:
            return await open_link(stack, "auto", tmp_path, 4321)

    assert anyio.run(auto).backend == "slirp"
