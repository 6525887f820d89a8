"""Where profiles come from and which one wins (devpro.md §4, §9 cases 18-19)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from devpro_helpers import load, make_profile

from fastboop.devpro.binary import encode_fboodevp
from fastboop.devpro.errors import DuplicateProfileIdError, ProfileError, ProfileNotFoundError
from fastboop.devpro.pool import LoadedProfile, ProfilePool, ProfileSource
from fastboop.devpro.sources import (
    load_builtin_profiles,
    load_channel_profile,
    load_local_profiles,
    load_pool,
    load_profile_file,
    local_profile_dirs,
)

SYSTEM = (Path("/sys-profiles"),)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


# -- directory list ---------------------------------------------------------------------------


def test_dir_order_schema_path_then_xdg_then_system() -> None:
    env = {"FASTBOOP_SCHEMA_PATH": os.pathsep.join(["/a", "", "/b"]), "XDG_CONFIG_HOME": "/x"}
    assert local_profile_dirs(env, system_dirs=SYSTEM) == [
        Path("/a"),
        Path("/b"),
        Path("/x/fastboop/devpro"),
        Path("/sys-profiles"),
    ]


@pytest.mark.parametrize("xdg", [None, ""])
def test_unset_or_empty_xdg_falls_back_to_home_config(xdg: str | None) -> None:
    env = {"HOME": "/home/u"} | ({} if xdg is None else {"XDG_CONFIG_HOME": xdg})
    assert local_profile_dirs(env, system_dirs=SYSTEM) == [
        Path("/home/u/.config/fastboop/devpro"),
        Path("/sys-profiles"),
    ]


def test_repeated_dirs_keep_the_first() -> None:
    env = {"FASTBOOP_SCHEMA_PATH": os.pathsep.join(["/s", "/x/fastboop/devpro", "/s"])}
    env["XDG_CONFIG_HOME"] = "/x"
    assert local_profile_dirs(env, system_dirs=(Path("/s"),)) == [
        Path("/s"),
        Path("/x/fastboop/devpro"),
    ]


def test_default_system_dir_is_usr_share() -> None:
    assert local_profile_dirs({}) == [Path("/usr/share/fastboop/devpro")]


# -- scanning ---------------------------------------------------------------------------------


def test_scan_reads_allowed_extensions_in_bytewise_order(tmp_path: Path) -> None:
    for name in ["b.yaml", "B.yml", "a.json", "c.YAML", "d.txt", "e.yaml~"]:
        write(tmp_path, name, make_profile(name.replace(".", "-")))
    (tmp_path / "sub.yaml").mkdir()
    loaded, warnings = load_local_profiles([tmp_path, tmp_path / "missing"])
    assert [item.profile.id for item in loaded] == ["B-yml", "a-json", "b-yaml"]
    assert warnings == []
    assert all(item.source is ProfileSource.LOCAL for item in loaded)


def test_invalid_local_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", make_profile("bad") + "stage0: {}\n")
    write(tmp_path, "good.yaml", make_profile("good"))
    loaded, warnings = load_local_profiles([tmp_path])
    assert [item.profile.id for item in loaded] == ["good"]
    assert warnings == [
        f"Skipping invalid device profile {tmp_path}/bad.yaml: (root): unknown key 'stage0' "
        "(stage0 settings belong in boot profiles)"
    ]


def test_case18_same_id_in_two_local_files_is_a_hard_error(tmp_path: Path) -> None:
    first = write(tmp_path / "one", "x.yaml", make_profile("a"))
    second = write(tmp_path / "two", "y.yaml", make_profile("a"))
    with pytest.raises(DuplicateProfileIdError) as caught:
        load_local_profiles([tmp_path / "one", tmp_path / "two"])
    assert str(caught.value) == f"duplicate device profile id 'a' found in {first}, {second}"


def test_loaded_file_records_digest(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", make_profile("p"))
    item, warnings = load_profile_file(path)
    assert item.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert item.origin == str(path)
    assert warnings == ()


def test_named_file_errors_raise(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"missing\.yaml: cannot read file"):
        load_profile_file(tmp_path / "missing.yaml")


# -- precedence -------------------------------------------------------------------------------


def test_case19_local_beats_builtin_and_is_tagged_with_both(tmp_path: Path) -> None:
    override = make_profile("google-sargo", display_name="My Sargo")
    path = write(tmp_path, "sargo.yaml", override)
    pool = load_pool({"FASTBOOP_SCHEMA_PATH": str(tmp_path)}, system_dirs=())
    entry = pool.entry("google-sargo")
    assert entry.profile.display_name == "My Sargo"
    assert entry.loaded.origin == str(path)
    assert entry.tags == "builtin,local"
    assert pool.entry("oneplus-fajita").tags == "builtin"
    assert len(pool) == 10  # the spec's eight and the two virtual phones


def test_channel_beats_builtin_and_local_beats_channel() -> None:
    def loaded(profile_id: str, name: str, source: ProfileSource) -> LoadedProfile:
        profile = load(make_profile(profile_id, display_name=name))
        return LoadedProfile(profile=profile, source=source, origin=name, sha256="")

    pool = ProfilePool.build(
        builtin=[
            loaded("a", "builtin-a", ProfileSource.BUILTIN),
            loaded("b", "builtin-b", ProfileSource.BUILTIN),
        ],
        channel=[
            loaded("a", "channel-a", ProfileSource.CHANNEL),
            loaded("b", "channel-b", ProfileSource.CHANNEL),
        ],
        local=[loaded("b", "local-b", ProfileSource.LOCAL)],
    )
    assert pool.get("a").display_name == "channel-a"
    assert pool.get("b").display_name == "local-b"
    assert pool.entry("b").tags == "builtin,channel,local"
    assert [item.origin for item in pool.loaded] == [
        "builtin-a",
        "builtin-b",
        "channel-a",
        "channel-b",
        "local-b",
    ]


def test_pool_is_sorted_by_id() -> None:
    pool = ProfilePool.of([load(make_profile(i)) for i in ["c", "a", "b"]])
    assert pool.ids == ["a", "b", "c"]
    assert [p.id for p in pool] == ["a", "b", "c"]


def test_unknown_id_lists_available_ids_and_checked_dirs(tmp_path: Path) -> None:
    pool = load_pool({"FASTBOOP_SCHEMA_PATH": str(tmp_path)}, system_dirs=())
    with pytest.raises(ProfileNotFoundError) as caught:
        pool.get("nope")
    assert str(caught.value) == (
        "device profile 'nope' not found; available ids: [arrow-db410c, google-sargo, "
        "oneplus-enchilada, oneplus-fajita, samsung-gt510, shift-axolotl, vm-arm64, "
        f"vm-x86_64, xiaomi-beryllium-ebbg, xiaomi-beryllium-tianma]; checked dirs: [{tmp_path}]"
    )
    builtin_only = load_pool({}, include_local=False)
    with pytest.raises(ProfileNotFoundError, match=r"tianma\]$"):
        builtin_only.get("nope")


def test_only_narrows_the_pool() -> None:
    pool = load_pool({}, include_local=False)
    assert pool.only("google-sargo").ids == ["google-sargo"]
    with pytest.raises(ProfileNotFoundError):
        pool.only("nope")


def test_pool_warnings_carry_skipped_files(tmp_path: Path) -> None:
    write(tmp_path, "bad.json", "{")
    pool = load_pool({"FASTBOOP_SCHEMA_PATH": str(tmp_path)}, system_dirs=())
    assert len(pool.warnings) == 1
    assert pool.warnings[0].startswith(f"Skipping invalid device profile {tmp_path}/bad.json: ")


def test_channel_record_becomes_a_channel_profile_that_beats_builtin() -> None:
    record = encode_fboodevp(load(make_profile("google-sargo", display_name="Channel Sargo")))
    item = load_channel_profile(record, origin="channel.ero#0")
    assert (item.source, item.origin) == (ProfileSource.CHANNEL, "channel.ero#0")
    assert item.sha256 == hashlib.sha256(record).hexdigest()
    pool = load_pool({}, channel=[item], include_local=False)
    assert pool.get("google-sargo").display_name == "Channel Sargo"
    assert pool.entry("google-sargo").tags == "builtin,channel"


def test_provenance_lists_every_file_read_and_which_is_in_force(tmp_path: Path) -> None:
    path = write(tmp_path, "sargo.yaml", make_profile("google-sargo"))
    pool = load_pool({"FASTBOOP_SCHEMA_PATH": str(tmp_path)}, system_dirs=())
    records = pool.provenance()
    assert len(records) == 11
    sargo = [r for r in records if r.id == "google-sargo"]
    assert [(r.source, r.in_force) for r in sargo] == [
        (ProfileSource.BUILTIN, False),
        (ProfileSource.LOCAL, True),
    ]
    assert sargo[1].origin == str(path)
    assert sargo[1].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sum(r.in_force for r in records) == 10


def test_broken_builtins_fail_loudly_instead_of_being_skipped(tmp_path: Path) -> None:
    write(tmp_path / "dup", "a.yaml", make_profile("same"))
    write(tmp_path / "dup", "b.yaml", make_profile("same"))
    with pytest.raises(DuplicateProfileIdError, match=r"builtin:a\.yaml, builtin:b\.yaml$"):
        load_builtin_profiles(tmp_path / "dup")
    write(tmp_path / "bad", "a.yaml", "id: [")
    with pytest.raises(ProfileError, match=r"^builtin:a\.yaml: invalid YAML"):
        load_pool({}, builtin_dir=tmp_path / "bad", include_local=False)
