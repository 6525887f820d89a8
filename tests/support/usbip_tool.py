"""Linux's own USB/IP client (usbip-utils, ``scripts/setup`` installs it), as a test peer.

``usbip list --remote`` sends OP_REQ_DEVLIST and prints every field of the reply with the
kernel tree's own parser: the independent check of what our USB/IP servers list.
"""

from __future__ import annotations

import subprocess


def usbip_list(server: str) -> str:
    """``usbip list -r`` against ``HOST:PORT``; the tool's listing, exit status checked."""
    host, port = server.rsplit(":", 1)
    done = subprocess.run(["usbip", "--tcp-port", port, "list", "--remote", host],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
