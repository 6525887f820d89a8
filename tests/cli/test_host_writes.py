"""On the host, fastboop writes only what it is asked for and its cache (promise 1 of
docs/reliability.md).

A whole demo session (build the payload from the Debian kernel's image, upload, boot, serve
the rootfs to the simulated phone, replay the journal) runs in a real process under a
Python audit hook (PEP 578). The hook sees every file opened for writing, every rename,
removal, mkdir, chmod, link and every spawned program, whichever library does it; it
resolves paths given relative to a directory descriptor (``shutil.rmtree``'s way). All of
them must land in the journal the user named, the cache (``XDG_CACHE_HOME``) or the
temporary directory; spawned tools (mkfs.erofs and depmod on a cold cache) may name no
other path to write to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

AUDIT = r'''
import os, runpy, sys
log = open(sys.argv[1], "w", buffering=1)
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# event -> (index of the path argument, index of its dir_fd argument or None)
PATHS = {
    "os.remove": (0, 1), "os.rmdir": (0, 1), "os.mkdir": (0, 2), "os.rename": (1, 3),
    "os.replace": (1, 3), "os.truncate": (0, None), "os.chmod": (0, 2), "os.chown": (0, 3),
    "os.link": (1, 3), "os.symlink": (1, 2), "os.utime": (0, 3), "os.mkfifo": (0, 2),
    "os.mknod": (0, 3), "os.chflags": (0, None), "os.setxattr": (0, None),
    "os.removexattr": (0, None), "shutil.copyfile": (1, None), "shutil.copytree": (1, None),
    "shutil.move": (1, None), "shutil.rmtree": (0, None),
}

def where(path, dir_fd):
    path = os.fsdecode(path)
    if dir_fd is not None and dir_fd >= 0 and not path.startswith("/"):
        return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    return os.path.abspath(path)

def hook(event, args):
    if event == "open":
        path, _mode, flags = args
        if isinstance(path, (str, bytes, os.PathLike)) and flags & WRITE:
            log.write(f"open\t{where(path, None)}\n")
    elif event in PATHS:
        at, fd_at = PATHS[event]
        path = args[at]
        if isinstance(path, int):  # an open descriptor: it was opened (and logged) first
            return
        dir_fd = args[fd_at] if fd_at is not None and fd_at < len(args) else None
        log.write(f"{event}\t{where(path, dir_fd)}\n")
    elif event == "subprocess.Popen":
        log.write("spawn\t" + "\0".join(map(os.fsdecode, args[1])) + "\n")

sys.addaudithook(hook)
sys.argv = ["fastboop", *sys.argv[2:]]
runpy.run_module("fastboop.cli.main", run_name="__main__")
'''


def test_a_demo_session_writes_only_its_journal_and_cache(tmp_path: Path) -> None:
    cache = REPO / ".cache" / "xdg"  # the demo rootfs is shared with tests/cli/test_demo.py
    home, temp, cwd = tmp_path / "home", tmp_path / "tmp", tmp_path / "cwd"
    for directory in (home, temp, cwd):
        directory.mkdir()
    script, log = tmp_path / "audited.py", tmp_path / "writes.log"
    script.write_text(AUDIT)
    journal = cwd / "session.fbj"
    done = subprocess.run(
        [sys.executable, str(script), str(log), "demo", "--journal", journal.name],
        cwd=cwd,
        env={**os.environ, "HOME": str(home), "TMPDIR": str(temp), "XDG_CACHE_HOME": str(cache)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "replay ok" in done.stdout and journal.exists()

    allowed = (cache.resolve(), temp.resolve())
    writes, spawns = [], []
    for line in log.read_text().splitlines():
        event, _, what = line.partition("\t")
        (spawns if event == "spawn" else writes).append((event, what))
    assert ("open", str(journal)) in writes
    assert writes, "the hook saw nothing: it was not watching"

    def permitted(path: str) -> bool:
        resolved = Path(path).resolve()
        return (
            resolved == journal.resolve()
            or resolved in (cwd.resolve(), Path("/dev/null"))  # the journal's directory
            or any(resolved.is_relative_to(root) for root in allowed)
        )

    assert [(e, p) for e, p in writes if not permitted(p)] == []
    for _, argv in spawns:
        program, *arguments = argv.split("\0")
        paths = [a for a in arguments if a.startswith("/")]
        assert all(permitted(p) for p in paths), f"{program} was given {paths}"
