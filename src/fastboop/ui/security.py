"""The web UI's front door: a token on every request, and Host/Origin checks.

A local web server that can boot phones and read journals is an attack surface: any web
page the user visits can make the browser send requests to ``127.0.0.1``. Three checks,
in this order, stop that, as Jupyter's do:

1. **Host.** A DNS-rebinding page reaches us under its *own* name (``evil.example``
   re-pointed at 127.0.0.1), so the ``Host`` header must be an IP literal, ``localhost``, or
   a name the user allowed. An IP literal cannot be rebound.
2. **Origin.** A request a browser sends on behalf of another site carries that site's
   ``Origin`` (or ``Sec-Fetch-Site: cross-site``); only our own origin is accepted.
3. **Token.** Every request needs the random token: in the URL once (``?token=…``, which
   is answered with a cookie and a redirect to the same page without it), then from the
   cookie (``HttpOnly``, ``SameSite=Strict``), or as ``Authorization: token …`` for scripts.

This is plain ASGI middleware with no state but its settings, so it guards every route,
the static files included, and is tested without a browser.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable, Collection
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from fastboop.logs import get_logger

log = get_logger("fastboop.ui")

TOKEN_PARAMETER = "token"
LOCAL_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def new_token() -> str:
    """A random access token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def cookie_name(port: int) -> str:
    """Cookies are not kept apart by port, so two UIs on one host name theirs apart."""
    return f"fastboop-ui-{port}"


def split_host(header: str) -> str:
    """The host name of a ``Host`` header, without the port or IPv6 brackets, lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    name, _, port = header.rpartition(":")
    if name and port.isdigit():
        return name
    return header


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware enforcing the three checks (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, token: str, port: int,
                 allowed_hosts: Collection[str] = ()) -> None:  # fmt: skip
        self.app = app
        self.token = token
        self.port = port
        self.cookie = cookie_name(port)
        self.allowed_hosts = {name.lower() for name in allowed_hosts}
        self.on_shutdown: Callable[[], None] = lambda: None  # the server calls it when stopping

    def host_allowed(self, host: str | None) -> bool:
        if not host:
            return False
        name = split_host(host)
        return is_ip_literal(name) or name in LOCAL_NAMES or name in self.allowed_hosts

    def token_matches(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(),
                                                              self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        headers = {key.decode("latin-1"): value.decode("latin-1")
                   for key, value in scope["headers"]}  # fmt: skip
        host = headers.get("host")
        if not self.host_allowed(host):
            await _refuse(send, "this host name is not allowed (DNS rebinding protection): "
                          "open the address fastboop ui printed")  # fmt: skip
            return
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host}".lower():
            # Said in the log too: another web site tried to drive this server.
            log.warning("refused a request from another web site", origin=origin,
                        path=scope["path"])  # fmt: skip
            await _refuse(send, "cross-origin request refused")
            return
        if headers.get("sec-fetch-site") == "cross-site":
            log.warning("refused a cross-site request", path=scope["path"])
            await _refuse(send, "cross-site request refused")
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                          keep_blank_values=True)  # fmt: skip
        given = next((value for key, value in query if key == TOKEN_PARAMETER), None)
        if given is not None and self.token_matches(given):
            if scope["method"] == "GET":
                # Trade the token in the URL for a cookie, and drop it from the address
                # bar and the history.
                rest = urlencode([(k, v) for k, v in query if k != TOKEN_PARAMETER])
                await self._redirect_with_cookie(send, scope["path"] + (f"?{rest}" if rest else ""))
                return
            await self.app(scope, receive, send)
            return
        if self.token_matches(_cookie(headers.get("cookie"), self.cookie)) or \
                self.token_matches(_authorization(headers.get("authorization"))):  # fmt: skip
            await self.app(scope, receive, send)
            return
        await _refuse(send, "this page needs the access token: open the URL that "
                      "`fastboop ui` printed (it ends in ?token=…)")  # fmt: skip

    async def _redirect_with_cookie(self, send: Send, location: str) -> None:
        cookie = (f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict")
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1")),
            (b"set-cookie", cookie.encode("latin-1")),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header is simply no cookie
        return None
    morsel: Any = jar.get(name)
    return morsel.value if morsel is not None else None


def _authorization(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") else None


async def _refuse(send: Send, message: str) -> None:
    body = f"403 Forbidden: {message}\n".encode()
    await send({"type": "http.response.start", "status": 403, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
