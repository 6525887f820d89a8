"""Boot profiles compatible with the reference fastboop: the YAML/JSON manifest
(:mod:`.manifest`), the compiled FBOOPROF record (:mod:`.binary`), validation
(:mod:`.validate`), pipelines opened as block sources (:mod:`.pipeline`) with every
``content`` digest verified on the bytes read (:mod:`.content`), and a profile opened as
an artifact (:mod:`.artifact`)."""

from fastboop.bootprofile.binary import (
    FBOOPROF_MAGIC,
    FBOOPROF_VERSION,
    FbooProfError,
    decode_fbooprof,
    decode_fbooprof_prefix,
    encode_fbooprof,
)
from fastboop.bootprofile.manifest import dump_manifest, load_manifest
from fastboop.bootprofile.schema import BootProfile, BootProfileError
from fastboop.bootprofile.validate import validate

__all__ = ["FBOOPROF_MAGIC", "FBOOPROF_VERSION", "BootProfile", "BootProfileError",
           "FbooProfError", "decode_fbooprof", "decode_fbooprof_prefix", "dump_manifest",
           "encode_fbooprof", "load_manifest", "validate"]
