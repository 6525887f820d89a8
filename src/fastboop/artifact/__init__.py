"""Distro artifacts as published: disk images with several volumes, one boot from them.

A pmOS ``.img.xz`` keeps the kernel on ``pmOS_boot`` and the modules on ``pmOS_root``;
Fedora's ``raw.xz`` has an ESP, an ext4 ``/boot`` and a btrfs root in a subvolume. This
package finds every volume (:mod:`.open`), names them (:mod:`.volumes`,
:mod:`.identity`), decides their roles (:mod:`.roles`, :mod:`.fstab`) and shows them as
one tree (:mod:`.coalesce`) so that stage0's discovery works unchanged, while the phone
is served exactly the root's bytes.
"""

from fastboop.artifact.open import Artifact, ArtifactOptions, open_artifact

__all__ = ["Artifact", "ArtifactOptions", "open_artifact"]
