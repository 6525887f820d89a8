"""The device list and the server's front door, seen from headless Chromium.

Hotplug: ``fastboop sim --usbip`` starts and stops while the page stays open, and the
phone appears and leaves without a reload. Security: a browser without the token gets
403; a DNS-rebinding name (resolved to 127.0.0.1 inside this browser) is refused; a
foreign web page that even knows the token cannot start a boot (its ``Origin`` is
refused); a traversal path gets nothing.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.ui.browser import REBOUND_NAME, browser, js, ready, screenshot, shots, text_of, until
from tests.ui.support import SimProcess, UiProcess, free_port

__all__ = ["browser", "shots"]  # fixtures


@pytest.fixture(scope="module")
def ui_and_usbip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiProcess, str]]:
    usbip = f"127.0.0.1:{free_port()}"
    ui = UiProcess(tmp_path_factory.mktemp("ui-devices"), "--usbip", usbip)
    try:
        yield ui, usbip
    finally:
        ui.stop()


def boots_started(ui: UiProcess) -> list[object]:
    connection = http.client.HTTPConnection(ui.host, ui.port, timeout=10)
    connection.request("GET", "/api/info", headers={"Authorization": f"token {ui.token}"})
    boots: list[object] = json.loads(connection.getresponse().read())["boots"]
    connection.close()
    return boots


def test_no_token_is_403(browser: WebDriver, shots: Path,
                         ui_and_usbip: tuple[UiProcess, str]) -> None:  # fmt: skip
    ui, _ = ui_and_usbip
    browser.get(ui.base() + "/")  # no token, no cookie yet
    assert "403 Forbidden" in text_of(browser, "body")
    assert "access token" in text_of(browser, "body")
    screenshot(browser, shots, "ui-forbidden")


def test_rebinding_host_is_refused(browser: WebDriver,
                                   ui_and_usbip: tuple[UiProcess, str]) -> None:  # fmt: skip
    ui, _ = ui_and_usbip
    # This browser resolves the name to 127.0.0.1, as a rebinding attacker's DNS would.
    browser.get(f"http://{REBOUND_NAME}:{ui.port}/?token={ui.token}")
    assert "403 Forbidden" in text_of(browser, "body")
    assert "DNS rebinding" in text_of(browser, "body")


def test_traversal_is_refused(browser: WebDriver, ui_and_usbip: tuple[UiProcess, str]) -> None:
    ui, _ = ui_and_usbip
    browser.get(ui.url)
    ready(browser)
    for path in ("/static/..%2f..%2fcli%2fui.py", "/static/../../cli/ui.py",
                 "/api/journals/..%2f..%2f..%2f..%2fetc%2fpasswd"):  # fmt: skip
        browser.get(ui.base() + path)
        body = text_of(browser, "body")
        assert "def register" not in body and "root:" not in body, path
        assert "Not Found" in body or "no such journal" in body or "403" in body, (path, body)


class AttackerSite:
    """Another web site (another origin) whose page posts a boot to the UI."""

    def __init__(self, target: str) -> None:
        page = f"""<!doctype html><title>attacker</title><script>
            fetch({json.dumps(target)}, {{method: "POST", mode: "no-cors",
                  credentials: "include", headers: {{"content-type": "text/plain"}},
                  body: JSON.stringify({{artifact: "/etc/hostname"}})}})
              .then(() => {{ document.title = "sent"; }}, () => {{ document.title = "sent"; }});
            </script>""".encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_foreign_origin_cannot_start_a_boot(
    browser: WebDriver, ui_and_usbip: tuple[UiProcess, str]
) -> None:
    ui, _ = ui_and_usbip
    # Even with the token (leaked, say), a page from another origin is refused.
    attacker = AttackerSite(f"{ui.base()}/api/boots?token={ui.token}")
    try:
        browser.get(attacker.url)
        until(lambda: browser.title == "sent", "the attacker's request")
    finally:
        attacker.close()
    assert boots_started(ui) == []
    # It did reach the server, which refused it for its Origin (not the browser's doing).
    until(lambda: "refused a request from another web site" in ui.log.read_text(), "the log")
    assert f"origin={attacker.url.rstrip('/')}" in ui.log.read_text()
    # The same request from the app's own page goes through: the refusal was the Origin.
    browser.get(ui.url)
    ready(browser)
    status = js(browser, """return fetch('/api/boots', {method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({artifact: '/nonexistent/rootfs.ero'})}).then((r) => r.status);""")
    assert status == 200
    until(lambda: boots_started(ui), "the page's own boot request")


def test_hotplug_phone_appears_and_leaves(browser: WebDriver, shots: Path, tmp_path: Path,
                                          ui_and_usbip: tuple[UiProcess, str]) -> None:  # fmt: skip
    ui, usbip = ui_and_usbip
    browser.get(ui.url)
    ready(browser)
    js(browser, "window.notReloaded = true")
    until(lambda: browser.find_element("css selector", "#devices-empty").is_displayed(),
          "the empty list")  # fmt: skip
    sim = SimProcess(tmp_path / "sim.log", usbip)
    try:
        until(lambda: "oneplus-fajita" in text_of(browser, "#device-list"), "the phone appears")
        listed = text_of(browser, "#device-list")
        assert "usbip" in listed and "sdm845" in listed
        assert not browser.find_element("css selector", "#devices-empty").is_displayed()
        screenshot(browser, shots, "ui-hotplug")
    finally:
        sim.stop()
    until(lambda: text_of(browser, "#device-list") == "", "the phone leaves")
    assert browser.find_element("css selector", "#devices-empty").is_displayed()
    assert js(browser, "return window.notReloaded") is True
