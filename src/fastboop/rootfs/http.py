"""HTTP(S) block source: Range requests plus an on-disk block cache.

Booting from a URL should not download a multi-gigabyte image: the readers ask only for
the superblock, a few inodes, the kernel and the modules. Each read is served from
fixed-size cached blocks; missing neighbouring blocks are fetched in one Range request.
The cache is keyed by URL, size, validator (ETag / Last-Modified) and block size, so a
changed image is never mixed with stale blocks.

A server's answers are checked, never trusted (issue 10): every range response must be a
206 whose ``Content-Range`` is exactly the range asked for, of the size probed, with a body
of exactly that length and the same validator; range requests carry ``If-Range``, so an
image replaced on the server comes back whole (200) and is refused instead of mixing two
images. Cached block files are checked for their length before use. A read either returns
the image's bytes or fails with one line; it never returns other bytes.

Requests go through urllib3 rather than urllib: a cold stage0 build makes ~50 range
requests and serving a rootfs makes thousands, and urllib opens a new connection (a new
TLS handshake over HTTPS) for each one. urllib3 keeps the connection alive, follows
redirects (release downloads usually redirect to a CDN) and retries dropped connections.
Proxies come from the usual environment variables, as urllib would take them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import urllib.request
from collections import OrderedDict
from pathlib import Path

import urllib3

from fastboop.blocks import check_range
from fastboop.rootfs.errors import RootfsError

# Small blocks keep scattered reads (inodes, directories, modules) from dragging in
# whole megabytes around them: building stage0 from a 1.3 GiB EROFS image transfers
# 20.8 MB with 64 KiB blocks against 45.1 MB with 1 MiB ones (docs/benchmarks-rootfs.md),
# for 57 requests instead of 34, because runs of missing blocks go out as one request
# and the EROFS reader asks for a file's data in runs of up to 4 MiB.
DEFAULT_BLOCK = 64 << 10
MEMORY_BLOCKS = 256  # recently used blocks kept in RAM; the disk cache holds the rest
USER_AGENT = "fastboop"
# The smoo pump reads from several worker threads at once; keep that many connections.
POOL_SIZE = 4
# Transient failures (a dropped keep-alive connection, a CDN's 503) are retried with a
# short backoff; anything else is reported at once.
RETRIES = urllib3.Retry(total=4, connect=2, read=2, redirect=5, backoff_factor=0.2,
                        status_forcelist=(502, 503, 504), raise_on_status=False,
                        raise_on_redirect=False)  # fmt: skip


def pool_for(url: str, retries: urllib3.Retry = RETRIES) -> urllib3.PoolManager:
    """A connection pool for ``url``, through the environment's proxy if one applies
    (``http_proxy``/``https_proxy``/``no_proxy``, read the way urllib reads them)."""
    parsed = urllib3.util.parse_url(url)
    proxy = urllib.request.getproxies().get(parsed.scheme or "http")
    if proxy and not urllib.request.proxy_bypass(parsed.host or ""):
        return urllib3.ProxyManager(proxy, retries=retries, maxsize=POOL_SIZE)
    return urllib3.PoolManager(retries=retries, maxsize=POOL_SIZE)


class HttpSource:
    def __init__(
        self,
        url: str,
        *,
        cache_dir: Path | None = None,
        block_size: int = DEFAULT_BLOCK,
        timeout: float = 60.0,
        retries: urllib3.Retry = RETRIES,
    ) -> None:
        self.url = url
        self.block_size = block_size
        self.timeout = timeout
        self.requests = 0  # number of HTTP requests made (for tests and benchmarks)
        self.bytes_fetched = 0  # body bytes received (for tests and benchmarks)
        self._pool = pool_for(url, retries)
        # Guards the LRU and the counters: serving reads from several threads at once.
        self._lock = threading.Lock()
        self._size, validator = self._probe()
        self._validator = validator
        # If-Range takes a strong ETag or a date, never a weak ETag (RFC 9110 §13.1.5).
        self._if_range = {"If-Range": validator} if validator and not validator.startswith(
            "W/") else {}  # fmt: skip
        # The block size is part of the key: blocks are files named by their index.
        ident = f"{url}\0{self._size}\0{validator}\0{block_size}"
        key = hashlib.sha256(ident.encode()).hexdigest()[:32]
        self.cache: Path | None = (cache_dir / key) if cache_dir else None
        self._memory: OrderedDict[int, bytes] = OrderedDict()
        # Blocks being fetched now, by the thread that claimed them: the others wait.
        self._inflight: dict[int, threading.Event] = {}
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
            meta = self.cache / "meta.json"
            if not meta.exists():
                meta.write_text(json.dumps({"url": url, "size": self._size}))

    def _request(
        self, method: str, headers: dict[str, str]
    ) -> tuple[int, urllib3.HTTPHeaderDict, bytes]:
        with self._lock:
            self.requests += 1
        try:
            response = self._pool.request(
                method,
                self.url,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers},
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
        except urllib3.exceptions.MaxRetryError as error:
            # "HTTPConnection(host=..., port=...): Failed to ..." -> the part after the repr
            reason = str(error.reason).partition("): ")[2] or str(error.reason)
            raise RootfsError(f"cannot fetch: {reason}", where=self.url) from None
        except urllib3.exceptions.HTTPError as error:
            raise RootfsError(f"cannot fetch: {error}", where=self.url) from None
        if response.status >= 400:
            raise RootfsError(f"HTTP {response.status} {response.reason}", where=self.url)
        body = response.data if method != "HEAD" else b""
        with self._lock:
            self.bytes_fetched += len(body)
        return response.status, response.headers, body

    def _probe(self) -> tuple[int, str]:
        status, headers, body = self._request("GET", {"Range": "bytes=0-0"})
        if status != 206:
            raise RootfsError(
                "server ignores Range requests",
                where=self.url,
                hint="download the image first, or serve it with range support",
            )
        match = re.fullmatch(r"bytes 0-0/(\d+)", headers.get("Content-Range", "").strip())
        if not match or len(body) != 1:
            raise RootfsError("server sent no usable Content-Range (the image's size)",
                              where=self.url)  # fmt: skip
        validator = headers.get("ETag") or headers.get("Last-Modified") or ""
        return int(match.group(1)), validator

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return self.url

    @property
    def direct(self) -> bool:
        return False  # a miss waits on the network: the smoo pump reads it in a thread

    def _block_length(self, index: int) -> int:
        return min(self.block_size, self._size - index * self.block_size)

    def _cached(self, index: int) -> bytes | None:
        with self._lock:
            if index in self._memory:
                self._memory.move_to_end(index)
                return self._memory[index]
        if self.cache is not None:
            path = self.cache / f"{index}.blk"
            if path.exists():
                data = path.read_bytes()
                if len(data) == self._block_length(index):  # else damaged: fetch it again
                    self._remember(index, data)
                    return data
        return None

    def _remember(self, index: int, data: bytes) -> None:
        with self._lock:
            self._memory[index] = data
            if len(self._memory) > MEMORY_BLOCKS:
                self._memory.popitem(last=False)

    def _store(self, index: int, data: bytes) -> None:
        self._remember(index, data)
        if self.cache is not None:
            fd, tmp = tempfile.mkstemp(dir=self.cache, prefix=".blk-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self.cache / f"{index}.blk")

    def _fetch(self, first: int, last: int) -> dict[int, bytes]:
        start = first * self.block_size
        end = min((last + 1) * self.block_size, self._size) - 1
        status, headers, body = self._request(
            "GET", {"Range": f"bytes={start}-{end}", **self._if_range}
        )
        self._check_range_response(status, headers, body, start, end)
        blocks = {}
        for index in range(first, last + 1):
            offset = (index - first) * self.block_size
            blocks[index] = body[offset : offset + self.block_size]
            self._store(index, blocks[index])
        return blocks

    def _check_range_response(self, status: int, headers: urllib3.HTTPHeaderDict, body: bytes,
                              start: int, end: int) -> None:  # fmt: skip
        """Raise unless the response is exactly bytes ``start..end`` of the probed image."""
        if status == 200:
            raise RootfsError("the server sent the whole file instead of the range asked for: "
                              "the image changed on the server, or it stopped honouring Range",
                              where=self.url, hint="run again")  # fmt: skip
        answered = headers.get("Content-Range", "").strip()
        expected = f"bytes {start}-{end}/{self._size}"
        if status != 206 or answered != expected:
            raise RootfsError(f"the server answered {status} {answered or 'with no Content-Range'}"
                              f" to a request for {expected}", where=self.url)  # fmt: skip
        validator = headers.get("ETag") or headers.get("Last-Modified") or ""
        if self._validator and validator and validator != self._validator:
            raise RootfsError("the image changed on the server while it was being read",
                              where=self.url, hint="run again")  # fmt: skip
        if len(body) != end - start + 1:
            raise RootfsError(f"the server sent {len(body)} bytes for the "
                              f"{end - start + 1}-byte range {start}-{end}", where=self.url)

    def _claim(self, indexes: list[int], found: dict[int, bytes]
               ) -> tuple[list[int], dict[int, threading.Event]]:  # fmt: skip
        """Sort ``indexes`` into cached (added to ``found``), claimed by this thread (to
        fetch) and being fetched by another thread (to wait for).

        The smoo pump reads neighbouring ranges from several threads, and a served file
        inside an image (a live ISO's root) is rarely aligned to the cache's blocks: two
        reads then share a block at their boundary. Without the claim both fetch it, and
        a whole session fetched 1.6 times what it needed.
        """
        claimed: list[int] = []
        waiting: dict[int, threading.Event] = {}
        for index in indexes:
            data = self._cached(index)
            if data is not None:
                found[index] = data
                continue
            with self._lock:
                data = self._memory.get(index)  # stored since the look-up just above
                if data is not None:
                    found[index] = data
                elif index in self._inflight:
                    waiting[index] = self._inflight[index]
                else:
                    self._inflight[index] = threading.Event()
                    claimed.append(index)
        return claimed, waiting

    def _release(self, claimed: list[int]) -> None:
        """Wake the threads waiting for blocks this thread claimed (fetched or failed)."""
        with self._lock:
            for index in claimed:
                self._inflight.pop(index).set()

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        if length == 0:
            return b""
        first = offset // self.block_size
        last = (offset + length - 1) // self.block_size
        # Collected locally: a long read may outgrow the in-memory LRU it passes through.
        blocks: dict[int, bytes] = {}
        pending = list(range(first, last + 1))
        while pending:
            claimed, waiting = self._claim(pending, blocks)
            missing = claimed
            try:
                while missing:  # coalesce runs of missing blocks into single requests
                    run_end = 0
                    while run_end + 1 < len(missing) and missing[run_end + 1] == missing[
                            run_end] + 1:  # fmt: skip
                        run_end += 1
                    blocks.update(self._fetch(missing[0], missing[run_end]))
                    missing = missing[run_end + 1 :]
            finally:
                self._release(claimed)
            for event in waiting.values():
                event.wait()
            # Fetched by another thread now (or its fetch failed: then claim them here).
            pending = list(waiting)
        data = b"".join(blocks[i] for i in range(first, last + 1))
        skip = offset - first * self.block_size
        return data[skip : skip + length]
