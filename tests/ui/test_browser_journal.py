"""Debugging a journal in the browser: ``fastboop ui FILE.fbj`` opens straight into its
timeline; replay in the page agrees with ``fastboop replay``; a changed machine shows its
first divergence highlighted at the right record; the pcap downloads; an uploaded journal
opens too.

"Changing the machine" is what a developer does when a recorded session stops replaying:
here the ``fastboop ui`` process is started with one transition edited (booting no longer
stops its timer), so the recorded ``cancel_timer`` right after ``boot_accepted`` is where
replay must diverge.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from fastboop.journal import open_journal, read_journal
from fastboop.journal.pcap import journal_to_pcap
from tests.ui.browser import browser, js, ready, screenshot, shots, text_of, until
from tests.ui.support import UiProcess

__all__ = ["browser", "shots"]  # fixtures

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "replays" / "success.fbj"

# `fastboop ui` with the machine edited before it starts (one process: the server's
# replay re-drives this machine).
EDITED_UI = """
import sys
from fastboop.machines import table
index = next(i for i, t in enumerate(table.TRANSITIONS) if t["trigger"] == "boot_accepted")
table.TRANSITIONS[index] = {k: v for k, v in table.TRANSITIONS[index].items() if k != "after"}
from fastboop.cli.main import main
sys.exit(main(["ui", *sys.argv[1:]]))
"""


class EditedUi(UiProcess):
    def __init__(self, state: Path, *args: str) -> None:
        super().__init__(state, *args, command=[sys.executable, "-c", EDITED_UI])


@pytest.fixture(scope="module")
def edited_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiProcess]:
    ui = EditedUi(tmp_path_factory.mktemp("ui-journal"), str(RECORDED), "--tcp", "127.0.0.1:9")
    try:
        yield ui
    finally:
        ui.stop()


def first_divergence_expected() -> int:
    """The record replay must stop at: the first effect after ``boot_accepted``."""
    records = read_journal(RECORDED).records
    boot = next(r for r in records if type(r.body).__name__ == "BootAccepted")
    following = records[boot.seq + 1]
    assert type(following.body).__name__ == "CancelTimer"
    return following.seq


def test_divergence_is_highlighted_at_the_right_seq(
    browser: WebDriver, shots: Path, edited_ui: UiProcess
) -> None:
    seq = first_divergence_expected()
    browser.get(edited_ui.url)  # `fastboop ui FILE.fbj` opens on the file's timeline
    ready(browser)
    assert "/journal/" in browser.current_url
    until(lambda: browser.find_elements("css selector", "#records .record"), "records")
    assert text_of(browser, "#journal-title") == RECORDED.name
    browser.find_element("css selector", "#replay-run").click()
    verdict = until(lambda: browser.find_elements("css selector", "#verdict-text"), "a verdict")
    assert verdict[0].get_attribute("data-verdict") == "nondeterminism"
    assert text_of(browser, "#divergence-seq") == f"#{seq}"
    assert text_of(browser, "#divergence-expected").startswith(f"#{seq} cancel_timer(name='boot'")
    assert "no effect" in text_of(browser, "#divergence-actual")
    assert "boot_accepted" in text_of(browser, "#divergence-context li:last-child")
    highlighted = until(lambda: browser.find_elements("css selector", "#records .divergent"),
                        "the divergent record highlighted")  # fmt: skip
    assert [node.get_attribute("data-seq") for node in highlighted] == [str(seq)]
    preceding = browser.find_elements("css selector", "#records .preceding")
    assert str(seq - 1) in [node.get_attribute("data-seq") for node in preceding]
    screenshot(browser, shots, "ui-divergence")
    js(browser, "window.scrollTo(0, 0)")
    screenshot(browser, shots, "ui-divergence-panel")


def test_wire_records_expand_to_hex(browser: WebDriver, edited_ui: UiProcess) -> None:
    wire = browser.find_element("css selector", "#records details.k-wire")
    summary = wire.find_element("css selector", "summary")
    js(browser, "arguments[0].scrollIntoView({block: 'center'})", summary)  # not under a header
    summary.click()
    dump = wire.find_element("css selector", "pre.hex").text
    assert dump.startswith("000000  67 65 74 76 61 72")  # "getvar", the first command
    assert "getvar:product" in dump


def test_pcap_downloads_as_the_export_writes_it(browser: WebDriver,
                                                edited_ui: UiProcess) -> None:  # fmt: skip
    downloads: Path = browser.downloads  # type: ignore[attr-defined]
    browser.find_element("css selector", "#pcap-link").click()
    target = downloads / RECORDED.with_suffix(".pcap").name
    until(lambda: target.exists() and target.stat().st_size > 0, "the pcap download")
    expected = io.BytesIO()
    with open_journal(RECORDED) as reader:
        journal_to_pcap(reader, expected)
    until(lambda: target.read_bytes() == expected.getvalue(), "the whole pcap")


def test_uploaded_journal_opens(browser: WebDriver, edited_ui: UiProcess) -> None:
    other = REPO / "replays" / "probe-mismatch.fbj"
    browser.find_element("css selector", "nav a[data-view=journals]").click()
    until(lambda: RECORDED.name in text_of(browser, "#journal-list"), "the opened journal listed")
    browser.find_element("css selector", "#journal-upload").send_keys(str(other))
    until(lambda: text_of(browser, "#journal-title").endswith(other.name), "the upload's timeline")
    until(lambda: browser.find_elements("css selector", "#records .record"), "records")
    browser.find_element("css selector", "#replay-run").click()
    verdict = until(lambda: browser.find_elements("css selector", "#verdict-text"), "a verdict")
    assert verdict[0].get_attribute("data-verdict") == "ok"  # the edit is not on its path
    assert js(browser, "return location.pathname").startswith("/journal/x-")
