"""fastboop.values.Constant and DataLayout: named constants that behave as the enum
members they replace (FileType, SourceErrorKind, EROFS DataLayout), without ``enum``."""

from __future__ import annotations

import copy
import pickle
import stat

import pytest

from fastboop.blocks.source import BlockSourceError, SourceErrorKind
from fastboop.rootfs.erofs.ondisk import DataLayout
from fastboop.rootfs.fs import FileType

FILE_TYPES = [FileType.REGULAR, FileType.DIRECTORY, FileType.SYMLINK, FileType.CHARDEV,
              FileType.BLOCKDEV, FileType.FIFO, FileType.SOCKET]  # fmt: skip
KINDS = [SourceErrorKind.INVALID_INPUT, SourceErrorKind.OUT_OF_RANGE,
         SourceErrorKind.UNSUPPORTED, SourceErrorKind.IO, SourceErrorKind.OTHER]  # fmt: skip


@pytest.mark.parametrize("member", FILE_TYPES + KINDS)
def test_a_member_is_itself_after_pickling_and_copying(member: object) -> None:
    assert pickle.loads(pickle.dumps(member)) is member
    assert copy.copy(member) is member and copy.deepcopy(member) is member


def test_names_values_and_reprs_read_as_an_enums() -> None:
    assert [t.value for t in FILE_TYPES] == ["file", "dir", "symlink", "chardev",
                                             "blockdev", "fifo", "socket"]  # fmt: skip
    for member in FILE_TYPES + KINDS:
        assert getattr(type(member), member.name) is member
    assert repr(FileType.DIRECTORY) == "<FileType.DIRECTORY: 'dir'>"
    assert str(SourceErrorKind.IO) == "SourceErrorKind.IO"
    assert len(set(FILE_TYPES)) == len(FILE_TYPES) and FileType.FIFO != FileType.SOCKET


def test_file_types_from_modes() -> None:
    assert FileType.from_mode(stat.S_IFDIR | 0o755) is FileType.DIRECTORY
    assert FileType.from_mode(stat.S_IFLNK | 0o777) is FileType.SYMLINK


def test_an_error_kind_survives_a_pickled_error() -> None:
    error = BlockSourceError("bad read", kind=SourceErrorKind.OUT_OF_RANGE)
    assert pickle.loads(pickle.dumps(error)).kind is SourceErrorKind.OUT_OF_RANGE


def test_data_layouts_are_named_ints() -> None:
    layouts = [DataLayout.of(value) for value in range(5)]
    assert layouts == [0, 1, 2, 3, 4]
    assert [layout.name for layout in layouts] == ["FLAT_PLAIN", "COMPRESSED_FULL",
                                                   "FLAT_INLINE", "COMPRESSED_COMPACT",
                                                   "CHUNK_BASED"]  # fmt: skip
    assert DataLayout.of(3) is DataLayout.COMPRESSED_COMPACT and DataLayout.of(3).compressed
    assert not DataLayout.FLAT_INLINE.compressed and DataLayout.COMPRESSED_FULL.compressed
    assert DataLayout.FLAT_PLAIN << 1 == 0 and DataLayout.CHUNK_BASED << 1 == 8
    assert pickle.loads(pickle.dumps(DataLayout.CHUNK_BASED)) is DataLayout.CHUNK_BASED
    assert repr(DataLayout.FLAT_INLINE) == "<DataLayout.FLAT_INLINE: 2>"
    for value in (5, 6, 7):
        with pytest.raises(ValueError, match=f"{value} is not a valid DataLayout"):
            DataLayout.of(value)
