"""Small immutable values for models that are never serialised.

``msgspec.Struct`` is the project's model for what is journaled, sent over a wire or
printed as JSON. Importing msgspec costs ~14 ms of wall time (it brings
``typing_extensions``, ``inspect``, ``uuid``, ``decimal``, ``datetime``...), a quarter of
a ``fastboop rootfs cat`` that must keep pace with ``fsck.erofs`` (issue 15). The models
a reader makes while opening an image (superblock, inode, extent, stat, volume, roles)
are plain values that nothing encodes: :class:`Value` gives them what they used from
``Struct``, by their ``__slots__``: equality, hashing, a readable ``repr`` and
:meth:`~Value.replace`.

:class:`Constant` stands in for ``enum.Enum`` on that path the same way (``FileType``,
``SourceErrorKind``; EROFS's ``DataLayout`` is a named ``int``).

A subclass lists its fields in ``__slots__`` (sorted, as ruff wants), annotates them
``Final`` (mypy then refuses assignments after ``__init__``) and writes its own
``__init__``: typed, and as fast as construction can be in Python, which matters for
the ~4,000 extents of a kernel.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import ClassVar, Final, Self


class Value:
    """Base of the plain value classes (module docstring)."""

    __slots__ = ()
    #: Every field, base classes' first: the ``__slots__`` of the class and its bases.
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        fields: list[str] = []
        for klass in reversed(cls.__mro__):
            slots = klass.__dict__.get("__slots__", ())
            fields += [slots] if isinstance(slots, str) else slots
        cls._fields = tuple(fields)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes`` (as ``msgspec.structs.replace``; ``__init__`` is not
        run again)."""
        unknown = changes.keys() - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {', '.join(sorted(unknown))}")
        copy = object.__new__(type(self))
        for name in self._fields:
            setattr(copy, name, changes[name] if name in changes else getattr(self, name))
        return copy


class Constant:
    """A member of a small closed set of named values: what ``enum.Enum`` gave
    :class:`~fastboop.rootfs.fs.FileType` and
    :class:`~fastboop.blocks.source.SourceErrorKind`, without importing ``enum``.

    ``enum`` brings ``functools`` and ``collections``: ~4 ms of wall time for every
    command that opens an image, a tenth of what ``fsck.erofs`` takes for the whole of
    ``rootfs cat`` (issue 15). A subclass declares its members as ``ClassVar``
    annotations and makes each once, right below the class, with its own constructor:
    ``is`` and hashing then work as with an enum's members, ``name`` and ``value`` read
    the same, and a member pickles and copies as itself.
    """

    __slots__ = ("name", "value")
    name: Final[str]
    value: Final[object]

    def __init__(self, name: str, value: object) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __reduce__(self) -> tuple[object, tuple[object, str]]:
        return getattr, (type(self), self.name)
