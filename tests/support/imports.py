"""Which modules a command imports, measured in a fresh interpreter.

Start-up cost is mostly imports (anyio, asyncio, msgspec, structlog), so several tests
promise that a command leaves some module unloaded. Such a promise can only be checked
in a new process: the test runner has imported everything already. This helper runs the
code there, with a meta-path hook that notes who imported each module, and a failing
assertion names the unexpected module and the chain of importers that pulled it in:

    probe = fastboop_imports(["rootfs", "cat", str(image), "/boot/file"])
    assert probe.exit_code == 0 and probe.stdout == "..."
    probe.assert_none_of(("msgspec", "asyncio"))

``python_imports(code)`` runs any snippet instead of ``fastboop.cli.main.main(argv)``;
the ``..._async`` twins suit a test whose event loop must keep running meanwhile (an
in-process simulator the command talks to).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

#: Installed before the probed code runs. It finds nothing (returns None, so the normal
#: finders import as usual); it only notes, for each module imported from now on, the
#: first frame outside importlib that asked for it. It imports nothing itself.
_HOOK = """\
import sys
_probe_importers = {}
class _ProbeWhoImports:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in _probe_importers:
            return None
        frame = sys._getframe(1)
        while frame is not None and (
            frame.f_code.co_filename.startswith("<frozen importlib")
            or frame.f_globals.get("__name__") == "importlib"
        ):
            frame = frame.f_back
        if frame is not None:
            by = frame.f_globals.get("__name__", "?")
            _probe_importers[name] = (by, frame.f_lineno)
        return None
_probe_start_up = set(sys.modules)
sys.meta_path.insert(0, _ProbeWhoImports)
"""

_REPORT = """\
sys.meta_path.remove(_ProbeWhoImports)
if isinstance(_probe_exit_code, int):
    _probe_exit_code = int(_probe_exit_code)  # an IntEnum's repr is no literal
elif _probe_exit_code is not None and not isinstance(_probe_exit_code, str):
    _probe_exit_code = repr(_probe_exit_code)
with open({report!r}, "w") as _probe_out:
    _probe_out.write(repr(_probe_exit_code) + "\\n")
    for _probe_name in list(sys.modules):
        _probe_by, _probe_line = _probe_importers.get(_probe_name, ("?", 0))
        if _probe_name in _probe_start_up:
            _probe_by, _probe_line = ("<start-up>", 0)
        _probe_out.write(f"{{_probe_name}}\\t{{_probe_by}}\\t{{_probe_line}}\\n")
"""

_MAIN = """\
from fastboop.cli.main import main
try:
    _probe_exit_code = main({argv!r})
except SystemExit as _probe_stop:
    _probe_exit_code = _probe_stop.code
"""


@dataclass(frozen=True)
class ImportProbe:
    """What one fresh interpreter had imported when the probed code finished."""

    what: str
    modules: frozenset[str]
    #: module -> (importing module, line); ``<start-up>`` for the interpreter's own.
    importers: Mapping[str, tuple[str, int]]
    #: ``main``'s return value or ``SystemExit`` code; None for a plain snippet.
    exit_code: object
    stdout: str
    stderr: str

    def unexpected(self, forbidden: Iterable[str], allowed: Iterable[str] = ()) -> list[str]:
        """Loaded modules that are, or are under, a ``forbidden`` name (``asyncio`` covers
        ``asyncio.events``), except those ``allowed`` by exact name."""
        prefixes = tuple(forbidden)
        exempt = set(allowed)
        return sorted(
            name for name in self.modules
            if name not in exempt
            and any(name == p or name.startswith(p + ".") for p in prefixes)
        )  # fmt: skip

    def chain(self, module: str) -> str:
        """``structlog <- fastboop.log:12 <- fastboop.cli.boot:30 <- __main__:2``
        (``__main__``'s lines count from the probed code's first line)."""
        links = [module]
        current = module
        while current in self.importers:
            by, line = self.importers[current]
            if by == "<start-up>":
                if current == module:
                    links.append("the interpreter's start-up")
                break
            links.append(f"{by}:{line}" if line else by)
            if by in links[:-1]:
                break
            current = by
        return " <- ".join(links)

    def assert_none_of(self, forbidden: Iterable[str], allowed: Iterable[str] = ()) -> None:
        """Fail naming each unexpected module and who imported it. A module imported by
        another unexpected one is left out: the root cause is the one to read."""
        found = self.unexpected(forbidden, allowed)
        causes = [m for m in found if self.importers.get(m, ("?", 0))[0] not in found]
        if found:
            lines = "\n  ".join(self.chain(m) for m in causes or found)
            names = ", ".join(found if len(found) <= 8 else [*found[:8], "..."])
            raise AssertionError(
                f"{self.what} imported {len(found)} unexpected module(s) ({names}); "
                f"first importers:\n  {lines}"
            )


_PREAMBLE = _HOOK + "_probe_exit_code = None\n"
_BODY_OFFSET = _PREAMBLE.count("\n")


def _script(body: str, report: Path) -> str:
    return _PREAMBLE + body + "\n" + _REPORT.format(report=str(report))


def _read(what: str, report: Path, done: subprocess.CompletedProcess[str]) -> ImportProbe:
    if done.returncode != 0 or not report.exists():
        raise AssertionError(
            f"the import probe of {what} failed (exit {done.returncode}):\n{done.stderr}"
        )
    first, *rows = report.read_text().splitlines()
    importers: dict[str, tuple[str, int]] = {}
    for row in rows:
        name, by, line = row.split("\t")
        importers[name] = (by, int(line) - _BODY_OFFSET if by == "__main__" else int(line))
    return ImportProbe(
        what=what,
        modules=frozenset(importers),
        importers=importers,
        exit_code=ast.literal_eval(first),
        stdout=done.stdout,
        stderr=done.stderr,
    )


def python_imports(
    code: str, *, env: Mapping[str, str] | None = None, what: str | None = None
) -> ImportProbe:
    """Run ``code`` in a fresh ``python -c`` and report what it imported."""
    with tempfile.TemporaryDirectory(prefix="import-probe-") as scratch:
        report = Path(scratch) / "modules"
        done = subprocess.run([sys.executable, "-c", _script(code, report)],
                              capture_output=True, text=True, env=env)  # fmt: skip
        return _read(what or repr(code), report, done)


def fastboop_imports(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> ImportProbe:
    """Run ``fastboop ARGV`` (as ``main(argv)``, so ``--help`` exits are caught) in a
    fresh interpreter and report what it imported."""
    return python_imports(_MAIN.format(argv=list(argv)), env=env, what=_named(argv))


async def python_imports_async(
    code: str, *, env: Mapping[str, str] | None = None, what: str | None = None
) -> ImportProbe:
    """:func:`python_imports` without blocking the caller's event loop."""
    with tempfile.TemporaryDirectory(prefix="import-probe-") as scratch:
        report = Path(scratch) / "modules"
        raw = await anyio.run_process([sys.executable, "-c", _script(code, report)],
                                      check=False, env=env)  # fmt: skip
        done = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(errors="replace"),
            raw.stderr.decode(errors="replace"),
        )  # fmt: skip
        return _read(what or repr(code), report, done)


async def fastboop_imports_async(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None
) -> ImportProbe:
    """:func:`fastboop_imports` without blocking the caller's event loop."""
    return await python_imports_async(_MAIN.format(argv=list(argv)), env=env, what=_named(argv))


def _named(argv: Sequence[str]) -> str:
    return "fastboop " + " ".join(argv) if argv else "fastboop"
