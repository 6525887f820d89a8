"""The depmod index of one kernel, parsed lazily and looked up the way kmod does.

``modules.dep`` (about 3,700 lines on Debian's arm64 kernel) and ``modules.alias``
(about 25,000) are text; parsing every line in Python costs far more than a closure of
twenty modules needs. So :class:`ModuleIndex` keeps the texts and builds each table on
first use with C-level string operations (the alias table only for the lines a lookup
can match: see :class:`AliasTable`), and :meth:`ModuleIndex.parse` hands back the same
index for the same texts within a process, so a tree is indexed once however many
closures are taken from it.

Name lookup follows ``kmod_module_new_from_lookup`` (kmod 30): the name is normalised
(``-`` → ``_`` outside ``[...]``), then tried as a module in ``modules.dep``, then as an
alias in ``modules.alias`` (shell globs, every match, in file order), then as a name in
``modules.builtin``, then as an alias in ``modules.builtin.modinfo``. That order is why
the softdep ``crc32`` is ``crc32_generic`` (an alias) and not the built-in ``lib/crc32``.
"""

from __future__ import annotations

import bisect
import fnmatch
import functools
import re
from collections import OrderedDict
from collections.abc import Iterable

import msgspec

SUFFIXES = (".ko.zst", ".ko.xz", ".ko.gz", ".ko")
_SUFFIX_SET = frozenset(SUFFIXES)
_WILDCARDS = (("*", "+"), ("?", "@"), ("[", "\\"))  # each char and the one after it
_CACHE_TREES = 4


def module_name(path: str) -> str:
    """``kernel/fs/ext4/ext4.ko.zst`` → ``ext4`` (first matching suffix removed)."""
    base = path.rsplit("/", 1)[-1]
    for suffix in SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def normalize(name: str) -> str:
    """The comparison key: ``dwc3-qcom`` and ``dwc3_qcom`` are the same module."""
    return name.replace("-", "_")


def normalize_alias(alias: str) -> str:
    """kmod's ``alias_normalize``: ``-`` becomes ``_`` except inside ``[...]`` ranges."""
    if "[" not in alias:
        return alias.replace("-", "_")
    out = []
    in_range = False
    for char in alias:
        if char == "[":
            in_range = True
        elif char == "]":
            in_range = False
        out.append("_" if char == "-" and not in_range else char)
    return "".join(out)


class ModuleEntry(msgspec.Struct, frozen=True):
    name: str  # as derived from the path
    relpath: str  # relative to lib/modules/<kver>/
    deps: tuple[str, ...]  # relpaths, in modules.dep order


def _lines(text: str) -> Iterable[str]:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _dep_lines(text: str) -> dict[str, tuple[str, str]]:
    """name → (relpath, unsplit dependency list): the cheap first pass of the dep table.

    :func:`module_name` inlined: this loop runs once per module of the kernel (3,700 on
    Debian arm64) on every cold build, and the call alone would double its cost.
    """
    out: dict[str, tuple[str, str]] = {}
    for line in text.split("\n"):
        path, sep, rest = line.partition(":")
        if not sep:
            continue
        if path[:1] in ("#", " ", "\t", ""):  # rare: comments, indented or empty names
            path = path.strip()
            if not path or path.startswith("#"):
                continue
        base = path[path.rfind("/") + 1 :]
        cut = base.rfind(".ko")
        name = base[:cut] if cut >= 0 and base[cut:] in _SUFFIX_SET else base
        key = name.replace("-", "_")
        if key not in out:
            out[key] = (path, rest)
    return out


def _entry(path: str, rest: str) -> ModuleEntry:
    return ModuleEntry(module_name(path), path, tuple(rest.split()))


def parse_softdeps(text: str) -> dict[str, tuple[str, ...]]:
    """``softdep <mod> pre: a b post: c`` → ``{mod: (a, b)}``; ``post:`` is not loaded
    (stage0.md §4.3, project decision), nor are words before the first ``pre:``.

    When several lines name the same module (``btrfs`` has four), only the first counts:
    that is what kmod does, and the closure must equal ``modprobe --show-depends``.
    """
    out: dict[str, tuple[str, ...]] = {}
    for line in _lines(text):
        words = line.split()
        if len(words) < 2 or words[0] != "softdep":
            continue
        mode = None
        pre: list[str] = []
        for word in words[2:]:
            if word in ("pre:", "post:"):
                mode = word
            elif mode == "pre:":
                pre.append(word)
        out.setdefault(normalize(words[1]), tuple(pre))
    return out


