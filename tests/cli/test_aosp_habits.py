"""AOSP habits: -s, ANDROID_SERIAL, tcp:/udp: forms, `devices [-l]`, padded getvar values.

Two simulated phones run side by side — as `fastboop sim` processes over fastboot TCP for
the command line, and on an emulated USB bus for USB serial numbers — and every way of
naming one of them must pick that one and never touch the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest

from fastboop.backends.selection import (
    DeviceSelector,
    network_location,
    parse_selector,
    selector_from,
)
from fastboop.errors import UsageError
from fastboop.runtime.facade import list_devices, prepare_session
from fastboop.sim.model import load_model
from fastboop.sim.usb_bus import EmulatedDevice, SimUsbBackend
from tests.support.simulators import free_port, simulators

FAJITA_SERIAL = "7c1e2d9f"
SARGO_SERIAL = "94AX0A1B2C"


def fastboop(*args: str) -> list[str]:
    return [sys.executable, "-m", "fastboop.cli.main", *args]


def test_selectors_read_like_aosp() -> None:
    assert parse_selector("7c1e2d9f") == DeviceSelector(kind="serial", value="7c1e2d9f")
    assert parse_selector("usb:1-2.3") == DeviceSelector(kind="usb-path", value="1-2.3")
    assert parse_selector("tcp:phone.lan") == DeviceSelector(kind="tcp", value="phone.lan:5554")
    assert parse_selector("udp:10.0.0.2:7000") == DeviceSelector(kind="udp",
                                                                 value="10.0.0.2:7000")
    assert network_location("tcp", "tcp:127.0.0.1:5555") == "127.0.0.1:5555"
    assert network_location("tcp", "127.0.0.1") == "127.0.0.1:5554"
    with pytest.raises(UsageError, match="this is a udp address"):
        network_location("tcp", "udp:127.0.0.1")
    with pytest.raises(UsageError, match="bad port"):
        parse_selector("tcp:127.0.0.1:http")


def test_dash_s_wins_over_android_serial_as_in_aosp() -> None:
    env = {"ANDROID_SERIAL": SARGO_SERIAL}
    assert selector_from(None, env) == DeviceSelector(kind="serial", value=SARGO_SERIAL,
                                                      origin="ANDROID_SERIAL")  # fmt: skip
    assert selector_from(FAJITA_SERIAL, env) == DeviceSelector(kind="serial",
                                                               value=FAJITA_SERIAL)
    assert selector_from(None, {"ANDROID_SERIAL": " "}) is None
    assert selector_from(None, {}) is None


def two_usb_phones() -> SimUsbBackend:
    return SimUsbBackend([
        EmulatedDevice(load_model("oneplus-fajita")),
        EmulatedDevice(load_model("google-sargo"), address=6, port_numbers=(3,)),
    ])  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize("device", [SARGO_SERIAL, "usb:1-3", FAJITA_SERIAL, "usb:1-2"])
async def test_a_usb_selection_lists_only_that_phone(device: str) -> None:
    result = await list_devices(device=device, usb_backend=two_usb_phones())
    (report,) = result.devices
    want = SARGO_SERIAL if device in (SARGO_SERIAL, "usb:1-3") else FAJITA_SERIAL
    assert report.device.serial == want


@pytest.mark.anyio
async def test_android_serial_picks_the_phone_a_session_waits_for(tmp_path: Path) -> None:
    """The session's device source sees only the selected phone, the other never arrives."""
    import anyio

    rootfs = tmp_path / "r.img"
    rootfs.write_bytes(bytes(4096))
    selector = selector_from(None, {"ANDROID_SERIAL": SARGO_SERIAL})
    session = prepare_session(rootfs, device=selector, usb_backend=two_usb_phones(),
                              journal=None, preflight=False)  # fmt: skip
    arrived: list[str | None] = []
    with anyio.move_on_after(1.0):
        await session.backend.devices.watch(  # type: ignore[attr-defined]
            lambda device, present: arrived.append(device.serial))
    assert arrived == [SARGO_SERIAL]


def assert_every_form_picks_sargo(kind: str, fajita: str, sargo: str) -> None:
    """``-s KIND:ADDR``, ``ANDROID_SERIAL``, ``-s`` over ``ANDROID_SERIAL``, and
    ``--KIND KIND:ADDR`` (as typed from ``fastboot -s``) each list sargo, and only it."""
    for argv, env in (
        (["-s", f"{kind}:{sargo}"], {}),
        ([], {"ANDROID_SERIAL": f"{kind}:{sargo}"}),
        (["-s", f"{kind}:{sargo}"], {"ANDROID_SERIAL": f"{kind}:{fajita}"}),  # -s wins
        ([f"--{kind}", f"{kind}:{sargo}"], {}),
    ):
        done = subprocess.run(fastboop("devices", "-l", "--json", *argv),
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})  # fmt: skip
        assert done.returncode == 0, done.stderr
        (row,) = json.loads(done.stdout)
        assert (row["serial"], row["path"], row["profiles"]) == (
            SARGO_SERIAL, f"{kind}:{sargo}", ["google-sargo"])


