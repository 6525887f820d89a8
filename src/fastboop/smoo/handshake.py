"""Session setup: IDENT → CONFIG_EXPORTS → STATUS (smoo.md §8.1)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.smoo import protocol as p
from fastboop.smoo.link import GadgetLink, LinkStall
from fastboop.transports.base import TransportError

log = get_logger("fastboop.smoo")


class SmooSetupError(FastboopError):
    """The handshake failed; the host closes the link and retries after a pause."""


class NotSmooError(SmooSetupError):
    """The device answered IDENT like something else, e.g. a real fastboot bootloader."""


class SessionInfo(msgspec.Struct, frozen=True, kw_only=True):
    ident: p.Ident
    status: p.Status
    exports: tuple[p.ExportSpec, ...]

    @property
    def session_id(self) -> int:
        return self.status.session_id


async def handshake(
    link: GadgetLink,
    exports: Sequence[p.ExportSpec],
    *,
    control_timeout: float = 1.0,
    status_attempts: int = 5,
) -> SessionInfo:
    """Prove the device is smoo, (re)send the export set, and learn the session id."""
    iface = link.interface_number
    where = f"smoo interface {iface}"
    try:
        reply = await link.control_in(
            p.REQUEST_TYPE_IDENT, p.B_REQUEST_IDENT, 0, iface, p.IDENT_LENGTH,
            timeout=control_timeout,
        )
    except LinkStall as error:
        raise NotSmooError("IDENT was stalled", where=where,
                           hint="the device is not a smoo gadget") from error
    try:
        ident = p.decode_ident(reply)
    except p.SmooProtocolError as error:
        raise NotSmooError(error.message, where=where, hint=error.hint) from error
    if ident.major != p.PROTOCOL_VERSION[0]:
        log.warning("smoo gadget speaks an unknown major version; continuing",
                    major=ident.major, minor=ident.minor)

    ordered = tuple(sorted(exports, key=lambda spec: spec.export_id))
    payload = p.encode_config_exports(ordered)
    sent = await link.control_out(
        p.REQUEST_TYPE_CONFIG_EXPORTS, p.B_REQUEST_CONFIG_EXPORTS, 0, iface, payload,
        timeout=control_timeout,
    )
    if sent != len(payload):
        raise SmooSetupError(f"CONFIG_EXPORTS short write: {sent} of {len(payload)} bytes",
                             where=where)

    last_error: Exception | None = None
    for _ in range(status_attempts):
        try:
            status = await read_status(link, control_timeout)
        except (TimeoutError, TransportError, p.SmooProtocolError) as error:
            last_error = error
            continue
        if status.export_count > len(ordered):
            raise SmooSetupError(
                f"gadget reports {status.export_count} exports, {len(ordered)} configured",
                where=where,
            )
        if status.session_id == 0:
            raise SmooSetupError("gadget reports session id 0", where=where)
        return SessionInfo(ident=ident, status=status, exports=ordered)
    raise SmooSetupError(f"STATUS failed {status_attempts} times: {last_error}", where=where)


async def read_status(link: GadgetLink, control_timeout: float) -> p.Status:
    reply = await link.control_in(
        p.REQUEST_TYPE_STATUS, p.B_REQUEST_STATUS, 0, link.interface_number, p.STATUS_LENGTH,
        timeout=control_timeout,
    )
    return p.decode_status(reply)
