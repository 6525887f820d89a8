"""Reading a Debian archive's package index without apt: stanzas and version order.

``dists/<suite>/<component>/binary-<arch>/Packages.xz`` is a list of RFC 822-style
stanzas, one per package version. The demo needs two answers from it: which
``linux-image-<abi>-<arch>`` the ``linux-image-<arch>`` metapackage depends on, and where
that package's ``.deb`` is (``Filename``, ``Size``, ``SHA256``). :func:`compare_versions`
orders Debian versions the way dpkg does (``deb-version(7)``), so the newest of several
suites wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import msgspec


class PackageEntry(msgspec.Struct, frozen=True, kw_only=True):
    package: str
    version: str
    filename: str
    size: int
    sha256: str
    depends: str = ""


def stanzas(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Each stanza as ``{field: value}`` (continuation lines joined with newlines)."""
    current: dict[str, str] = {}
    field = None
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if current:
                yield current
            current, field = {}, None
        elif line[0] in " \t" and field is not None:
            current[field] += "\n" + line.strip()
        else:
            name, _, value = line.partition(":")
            field = name.strip()
            current[field] = value.strip()
    if current:
        yield current


def find_packages(lines: Iterable[str], names: set[str]) -> list[PackageEntry]:
    """Every entry for one of ``names``. An index has tens of thousands of stanzas; only
    the wanted ones are parsed, the rest are skipped line by line."""
    found: list[PackageEntry] = []
    wanted: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("Package:"):
            skipping = line[8:].strip() not in names
            wanted = [] if skipping else [line]
        elif not skipping and wanted:
            if line.strip():
                wanted.append(line)
                continue
            found += _entries(wanted)
            wanted = []
    if wanted:
        found += _entries(wanted)
    return found


def _entries(lines: list[str]) -> list[PackageEntry]:
    return [
        PackageEntry(
            package=stanza["Package"], version=stanza["Version"],
            filename=stanza["Filename"], size=int(stanza["Size"]),
            sha256=stanza.get("SHA256", ""), depends=stanza.get("Depends", ""),
        )
        for stanza in stanzas(lines)
    ]  # fmt: skip


def depends_names(depends: str) -> list[str]:
    """Package names in a Depends field, alternatives and version constraints dropped."""
    names = []
    for clause in depends.split(","):
        first = clause.split("|")[0].strip()
        name = re.split(r"[\s(:]", first, maxsplit=1)[0]
        if name:
            names.append(name)
    return names


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate non-digit runs (by _order) and digit runs (by value)."""
    i = j = 0
    while i < len(a) or j < len(b):
        difference = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not difference:
                difference = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if difference:
            return difference
    return 0


def compare_versions(a: str, b: str) -> int:
    """< 0, 0 or > 0 as Debian version ``a`` sorts before, with or after ``b``."""

    def split(version: str) -> tuple[int, str, str]:
        epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
        return int(epoch or 0), upstream, revision

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return ea - eb
    return _compare_part(ua, ub) or _compare_part(ra, rb)
