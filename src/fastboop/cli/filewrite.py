"""Copying a file's bytes to stdout (``rootfs cat``): batched ``writev`` calls, and on
every core when stdout is a regular file (:func:`write_file` forks one process per part).

Nothing here imports msgspec or ``typing`` at module level: ``rootfs cat`` does not pay
for them at start-up (tests/cli/test_main.py checks it in a fresh interpreter).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import NoReturn

    from fastboop.rootfs.fs import Filesystem

#: At most this many pieces (Linux's IOV_MAX is 1024) or bytes per ``writev``: small
#: batches reuse the same memory, where 8 MiB ones faulted in fresh pages each time.
WRITEV_PIECES = 512
WRITEV_BYTES = 256 << 10
#: At most this many processes decode one file (:func:`write_file`).
MAX_PARTS = 4


def write_pieces(pieces: Iterable[bytes]) -> None:
    """Write a file's consecutive pieces to stdout, in batches of one ``writev`` each: a
    33 MB kernel decoded extent by extent is a handful of system calls, and never whole
    in memory. A stdout without a descriptor (a test's capture) gets plain writes."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        for piece in pieces:
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    write_all(fd, pieces)


def write_all(fd: int, pieces: Iterable[bytes]) -> None:
    """Write every piece to ``fd`` in order, batched into ``writev`` calls."""
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if len(batch) >= WRITEV_PIECES or size >= WRITEV_BYTES:
            _write_batch(fd, batch)
            batch, size = [], 0
    _write_batch(fd, batch)


def _written(error: OSError) -> BaseException:
    """A failed write as the one line it deserves (``No space left on device``), except a
    closed pipe: ``main`` ends quietly on that one (exit 141)."""
    if isinstance(error, BrokenPipeError):
        return error
    from fastboop.errors import FastboopError

    return FastboopError(f"cannot write the output: {error.strerror or error}", where="stdout")


def _write_batch(fd: int, batch: list[bytes], at: int | None = None) -> None:
    """Write all of ``batch`` to ``fd`` with ``writev`` (``at`` None: at the position) or
    ``pwritev`` (at offset ``at``), again after a short write, from where it ended."""
    pending: list[bytes | memoryview] = list(batch)
    while pending:
        try:
            written = os.writev(fd, pending) if at is None else os.pwritev(fd, pending, at)
        except OSError as error:
            raise _written(error) from None
        if at is not None:
            at += written
        done = 0
        while done < len(pending) and written >= len(pending[done]):
            written -= len(pending[done])
            done += 1
        pending = pending[done:]
        if pending and written:  # a short write ended inside this piece
            pending[0] = memoryview(pending[0])[written:]


def write_file(fs: Filesystem, path: str) -> None:
    """Write the file at ``path`` of ``fs`` to stdout (``rootfs cat``).

    Decoding a compressed kernel is most of the work, and one Python process uses one
    core. So when stdout is a regular file (not a pipe, not opened to append) and the
    reader can cut the file into parts that decode independently (EROFS: runs of whole
    extents), each part but the first is decoded by a forked process that writes it at
    its offset (``pwritev``), on all cores at once (at most :data:`MAX_PARTS`). The
    bytes are the same as one process's; see :func:`write_parts` for errors. Anything
    else is streamed in order (:func:`write_pieces`).
    """
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a test's capture: no descriptor
        fd = -1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if fd >= 0 and min(cores, MAX_PARTS) > 1 and hasattr(os, "fork") and _positioned_file(fd):
        parts = fs.stream_file_parts(path, min(cores, MAX_PARTS))
        if len(parts) > 1:
            write_parts(fd, parts)
            return
        write_all(fd, parts[0][1])
        return
    write_pieces(fs.stream_file(path))


def _positioned_file(fd: int) -> bool:
    """A regular file written at its offset: ``pwrite`` lands where a ``write`` would."""
    import fcntl
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode) and not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND


