"""A boot from the browser against the virtual phone (``fastboop sim vm-x86_64 --usbip``):
qemu boots the image the page built and uploaded, stage0's gadget comes out of the VM over
USB/IP, the page shows it serving and, in the serial console pane, the guest kernel's own
log read from the gadget's CDC-ACM port (still there after a reload), and the rootfs's own
init runs from the served root, reads its payload back intact and powers the VM off. Then
cancel, and the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from tests.ui.browser import browser, ready, screenshot, shots, text_of, until
from tests.ui.support import UiProcess
from tests.vm.rootfs_image import VmRootfs, build_rootfs
from tests.vm.vphone import HANG_GUARD, Sim, check_booted_to_init

__all__ = ["browser", "shots"]  # fixtures

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def amd64_rootfs() -> VmRootfs:
    return build_rootfs("amd64")


@pytest.fixture
def phone_and_ui(tmp_path: Path) -> Iterator[tuple[Sim, UiProcess]]:
    sim = Sim("vm-x86_64", tmp_path, once=True)
    try:
        ui = UiProcess(tmp_path / "state", "--usbip", sim.usbip)
        try:
            yield sim, ui
        finally:
            ui.stop()
    finally:
        sim.stop()


def test_virtual_phone_boots_from_the_browser(
    browser: WebDriver, shots: Path, amd64_rootfs: VmRootfs, phone_and_ui: tuple[Sim, UiProcess]
) -> None:
    sim, ui = phone_and_ui
    browser.get(ui.url)
    ready(browser)
    until(lambda: "vm-x86_64" in text_of(browser, "#device-list"), "the virtual phone listed")
    browser.find_element("css selector", "nav a[data-view=boot]").click()
    browser.find_element("css selector", "#artifact").send_keys(str(amd64_rootfs.image))
    Select(browser.find_element("css selector", "#profile")).select_by_value("vm-x86_64")
    serial = browser.find_element("css selector", "input[name=serial_console]")
    browser.execute_script("arguments[0].checked = true", serial)  # under "more options"
    browser.find_element("css selector", "#boot-start").click()
    until(lambda: "served" in text_of(browser, "#serve-stats"), "serving", timeout=HANG_GUARD)
    assert "usbip-vudc" in text_of(browser, "#session-log")  # stage0's gadget, out of the VM
    # The guest kernel's log, from stage0's kmsg forwarder over the ACM port, in the pane:
    until(lambda: "Linux version" in text_of(browser, "#console"), "the kernel log",
          timeout=HANG_GUARD)  # fmt: skip
    until(lambda: "stage0" in text_of(browser, "#console"), "stage0's own lines")
    screenshot(browser, shots, "ui-vphone-serving")
    browser.refresh()  # a reconnect: the pane comes back from the server's ring
    ready(browser)
    until(lambda: "Linux version" in text_of(browser, "#console"), "the kernel log again")
    browser.execute_script("document.querySelector('#console-panel').scrollIntoView()")
    screenshot(browser, shots, "ui-vphone-console")
    assert sim.wait_exit() == 0, sim.report()  # the rootfs's init powered the VM off
    check_booted_to_init(sim.console.read_text(errors="replace"), amd64_rootfs.marker,
                         amd64_rootfs.blob_bytes, amd64_rootfs.blob_sum)  # fmt: skip
    browser.find_element("css selector", "#boot-cancel").click()
    until(lambda: "cancelled from the web UI" in text_of(browser, "#session-result"), "the end")
    browser.find_element("css selector", "#journal-link").click()
    until(lambda: browser.find_elements("css selector", "#records .record"), "the timeline")
    browser.find_element("css selector", "#replay-run").click()
    verdict = until(lambda: browser.find_elements("css selector", "#verdict-text"), "a verdict")
    assert verdict[0].get_attribute("data-verdict") == "ok"
