"""Capture the boot image AOSP's ``fastboot boot KERNEL RAMDISK`` builds by itself.

The real fastboot client (Debian's ``fastboot`` package) talks to a minimal fastboot-over-
TCP peer here: the ``FB01`` handshake, then 8-byte big-endian length-prefixed packets. The
peer answers every command with OKAY and keeps what ``download:`` sends, which is the
image fastboot's own builder made. Nothing is booted; the image is only compared.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from pathlib import Path


class _Peer:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.images: list[bytes] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                self._session(conn)
        except BaseException as error:  # reported by capture_fastboot_boot
            self.error = error
        finally:
            self.listener.close()

    def _session(self, conn: socket.socket) -> None:
        def recv(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise EOFError
                data += chunk
            return data

        def send(message: bytes) -> None:
            conn.sendall(struct.pack(">Q", len(message)) + message)

        def packet() -> bytes:
            (length,) = struct.unpack(">Q", recv(8))
            return recv(length)

        assert recv(4) == b"FB01"
        conn.sendall(b"FB01")
        try:
            while True:
                command = packet()
                if command.startswith(b"getvar:max-download-size"):
                    send(b"OKAY0x10000000")
                elif command.startswith(b"download:"):
                    size = int(command[9:], 16)
                    send(b"DATA%08x" % size)
                    data = b""
                    while len(data) < size:
                        data += packet()
                    self.images.append(data)
                    send(b"OKAY")
                else:
                    send(b"OKAY")
        except EOFError:
            return


def capture_fastboot_boot(tmp_path: Path, *args: str, kernel: bytes, ramdisk: bytes) -> bytes:
    """Run ``fastboot [args] boot kernel ramdisk`` and return the image it downloaded."""
    (tmp_path / "fb-kernel").write_bytes(kernel)
    (tmp_path / "fb-ramdisk").write_bytes(ramdisk)
    peer = _Peer()
    subprocess.run(
        ["fastboot", "-s", f"tcp:127.0.0.1:{peer.port}", *args, "boot",
         str(tmp_path / "fb-kernel"), str(tmp_path / "fb-ramdisk")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    peer.thread.join()
    if peer.error is not None:
        raise peer.error
    (image,) = peer.images
    return image
