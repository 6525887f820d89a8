"""fastboop next to the tools it replaces, the same work side by side: every pair of issue 15.

Run: ``.venv/bin/python bench/peers.py [-n 5] [--only NAME ...] [--list]``

The pairs: start-up (``--version``, ``--help``), a fastboot download over TCP and UDP (AOSP
``fastboot stage``), boot images v0/v2/v3 (AOSP ``mkbootimg``) and v4 (against our v3),
extracting a file from EROFS (``fsck.erofs --extract``), the stage0 module closure
(``modprobe --show-depends``), the whole ``fastboop stage0`` and ``fastboop replay`` of a
million events (absolute goals, no peer). How they run and what is printed:
``bench/peerlib.py``. It never asserts a speed; results go to docs/benchmarks.md.

Adding a pair is a function that prepares its input in a scratch directory and yields
the two commands (a context: it may start a server first and stop it after)::

    @pair("erofs-extract", "read the kernel out of an EROFS image", goals={"wall": 1.5})
    def erofs_extract(work: Path) -> Iterator[Sides]:
        image = make_image(work)
        yield Sides(
            ours=Command([*FASTBOOP, "rootfs", "cat", str(image), "/vmlinuz"]),
            peer=Command(["fsck.erofs", f"--extract={work / 'out'}", str(image)]),
        )

``FASTBOOP`` runs this checkout's CLI. A side's ``step`` regex (one group: seconds) reads
its self-reported step time from what it printed; ``check`` compares the two outputs
afterwards (are the images identical?) and is printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from peerlib import (  # noqa: E402
    FASTBOOP,
    PAIRS,
    PYTHON,
    Command,
    Report,
    Sides,
    header,
    measure,
    missing_tools,
    pair,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5, help="runs per side (default 5, at least 5)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only these pairs")
    parser.add_argument("--list", action="store_true", help="list the pairs and exit")
    args = parser.parse_args()
    if args.list:
        for chosen in PAIRS.values():
            print(f"{chosen.name:<20} {chosen.what}")
        return
    runs = max(5, args.n)
    unknown = set(args.only or ()) - PAIRS.keys()
    if unknown:
        parser.error(f"unknown pair(s): {', '.join(sorted(unknown))} (see --list)")
    for line in header(runs):
        print(line, flush=True)
    for chosen in PAIRS.values():
        if args.only and chosen.name not in args.only:
            continue
        missing = missing_tools(chosen)
        print(flush=True)
        if missing:
            print(f"## {chosen.name}: skipped, {', '.join(missing)} not installed", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix=f"peers-{chosen.name}-") as scratch:
            for line in measure(chosen, runs, Path(scratch)):
                print(line, flush=True)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


# --- pairs: start-up ---------------------------------------------------------------------

STARTUP_LIMIT = {"wall": 0.060}


@pair("startup-version", "`fastboop --version` (AOSP `fastboot --version` beside it)",
      limits=STARTUP_LIMIT, needs=("fastboot",))  # fmt: skip
def startup_version(work: Path) -> Iterator[Sides]:
    yield Sides(ours=Command([*FASTBOOP, "--version"]), peer=Command(["fastboot", "--version"]))


@pair("startup-help", "`fastboop --help` (AOSP `fastboot --help` beside it)",
      limits=STARTUP_LIMIT, needs=("fastboot",))  # fmt: skip
def startup_help(work: Path) -> Iterator[Sides]:
    yield Sides(ours=Command([*FASTBOOP, "--help"]), peer=Command(["fastboot", "--help"]))


# --- pairs: fastboot download (AOSP fastboot) ------------------------------------------


def _free_port(kind: int) -> int:
    import socket

    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def simulator(work: Path, *options: str) -> Iterator[tuple[int, int, int]]:
    """``fastboop sim`` in its own process on free TCP and UDP ports (its own CPU share,
    like a phone's; ``options`` go on its command line): yields the ports and its pid,
    stops it afterwards."""
    import socket

    tcp, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    log = (work / "sim.log").open("wb")
    server = subprocess.Popen(
        [*FASTBOOP, "sim", "oneplus-fajita", "--tcp", f"127.0.0.1:{tcp}",
         "--udp", f"127.0.0.1:{udp}", *options], stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", tcp), 1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"fastboop sim did not start:\n{(work / 'sim.log').read_text()}")
            time.sleep(0.1)
        yield tcp, udp, server.pid
    finally:
        server.terminate()
        server.wait()
        log.close()


def _image(work: Path, mib: int) -> Path:
    path = work / f"image-{mib}m"
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    return path


_OURS_STEP = r"staged \d+ bytes to \S+ in ([\d.]+) s"
_AOSP_STEP = r"OKAY \[\s*([\d.]+)s\]"


@pair("download-tcp", "a 256 MiB fastboot download to the simulated bootloader over TCP",
      goals={"wall": 1.0, "step": 0.9}, needs=("fastboot",))  # fmt: skip
def download_tcp(work: Path) -> Iterator[Sides]:
    image = _image(work, 256)
    with simulator(work) as (tcp, _, _):
        device = f"tcp:127.0.0.1:{tcp}"
        yield Sides(
            ours=Command([*FASTBOOP, "stage", str(image), "-s", device], step=_OURS_STEP),
            peer=Command(["fastboot", "-s", device, "stage", str(image)], step=_AOSP_STEP),
        )


@pair("download-udp", "a 32 MiB fastboot download to the simulated bootloader over UDP",
      goals={"wall": 1.0, "step": 0.9}, needs=("fastboot",))  # fmt: skip
def download_udp(work: Path) -> Iterator[Sides]:
    image = _image(work, 32)
    with simulator(work) as (_, udp, _):
        device = f"udp:127.0.0.1:{udp}"
        yield Sides(
            ours=Command([*FASTBOOP, "stage", str(image), "-s", device], step=_OURS_STEP),
            peer=Command(["fastboot", "-s", device, "stage", str(image)], step=_AOSP_STEP),
        )


# --- pairs: boot images (AOSP mkbootimg) --------------------------------------------------

CMDLINE = "console=ttyMSM0,115200n8 earlycon"


def _boot_inputs(work: Path) -> tuple[Path, Path, Path]:
    """Debian's arm64 kernel (a raw 33 MB EFI-stub Image), an sdm845 DTB, a 4 MiB ramdisk."""
    from tests.support.debian import debian_kernel

    root, version = debian_kernel("arm64")
    kernel = root / "boot" / f"vmlinuz-{version}"
    dtb = root / "usr/lib" / f"linux-image-{version}" / "qcom" / "sdm845-oneplus-enchilada.dtb"
    ramdisk = work / "ramdisk.cpio"
    ramdisk.write_bytes(b"070701" + os.urandom((4 << 20) - 6))
    return kernel, dtb, ramdisk


def _same_files(
    ours: Path, peer: Path, *, allowed: dict[int, str] | None = None
) -> Callable[[], str]:
    def check() -> str:
        a, b = ours.read_bytes(), peer.read_bytes()
        if a == b:
            return f"outputs byte-identical ({len(a)} bytes)"
        differing = [i for i in range(min(len(a), len(b))) if a[i] != b[i]][:64]
        known = allowed or {}
        if len(a) == len(b) and differing and all(i - i % 4 in known for i in differing):
            reasons = sorted({known[i - i % 4] for i in differing})
            return f"outputs identical but for {', '.join(reasons)}"
        return f"outputs DIFFER ({len(a)} vs {len(b)} bytes, first at {differing[:1]})"

    return check


def _bootimg(version: int, work: Path, *, peer_version: int | None = None) -> Sides:
    kernel, dtb, ramdisk = _boot_inputs(work)
    ours_out, peer_out = work / "ours.img", work / "peer.img"
    ours = [*FASTBOOP, "bootimg", "build", "--kernel", str(kernel), "--initrd", str(ramdisk),
            "--header-version", str(version), "--page-size", "4096", "--cmdline", CMDLINE,
            "-o", str(ours_out)]  # fmt: skip
    peer_kernel = kernel
    if version == 0:  # msm8916 style: the DTB appended to the kernel
        ours += ["--dtb", str(dtb), "--kernel-encoding", "image+dtb"]
        peer_kernel = work / "kernel-dtb"
        peer_kernel.write_bytes(kernel.read_bytes() + dtb.read_bytes())
    elif version == 2:  # the DTB in its own section
        ours += ["--dtb", str(dtb), "--kernel-encoding", "image"]
    else:
        ours += ["--kernel-encoding", "image"]
    if peer_version is not None:  # no peer tool for this version: our own other version
        peer = [*ours[: ours.index("--header-version") + 1], str(peer_version),
                *ours[ours.index("--header-version") + 2 :]]  # fmt: skip
        peer[peer.index("-o") + 1] = str(peer_out)
        return Sides(ours=Command(ours), peer=Command(peer))
    peer = ["mkbootimg", "--kernel", str(peer_kernel), "--ramdisk", str(ramdisk),
            "--header_version", str(version), "--pagesize", "4096", "--base", "0",
            "--cmdline", CMDLINE, "-o", str(peer_out)]  # fmt: skip
    if version == 2:
        peer += ["--dtb", str(dtb)]
    quirks = {20: "Debian mkbootimg's draft v3 header_size"} if version == 3 else None
    return Sides(ours=Command(ours), peer=Command(peer),
                 check=_same_files(ours_out, peer_out, allowed=quirks))  # fmt: skip


@pair("bootimg-v0", "boot image v0, raw kernel with the DTB appended, 4 MiB ramdisk",
      goals={"wall": 1.0, "rss": 1.2}, needs=("mkbootimg",))  # fmt: skip
def bootimg_v0(work: Path) -> Iterator[Sides]:
    yield _bootimg(0, work)


@pair("bootimg-v2", "boot image v2, raw kernel + DTB section, 4 MiB ramdisk",
      goals={"wall": 1.0, "rss": 1.2}, needs=("mkbootimg",))  # fmt: skip
def bootimg_v2(work: Path) -> Iterator[Sides]:
    yield _bootimg(2, work)


@pair("bootimg-v3", "boot image v3, raw kernel, 4 MiB ramdisk",
      goals={"wall": 1.0, "rss": 1.2}, needs=("mkbootimg",))  # fmt: skip
def bootimg_v3(work: Path) -> Iterator[Sides]:
    yield _bootimg(3, work)


@pair("bootimg-v4", "boot image v4 against fastboop's own v3 (Debian's mkbootimg has no v4)",
      goals={"wall": 1.0, "rss": 1.2}, same_work=True)  # fmt: skip
def bootimg_v4(work: Path) -> Iterator[Sides]:
    yield _bootimg(4, work, peer_version=3)


# --- pairs: EROFS, module closure, stage0, replay -----------------------------------------


@pair("erofs-extract", "read Debian's 33 MB arm64 kernel out of an EROFS image (-zlz4hc)",
      goals={"wall": 1.5}, needs=("fsck.erofs", "mkfs.erofs"))  # fmt: skip
def erofs_extract(work: Path) -> Iterator[Sides]:
    from erofs_extract import build_image

    image, path = build_image(work)
    ours_out, peer_dir = work / "kernel.out", work / "extracted"

    def check() -> str:
        same = ours_out.read_bytes() == (peer_dir / path.lstrip("/")).read_bytes()
        return "extracted bytes identical" if same else "extracted bytes DIFFER"

    yield Sides(
        ours=Command([*FASTBOOP, "rootfs", "cat", str(image), path], stdout=ours_out),
        peer=Command(["fsck.erofs", f"--extract={peer_dir}", str(image)],
                     before=lambda: shutil.rmtree(peer_dir, ignore_errors=True)),
        check=check,
    )  # fmt: skip


@pair("module-closure", "the stage0 module closure on Debian's arm64 tree: fastboop "
      "in-process, warm (step) vs a `modprobe --show-depends -a` process",
      limits={"step": 0.010}, needs=("modprobe", "depmod"))  # fmt: skip
def module_closure(work: Path) -> Iterator[Sides]:
    from closure import stage0_list
    from tests.rootfs.kernel_trees import full_depmod_tree
    from tests.stage0.kindex import index_from_tree, modprobe_show_depends, oracle_root

    from fastboop.stage0.modules import resolve_closure

    root = work / "tree"
    kver = full_depmod_tree("arm64", root)
    required = stage0_list(root, kver)
    names = [name for name, _ in required]
    oracle = oracle_root(root, kver)

    def check() -> str:
        closure = resolve_closure(index_from_tree(root, kver), required)
        builtin, paths = modprobe_show_depends(root, kver, *names)
        ours = list(closure.files)
        if ours == paths:
            return (f"closure identical to modprobe's ({len(ours)} modules, same order; "
                    f"built-in: {len(closure.builtin)} ours, {len(builtin)} modprobe)")  # fmt: skip
        if set(ours) == set(paths):
            return f"same {len(ours)} modules as modprobe, in another order"
        return (f"closure DIFFERS from modprobe's: only ours {sorted(set(ours) - set(paths))}, "
                f"only modprobe {sorted(set(paths) - set(ours))}")  # fmt: skip

    yield Sides(
        ours=Command([PYTHON, str(BENCH / "closure.py"), "--sample", str(root), kver],
                     step=r"warm closure .* in ([\d.]+) s", show=("step",)),
        peer=Command(["modprobe", "-C", str(oracle / "no-modprobe.d"), "-d", str(oracle),
                      "-S", kver, "--show-depends", "-a", *names]),
        check=check,
        versus={"step": "wall"},
    )  # fmt: skip


@pair("stage0", "the whole `fastboop stage0` from the 1.34 GiB EROFS of bench/rootfs_large.py "
      "(OnePlus 6T), warm", limits={"wall": 0.15, "rss": 64}, needs=("mkfs.erofs",))  # fmt: skip
def stage0(work: Path) -> Iterator[Sides]:
    from large_rootfs_image import large_image
    from stage0_cli import DT
    from tests.support.debian import debian_kernel

    package_root, kver = debian_kernel("arm64")
    image = large_image(BENCH.parent / ".cache" / "bench", package_root, kver)
    yield Sides(ours=Command([*FASTBOOP, "stage0", str(image), "--dtb-name", DT,
                              "-o", str(work / "initrd.cpio")]))  # fmt: skip


REPLAY_EVENTS = 1_000_000
_JOURNAL = """\
import sys
from pathlib import Path
sys.path[:0] = [sys.argv[1]]
from journal import session_events, write_journal
write_journal(Path(sys.argv[2]), session_events(int(sys.argv[3])))
"""


@pair("replay", f"`fastboop replay` of a {REPLAY_EVENTS:,}-event journal (events/s: wall, CPU)",
      limits={"rss": 64, "rate": 300_000, "cpurate": 300_000})  # fmt: skip
def replay(work: Path) -> Iterator[Sides]:
    journal = work / "session.fbj"
    # written by a process of its own, so that this one stays small
    subprocess.run([PYTHON, "-c", _JOURNAL, str(BENCH), str(journal), str(REPLAY_EVENTS)],
                   check=True)  # fmt: skip
    yield Sides(ours=Command([*FASTBOOP, "replay", str(journal)], count=REPLAY_EVENTS))


# --- the real path: one VM, the served copy against virtio-blk ---------------------------


@pair("vm-serving", "one 64 MiB file read in one x86_64 virtual phone through fastboop's path "
      "(smoo, stage0, NBD) and from a virtio-blk disk (bench/vm_serving.py; its n reads of "
      "each in one boot), and `fastboop boot` -> the rootfs's init",
      at_least=0.5, needs=("qemu-system-x86_64",))  # fmt: skip
def vm_serving(work: Path) -> Iterator[Sides]:
    yield Sides(ours=Report(
        [PYTHON, str(BENCH / "vm_serving.py"), "--runs", "1", "--rounds", "{n}"],
        quote=r"^(served|virtio-blk|NBD alone|ratio|ceiling|fastboop boot|4 KiB)",
        median=r"ratio served / virtio:\s+median ([\d.]+)",
    ))  # fmt: skip


if __name__ == "__main__":
    main()