def write_parts(fd: int, parts: list[tuple[int, Iterator[bytes]]]) -> None:
    """Write consecutive parts of a file (``(offset, pieces)`` each, offsets relative to
    ``fd``'s position) to the regular file ``fd``: the first in this process, each other
    one in a forked child, all at once. The position ends after the file, as if it had
    been written in order.

    If a part fails (damaged data, a full disk), the file is cut where a one-process
    copy would have stopped, after everything before the failure, and the first
    failure in file order is raised here: a :class:`~fastboop.errors.FastboopError`
    from a child keeps its message, place, hint and exit code.
    """
    base = os.lseek(fd, 0, os.SEEK_CUR)
    initial_size = os.fstat(fd).st_size
    children = [_fork_part(fd, base + offset, pieces) for offset, pieces in parts[1:]]
    outcomes = [_write_at(fd, base + parts[0][0], parts[0][1])]
    if isinstance(outcomes[0][1], KeyboardInterrupt):
        import signal

        for pid, _report in children:  # Ctrl-C reached them too; do not wait on them
            os.kill(pid, signal.SIGKILL)
    outcomes += [_reap(pid, report) for pid, report in children]
    for (offset, _pieces), (done, failure) in zip(parts, outcomes, strict=True):
        end = base + offset + done
        if failure is not None:
            os.ftruncate(fd, max(end, initial_size))
            os.lseek(fd, end, os.SEEK_SET)
            raise failure
    os.lseek(fd, end, os.SEEK_SET)


def _write_at(fd: int, at: int, pieces: Iterator[bytes]) -> tuple[int, BaseException | None]:
    """Write ``pieces`` at offset ``at``: (bytes written, the failure or None). What was
    decoded before a decoding error is written too, as :func:`write_all` does."""
    done = 0
    batch: list[bytes] = []
    size = 0
    failure: BaseException | None = None
    writing = False  # a failure while writing: nothing more is written
    try:
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if len(batch) >= WRITEV_PIECES or size >= WRITEV_BYTES:
                writing = True
                _write_batch(fd, batch, at + done)
                writing = False
                done += size
                batch, size = [], 0
    except BaseException as error:  # returned: the caller decides, in file order
        failure = error
    if batch and not writing:
        try:
            _write_batch(fd, batch, at + done)
            done += size
        except BaseException as error:
            failure = failure or error
    return done, failure


def _fork_part(fd: int, at: int, pieces: Iterator[bytes]) -> tuple[int, int]:
    """(pid, read end of its report pipe) of a child writing ``pieces`` at ``at``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(fd, at, pieces, write_end)
    os.close(write_end)
    return pid, read_end


def _child(fd: int, at: int, pieces: Iterator[bytes], report: int) -> NoReturn:
    """Write the part, report (bytes written, failure) to the parent, and leave without
    running anything the parent set up (atexit handlers, stdio buffers): ``os._exit``."""
    import marshal

    code = 1
    try:
        done, failure = _write_at(fd, at, pieces)
        os.write(report, marshal.dumps((done, *_described(failure))))
        code = 0
    finally:
        os._exit(code)


def _described(failure: BaseException | None) -> tuple[str | int | None, ...]:
    from fastboop.errors import FastboopError

    if failure is None:
        return ("ok",)
    if isinstance(failure, FastboopError):
        return ("fastboop", failure.message, failure.where, failure.hint, failure.exit_code)
    if isinstance(failure, OSError):
        return ("os", failure.errno, failure.strerror)
    if isinstance(failure, KeyboardInterrupt):
        return ("interrupted",)
    return ("bug", f"{type(failure).__name__}: {failure}")


def _reap(pid: int, report: int) -> tuple[int, BaseException | None]:
    """Wait for a child: what it wrote and how it failed, as exceptions of this process."""
    import marshal

    from fastboop.errors import FastboopError

    with os.fdopen(report, "rb") as pipe:
        raw = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    if not raw:
        return 0, RuntimeError(f"a process decoding part of the file ended without a "
                               f"report (wait status {status})")  # fmt: skip
    done, kind, *fields = marshal.loads(raw)
    if kind == "ok":
        return done, None
    if kind == "fastboop":
        message, where, hint, exit_code = fields
        error = FastboopError(message, where=where, hint=hint)
        error.exit_code = exit_code
        return done, error
    if kind == "os":
        return done, OSError(*fields)
    if kind == "interrupted":
        return done, KeyboardInterrupt()
    return done, RuntimeError(f"decoding part of the file failed: {fields[0]}")
