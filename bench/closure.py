"""Module closure for the stage0 list, in process, next to ``modprobe --show-depends``.

Run from the repository root:  .venv/bin/python bench/closure.py [--runs N]
Results are recorded in docs/benchmarks.md (issue 15: the closure for the stage0 list
in ≤ 10 ms in-process on Debian's arm64 tree, identical to modprobe's).

The tree is Debian's whole arm64 module tree, hard-linked and depmod'ed in a temporary
directory, as the tests build it. The stage0 list is what ``fastboop stage0`` asks for
on the OnePlus 6T (sdm845-oneplus-fajita): the base list, ``erofs`` and the modules DT
discovery finds; its closure is 19 modules. Timed, as CPU time of this process:

* **warm**: ``ModuleIndex.parse`` on the index texts (already read) and the closure,
  with the index built once per tree and reused within the process, as fastboop does;
* **cold**: the same with the process's index cache emptied first, so the index is
  built from the texts (read from disk beforehand) every time;
* **modprobe**: the wall time of one ``modprobe -d ROOT --show-depends -a <list>``
  process (the peer reads its binary indexes itself).

It never asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from tests.rootfs.kernel_trees import debian_kernel, full_depmod_tree  # noqa: E402

from fastboop.fdt import parse_fdt  # noqa: E402
from fastboop.stage0.dtmodules import discover_dt_modules  # noqa: E402
from fastboop.stage0.modules import (  # noqa: E402
    ModuleIndex,
    Reason,
    required_modules,
    resolve_closure,
)

DT = "qcom/sdm845-oneplus-fajita"
INDEX = {
    "modules_dep": "modules.dep",
    "modules_builtin": "modules.builtin",
    "modules_softdep": "modules.softdep",
    "modules_alias": "modules.alias",
}


def index_texts(root: Path, kver: str) -> dict[str, str]:
    base = root / "lib/modules" / kver
    return {arg: (base / name).read_text() for arg, name in INDEX.items()}


def stage0_list(root: Path, kver: str) -> list[tuple[str, Reason]]:
    src, _ = debian_kernel("arm64")
    vendor, _, name = DT.rpartition("/")
    dtb = (src / f"usr/lib/linux-image-{kver}/{vendor}/{name}.dtb").read_bytes()
    index = ModuleIndex.parse(kver, **index_texts(root, kver))
    found = discover_dt_modules(parse_fdt(dtb), index)
    return required_modules("erofs", dt_modules=[(m.module, m.why) for m in found])


def closure_seconds(texts: dict[str, str], kver: str, required: list[tuple[str, Reason]],
                    *, cold: bool) -> float:  # fmt: skip
    """CPU seconds of one in-process closure (index from the texts, then the closure)."""
    if cold and hasattr(ModuleIndex, "clear_cache"):  # (absent before the index cache)
        ModuleIndex.clear_cache()
    start = time.process_time()
    resolve_closure(ModuleIndex.parse(kver, **texts), required)
    return time.process_time() - start


def modprobe_seconds(root: Path, kver: str, names: list[str]) -> float:
    command = ["modprobe", "-C", str(root / "no-modprobe.d"), "-d", str(root), "-S", kver]
    start = time.perf_counter()
    subprocess.run(
        [*command, "--show-depends", "-a", *names],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def summary(label: str, samples: list[float]) -> str:
    ms = [s * 1e3 for s in samples]
    return (f"{label:<30} median {statistics.median(ms):8.2f} ms"
            f"  (min {min(ms):.2f}, max {max(ms):.2f}, n={len(ms)})")  # fmt: skip


def pair(runs: int) -> dict[str, list[float]]:
    """The samples of each side: ``warm``, ``cold`` (in process) and ``modprobe``."""
    with tempfile.TemporaryDirectory(prefix="fastboop-closure-") as tmp:
        root = Path(tmp)
        kver = full_depmod_tree("arm64", root)
        required = stage0_list(root, kver)
        texts = index_texts(root, kver)
        names = [name for name, _ in required]
        closure_seconds(texts, kver, required, cold=False)  # build the index once
        sides: dict[str, Callable[[], float]] = {
            "warm": lambda: closure_seconds(texts, kver, required, cold=False),
            "cold": lambda: closure_seconds(texts, kver, required, cold=True),
            "modprobe": lambda: modprobe_seconds(root, kver, names),
        }
        samples: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(runs):  # the sides in turn, so load swings hit all of them
            for side, run in sides.items():
                samples[side].append(run())
        closure = resolve_closure(ModuleIndex.parse(kver, **texts), required)
        print(f"stage0 list: {len(required)} names, closure of {len(closure.load)} modules")
        return samples


def sample(root: Path, kver: str, runs: int = 5) -> None:
    """One process of bench/peers.py's pair, on a tree it built: the cold closure once,
    then the median of ``runs`` warm ones (the index reused, as within ``fastboop``)."""
    texts = index_texts(root, kver)
    required = stage0_list(root, kver)
    cold = closure_seconds(texts, kver, required, cold=True)
    warm = statistics.median(closure_seconds(texts, kver, required, cold=False)
                             for _ in range(runs))  # fmt: skip
    load = resolve_closure(ModuleIndex.parse(kver, **texts), required).load
    print(f"cold closure of {len(load)} modules in {cold:.6f} s")
    print(f"warm closure of {len(load)} modules in {warm:.6f} s (median of {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--sample", nargs=2, metavar=("ROOT", "KVER"),
                        help="time the closure on a built tree (bench/peers.py)")  # fmt: skip
    args = parser.parse_args()
    if args.sample:
        sample(Path(args.sample[0]), args.sample[1])
        return
    samples = pair(args.runs)
    for side in ("warm", "cold", "modprobe"):
        print(summary(side, samples[side]))
    ratio = statistics.median(samples["warm"]) / statistics.median(samples["modprobe"])
    print(f"warm in-process / modprobe process: {ratio:.2f}")


if __name__ == "__main__":
    main()
