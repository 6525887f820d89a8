"""Host-side stage0 initramfs synthesis.

fastboop boots an unmodified distro rootfs by prepending a tiny initramfs ("stage0") whose
``/init`` brings up a USB gadget and mounts the served rootfs. This package builds that
initramfs: a deterministic cpio archive (:mod:`.cpio`), the kernel-module closure
(:mod:`.modules`), device-tree driven module discovery (:mod:`.fdt`, :mod:`.dtmodules`),
kernel/DTB discovery (:mod:`.discover`), settings and cmdline (:mod:`.settings`) and the
builder that ties them together (:mod:`.build`).
"""

from fastboop.stage0.build import Stage0Result, build_stage0
from fastboop.stage0.settings import CmdlineOptions, Firstboot, HostFacts

__all__ = ["CmdlineOptions", "Firstboot", "HostFacts", "Stage0Result", "build_stage0"]
