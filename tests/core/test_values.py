"""fastboop.values.Value: the plain stand-in for msgspec.Struct on the reader path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastboop.artifact.open import ArtifactOptions
from fastboop.artifact.roles import Role, Roles
from fastboop.rootfs.erofs.zextents import Extent
from fastboop.rootfs.fs import FileType, Stat
from fastboop.values import Value


class Point(Value):
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int = 0) -> None:
        self.x = x
        self.y = y


class Point3(Point):
    __slots__ = ("z",)

    def __init__(self, x: int, y: int = 0, z: int = 0) -> None:
        super().__init__(x, y)
        self.z = z


def test_fields_are_the_slots_of_the_class_and_its_bases() -> None:
    assert Point._fields == ("x", "y")
    assert Point3._fields == ("x", "y", "z")
    assert not hasattr(Point(1), "__dict__")  # slotted: no per-instance dict


@given(st.integers(), st.integers(), st.integers(), st.integers())
def test_equal_and_hash_by_fields(a: int, b: int, c: int, d: int) -> None:
    assert (Point(a, b) == Point(c, d)) == ((a, b) == (c, d))
    assert hash(Point(a, b)) == hash(Point(a, b))
    assert len({Point(a, b), Point(a, b)}) == 1


def test_values_of_other_types_are_never_equal() -> None:
    assert Point(1, 2) != Point3(1, 2, 0)
    assert Point(1, 2) != (1, 2)
    assert Point(1, 2) != "Point(x=1, y=2)"


def test_repr_names_every_field() -> None:
    assert repr(Point3(1, 2, 3)) == "Point3(x=1, y=2, z=3)"
    assert repr(Role(0, "the only volume")) == (
        "Role(mountpoint='/', subvol=None, volume=0, why='the only volume')"
    )


def test_replace_copies_with_changes_and_leaves_the_original() -> None:
    extent = Extent(0, 4096, 10, 1, True)
    tail = extent.replace(inline_at=123, inline_size=50)
    assert (tail.inline_at, tail.inline_size, tail.logical, tail.pblk) == (123, 50, 0, 10)
    assert (extent.inline_at, extent.inline_size) == (-1, 0)
    assert type(tail) is Extent
    options = ArtifactOptions(partition="2").replace(device_profile="fajita")
    assert options == ArtifactOptions(partition="2", device_profile="fajita")


def test_replace_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match="no field"):
        Point(1).replace(w=3)


def test_the_converted_models_keep_their_defaults() -> None:
    stat = Stat(FileType.REGULAR, 0o100644, 5)
    assert (stat.uid, stat.gid, stat.nlink, stat.ino, stat.rdev) == (0, 0, 1, 0, 0)
    assert stat.is_file and stat.permissions == 0o644
    roles = Roles(Role(1, "why"))
    assert roles.boot is None and roles.mounted() == [Role(1, "why")]
    with pytest.raises(TypeError):
        ArtifactOptions("positional")  # type: ignore[misc] # keyword-only, as the Struct was
