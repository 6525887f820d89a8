"""``fastboop devpro list | show | validate``."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import pytest
from devpro_helpers import EXAMPLE, make_profile

from fastboop.cli import devpro as devpro_cli
from fastboop.devpro.loader import parse_profile
from fastboop.devpro.sources import load_pool
from fastboop.errors import FastboopError


@pytest.fixture(autouse=True)
def isolated_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Local profiles come only from tmp_path/local; no real config or system dirs."""
    local = tmp_path / "local"
    local.mkdir()
    monkeypatch.setenv("FASTBOOP_SCHEMA_PATH", str(local))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(devpro_cli, "load_pool", functools.partial(load_pool, system_dirs=()))
    return local


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="fastboop")
    devpro_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["devpro", *argv])
    code: int = args.handler(args)
    return code


def test_list_shows_builtins_with_tags(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10  # the spec's eight and the two virtual phones
    assert lines[0] == f"{'arrow-db410c':<40} {'Arrow Dragonboard 410c':<24} [builtin]"
    assert lines[5] == f"{'shift-axolotl':<40} {'SHIFT6mq':<24} [builtin]"


def test_list_tags_local_override_and_omits_missing_names(
    capsys: pytest.CaptureFixture[str], isolated_sources: Path
) -> None:
    (isolated_sources / "sargo.yaml").write_text(make_profile("google-sargo"))
    (isolated_sources / "new.yaml").write_text(make_profile("aaa-new"))
    assert run("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{'aaa-new':<40} [local]"
    assert f"{'google-sargo':<40} [builtin,local]" in lines


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in rows][:2] == ["arrow-db410c", "google-sargo"]
    assert rows[0]["sources"] == ["builtin"]
    assert rows[0]["origin"] == "builtin:arrow-db410c.yaml"
    assert len(rows[0]["sha256"]) == 64


def test_list_warns_about_skipped_files_on_stderr(
    capsys: pytest.CaptureFixture[str], isolated_sources: Path
) -> None:
    (isolated_sources / "bad.yaml").write_text("id: [")
    assert run("list") == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 10
    assert captured.err.startswith("fastboop: warning: Skipping invalid device profile ")


def test_show_prints_a_loadable_profile_with_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("show", "oneplus-fajita") == 0
    out = capsys.readouterr().out
    assert out.startswith("# source: builtin:oneplus-fajita.yaml [builtin] sha256=")
    profile = parse_profile(out, file="shown.yaml").profile
    assert profile == load_pool({}, include_local=False).get("oneplus-fajita")


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("show", "google-sargo", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["sources"] == ["builtin"]
    assert shown["profile"]["match"] == [{"fastboot": {"vid": 0x18D1, "pid": 0x4EE0}}]
    assert shown["profile"]["boot"]["fastboot_boot"]["android_bootimg"]["kernel_offset"] == 0x8000


def test_show_unknown_id_is_one_line_error() -> None:
    with pytest.raises(FastboopError, match=r"^device profile 'nope' not found; available ids"):
        run("show", "nope")


def test_validate_reports_each_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(EXAMPLE)
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.replace('equals: "sdm845"', "equals: 1"))
    worse = tmp_path / "worse.yml"
    worse.write_text(EXAMPLE + "stage0: {}\n")
    assert run("validate", str(good), str(bad), str(worse)) == 1
    captured = capsys.readouterr()
    assert captured.out == f"{good}: ok (example-phone)\n"
    assert captured.err.splitlines() == [
        f"fastboop: error: {bad}: probe[0].equals: value must be a string; "
        "quote it, e.g. equals: '1'",
        f"fastboop: error: {worse}: (root): unknown key 'stage0' "
        "(stage0 settings belong in boot profiles)",
    ]


def test_validate_all_good_exits_zero_and_prints_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text(EXAMPLE.replace("page_size: 4096", "page_size: 1024"))
    assert run("validate", str(odd)) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{odd}: ok (example-phone)\n"
    assert "page size 1024 is unusual" in captured.err


def test_validate_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.replace("vid: 0x18d1", "vid: 0x1_0000"))
    missing = tmp_path / "missing.yaml"
    assert run("validate", "--json", str(bad), str(missing)) == 1
    results = json.loads(capsys.readouterr().out)
    assert results[0] == {
        "file": str(bad),
        "ok": False,
        "error": f"{bad}: match[0].fastboot.vid: value 0x1_0000 out of range (max 0xffff)",
        "path": "match[0].fastboot.vid",
        "expected": "at most 0xffff",
        "line": 5,
    }
    assert results[1]["ok"] is False
    assert "cannot read file" in results[1]["error"]


def test_help_texts_exist() -> None:
    parser = argparse.ArgumentParser(prog="fastboop")
    devpro_cli.register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["devpro", "--help"])
