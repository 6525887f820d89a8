"""The serving half of ``fastboop replay``: the smoo data plane after the machine check.

:func:`replay_serving` runs both passes of :mod:`fastboop.replay.smoo` over a journal and
folds the result into the machine replay's :class:`~fastboop.replay.ReplayReport`: a
divergence becomes a ``nondeterminism`` verdict at the smoo record's sequence number
(``packet`` says which packet of the batch), and an ok verdict says in its note what was
checked and re-served. When the machine diverged, the data plane's invariants are still
checked, and a break recorded before the machine's divergence is the one reported.

Which rootfs is re-served: the one given (``--rootfs``), else the one the session's
``Serve`` effect names, if it is a local file whose digest is the journal header's
``rootfs`` input. Without one the invariants are still checked, and the note says the
data was not re-served.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from fastboop.errors import FastboopError
from fastboop.journal.inputs import file_digest
from fastboop.journal.reader import open_journal
from fastboop.replay.redrive import ReplayReport, Verdict
from fastboop.replay.smoo import SmooScan, reserve_smoo, scan_smoo
from fastboop.replay.smoo_check import SmooDivergence

__all__ = ["replay_serving"]


def _diverged(report: ReplayReport, found: tuple[int | None, int | None, str, str],
              context: list[str]) -> ReplayReport:  # fmt: skip
    seq, index, expected, actual = found
    return msgspec.structs.replace(
        report, verdict=Verdict.NONDETERMINISM, seq=seq, packet=index,
        expected=f"smoo packet {index} of record #{seq}: {expected}", actual=actual,
        context=context, note=report.note,
    )  # fmt: skip


def _recorded_rootfs(path: Path, scan: SmooScan) -> tuple[str | None, str | None]:
    """(rootfs to re-serve, why not) from the journal itself."""
    if scan.rootfs is None:
        return None, "no Serve effect names the rootfs"
    candidate = Path(scan.rootfs)
    if not candidate.is_file():
        return None, f"{scan.rootfs} is not here (pass --rootfs)"
    with open_journal(path) as reader:
        recorded = reader.header.inputs.get("rootfs")
    if recorded is not None and recorded != file_digest(candidate):
        return None, f"{scan.rootfs} is no longer the file that was served (pass --rootfs)"
    return str(candidate), None


async def replay_serving(path: Path | str, report: ReplayReport, *,
                         rootfs: str | None = None) -> ReplayReport:  # fmt: skip
    """Check (and, with the rootfs, re-serve) ``path``'s smoo data plane; see the module."""
    path = Path(path)
    if not report.ok:
        return await _earlier_in_the_data_plane(path, report)
    with open_journal(path) as reader:
        scan = scan_smoo(reader)
    if scan.divergence is not None:
        return _diverged(report, scan.divergence, scan.context)
    if scan.links == 0:
        return report
    summary = (f"smoo: {scan.links} link session(s), {scan.requests} Requests, "
               f"{scan.responses} Responses checked")  # fmt: skip
    why_not = None
    if rootfs is None:
        rootfs, why_not = _recorded_rootfs(path, scan)
    if rootfs is not None:
        try:
            summary += await _reserve(path, scan, rootfs)
        except SmooDivergence as found:
            context: list[str] = getattr(found, "context", [])
            return _diverged(report, (found.seq, found.index, found.expected, found.actual),
                             context)  # fmt: skip
        except _NotReserved as reason:
            why_not = str(reason)
    if why_not is not None:
        summary += f"; data not re-served: {why_not}"
    note = f"{report.note}; {summary}" if report.note else summary
    return msgspec.structs.replace(report, note=note)


async def _earlier_in_the_data_plane(path: Path, report: ReplayReport) -> ReplayReport:
    """The machine diverged: the data plane's invariants may have broken first, and the
    first divergence is the one to report (re-serving is not worth it any more)."""
    if report.verdict is not Verdict.NONDETERMINISM or report.seq is None:
        return report
    with open_journal(path) as reader:
        scan = scan_smoo(reader)
    found = scan.divergence
    if found is None or found[0] is None or found[0] >= report.seq:
        return report
    return _diverged(report, found, scan.context)


class _NotReserved(Exception):
    """Why the data plane could not be served again (said in the note, not a verdict)."""


async def _reserve(path: Path, scan: SmooScan, rootfs: str) -> str:
    """Serve the journal's link sessions again from ``rootfs``; the note's words."""
    from fastboop.artifact.open import ArtifactOptions
    from fastboop.backends.exports import open_export

    # The volume the session served, as its backend opened it: the user's choices from
    # the journal, and the device profile a channel's boot profile is picked by.
    volumes = scan.volumes
    options = ArtifactOptions(partition=volumes.partition, boot_partition=volumes.boot_partition,
                              boot_profile=volumes.boot_profile,
                              device_profile=scan.device_profile)  # fmt: skip
    export, source = open_export(rootfs, options)  # a bad --rootfs: its error
    try:
        served = [(spec[1], spec[2]) for spec in scan.exports]
        opened = (export.spec.block_size, export.spec.size_bytes)
        if served and opened not in served:  # another image: say so rather than diverge
            block_size, size = served[0]
            raise _NotReserved(
                f"{rootfs} opens as {opened[1]} bytes in {opened[0]}-byte blocks, the session "
                f"served {size} in {block_size}-byte blocks (another image, or a journal "
                "from before fastboop recorded the --partition choice?)")  # fmt: skip
        with open_journal(path) as reader:
            done = await reserve_smoo(reader, export, writable=bool(scan.writes_succeeded))
    except FastboopError as error:
        raise _NotReserved(f"re-serving {rootfs} failed: {error}") from None
    finally:
        source.close()
    text = f"; re-served {done.sent} Responses from {rootfs}, identical"
    if done.blind:
        text += (f" ({done.blind} READ payload(s) of blocks the session wrote compared by "
                 "status only: WRITE data is kept by digest)")  # fmt: skip
    return text
