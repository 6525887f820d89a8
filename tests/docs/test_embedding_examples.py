"""Every example in docs/embedding.md is a real file here, and runs under asyncio and trio."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
HANG_GUARD = 180  # seconds per example; a guard against hangs, never a speed limit


@pytest.fixture(scope="module")
def rootfs() -> Path:
    from fastboop.demo.rootfs import demo_rootfs

    return demo_rootfs(REPO / ".cache" / "xdg" / "fastboop")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_quickstart_asyncio(result: Any) -> None:
    assert (result.state, result.outcome) == ("done", "served for the requested duration")


def check_quickstart_trio(result: Any) -> None:
    assert (result.state, result.outcome) == ("done", "the phone has read its rootfs")


def check_app_keeps_working(outcome: Any) -> None:
    app, result = outcome
    assert result.state == "done"
    # The app's own task ran while fastboop identified, built (in a worker thread, over a
    # second), uploaded and served: 0.05 s ticks, so several of them at the very least.
    assert app.ticks_during_boot >= 5
    assert app.log[0] == "SessionStarted" and "UploadAccepted" in app.log


def check_custom_transport(outcome: Any) -> None:
    result, counts = outcome
    assert result.state == "done"
    assert counts["out"] >= result.image_size  # the whole image went through our transport


def check_custom_block_source(outcome: Any) -> None:
    result, source = outcome
    assert result.state == "done"
    assert source.bytes_read >= source.size and result.serve_bytes_read >= source.size


def check_replay_programmatically(outcome: Any) -> None:
    report, snapshot = outcome
    assert report.ok and report.final_state == "done"
    assert snapshot.state == "booting" and snapshot.bytes_sent == snapshot.bytes_total > 0


def check_simulated_phone(outcome: Any) -> None:
    profiles, result = outcome
    assert profiles == ["oneplus-enchilada", "oneplus-fajita"]
    assert result.state == "failed"
    assert result.outcome.endswith("device said FAIL: not enough memory")


CHECKS: dict[str, Callable[[Any], None]] = {
    name.removeprefix("check_"): check
    for name, check in dict(globals()).items() if name.startswith("check_")
}  # fmt: skip


def test_every_example_file_is_checked_and_shown_in_the_docs() -> None:
    files = sorted(path.stem for path in EXAMPLES.glob("*.py"))
    assert files == sorted(CHECKS)
    doc = (REPO / "docs" / "embedding.md").read_text()
    shown = dict(re.findall(r"<!-- file: docs/examples/(\S+)\.py -->\n```python\n(.*?)```\n",
                            doc, re.S))  # fmt: skip
    assert sorted(shown) == files
    for name, code in shown.items():
        assert code == (EXAMPLES / f"{name}.py").read_text(), f"docs/embedding.md: {name}"


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_example_runs(name: str, rootfs: Path) -> None:
    module = load(name)
    with anyio.fail_after(HANG_GUARD):
        outcome = await module.main(str(rootfs))
    CHECKS[name](outcome)
