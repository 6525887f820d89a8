"""Serving the app: a socket on a random loopback port, uvicorn, the URL, the browser.

The socket is bound before the app is made, so the port is known for the URL and for
the cookie's name, and no other program can take the port in between. uvicorn serves it
on asyncio (fastboop's sessions are anyio, at home there). Ctrl-C stops the server; a
boot still running is cancelled cleanly first, so its journal gets its outcome.
"""

from __future__ import annotations

import ipaddress
import socket
import webbrowser
from collections.abc import Callable
from urllib.parse import quote

from fastboop.ui.app import UiSettings, create_app

LOOPBACK = "127.0.0.1"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port chosen by the kernel)."""
    family = socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def url_for(host: str, port: int, token: str, path: str = "/") -> str:
    """The address to open: ``http://HOST:PORT/PATH?token=TOKEN``. A wildcard listening
    address is shown as loopback, which works from this machine."""
    shown = {"0.0.0.0": LOOPBACK, "::": "::1"}.get(host, host)
    if _is_ipv6(shown):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}{path}?token={quote(token)}"


def serve(sock: socket.socket, settings: UiSettings, *, log_level: str = "warning",
          ready: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Serve the app on ``sock`` until Ctrl-C (or SIGTERM); ``ready`` is called once the
    server accepts connections."""
    import uvicorn

    app = create_app(settings)
    config = uvicorn.Config(app, loop="asyncio", http="h11", ws="none",
                            lifespan="on", log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=3)  # fmt: skip
    server = uvicorn.Server(config)
    stopping = server.shutdown

    async def shutdown(sockets: list[socket.socket] | None = None) -> None:
        app.on_shutdown()  # end the pages' live streams first, or they hold the exit
        await stopping(sockets=sockets)

    server.shutdown = shutdown  # type: ignore[method-assign]
    if ready is not None:
        original = server.startup

        async def startup(sockets: list[socket.socket] | None = None) -> None:
            await original(sockets=sockets)
            if server.started:
                ready()

        server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


def open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False
