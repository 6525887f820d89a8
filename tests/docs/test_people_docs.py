"""The pages for people stay true: the supported-devices table is the profiles' own."""

from __future__ import annotations

import re
from pathlib import Path

from fastboop.cli.devpro import supported_devices_table
from fastboop.devpro.sources import load_pool

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def test_supported_devices_table_matches_the_built_in_profiles() -> None:
    page = (DOCS / "supported-devices.md").read_text()
    generated = re.search(r"<!-- generated: fastboop devpro list --markdown -->\n(.*?)"
                          r"<!-- end generated -->", page, re.S)  # fmt: skip
    assert generated is not None
    expected = supported_devices_table(load_pool(include_local=False))
    assert generated.group(1) == expected, (
        "docs/supported-devices.md is stale: paste the output of "
        "`fastboop devpro list --markdown` between its markers"
    )
    ids = {path.stem for path in (REPO / "devpros").glob("*.yaml")}
    assert {f"`{profile}`" for profile in ids} <= set(re.findall(r"`[a-z0-9_.-]+`", expected))


def test_the_troubleshooting_page_covers_each_failure() -> None:
    page = (DOCS / "troubleshooting.md").read_text()
    headings = re.findall(r"^## (.+)$", page, re.M)
    for topic in ("No device", "Permission denied", "Several profiles match",
                  "The image is too large", "The bootloader says FAIL",
                  "stage0 never comes back", "The gadget is lost while serving"):
        assert topic in headings, topic


def test_every_page_the_readme_links_exists() -> None:
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / target).exists(), target
    for name in ("troubleshooting.md", "supported-devices.md", "comparison.md"):
        assert f"docs/{name}" in readme, name
