"""Fuzz family ``modindex``: damaged depmod index files (from an untrusted rootfs) through
the module index and the stage0 closure: ``modules.dep``, ``modules.builtin``,
``modules.softdep``, ``modules.alias`` and ``modules.builtin.modinfo``.

A case is the five texts joined by ``\\0--\\0``. The seed index is a small synthetic
tree with the shapes Debian's has: dependency chains, pre: softdeps that resolve through
globbed aliases, a softdep name that is both an alias and a builtin (``crc32``), bracket
ranges, builtins with aliases. Classes: byte damage, line damage (duplicated, dropped,
swapped, truncated lines, a line repeated thousands of times), softdep cycles and long
chains, huge dependency lists, and names full of glob characters.
"""

from __future__ import annotations

import functools
import random

from bench.fuzzing._mutate import mutate

from fastboop.errors import FastboopError
from fastboop.stage0.modindex import ModuleIndex
from fastboop.stage0.modules import required_modules, resolve_closure

NAME = "modindex"
DESCRIPTION = "depmod index files: modules.dep/.builtin/.softdep/.alias/.builtin.modinfo"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)
SEPARATOR = b"\0--\0"
_CLASSES = (("bytes", 30), ("lines", 30), ("cycle", 10), ("chain", 8), ("wide", 7),
            ("globs", 10), ("valid", 5))  # fmt: skip


@functools.cache
def _seed() -> tuple[str, str, str, str, str]:
    dep = ["kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko",
           "kernel/lib/libcrc32c.ko:",
           "kernel/crypto/crc32c_generic.ko:",
           "kernel/crypto/crc32_generic.ko:",
           "kernel/fs/overlayfs/overlay.ko:",
           "kernel/drivers/block/nbd.ko:",
           "kernel/drivers/usb/gadget/libcomposite.ko: kernel/drivers/usb/common/usb-common.ko",
           "kernel/drivers/usb/common/usb-common.ko:",
           "kernel/drivers/usb/gadget/function/usb_f_fs.ko: "
           "kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/common/usb-common.ko",
           "kernel/fs/configfs/configfs.ko:",
           "kernel/fs/f2fs/f2fs.ko: kernel/lib/lz4/lz4_compress.ko",
           "kernel/lib/lz4/lz4_compress.ko:",
           "kernel/drivers/usb/dwc3/dwc3-qcom.ko.xz: kernel/drivers/usb/dwc3/dwc3.ko.zst",
           "kernel/drivers/usb/dwc3/dwc3.ko.zst: kernel/drivers/usb/common/usb-common.ko"]
    builtin = ["kernel/lib/crc32.ko", "kernel/fs/ext4/ext4.ko", "kernel/lib/only-builtin.ko"]
    softdep = ["# Soft dependencies extracted from modules themselves.",
               "softdep libcrc32c pre: crc32c", "softdep f2fs pre: crc32",
               "softdep erofs pre: crypto-crc32c post: nope",
               "softdep dwc3 pre: phy-generic zz-builtin", "softdep overlay gcm"]
    alias = ["# Aliases extracted from modules themselves.",
             "alias crypto-crc32c crc32c_generic", "alias crc32c crc32c_generic",
             "alias crc32 crc32_generic", "alias crypto-crc32* crc32_generic",
             "alias of:N*T*Cqcom,dwc3C* dwc3_qcom", "alias of:N*T*Csnps,dwc3 dwc3",
             "alias usb:v13FDp3940d0[0-2]*dc*dsc*dp*ic*isc*ip*in* nbd",
             "alias fs-overlay overlay", "alias p?y-* usb_common"]
    modinfo = "only_builtin.alias=zz-builtin\0ext4.alias=fs-ext4\0ext4.license=GPL\0"
    return ("\n".join(dep) + "\n", "\n".join(builtin) + "\n", "\n".join(softdep) + "\n",
            "\n".join(alias) + "\n", modinfo)  # fmt: skip


def _join(texts: tuple[str, ...] | list[str]) -> bytes:
    return SEPARATOR.join(t.encode("utf-8", "surrogateescape") for t in texts)


def generate(rng: random.Random) -> bytes:
    texts = list(_seed())
    kind = rng.choices([n for n, _ in _CLASSES], [w for _, w in _CLASSES])[0]
    if kind == "bytes":
        return mutate(rng, _join(texts))
    which = rng.randrange(4)
    lines = texts[which].splitlines()
    if kind == "lines" and lines:
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(lines))
            action = rng.randrange(5)
            if action == 0:
                lines.insert(i, lines[i])
            elif action == 1:
                del lines[i]
            elif action == 2:
                j = rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            elif action == 3:
                lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
            else:
                lines += [lines[i]] * rng.choice((100, 5000))
        texts[which] = "\n".join(lines)
    elif kind == "cycle":
        names = ["erofs", "libcrc32c", "crc32c_generic", "f2fs", "overlay"]
        texts[2] += "".join(f"softdep {a} pre: {b}\n" for a, b in zip(
            names, rng.sample(names, len(names)), strict=True))  # fmt: skip
    elif kind == "chain":
        depth = rng.choice((10, 63, 64, 65, 1000))
        texts[0] += "".join(f"kernel/m{i}.ko:\n" for i in range(depth))
        texts[2] += "softdep erofs pre: m0\n" + "".join(
            f"softdep m{i} pre: m{i + 1}\n" for i in range(depth - 1))  # fmt: skip
    elif kind == "wide":
        texts[0] += "kernel/wide.ko: " + " ".join(f"kernel/w{i}.ko" for i in range(20000)) + "\n"
        texts[2] += "softdep erofs pre: wide\n"
    elif kind == "globs":
        glob = "".join(rng.choice("*?[]-_!^\\a") for _ in range(rng.randrange(1, 12)))
        texts[rng.choice((2, 3))] += rng.choice((f"softdep erofs pre: {glob}\n",
                                                  f"alias {glob} erofs\n"))  # fmt: skip
    return _join(texts)


def run(data: bytes) -> str:
    parts = [p.decode("utf-8", "replace") for p in data.split(SEPARATOR)]
    parts += [""] * (5 - len(parts))
    index = ModuleIndex(
        "6.1.0-fuzz",
        modules_dep=parts[0],
        modules_builtin=parts[1],
        modules_softdep=parts[2],
        modules_alias=parts[3],
        modules_builtin_modinfo=parts[4],
    )
    closure = resolve_closure(index, required_modules(
        "erofs", dt_modules=[("dwc3_qcom", "fuzz")], user_modules=["f2fs"]))  # fmt: skip
    index.alias_patterns("of:")
    for name in ("crc32", "zz-builtin", "usb:v13FDp3940d01dc00dsc00dp00ic08isc06ip50in00"):
        index.resolve(name)
    return f"{len(closure.load)} modules"
