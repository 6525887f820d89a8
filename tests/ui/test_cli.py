"""``fastboop ui`` as a command: the URL it prints, the browser it opens, its options,
the device options as ``detect`` has them, and clear errors for bad input (from the
command line and from the page's API)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.ui.support import CLI, UiProcess, free_port, wait_for_text
from tests.ui.test_devices import DeviceFeed

REPO = Path(__file__).resolve().parents[2]


def api(ui: UiProcess, path: str, *, method: str = "GET", body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    connection = http.client.HTTPConnection(ui.host, ui.port, timeout=30)
    connection.request(method, path, body=body,
                       headers={"Authorization": f"token {ui.token}", **(headers or {})})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data.startswith(b"{") else data


def test_opens_the_browser_on_the_printed_url(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    env = {**os.environ, "BROWSER": str(browser), "XDG_STATE_HOME": str(tmp_path)}
    process = subprocess.Popen([*CLI, "ui", "--port", str(port), "--tcp", "127.0.0.1:9"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        deadline = time.monotonic() + 30
        while not (opened.exists() and opened.read_text().strip()):
            assert time.monotonic() < deadline, "the browser was not started"
            time.sleep(0.1)
        assert opened.read_text().strip() == url
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_command_line_errors_are_usage_errors(tmp_path: Path) -> None:
    for argv, message in ((["missing.fbj"], "no such journal"),
                          (["--port", "70000"], "not a port number")):  # fmt: skip
        result = subprocess.run([*CLI, "ui", "--no-browser", *argv], capture_output=True,
                                text=True, timeout=60, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr


def test_tcp_and_udp_devices_are_listed(tmp_path: Path) -> None:
    tcp, udp = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = tmp_path / "sim.log"
    with log.open("w") as out:
        sim = subprocess.Popen([*CLI, "sim", "google-sargo", "--tcp", tcp, "--udp", udp],
                               stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_text(log, "transport=udp", timeout=30)
        ui = UiProcess(tmp_path / "state", "--tcp", tcp, "--udp", udp)
        try:
            feed = DeviceFeed(ui)
            listed = feed.until(lambda d: len(d["devices"]) == 2)
            feed.close()
        finally:
            ui.stop()
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    assert listed["watching"] == [f"tcp:{tcp}", f"udp:{udp}"]
    where = sorted((d["device"]["transport"], d["device"]["location"]) for d in listed["devices"])
    assert where == [("tcp", tcp), ("udp", udp)]
    for device in listed["devices"]:
        assert [m["profile"] for m in device["matches"]] == ["google-sargo"]
        assert device["getvars"]["product"] == "sargo"


def test_bad_input_from_the_page_gets_one_clear_message(tmp_path: Path) -> None:
    ui = UiProcess(tmp_path / "state", "--tcp", "127.0.0.1:9")
    try:
        # A file that is not a journal: uploaded fine, then its timeline says what is wrong.
        status, answer = api(ui, "/api/journals", method="POST", body=b"not a journal" * 100,
                             headers={"x-filename": "notes.txt"})  # fmt: skip
        assert status == 200
        status, answer = api(ui, f"/api/journals/{answer['id']}")
        assert status == 422
        assert "journal" in answer["error"]["message"].lower()
        status, answer = api(ui, "/api/journals/nope.fbj")
        assert status == 404 and "no such journal" in answer["error"]["message"]
        # The boot form: checked before anything runs.
        status, answer = api(ui, "/api/boots", method="POST",
                             body=json.dumps({"artifact": "x", "wait": -1}).encode())
        assert status == 400 and "seconds" in answer["error"]["message"]
        status, answer = api(ui, "/api/boots", method="POST", body=b"{not json")
        assert status == 400 and "not JSON" in answer["error"]["message"]
        status, answer = api(ui, "/api/boots", method="POST",
                             body=json.dumps({"artifact": "x", "bogus": 1}).encode())
        assert status == 400 and "bogus" in answer["error"]["message"]
        # A missing artifact: the boot ends at once, failed, saying which file.
        missing = tmp_path / "missing.erofs"
        status, answer = api(ui, "/api/boots", method="POST",
                             body=json.dumps({"artifact": str(missing)}).encode())
        assert status == 200
        connection = http.client.HTTPConnection(ui.host, ui.port, timeout=30)
        connection.request("GET", f"/api/boots/{answer['id']}/events",
                           headers={"Authorization": f"token {ui.token}"})
        stream = connection.getresponse().read().decode()  # ends with the boot
        connection.close()
        end = json.loads(stream.split("event: end\ndata: ", 1)[1].split("\n", 1)[0])
        assert end["state"] == "failed"
        assert end["error"]["message"] == f"no such rootfs image: {missing}"
        assert end["error"]["hint"]
        _, listed = api(ui, "/api/journals")
        (upload,) = [Path(e["path"]) for e in listed["journals"] if e["origin"] == "upload"]
        assert upload.read_bytes() == b"not a journal" * 100
    finally:
        # uvicorn shuts down gracefully, then re-raises SIGTERM: the shell sees 143.
        assert ui.stop() == -signal.SIGTERM
    assert not upload.exists()  # the uploads' copies go with the server
    assert "Traceback" not in ui.log.read_text()
