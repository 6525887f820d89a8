"""Device profiles (DevPro): what a phone is, and how to boot it.

A profile has a cheap USB prefilter (``match``), an authoritative list of read-only
getvar checks (``probe``) and boot-image settings (``android_bootimg``). This package
reads them strictly from YAML/JSON (:func:`parse_profile`), collects them from built-in,
channel and local sources with a defined precedence (:func:`load_pool`), identifies a
device by probing (:func:`probe_device`), and converts them to and from the FBOODEVP
binary form. Nothing here performs I/O on a device: probing takes a ``getvar`` coroutine.
"""

from __future__ import annotations

from fastboop.devpro.binary import decode_fboodevp, decode_fboodevp_prefix, encode_fboodevp
from fastboop.devpro.bootparams import BootImageParams, boot_image_params
from fastboop.devpro.document import profile_to_document, profile_to_yaml
from fastboop.devpro.errors import (
    AmbiguousProfileError,
    DuplicateProfileIdError,
    FbooDevpError,
    ProfileError,
    ProfileNotFoundError,
)
from fastboop.devpro.loader import ParsedProfile, parse_profile
from fastboop.devpro.pool import (
    LoadedProfile,
    PoolEntry,
    ProfilePool,
    ProfileProvenance,
    ProfileSource,
)
from fastboop.devpro.probe import (
    GetvarCache,
    GetvarFn,
    GetvarResult,
    ProbeAttempt,
    ProbeOutcome,
    StepFailure,
    adapt_getvar,
    candidate_profiles,
    evaluate_step,
    probe_device,
    usb_filter,
)
from fastboop.devpro.schema import (
    AndroidBootImage,
    BootLimits,
    Compression,
    DeviceProfile,
    InitrdSettings,
    KernelEncoding,
    KernelSettings,
    MatchEntry,
    ProbeOperator,
    ProbeStep,
)
from fastboop.devpro.selection import (
    NO_MATCH_MESSAGE,
    detect_lines,
    require_device_profile_for_output,
)
from fastboop.devpro.sources import (
    load_builtin_profiles,
    load_channel_profile,
    load_local_profiles,
    load_pool,
    load_profile_file,
    local_profile_dirs,
)

__all__ = [
    "NO_MATCH_MESSAGE",
    "AmbiguousProfileError",
    "AndroidBootImage",
    "BootImageParams",
    "BootLimits",
    "Compression",
    "DeviceProfile",
    "DuplicateProfileIdError",
    "FbooDevpError",
    "GetvarCache",
    "GetvarFn",
    "GetvarResult",
    "InitrdSettings",
    "KernelEncoding",
    "KernelSettings",
    "LoadedProfile",
    "MatchEntry",
    "ParsedProfile",
    "PoolEntry",
    "ProbeAttempt",
    "ProbeOperator",
    "ProbeOutcome",
    "ProbeStep",
    "ProfileError",
    "ProfileNotFoundError",
    "ProfilePool",
    "ProfileProvenance",
    "ProfileSource",
    "StepFailure",
    "adapt_getvar",
    "boot_image_params",
    "candidate_profiles",
    "decode_fboodevp",
    "decode_fboodevp_prefix",
    "detect_lines",
    "encode_fboodevp",
    "evaluate_step",
    "load_builtin_profiles",
    "load_channel_profile",
    "load_local_profiles",
    "load_pool",
    "load_profile_file",
    "local_profile_dirs",
    "parse_profile",
    "probe_device",
    "profile_to_document",
    "profile_to_yaml",
    "require_device_profile_for_output",
    "usb_filter",
]
