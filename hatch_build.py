"""Build hook: every wheel carries stage0's PID1 for x86_64 and aarch64, or is not built.

(The same goes for ``vphone-usbip``, the virtual phone's USB/IP helper that ``fastboop sim
vm-*`` adds to the initramfs it boots: built from ``stage0/vphone/`` by the same Makefile.)

stage0 (the static ``/init`` fastboop puts on the phone) is C, built by ``make -C stage0``
for both architectures. Whoever builds fastboop gets it from one of two places:

1. **The compilers at hand.** ``gcc`` and ``aarch64-linux-gnu-gcc`` (override with the
   ``CC_x86_64``/``CC_aarch64`` environment variables, as the Makefile does) build it now.
   The build is reproducible: the same compiler gives the same bytes wherever it runs.
2. **The sdist's prebuilt copies.** Building an sdist builds both binaries and packs them
   as ``stage0/prebuilt/<arch>/stage0-init``, so ``pip install fastboop-*.tar.gz`` works on
   a machine with no cross compiler (Fedora, Arch, macOS...).

A wheel that would lack either binary fails here, at build time, with a message that says
what to install, never later with a path into site-packages when a phone is waiting.
Editable installs skip all this: a source checkout finds ``stage0/build`` itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ARCHES = {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}
BINARIES = ("stage0-init", "vphone-usbip")
HOW_TO_GET_COMPILERS = (
    "install the compilers (Debian/Ubuntu: make gcc libc6-dev gcc-aarch64-linux-gnu "
    "libc6-dev-arm64-cross; Fedora: make gcc glibc-static gcc-aarch64-linux-gnu "
    "sysroot-aarch64-fc<release>-glibc; Arch: make gcc aarch64-linux-gnu-gcc "
    "aarch64-linux-gnu-glibc), or install from an sdist or a wheel, which carry prebuilt "
    "binaries"
)


class Stage0Missing(RuntimeError):
    pass


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        target = {"wheel": "fastboop/_data/stage0", "sdist": "stage0/prebuilt"}.get(
            self.target_name)  # fmt: skip
        if target is None:
            return
        problems: list[str] = []
        for arch in ARCHES:
            for name in BINARIES:
                binary = self._stage0(root, arch, name, problems)
                if binary is not None:
                    build_data["force_include"][str(binary)] = f"{target}/{arch}/{name}"
        if problems:
            raise Stage0Missing(
                "fastboop: cannot build a "
                f"{self.target_name} without stage0's PID1 for every architecture:\n  "
                + "\n  ".join(problems)
                + f"\nTo fix it, {HOW_TO_GET_COMPILERS}."
            )

    def _stage0(self, root: Path, arch: str, name: str, problems: list[str]) -> Path | None:
        """A fresh build if the compiler is here, else the sdist's prebuilt copy."""
        built = root / "stage0" / "build" / arch / name
        prebuilt = root / "stage0" / "prebuilt" / arch / name
        compiler = os.environ.get(f"CC_{arch}", ARCHES[arch])
        why = self._make(root, arch, name, compiler)
        if why is None and built.is_file():
            return built
        if prebuilt.is_file():
            self.app.display_info(f"{name} for {arch}: using the sdist's prebuilt binary ({why})")
            return prebuilt
        problems.append(f"{arch}: {why}, and no prebuilt binary at {prebuilt.relative_to(root)}")
        return None

    def _make(self, root: Path, arch: str, name: str, compiler: str) -> str | None:
        """Run make for one architecture; ``None`` on success, else why it failed."""
        if shutil.which("make") is None:
            return "`make` is not installed"
        if shutil.which(compiler) is None:
            return f"the C compiler {compiler!r} is not installed"
        if not (root / "stage0" / "Makefile").is_file():
            return "stage0's sources are not here"
        done = subprocess.run(
            ["make", "-s", "-C", str(root / "stage0"), f"build/{arch}/{name}",
             f"CC_{arch}={compiler}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"`make` with {compiler} failed ({last[0]})"
        return None