def test_tcp_forms_pick_the_right_one_of_two_simulated_phones(tmp_path: Path) -> None:
    with simulators(tmp_path, "oneplus-fajita", "google-sargo") as [(fajita, _), (sargo, _)]:
        listed = subprocess.run(fastboop("devices", "--tcp", fajita, "--tcp", f"tcp:{sargo}"),
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert listed.stdout.splitlines() == [f"{FAJITA_SERIAL}\tfastboot",
                                              f"{SARGO_SERIAL}\tfastboot"]  # fmt: skip
        assert_every_form_picks_sargo("tcp", fajita, sargo)
        long = subprocess.run(fastboop("devices", "-l", "-s", f"tcp:{fajita}"),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert long.stdout == (
            f"{FAJITA_SERIAL:<22} fastboot tcp:{fajita} profiles:oneplus-enchilada,"
            "oneplus-fajita (ambiguous: boot needs --device-profile)\n"
        )


def test_udp_forms_pick_the_right_one_of_two_simulated_phones(tmp_path: Path) -> None:
    with simulators(tmp_path, "oneplus-fajita", "google-sargo", transport="udp") as [
        (fajita, _), (sargo, _)]:  # fmt: skip
        assert_every_form_picks_sargo("udp", fajita, sargo)


def test_boot_dash_s_tcp_boots_the_selected_phone_only(tmp_path: Path, rootfs: Path) -> None:
    image = rootfs
    with simulators(tmp_path, "oneplus-fajita", "google-sargo") as [(fajita, fajita_boots),
                                                                    (sargo, sargo_boots)]:
        done = subprocess.run(
            fastboop("boot", str(image), "--tcp", f"tcp:{fajita}", "--device-profile",
                     "oneplus-fajita", "--gadget-timeout", "1", "--no-journal", "--json"),
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "ANDROID_SERIAL": f"tcp:{sargo}"},
        )  # fmt: skip
        # --tcp with ANDROID_SERIAL naming another network device: refused, nothing opened.
        assert done.returncode == 2
        assert "names one network device" in done.stderr
        done = subprocess.run(
            fastboop("boot", str(image), "-s", f"tcp:{fajita}", "--device-profile",
                     "oneplus-fajita", "--gadget-timeout", "1", "--no-journal", "--json"),
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "ANDROID_SERIAL": f"tcp:{sargo}"},
        )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    arrived = [line["device"]["location"] for line in lines if line["type"] == "device_arrived"]
    assert arrived == [fajita]
    assert lines[-1]["type"] == "result" and lines[-1]["exit_code"] == 1
    assert len(list(fajita_boots.glob("*.img"))) == 1
    assert not sargo_boots.exists() or not list(sargo_boots.glob("*.img"))


def test_padded_getvar_values_match_as_aosp_prints_them(tmp_path: Path) -> None:
    model = load_model("oneplus-fajita")
    padded = msgspec.structs.replace(
        model, getvar={**model.getvar, "product": "sdm845  ", "partition-type:op2": "raw\0"})
    path = tmp_path / "padded.yaml"
    path.write_text(json.dumps(msgspec.to_builtins(padded)))  # JSON is YAML too
    with simulators(tmp_path, str(path)) as [(address, _)]:
        done = subprocess.run(
            fastboop("detect", "-s", f"tcp:{address}", "--device-profile", "oneplus-fajita",
                     "--json", "--no-journal"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (device,) = json.loads(done.stdout)["devices"]
    assert [match["profile"] for match in device["matches"]] == ["oneplus-fajita"]


@contextmanager
def usbip_phones(tmp_path: Path, *models: str) -> Iterator[list[str]]:
    """`fastboop sim MODEL --usbip` per model: phones on USB/IP buses, by their serials."""
    started: list[subprocess.Popen[bytes]] = []
    addresses: list[str] = []
    try:
        for index, model in enumerate(models):
            address = f"127.0.0.1:{free_port()}"
            log = tmp_path / f"sim-{index}.log"
            with log.open("w") as out:
                started.append(subprocess.Popen(
                    fastboop("sim", model, "--usbip", address, "--tcp",
                             f"127.0.0.1:{free_port()}"),
                    stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
            deadline = time.monotonic() + 30  # a hang guard, not a speed limit
            while "transport=usbip" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            addresses.append(address)
        yield addresses
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)


def test_serial_and_android_serial_pick_one_of_two_usb_phones(tmp_path: Path) -> None:
    """Two phones on USB (behind USB/IP, the way a phone on another machine is)."""
    with usbip_phones(tmp_path, "oneplus-fajita", "google-sargo") as [first, second]:
        buses = ["--usbip", first, "--usbip", second]
        both = subprocess.run(fastboop("devices", *buses), capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert sorted(both.stdout.splitlines()) == sorted([f"{SARGO_SERIAL}\tfastboot",
                                                           f"{FAJITA_SERIAL}\tfastboot"])
        for argv, env in (
            (["-s", SARGO_SERIAL], {}),
            ([], {"ANDROID_SERIAL": SARGO_SERIAL}),
            (["-s", SARGO_SERIAL], {"ANDROID_SERIAL": FAJITA_SERIAL}),  # -s wins
        ):
            done = subprocess.run(
                fastboop("detect", *buses, *argv, "--json", "--no-journal"),
                capture_output=True, text=True, timeout=120, env={**os.environ, **env},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            (device,) = json.loads(done.stdout)["devices"]
            assert device["device"]["serial"] == SARGO_SERIAL
            assert [match["profile"] for match in device["matches"]] == ["google-sargo"]
