"""The lazy ``modules.alias`` index against a plain oracle: every line, fnmatch.

:class:`AliasTable` reads only the lines a lookup can match (by first character, found
by ``find`` in the text). These tests check that this gives what a scan of every
alias line gives, in file order, for depmod's own text and for odd spellings of it
(tabs, runs of spaces, comments, CRLF, short and long lines), and on Debian's whole
arm64 ``modules.alias``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.stage0.dtmodules import OfPatterns
from fastboop.stage0.modindex import AliasTable, normalize, normalize_alias


def alias_lines(text: str) -> list[tuple[str, str]]:
    """(pattern, module) of every ``alias <pattern> <module>`` line, as kmod reads them."""
    out = []
    for line in text.splitlines():
        words = line.strip().split()
        if len(words) == 3 and words[0] == "alias":
            out.append((words[1], words[2]))
    return out


def oracle_lookup(text: str, name: str) -> list[str]:
    query = normalize_alias(name)
    found = [normalize(m) for p, m in alias_lines(text)
             if fnmatch.fnmatchcase(query, normalize_alias(p))]  # fmt: skip
    return list(dict.fromkeys(found))


def oracle_prefix(text: str, prefix: str) -> list[tuple[str, str]]:
    head = normalize_alias(prefix)
    return [(normalize_alias(p), normalize(m)) for p, m in alias_lines(text)
            if normalize_alias(p).startswith(head)]  # fmt: skip


CHARS = "abc-_:*?0"
pattern = st.one_of(
    st.text(CHARS, min_size=1, max_size=6),
    st.builds(lambda a, r, b: f"{a}[{r}]{b}", st.text("ab-:*", max_size=3),
              st.sampled_from(["0-2", "a-c", "!b", "-x", "ab"]), st.text("ab*", max_size=3)),
)  # fmt: skip
module = st.text("abc-_", min_size=1, max_size=4)
separator = st.sampled_from([" ", " ", " ", "  ", "\t", " \t "])


@st.composite
def alias_text(draw: st.DrawFn) -> str:
    lines = ["# Aliases extracted from modules themselves."] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 9))
        words = ["alias", draw(pattern), draw(module)]
        if kind == 7:
            words.append("extra")  # four words: not an alias line
        elif kind == 8:
            words = words[:2]  # two words: not an alias line either
        elif kind == 9:
            words[0] = "#alias"
        sep = draw(separator)
        lead = draw(st.sampled_from(["", "", " "]))
        lines.append(lead + sep.join(words))
    end = draw(st.sampled_from(["\n", "", "\r\n", " \n"]))
    return end.join(lines) + (end if lines and draw(st.booleans()) else "")


@settings(max_examples=300, deadline=None)
@given(alias_text(), st.lists(st.text(CHARS + "[]", max_size=6), min_size=1, max_size=4))
def test_lookup_equals_a_scan_of_every_line(text: str, names: list[str]) -> None:
    table = AliasTable(text)
    for name in names:
        assert table.lookup(name) == oracle_lookup(text, name), name


@settings(max_examples=200, deadline=None)
@given(alias_text(), st.text("abc-_:*?", max_size=3))
def test_with_prefix_equals_a_scan_of_every_line(text: str, prefix: str) -> None:
    assert AliasTable(text).with_prefix(prefix) == oracle_prefix(text, prefix)


def test_debian_arm64_aliases(arm64_tree: tuple[Path, str]) -> None:
    """Names of every kind the closure and DT discovery ask for, on the real table."""
    root, kver = arm64_tree
    text = (root / "lib/modules" / kver / "modules.alias").read_text()
    table = AliasTable(text)
    names = [
        "crc32c", "crypto-crc32c", "crc32", "fs-ext4", "fs-erofs", "char-major-10-237",
        "devname:fuse", "of:NusbT(null)Cqcom,dwc3", "of:NphyT(null)Cqcom,sdm845-qusb2-phy",
        "usb:v05C6p9008d0100dc00dsc00dp00ic08isc06ip50in00", "platform:dwc3", "", "zzz",
        "pci:v00008086d00001234sv00000000sd00000000bc02sc00i00", "net-pf-10", "i2c:pm8941",
    ]  # fmt: skip
    for name in names:
        assert table.lookup(name) == oracle_lookup(text, name), name
    assert table.lookup("crc32c") == ["crc32c_generic"]
    of = table.with_prefix("of:")
    assert of == oracle_prefix(text, "of:") and len(of) > 1000


def oracle_candidates(
    patterns: list[tuple[str, str]], compatible: str
) -> list[tuple[str, str, bool]]:
    """Every ``of:`` pattern in file order: sure when it spells out ``compatible``
    (``of:N*T*C<c>`` or ``of:N*T*C<c>C*``, no wildcard in ``<c>``), else a candidate
    only when it is not of that shape at all."""
    out = []
    for pattern, module in patterns:
        compat = pattern[len("of:N*T*C") :] if pattern.startswith("of:N*T*C") else "*"
        compat = compat[:-2] if compat.endswith("C*") else compat
        simple = bool(compat) and not any(c in compat for c in "*?[")
        if not simple:
            out.append((pattern, module, False))
        elif compat == compatible:
            out.append((pattern, module, True))
    return out


of_pattern = st.one_of(
    st.builds(lambda c, tail: f"of:N*T*C{c}{tail}", st.text("ab,C*?[", max_size=4),
              st.sampled_from(["", "C*", "C*C*", "C"])),
    st.text("of:NTC*ab", max_size=10),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(of_pattern, st.sampled_from(["m1", "m2"])), max_size=12),
       st.text("ab,C*", max_size=3))  # fmt: skip
def test_of_candidates_equal_a_scan_of_every_pattern(
    patterns: list[tuple[str, str]], compatible: str
) -> None:
    assert OfPatterns(patterns).candidates(compatible) == oracle_candidates(patterns, compatible)
