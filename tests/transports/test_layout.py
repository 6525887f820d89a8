"""The layout rules of issue 14 §5: ``transports/`` holds transports only, without cycles.

Simulated phones and gadgets live in :mod:`fastboop.sim`; a transport module that imports
the simulator, or two transport modules that import each other (directly or round a
longer loop, even through a function-level import), would undo that.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fastboop.transports

PACKAGE = Path(fastboop.transports.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Every ``fastboop.*`` module ``path`` imports, at any level of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("fastboop.")}


def _graph() -> dict[str, set[str]]:
    modules = {f"fastboop.transports.{p.stem}": p for p in PACKAGE.glob("*.py")}
    return {name: _imports(path) & modules.keys() - {name} for name, path in modules.items()}


def test_transport_modules_do_not_import_the_simulator() -> None:
    offenders = {
        f"fastboop.transports.{path.stem}": sorted(
            name for name in _imports(path) if name.startswith("fastboop.sim")
        )
        for path in PACKAGE.glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_simulated_devices_left_in_transports() -> None:
    leftovers = sorted(p.name for p in PACKAGE.glob("*sim*.py"))
    assert leftovers == []


def test_transport_imports_have_no_cycle() -> None:
    graph = _graph()
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        state[name] = "done"
        stack.pop()
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_sees_function_level_imports(tmp_path: Path) -> None:
    # usb.py once imported usb_hotplug inside watch_usb(); such imports must count.
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from fastboop.transports.usb_hotplug import open_hotplug\n")
    assert "fastboop.transports.usb_hotplug" in _imports(source)
