"""Pipelines opened on real images (sfdisk, mkfs, img2simg, xz, tar), and ``content``
verified on the bytes actually read, layer by layer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fastboop.blocks import BytesSource, FileSource, ForwardingSource
from fastboop.bootprofile.content import ContentMismatchError, VerifyingSource, sha512_of
from fastboop.bootprofile.pipeline import PipelineOpener
from fastboop.bootprofile.schema import (
    AndroidSparse,
    Content,
    File,
    Filesystem,
    Gpt,
    Mbr,
    Tar,
    Xz,
)
from fastboop.errors import UsageError
from fastboop.rootfs.errors import NotFoundError
from tests.artifact import imaging
from tests.artifact.imaging import Part

GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("disks")
    boot, root = work / "boot", work / "root"
    (boot / "dtbs").mkdir(parents=True)
    (boot / "vmlinuz").write_bytes(b"kernel" * 1000)
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=test\n")
    fat = imaging.mkfs_vfat(boot, work / "boot.img", label="pmOS_boot", volume_id="0B00F00D")
    ext4 = imaging.mkfs_ext(root, work / "root.img", kind="ext4", label="pmOS_root",
                            uuid="6e2be3f5-7c2d-4b8f-8b66-1c7e2e3d4f02")  # fmt: skip
    mbr = imaging.make_disk(work / "mbr.img", "dos", [Part(fat, "c"), Part(ext4, "83")],
                            disk_id="0x1b0f0001")  # fmt: skip
    ids = "1B0F0001-0000-4000-8000-0000000000"
    gpt = imaging.make_disk(work / "gpt.img", "gpt",
                            [Part(fat, GPT_LINUX, "pmOS_boot", f"{ids}01"),
                             Part(ext4, GPT_LINUX, "pmOS_root", f"{ids}02")],
                            disk_id=f"{ids}FF")  # fmt: skip
    sparse = imaging.android_sparse(mbr, work / "mbr.simg")
    packed = imaging.xz(sparse, work / "mbr.simg.xz")
    imaging.run("tar", "-cf", work / "bundle.tar", "-C", work, "mbr.simg.xz")
    return {"mbr": mbr, "gpt": gpt, "sparse": sparse, "xz": packed,
            "tar": work / "bundle.tar", "work": work}  # fmt: skip


def content_of(path: Path) -> Content:
    return Content(sha512(path.read_bytes()), path.stat().st_size)


def test_partitions_by_index_uuid_and_label(disks: dict[str, Path], tmp_path: Path) -> None:
    opener = PipelineOpener(cache_dir=tmp_path)
    mbr, gpt = File(str(disks["mbr"])), File(str(disks["gpt"]))
    for fs in (Filesystem("ext4", Mbr(mbr, index=1)), Filesystem("fat", Mbr(mbr, index=0)),
               Filesystem("ext4", Mbr(mbr, partuuid="1B0F0001-02")),
               Filesystem("ext4", Gpt(gpt, partlabel="pmOS_root")),
               Filesystem("ext4", Gpt(gpt, partuuid="1b0f0001-0000-4000-8000-000000000002")),
               Filesystem("fat", Gpt(gpt, index=0))):  # fmt: skip
        _source, tree = opener.filesystem(fs, "rootfs")
        assert tree.exists("/etc/os-release" if fs.kind == "ext4" else "/vmlinuz")
    with pytest.raises(NotFoundError, match="no partition with index 5"):
        opener.filesystem(Filesystem("ext4", Mbr(mbr, index=5)), "rootfs")
    with pytest.raises(UsageError, match="the profile says ext4, the bytes are vfat"):
        opener.filesystem(Filesystem("ext4", Mbr(mbr, index=0)), "rootfs")
    with pytest.raises(Exception, match="MBR partition table, not GPT"):
        opener.filesystem(Filesystem("ext4", Gpt(mbr, index=0)), "rootfs")


def test_every_layer_verified_in_one_pass(disks: dict[str, Path], tmp_path: Path) -> None:
    """Content on the file, the xz stream's output and the sparse image's output: all
    three verified, the compressed file read once (while it is decompressed)."""
    sparse_bytes, mbr_bytes = disks["sparse"].read_bytes(), disks["mbr"].read_bytes()
    steps = Mbr(AndroidSparse(Xz(File(str(disks["xz"]), content_of(disks["xz"])),
                                 Content(sha512(sparse_bytes), len(sparse_bytes))),
                              Content(sha512(mbr_bytes), len(mbr_bytes))), index=1)  # fmt: skip
    opener = PipelineOpener(cache_dir=tmp_path)
    _source, tree = opener.filesystem(Filesystem("ext4", steps), "rootfs")
    assert tree.read_file("/etc/os-release") == b"ID=test\n"
    assert opener.verify() == ["rootfs.ext4.mbr.android_sparseimg.xz.file",
                               "rootfs.ext4.mbr.android_sparseimg.xz",
                               "rootfs.ext4.mbr.android_sparseimg"]  # fmt: skip
    assert all(layer.verified for layer in opener.verifying)
    # A second boot from the same file: its digest is remembered (path, size, inode, mtime).
    again = PipelineOpener(cache_dir=tmp_path)
    again.open(File(str(disks["xz"]), content_of(disks["xz"])), "rootfs.ext4")
    assert again.verifying[0].verified


@pytest.mark.parametrize("layer", ["file", "xz", "sparse", "file-size"])
def test_mismatch_names_the_layer(disks: dict[str, Path], tmp_path: Path, layer: str) -> None:
    good = {"file": content_of(disks["xz"]), "xz": content_of(disks["sparse"]),
            "sparse": content_of(disks["mbr"])}  # fmt: skip
    bad = Content("sha512:" + "0" * 128, good[layer.split("-")[0]].size_bytes)
    if layer == "file-size":
        bad = Content(good["file"].digest, good["file"].size_bytes + 1)
    pick = {k: (bad if layer.startswith(k) else v) for k, v in good.items()}
    steps = Mbr(AndroidSparse(Xz(File(str(disks["xz"]), pick["file"]), pick["xz"]),
                              pick["sparse"]), index=1)  # fmt: skip
    opener = PipelineOpener(cache_dir=tmp_path / layer)
    name = {"file": "rootfs.ext4.mbr.android_sparseimg.xz.file",
            "file-size": "rootfs.ext4.mbr.android_sparseimg.xz.file",
            "xz": "rootfs.ext4.mbr.android_sparseimg.xz",
            "sparse": "rootfs.ext4.mbr.android_sparseimg"}[layer]  # fmt: skip
    with pytest.raises(ContentMismatchError) as info:
        opener.filesystem(Filesystem("ext4", steps), "rootfs")
        opener.verify()
    assert info.value.layer == name
    assert str(info.value).startswith(f"{name}: ")
    assert ("bytes, but the profile's content says" if layer == "file-size" else
            "digest mismatch") in str(info.value)  # fmt: skip


def test_tar_member_and_channel_tail(disks: dict[str, Path], tmp_path: Path) -> None:
    packed = content_of(disks["xz"])
    steps = Mbr(AndroidSparse(Xz(Tar("mbr.simg.xz", File(str(disks["tar"]))))), index=1)
    _source, tree = PipelineOpener(cache_dir=tmp_path).filesystem(Filesystem("ext4", steps),
                                                                  "rootfs")  # fmt: skip
    assert tree.exists("/etc/os-release")
    # The channel's tail stands in for a file that is not there, by its content size.
    missing = Mbr(AndroidSparse(Xz(File("/nonexistent/pmos.img.xz", packed))), index=1)
    tail = FileSource(disks["xz"])
    opener = PipelineOpener(cache_dir=tmp_path / "tail", tail=tail)
    opener.filesystem(Filesystem("ext4", missing), "rootfs")
    assert opener.tail_used
    assert opener.verify() == ["rootfs.ext4.mbr.android_sparseimg.xz.file"]
    with pytest.raises(NotFoundError, match=r"no file '/nonexistent/pmos\.img\.xz'"):
        PipelineOpener(cache_dir=tmp_path).filesystem(Filesystem("ext4", missing), "rootfs")


class Counting(ForwardingSource):
    def __init__(self, inner: BytesSource) -> None:
        super().__init__(inner)
        self.read_bytes = 0

    def read(self, offset: int, length: int) -> bytes:
        self.read_bytes += length
        return self.inner.read(offset, length)


def test_hashing_follows_reads_and_fills_small_gaps() -> None:
    data = bytes(range(256)) * 40000  # 10 MB
    content = Content(sha512(data), len(data))
    counting = Counting(BytesSource(data))
    source = VerifyingSource(counting, content, "layer")  # type: ignore[arg-type]
    source.read(0, 1000)
    source.read(3000, 1000)  # a small gap: filled, the hash stays in order
    assert source.hashed == 4000
    source.read(9_000_000, 10)  # far ahead: left for finish()
    assert source.hashed == 4000
    source.finish()
    assert source.verified
    assert counting.read_bytes == len(data) + 10  # every byte once, plus the far read
    assert sha512_of(BytesSource(data)) == content.digest
