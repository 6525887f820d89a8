"""Headless Chromium for the UI tests: Debian's ``chromium`` through its ``chromedriver``
(selenium), never a downloaded browser. One browser per test module keeps CI time low.

``FASTBOOP_UI_SCREENSHOTS=DIR`` keeps the tests' screenshots in DIR (docs/ui/ holds the
ones the README shows); otherwise they go to the test's temporary directory, so every
run still renders them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")
WAIT = 60.0  # a hang guard, never a speed assertion
REBOUND_NAME = "rebound.example"  # resolves to 127.0.0.1 in this browser: DNS rebinding


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                       else None)  # fmt: skip
        if found:
            return found
    raise RuntimeError(f"none of {names} is installed: run ./scripts/setup")


def start_browser(download_dir: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1500", "--no-first-run",
                     f"--host-resolver-rules=MAP {REBOUND_NAME} 127.0.0.1"):  # fmt: skip
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir),
        "download.prompt_for_download": False,
    })  # fmt: skip
    service = Service(executable_path=_binary("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    downloads = tmp_path_factory.mktemp("downloads")
    driver = start_browser(downloads)
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("FASTBOOP_UI_SCREENSHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("screenshots")


def screenshot(driver: WebDriver, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def until(what: Callable[[], T | None], message: str, timeout: float = WAIT) -> T:
    """Poll ``what`` until it returns something truthy (a hang guard of ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message}")
        time.sleep(0.05)


def text_of(driver: WebDriver, selector: str) -> str:
    element: WebElement = driver.find_element("css selector", selector)
    return str(element.text)


def ready(driver: WebDriver) -> None:
    until(lambda: driver.execute_script("return document.body.dataset.ready === '1'"),
          "the page's script to start")


def js(driver: WebDriver, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)
