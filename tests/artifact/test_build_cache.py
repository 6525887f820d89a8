"""The fixture cache's build-once helper (tests/support/cache.py: artifact shapes, live
ISOs, VM disks) under a race: two builders of one entry at the same time (two worktrees
running the suite) each work privately; one copy wins, whole."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.cache import build_once


def test_concurrent_builders_never_mix_their_files(tmp_path: Path) -> None:
    done = tmp_path / "cache" / "shape"
    both_building = threading.Barrier(2)
    results: dict[str, Path] = {}

    def builder(name: str) -> None:
        def make(work: Path) -> None:
            (work / "part1").write_text(name)
            both_building.wait(timeout=10)  # the other one is mid-build too
            (work / "part2").write_text(name)

        results[name] = build_once(done, make)

    threads = [threading.Thread(target=builder, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"a": done, "b": done}
    winner = (done / "part1").read_text()
    assert (done / "part2").read_text() == winner  # one builder's files, not a mix
    assert sorted(p.name for p in done.parent.iterdir()) == ["shape"]  # loser cleaned up
    # Built once: a later caller does not build again.
    assert build_once(done, lambda work: pytest.fail("rebuilt")) == done


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    done = tmp_path / "shape"

    def broken(work: Path) -> None:
        (work / "half").write_text("x")
        raise RuntimeError("mkfs failed")

    with pytest.raises(RuntimeError):
        build_once(done, broken)
    assert list(tmp_path.iterdir()) == []