class AliasTable:
    """``modules.alias``, normalised, indexed lazily by the first character of a pattern.

    A stage0 build asks it one or two things (the ``of:`` aliases for DT discovery, and
    a softdep such as ``crc32c``), so nothing is built for the whole table: splitting
    and sorting Debian's 25,653 arm64 aliases was three quarters of a stage0 build's
    own work. The text is kept whole, normalised by one C-level replace; a lookup reads
    only the lines that can match.

    A name can only match a pattern whose literal prefix (the part before the first
    ``*``, ``?`` or ``[``) is a prefix of the name: one that starts with the name's
    first character or with a wildcard. Those patterns are found by ``find`` in the
    text and sorted, once per first character; among them, the ones that start with a
    given prefix and a given wildcard are one contiguous range, so a lookup costs a few
    bisections per character of the name instead of ``fnmatch`` calls on every
    candidate. The modules of the patterns that match are then found in the text
    itself, which also gives them in file order.

    Patterns are normalised as kmod does (``-`` → ``_`` outside ``[...]``). A whole-text
    replace also rewrites ranges such as ``[0-2]``; the few patterns where that matters
    are kept aside (``_fixed``) and matched in their proper form.
    """

    def __init__(self, text: str) -> None:
        self._text = _normalised_aliases(text)
        # proper normalised form -> (its literal prefix, the form in the text)
        self._fixed: dict[str, tuple[str, str]] = {}
        if "[" in text:
            for raw in _bracket_patterns(text):
                proper = normalize_alias(raw)
                replaced = raw.replace("-", "_")
                if proper != replaced:
                    self._fixed[proper] = (_literal_prefix(proper), replaced)
        self._replaced = frozenset(replaced for _, replaced in self._fixed.values())
        self._keys_by_first: dict[str, list[str]] = {}
        self._wild: list[str] | None = None  # patterns that start with a wildcard

    def _lines_from(self, head: str) -> list[tuple[str, str]]:
        """``(pattern, module)`` of the lines whose pattern starts with ``head``, in file
        order (as the text spells them: normalised by the whole replace). One regex scan
        of the text, in C: for thousands of lines (``of:``) cheaper than ``find``."""
        scan = re.compile(rf"\nalias ({re.escape(head)}[^ \n]*) ([^ \n]+)(?=\n)")
        return scan.findall(self._text)

    def _patterns_from(self, head: str) -> list[str]:
        """The patterns of the lines whose pattern starts with ``head``, by ``find``: a
        scan of the text costs a fifth of a regex's, and names start with few lines."""
        text = self._text
        needle = f"\nalias {head}"
        out = []
        pos = text.find(needle)
        while pos >= 0:
            end = text.find("\n", pos + 1)
            words = text[pos + 1 : end].split(" ")
            if len(words) == 3:
                out.append(words[1])
            pos = text.find(needle, end)
        return out

    def _keys(self, first: str) -> list[str]:
        """The sorted patterns that a name starting with ``first`` may match: those that
        start with ``first`` or with a wildcard."""
        keys = self._keys_by_first.get(first)
        if keys is None:
            if self._wild is None:  # rare, and the same for every name
                wild = (self._patterns_from(wildcard) for wildcard, _ in _WILDCARDS)
                self._wild = [pattern for found in wild for pattern in found]
            own = self._patterns_from(first) if first and first not in "*?[" else []
            keys = self._keys_by_first[first] = sorted({*own, *self._wild})
        return keys

    def _modules_of(self, in_text: str) -> list[tuple[int, str]]:
        """(position, module) of every line with pattern ``in_text``."""
        text = self._text
        needle = f"\nalias {in_text} "
        out = []
        pos = text.find(needle)
        while pos >= 0:
            start = pos + len(needle)
            end = text.find("\n", start)
            module = text[start:end]
            if " " not in module:
                out.append((pos, module))
            pos = text.find(needle, end)
        return out

    def lookup(self, name: str) -> list[str]:
        """Modules whose pattern matches ``name`` (fnmatch), in file order, each once."""
        query = normalize_alias(name)
        keys = self._keys(query[:1])
        hits: set[str] = set()
        i = bisect.bisect_left(keys, query)
        if i < len(keys) and keys[i] == query:
            hits.add(query)
        for cut in range(len(query) + 1):
            head = query[:cut]
            start = bisect.bisect_left(keys, head)
            if start == len(keys) or not keys[start].startswith(head):
                break  # no pattern starts with this prefix, nor with any longer one
            for wildcard, after in _WILDCARDS:
                lo = bisect.bisect_left(keys, head + wildcard, start)
                hi = bisect.bisect_left(keys, head + after, lo)
                hits.update(k for k in keys[lo:hi] if glob_match(query, k))
        hits -= self._replaced
        hits.update(replaced for proper, (head, replaced) in self._fixed.items()
                    if query.startswith(head) and fnmatch.fnmatchcase(query, proper))  # fmt: skip
        found = sorted(hit for pattern in hits for hit in self._modules_of(pattern))
        return list(dict.fromkeys(module for _, module in found))

    @functools.lru_cache(maxsize=4)  # noqa: B019 - one table per tree, few prefixes
    def with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """Normalised ``(pattern, module)`` of the patterns starting with ``prefix``, in
        file order."""
        head = normalize_alias(prefix)
        lines = self._lines_from(head)
        proper = {replaced: proper for proper, (_, replaced) in self._fixed.items()
                  if replaced.startswith(head)}  # fmt: skip
        if not proper:  # nearly always (Debian arm64's of: has none): no pass in Python
            return lines
        return [(proper.get(p, p), m) for p, m in lines]


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: every match starts with it."""
    cut = min((i for i in (pattern.find(c) for c, _ in _WILDCARDS) if i >= 0), default=-1)
    return pattern if cut < 0 else pattern[:cut]


def glob_match(name: str, pattern: str) -> bool:
    """``fnmatch.fnmatchcase``, without compiling a regex for patterns whose only
    wildcard is ``*`` (nearly all of ``modules.alias``): a lookup meets dozens of
    patterns once each, and compiling each cost more than the whole closure."""
    if "?" in pattern or "[" in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    parts = pattern.split("*")
    if len(parts) == 1:
        return name == pattern
    first, last = parts[0], parts[-1]
    if not name.startswith(first) or len(name) < len(first) + len(last):
        return False
    if not name.endswith(last):
        return False
    pos, end = len(first), len(name) - len(last)
    for part in parts[1:-1]:
        found = name.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


_ODD_SPACE = "\t\r\v\f\x1c\x1d\x1e\x1f"  # ASCII whitespace to str.split, besides " \n"


def _normalised_aliases(text: str) -> str:
    """``"\\n"`` + the lines of ``text``, normalised, ending in ``"\\n"``, the words of
    every line separated by single spaces: ``text`` itself when that already holds (what
    depmod writes; checked by a few scans in C, no split), else its alias lines rebuilt.

    Lookups find lines by ``"\\nalias <pattern>"`` and split them on single spaces, so
    in either form they see exactly the ``alias <pattern> <module>`` lines that
    :func:`_lines` and ``split()`` would give; comments and other lines never match."""
    normal = "\n" + text.replace("-", "_")
    if not normal.endswith("\n"):
        normal += "\n"
    # No run of spaces, no space at either end of a line, no empty line: one search
    # (each two-character search of the whole text costs about a millisecond).
    if (
        text.isascii()
        and not any(odd in normal for odd in _ODD_SPACE)
        and "  " not in normal.replace("\n", " ")
    ):
        return normal
    rebuilt = "".join(f"{' '.join(w)}\n" for line in _lines(text)
                      if len(w := line.split()) == 3 and w[0] == "alias")  # fmt: skip
    return "\n" + rebuilt.replace("-", "_")


def _bracket_patterns(text: str) -> list[str]:
    """The patterns that contain ``[`` (a few dozen lines: found by ``find``, not a scan)."""
    out = []
    pos = text.find("[")
    while pos >= 0:
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        words = text[start:end].split()
        if len(words) == 3:
            out.append(words[1])
        pos = text.find("[", end)
    return out


def _builtin_aliases(modinfo: str) -> str:
    """``modules.builtin.modinfo`` (``mod.alias=value`` NUL-separated) as alias lines."""
    out = []
    for record in modinfo.split("\0"):
        module, dot, rest = record.partition(".")
        if dot and rest.startswith("alias="):
            out.append(f"alias {rest[6:]} {module}")
    return "\n".join(out)


class ModuleIndex:
    """The depmod index of one kernel version. Tables are built on first use."""

    def __init__(
        self,
        kver: str,
        *,
        modules_dep: str,
        modules_builtin: str = "",
        modules_softdep: str = "",
        modules_alias: str = "",
        modules_builtin_modinfo: str = "",
    ) -> None:
        self.kver = kver
        self._texts = (modules_dep, modules_builtin, modules_softdep, modules_alias,
                       modules_builtin_modinfo)  # fmt: skip
        self._entries: dict[str, ModuleEntry | None] = {}

    _cache: OrderedDict[tuple[str, ...], ModuleIndex] = OrderedDict()

    @classmethod
    def parse(
        cls,
        kver: str,
        *,
        modules_dep: str,
        modules_builtin: str = "",
        modules_softdep: str = "",
        modules_alias: str = "",
        modules_builtin_modinfo: str = "",
    ) -> ModuleIndex:
        """The index of these texts; the same object for the same texts in a process."""
        key = (kver, modules_dep, modules_builtin, modules_softdep, modules_alias,
               modules_builtin_modinfo)  # fmt: skip
        cached = cls._cache.get(key)
        if cached is not None:
            cls._cache.move_to_end(key)
            return cached
        index = cls(
            kver,
            modules_dep=modules_dep,
            modules_builtin=modules_builtin,
            modules_softdep=modules_softdep,
            modules_alias=modules_alias,
            modules_builtin_modinfo=modules_builtin_modinfo,
        )
        cls._cache[key] = index
        if len(cls._cache) > _CACHE_TREES:
            cls._cache.popitem(last=False)
        return index

    @classmethod
    def clear_cache(cls) -> None:
        """Forget every index kept for reuse (benchmarks of a cold build use this)."""
        cls._cache.clear()

    # -- tables, built on first use ----------------------------------------------------

    @functools.cached_property
    def _dep(self) -> dict[str, tuple[str, str]]:
        return _dep_lines(self._texts[0])

    @functools.cached_property
    def _builtin(self) -> dict[str, str]:
        """normalised name → name as the ``modules.builtin`` path spells it."""
        out: dict[str, str] = {}
        for path in _lines(self._texts[1]):
            name = module_name(path)
            out.setdefault(normalize(name), name)
        return out

    @functools.cached_property
    def softdeps(self) -> dict[str, tuple[str, ...]]:
        """normalised name → ``pre:`` names (raw)."""
        return parse_softdeps(self._texts[2])

    @functools.cached_property
    def alias_table(self) -> AliasTable:
        return AliasTable(self._texts[3])

    @functools.cached_property
    def _builtin_alias_table(self) -> AliasTable:
        return AliasTable(_builtin_aliases(self._texts[4]))

    @property
    def builtin(self) -> frozenset[str]:
        return frozenset(self._builtin)

    # -- lookups -----------------------------------------------------------------------

    def lookup(self, name: str) -> ModuleEntry | None:
        """The ``modules.dep`` entry of a module name (not an alias)."""
        key = normalize(name)
        try:
            return self._entries[key]
        except KeyError:
            line = self._dep.get(key)
            entry = self._entries[key] = _entry(*line) if line else None
            return entry

    def is_builtin(self, name: str) -> bool:
        return normalize(name) in self._builtin

    def builtin_name(self, name: str) -> str:
        """A built-in module's name as ``modules.builtin`` spells it."""
        return self._builtin.get(normalize(name), name)

    def resolve_alias(self, alias: str) -> list[str]:
        """Module names whose ``modules.alias`` pattern matches ``alias`` (file order)."""
        return self.alias_table.lookup(alias)

    def alias_patterns(self, prefix: str) -> list[tuple[str, str]]:
        """``(pattern, module)`` of the aliases starting with ``prefix``, in file order."""
        return self.alias_table.with_prefix(prefix)

    def resolve(self, name: str) -> list[str]:
        """What ``modprobe name`` would load: module names in kmod's lookup order.

        A module of that name; else every module with a matching alias; else the
        built-in module of that name; else the built-in modules with a matching alias.
        ``[]`` when nothing matches.
        """
        key = normalize_alias(name)
        if ":" not in key and self.lookup(key) is not None:
            return [key]
        found = self.resolve_alias(key)
        if found:
            return [normalize(m) for m in found]
        if self.is_builtin(key):
            return [normalize(key)]
        if self._texts[4]:
            return [normalize(m) for m in self._builtin_alias_table.lookup(key)]
        return []

    def nearest(self, name: str, count: int = 3) -> list[str]:
        names = sorted({module_name(path) for path, _ in self._dep.values()})
        import difflib

        return difflib.get_close_matches(name, names, n=count, cutoff=0.6)
