"""Every way a user installs fastboop works, from a fresh clone, away from the checkout.

From a ``git clone`` of this repository: ``python -m build --sdist`` and ``pip wheel .``;
a wheel rebuilt from the sdist with no compiler at all (it must take the sdist's prebuilt
stage0 binaries, byte-identical to a fresh build: the build is reproducible); a wheel
from a clone without the aarch64 compiler (it must refuse to build, saying what to
install). Then each install — the wheel with pip; the sdist with pip, ``uv tool install``
and ``pipx install``; the git URL with pip and ``uv tool install`` — runs ``--version``,
``devpro list``, ``stage0 … -o`` and ``boot --output`` from a directory outside the
checkout, and mypy finds fastboop's types in a user's script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCHES = ("x86_64", "aarch64")
USER_SCRIPT = """\
import fastboop


async def main() -> str:
    options = fastboop.BootOptions(dtb="board.dtb", system_time=False)
    built = fastboop.build_boot_image("rootfs.erofs", device_profile="oneplus-fajita",
                                      options=options)
    size: int = built.size
    result = await fastboop.boot("rootfs.erofs", device_profile="oneplus-fajita")
    return result.state + str(size)
"""
WRONG_SCRIPT = USER_SCRIPT.replace("size: int = built.size", "size: str = built.size")


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    done = subprocess.run(argv, cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    if check:
        assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would point into the checkout."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}  # fmt: skip
    return {**env, **extra}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("install")


@pytest.fixture(scope="module")
def clone(work: Path) -> Path:
    target = work / "clone"
    run(["git", "clone", "--quiet", str(REPO), str(target)], cwd=work)
    return target


@pytest.fixture(scope="module")
def dist(work: Path, clone: Path) -> Path:
    out = work / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(clone)], cwd=work)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out),
         str(clone)], cwd=work)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def rootfs() -> Path:
    from fastboop.demo.rootfs import demo_rootfs

    return demo_rootfs(REPO / ".cache" / "xdg" / "fastboop")


def stage0_binaries(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {arch: archive.read(f"fastboop/_data/stage0/{arch}/stage0-init")
                for arch in ARCHES}  # fmt: skip


def test_the_sdist_carries_reproducible_prebuilt_stage0(work: Path, dist: Path) -> None:
    (sdist,) = dist.glob("fastboop-*.tar.gz")
    (wheel,) = dist.glob("fastboop-*.whl")
    fresh = stage0_binaries(wheel)
    assert all(data.startswith(b"\x7fELF") for data in fresh.values())
    # No compiler at all: the wheel must come from the sdist's prebuilt binaries.
    no_cc = work / "no-cc"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(no_cc),
         str(sdist)], cwd=work,
        env=clean_env(CC_x86_64="no-such-cc", CC_aarch64="no-such-cc"))  # fmt: skip
    (rebuilt,) = no_cc.glob("fastboop-*.whl")
    assert stage0_binaries(rebuilt) == fresh  # byte-identical: a reproducible build


def test_a_wheel_without_a_compiler_or_prebuilt_binary_fails_to_build(
    work: Path, clone: Path
) -> None:
    done = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(work / "none"),
                str(clone)], cwd=work, env=clean_env(CC_aarch64="no-such-cc"),
               check=False)  # fmt: skip
    assert done.returncode != 0
    assert ("cannot build a wheel without stage0's PID1 for every architecture" in done.stdout
            + done.stderr)  # fmt: skip
    assert "aarch64: the C compiler 'no-such-cc' is not installed" in done.stdout + done.stderr
    assert not list((work / "none").glob("*.whl"))


def installed(work: Path, how: str, dist: Path, clone: Path) -> Path:
    """A clean install made the way ``how`` says; returns the directory of its fastboop."""
    elsewhere = work / f"run-{how}"
    elsewhere.mkdir(exist_ok=True)
    (sdist,) = dist.glob("fastboop-*.tar.gz")
    if how.startswith("uv-tool-"):
        source = str(sdist) if how == "uv-tool-sdist" else f"git+file://{clone}"
        tools, bins = work / f"uv-tools-{how}", work / f"uv-bin-{how}"
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
        run([uv, "tool", "install", "--quiet", source], cwd=elsewhere,
            env=clean_env(UV_TOOL_DIR=str(tools), UV_TOOL_BIN_DIR=str(bins),
                          UV_CACHE_DIR=str(work / "uv-cache")))  # fmt: skip
        return bins
    if how == "pipx-sdist":  # pipx itself from PyPI, in a venv of its own
        helper = work / "venv-pipx"
        run([sys.executable, "-m", "venv", str(helper)], cwd=elsewhere)
        run([str(helper / "bin" / "python"), "-m", "pip", "install", "--quiet", "pipx"],
            cwd=elsewhere)  # fmt: skip
        bins = work / "pipx-bin"
        run([str(helper / "bin" / "pipx"), "install", "--quiet", str(sdist)], cwd=elsewhere,
            env=clean_env(PIPX_HOME=str(work / "pipx-home"), PIPX_BIN_DIR=str(bins)))
        return bins
    venv = work / f"venv-{how}"
    run([sys.executable, "-m", "venv", str(venv)], cwd=elsewhere)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if how == "pip-wheel":
        (wheel,) = dist.glob("fastboop-*.whl")
        run([*pip, str(wheel), "mypy"], cwd=elsewhere)
    elif how == "pip-sdist":
        run([*pip, str(sdist)], cwd=elsewhere)
    else:
        run([*pip, f"git+file://{clone}"], cwd=elsewhere)
    return venv / "bin"


def served_by_ui(fastboop: str, path: str, *, cwd: Path, env: dict[str, str]) -> str:
    """``path`` as the installed ``fastboop ui`` serves it: its page's assets ship in the
    package (``pipx run fastboop ui`` has no checkout to read them from)."""
    cwd.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([fastboop, "ui", "--no-browser", "--tcp", "127.0.0.1:9"],
                               cwd=cwd, env={**env, "XDG_STATE_HOME": str(cwd / "state")},
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        base, _, token = process.stdout.readline().strip().partition("/?token=")
        request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.read().decode())
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("how", ["pip-wheel", "pip-sdist", "pip-git", "uv-tool-sdist",
                                 "uv-tool-git", "pipx-sdist"])
def test_each_install_boots_and_builds_away_from_the_checkout(
    work: Path, dist: Path, clone: Path, rootfs: Path, how: str
) -> None:
    bin_dir = installed(work, how, dist, clone)
    fastboop = str(bin_dir / "fastboop")
    here = work / f"run-{how}"
    env = clean_env(XDG_CONFIG_HOME=str(here / "config"))
    version = run([fastboop, "--version"], cwd=here, env=env)
    assert version.stdout.startswith("fastboop ")
    profiles = run([fastboop, "devpro", "list"], cwd=here, env=env)
    assert "oneplus-fajita" in profiles.stdout and "[builtin]" in profiles.stdout
    run([fastboop, "stage0", str(rootfs), "--device-profile", "oneplus-fajita", "-o",
         str(here / "initrd.cpio")], cwd=here, env=env)  # fmt: skip
    assert (here / "initrd.cpio").read_bytes()[:6] == b"070701"
    run([fastboop, "boot", str(rootfs), "--device-profile", "oneplus-fajita", "--output",
         str(here / "boot.img")], cwd=here, env=env)  # fmt: skip
    assert (here / "boot.img").read_bytes()[:8] == b"ANDROID!"
    assert "fb.route" in served_by_ui(fastboop, "/static/app.js", cwd=here, env=env)
    if how == "pip-wheel":  # the installed package's own files, not the checkout's
        where = run([str(bin_dir / "python"), "-c", "import fastboop; print(fastboop.__file__)"],
                    cwd=here, env=env)  # fmt: skip
        assert where.stdout.startswith(str(work / "venv-pip-wheel"))


def test_mypy_finds_the_installed_types(work: Path, dist: Path, clone: Path) -> None:
    venv = work / "venv-pip-wheel"
    if not venv.exists():
        installed(work, "pip-wheel", dist, clone)
    here = work / "typing"
    here.mkdir()
    (here / "user.py").write_text(USER_SCRIPT)
    (here / "wrong.py").write_text(WRONG_SCRIPT)
    python = str(venv / "bin" / "python")
    ok = run([python, "-m", "mypy", "--strict", "user.py"], cwd=here, check=False)
    assert ok.returncode == 0, ok.stdout
    wrong = run([python, "-m", "mypy", "--strict", "wrong.py"], cwd=here, check=False)
    assert wrong.returncode == 1
    assert 'Incompatible types in assignment (expression has type "int", variable has ' \
           'type "str")' in wrong.stdout  # fmt: skip
