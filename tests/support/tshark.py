"""Reading a pcap back with Wireshark's own dissector (``tshark``), as a user would.

The pcap export is checked by the real peer, not by our reader: these helpers run
``tshark -T fields`` and hand back one list of field values per packet, in the order the
fields were named (an absent field is ``""``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def tshark_fields(pcap: Path, *fields: str, display_filter: str | None = None) -> list[list[str]]:
    """Each packet of ``pcap`` (those ``display_filter`` keeps) as its ``fields``' values."""
    argv = ["tshark", "-r", str(pcap)]
    if display_filter is not None:
        argv += ["-Y", display_filter]
    argv += ["-T", "fields"]
    for name in fields:
        argv += ["-e", name]
    shown = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [row.split("\t") for row in shown.splitlines()]
