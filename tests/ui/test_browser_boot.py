"""A whole boot from the browser: headless Chromium drives ``fastboop ui`` against
``fastboop sim --usbip`` (a simulated phone on USB/IP that comes back as stage0's smoo
gadget after the boot), with the demo's Debian rootfs.

Start from the boot form, watch the upload's progress bar move and the serving figures
appear, the phone's serial console in its pane (the simulated stage0 adds the CDC-ACM port
when the image asks for it; fastboop reads it over USB/IP), still there after a reload,
cancel, and follow the journal link into the timeline, where replay agrees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from fastboop.demo.rootfs import demo_rootfs
from tests.ui.browser import browser, js, ready, screenshot, shots, text_of, until
from tests.ui.support import SimProcess, UiProcess, free_port

__all__ = ["browser", "shots"]  # fixtures

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rootfs() -> Path:
    return demo_rootfs(REPO / ".cache" / "xdg" / "fastboop")


@pytest.fixture(scope="module")
def phone_and_ui(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SimProcess, UiProcess]]:
    root = tmp_path_factory.mktemp("ui-boot")
    usbip = f"127.0.0.1:{free_port()}"
    # A USB 2-like link, so the upload takes long enough to be watched.
    sim = SimProcess(root / "sim.log", usbip, extra=["--link-speed", "40MiB"])
    ui = UiProcess(root / "state", "--usbip", usbip)
    try:
        yield sim, ui
    finally:
        ui.stop()
        sim.stop()


def test_boot_watch_cancel_and_open_the_journal(
    browser: WebDriver, shots: Path, rootfs: Path, phone_and_ui: tuple[SimProcess, UiProcess]
) -> None:
    _, ui = phone_and_ui
    browser.get(ui.url)
    ready(browser)
    assert "token=" not in browser.current_url  # traded for the cookie
    until(lambda: "oneplus-fajita" in text_of(browser, "#device-list"), "the phone in the list")
    assert "sdm845" in text_of(browser, "#device-list")  # its getvar answers

    # "Boot this phone": the form for that phone; two profiles match it, so the user
    # confirms one.
    browser.find_element("css selector", "#device-list article.device button.primary").click()
    until(lambda: "/boot" in browser.current_url, "the boot form")
    assert Select(browser.find_element("css selector", "#device")).first_selected_option \
        .get_attribute("value") == "7c1e2d9f"  # the phone's serial, as -s names it
    browser.find_element("css selector", "#artifact").send_keys(str(rootfs))
    Select(browser.find_element("css selector", "#profile")).select_by_value("oneplus-fajita")
    serial = browser.find_element("css selector", "input[name=serial_console]")
    browser.execute_script("arguments[0].checked = true", serial)  # under "more options"
    # Sample the bar as the page draws it: it must pass through values between 0 and 1.
    js(browser, """window.seen = []; window.figures = new Set(); window.countdowns = new Set();
        setInterval(() => { const bar = document.querySelector('#upload-progress');
                            window.seen.push(bar.value / bar.max);
                            window.figures.add(document.querySelector('#upload-figures').textContent);
                            window.countdowns.add(document.querySelector('#countdown').textContent);
                          }, 20);""")
    browser.find_element("css selector", "#boot-start").click()
    until(lambda: "/boot/" in browser.current_url, "the boot to start")

    until(lambda: js(browser, "return window.seen.some((v) => v > 0 && v < 1)"),
          "the progress bar to move", timeout=240)
    until(lambda: "served" in text_of(browser, "#serve-stats"), "serving figures", timeout=120)
    until(lambda: js(browser, "return document.querySelector('#throughput-chart polyline')"
                     ".getAttribute('points').split(' ').length >= 3"), "the throughput chart")
    until(lambda: "stage0: exec /sbin/init" in text_of(browser, "#console"), "the console")
    assert "Linux version 0.0.0-fastboop-sim (simulated phone oneplus-fajita)" in \
        text_of(browser, "#console")
    screenshot(browser, shots, "ui-boot-serving")
    seen = js(browser, "return window.seen")
    moving = sorted({v for v in seen if 0 < v < 1})
    assert len(moving) >= 2, seen  # it moved, not jumped from empty to full
    assert max(seen) == 1  # and ended full: the image was accepted
    figures = js(browser, "return [...window.figures]")
    assert any("ETA" in text and "/s" in text for text in figures), figures  # rate and ETA
    countdowns = js(browser, "return [...window.countdowns]")
    assert any("left" in text for text in countdowns), countdowns  # the deadlines, counting
    state = browser.find_element("css selector", "#session-state").get_attribute("data-state")
    assert state == "serving"
    # The path taken is highlighted on the machine's diagram.
    for name in ("idle", "probing", "building", "uploading", "booting", "serving"):
        classes = browser.find_element("css selector", f"#state-{name}").get_attribute("class")
        assert "visited" in (classes or ""), name
    assert "current" in (browser.find_element("css selector", "#state-serving")
                         .get_attribute("class") or "")  # fmt: skip
    lines = [e.text for e in browser.find_elements("css selector", "#console > div")]
    browser.refresh()  # a reconnect: the same console, from the server's ring, once
    ready(browser)
    until(lambda: "exec /sbin/init" in text_of(browser, "#console"), "the console again")
    assert [e.text for e in browser.find_elements("css selector", "#console > div")] == lines

    browser.find_element("css selector", "#boot-cancel").click()
    # Stopped while serving is the normal end of a boot: the machine's "done".
    until(lambda: "session done: cancelled from the web UI" in text_of(browser, "#session-result"),
          "the cancel")
    assert "current" in (browser.find_element("css selector", "#state-done")
                         .get_attribute("class") or "")  # fmt: skip
    link = browser.find_element("css selector", "#journal-link")
    link.click()
    until(lambda: "/journal/" in browser.current_url, "the timeline")
    until(lambda: browser.find_elements("css selector", "#records .record"), "records")
    assert "serving" in text_of(browser, "#records")
    browser.find_element("css selector", "#replay-run").click()
    verdict = until(lambda: browser.find_elements("css selector", "#verdict-text"), "a verdict")
    assert verdict[0].get_attribute("data-verdict") == "ok"
    assert "final state done" in verdict[0].text
    screenshot(browser, shots, "ui-journal")
    # The phone's serial console is in the journal too, as lines to read.
    console = browser.find_element("css selector", "#records details.k-console")
    summary = console.find_element("css selector", "summary")
    assert "serial console:" in summary.text
    js(browser, "arguments[0].scrollIntoView({block: 'center'})", summary)  # not under a header
    summary.click()
    assert console.find_element("css selector", "pre").text.startswith(
        "[    0.000000] Linux version 0.0.0-fastboop-sim (simulated phone oneplus-fajita)")

    # The artifact is offered again as a recent one.
    browser.get(ui.base() + "/boot")
    ready(browser)
    recent = [o.get_attribute("value")
              for o in browser.find_elements("css selector", "#recent option")]  # fmt: skip
    assert recent[0] == str(rootfs)
