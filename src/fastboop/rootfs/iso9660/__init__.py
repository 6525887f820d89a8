"""ISO 9660 reader (ECMA-119) with Rock Ridge and Joliet names, for live media.

Written from the standards and Linux's ``fs/isofs`` behaviour: plain, Joliet and Rock
Ridge names (NM, PX, PN, SL, CE continuations, CL/RE relocated directories) and
multi-extent files. zisofs-compressed and interleaved files are reported as unsupported.
"""

from fastboop.rootfs.iso9660.ondisk import DESCRIPTORS_START, STANDARD_ID
from fastboop.rootfs.iso9660.reader import IsoFilesystem, IsoNode

#: Where the first volume descriptor's ``CD001`` sits: magic detection looks here.
MAGIC_OFFSET = DESCRIPTORS_START + 1

__all__ = ["MAGIC_OFFSET", "STANDARD_ID", "IsoFilesystem", "IsoNode"]
