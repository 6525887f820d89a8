"""A local HTTP server with ``Range`` support, for the HTTP rootfs reader's tests.

Python's ``http.server`` ignores ``Range``; this one answers single ranges with 206, which
is all the rootfs reader asks for. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """http.server with single-range ``Range: bytes=a-b`` support (it has none).

    It reads only the requested range, so the benchmarks can serve multi-GiB images.
    It speaks HTTP/1.1 with keep-alive, as real servers and CDNs do; ``connections``
    counts the TCP connections its server accepted (set by :func:`range_server`).
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        # A proxy's request line carries the absolute URL: serve its path (the tests use
        # this server as an HTTP proxy too).
        request_path = urllib.parse.urlsplit(self.path).path if "://" in self.path else self.path
        path = Path(self.translate_path(request_path))
        moved = path.with_name(path.name + ".redirect")  # "<name>.redirect" holds a URL path
        if moved.is_file():
            self.send_response(302)
            self.send_header("Location", moved.read_text().strip())
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if not path.is_file():
            self.send_error(404)
            return None
        size = path.stat().st_size
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if not match:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            return self._body(path.read_bytes())
        start, end = int(match.group(1)), min(int(match.group(2)), size - 1)
        with path.open("rb") as file:
            file.seek(start)
            data = file.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{size}"')
        self.end_headers()
        return self._body(data)

    def _body(self, data: bytes) -> _Body:
        if isinstance(self.server, CountingServer):
            self.server.count_body(len(data))
        return _Body(data)


class _Body:
    """A response body that hands out chunks without copying the rest each time."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else min(len(self.data), self.pos + n)
        out = bytes(self.data[self.pos : end])
        self.pos = end
        return out

    def close(self) -> None:
        pass


class CountingServer(http.server.ThreadingHTTPServer):
    """Counts accepted connections, so tests can see whether clients keep them alive, and
    the response bodies sent and their bytes, so they can see how much of an artifact a
    boot fetched."""

    connections = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies_sent = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()  # handlers run in threads of their own

    def count_body(self, size: int) -> None:
        with self._lock:
            self.bodies_sent += 1
            self.bytes_sent += size

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        self.connections += 1
        super().process_request(request, client_address)


@contextlib.contextmanager
def range_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP with Range support; yields the base URL."""
    with counting_range_server(directory) as (url, _server):
        yield url


@contextlib.contextmanager
def counting_range_server(directory: Path) -> Iterator[tuple[str, CountingServer]]:
    """:func:`range_server` that also yields the server (for its counts)."""
    handler = functools.partial(RangeHandler, directory=str(directory))
    httpd = CountingServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
