"""tests/support/imports.py: the fresh-interpreter import probe the start-up tests use.
Its failure message must name the unexpected module and who pulled it in."""

from __future__ import annotations

import pytest

from tests.support.imports import fastboop_imports, python_imports


def test_a_failure_names_the_module_and_its_chain_of_importers() -> None:
    probe = python_imports("import json\nprint('ran')\n")
    assert probe.stdout == "ran\n" and probe.exit_code is None
    assert {"json", "json.decoder"} <= probe.modules
    assert probe.importers["json"] == ("__main__", 1)
    with pytest.raises(AssertionError) as failed:
        probe.assert_none_of(["json.decoder"])
    assert "imported 1 unexpected module(s) (json.decoder)" in str(failed.value)
    assert "json.decoder <- json:" in str(failed.value)
    assert str(failed.value).rstrip().endswith("<- __main__:1")


def test_a_forbidden_name_covers_its_submodules_and_only_causes_are_listed() -> None:
    probe = python_imports("x = 1\nimport json\n")
    assert probe.unexpected(["json"]) == ["json", "json.decoder", "json.encoder", "json.scanner"]
    assert probe.unexpected(["json"], allowed=["json", "json.decoder"]) == [
        "json.encoder", "json.scanner"]  # fmt: skip
    assert probe.unexpected(["jso"]) == []
    with pytest.raises(AssertionError) as failed:
        probe.assert_none_of(["json"])
    listed = str(failed.value).split("first importers:")[1].strip().splitlines()
    assert listed == ["json <- __main__:2"]  # json.decoder etc. came from json itself
    probe.assert_none_of(["asyncio"])  # passes: nothing under that name was imported


def test_a_command_reports_its_exit_code_and_output() -> None:
    version = fastboop_imports(["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("fastboop ")
    unknown = fastboop_imports(["frobnicate"])
    assert unknown.exit_code == 2 and "invalid choice" in unknown.stderr
    assert "fastboop.cli.main" in unknown.modules


def test_a_probe_that_crashes_is_an_error_with_its_traceback() -> None:
    with pytest.raises(AssertionError, match=r"(?s)import probe.*ZeroDivisionError"):
        python_imports("1 / 0\n")
