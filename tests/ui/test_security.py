"""The UI server's front door, over real HTTP against ``fastboop ui``: the token, the
Host and Origin checks, and no way to files the user did not choose.

A browser is not needed to send a forged ``Host`` or a traversal path (and a browser
would normalize the path first), so these speak HTTP with ``http.client``; the same
checks seen from a real browser are in test_browser_security.py.
"""

from __future__ import annotations

import http.client
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.support import CLI, UiProcess


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiProcess]:
    root = tmp_path_factory.mktemp("ui-security")
    # A file next to the state directory that no request may reach.
    (root / "secret.fbj").write_bytes(b"FBOOPJNL the user's secret")
    (root / "state" / "fastboop" / "journals").mkdir(parents=True)
    process = UiProcess(root / "state", "--tcp", "127.0.0.1:9")  # watch nothing real
    try:
        yield process
    finally:
        process.stop()


def request(ui: UiProcess, path: str, *, method: str = "GET", token: bool = True,
            headers: dict[str, str] | None = None, body: bytes | None = None
            ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    connection = http.client.HTTPConnection(ui.host, ui.port, timeout=10)
    sent = {"Host": f"{ui.host}:{ui.port}"}
    if token:
        sent["Authorization"] = f"token {ui.token}"
    sent.update(headers or {})
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in sent.items():
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body or b"")))
    connection.endheaders(body)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (Linux's table)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_listens_on_loopback_with_a_random_token(ui: UiProcess) -> None:
    assert ui.host == "127.0.0.1"
    assert listening_addresses(ui.port) == {"0100007F"}  # 127.0.0.1 only, no wildcard
    assert len(ui.token) >= 32


def test_no_token_is_403(ui: UiProcess) -> None:
    for path in ("/", "/api/info", "/api/journals", "/static/app.js", "/api/devices/events"):
        status, _, body = request(ui, path, token=False)
        assert status == 403, path
        assert b"access token" in body
    status, _, _ = request(ui, "/api/info", token=False,
                           headers={"Authorization": "token not-the-token-at-all"})
    assert status == 403


def test_token_in_the_url_becomes_a_cookie(ui: UiProcess) -> None:
    status, headers, _ = request(ui, f"/journals?token={ui.token}", token=False)
    assert status == 303
    assert headers["location"] == "/journals"  # the token leaves the address bar
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, body = request(ui, "/api/info", token=False,
                              headers={"Cookie": cookie.split(";", 1)[0]})
    assert status == 200
    assert json.loads(body)["version"]


def test_rebinding_host_is_refused(ui: UiProcess) -> None:
    # evil.example re-pointed at 127.0.0.1 reaches us with its own name in Host.
    status, _, body = request(ui, "/api/info", headers={"Host": f"evil.example:{ui.port}"})
    assert status == 403
    assert b"DNS rebinding" in body
    status, _, _ = request(ui, "/api/info", headers={"Host": f"localhost:{ui.port}"})
    assert status == 200


def test_foreign_origin_is_refused(ui: UiProcess) -> None:
    boot = json.dumps({"artifact": "/etc/hostname"}).encode()
    for headers in ({"Origin": "http://evil.example"},
                    {"Origin": f"http://localhost:{ui.port}"},  # another origin, same port
                    {"Sec-Fetch-Site": "cross-site"}):
        status, _, _ = request(ui, "/api/boots", method="POST", headers=headers, body=boot)
        assert status == 403, headers
    _, _, info = request(ui, "/api/info")
    assert json.loads(info)["boots"] == []  # nothing was started
    status, _, _ = request(ui, "/api/info", headers={"Origin": ui.base()})
    assert status == 200


@pytest.mark.parametrize("path", [
    "/static/../../cli/ui.py",
    "/static/..%2f..%2fcli%2fui.py",
    "/static/%2e%2e/%2e%2e/cli/ui.py",
    "/api/journals/..%2f..%2f..%2fsecret.fbj",
    "/api/journals/%2e%2e%2fsecret.fbj/pcap",
    "/api/journals/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/journals/%2Fetc%2Fpasswd",
])  # fmt: skip
def test_traversal_is_refused(ui: UiProcess, path: str) -> None:
    status, _, body = request(ui, path)
    assert status in (403, 404, 422), (path, status)
    assert b"secret" not in body and b"root:" not in body and b"def register" not in body


def test_listen_elsewhere_needs_a_token(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "ui", "--no-browser", "--listen", "0.0.0.0"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "--listen needs --token" in result.stderr
    result = subprocess.run([*CLI, "ui", "--no-browser", "--token", "short"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "too short" in result.stderr


def test_listen_elsewhere_warns(tmp_path: Path) -> None:
    ui = UiProcess(tmp_path, "--listen", "127.0.0.2", "--token", "a-long-enough-token-1234",
                   "--allow-host", "phone-lab.lan", "--tcp", "127.0.0.1:9")
    try:
        assert ui.host == "127.0.0.2" and ui.token == "a-long-enough-token-1234"
        status, _, _ = request(ui, "/api/info")
        assert status == 200
        # A name the user allowed is accepted (a machine reached by name on a LAN).
        status, _, _ = request(ui, "/api/info", headers={"Host": f"phone-lab.lan:{ui.port}"})
        assert status == 200
        status, _, _ = request(ui, "/api/info", headers={"Host": f"other.lan:{ui.port}"})
        assert status == 403
    finally:
        ui.stop()
    assert "non-loopback" in ui.log.read_text()
