"""The machine diagram in docs/ is generated from the code and must not go stale."""

from __future__ import annotations

from pathlib import Path

from fastboop.machines import diagram, table

DOC = Path(__file__).resolve().parents[2] / "docs" / "session-machine.md"


def test_docs_diagram_is_up_to_date() -> None:
    assert DOC.read_text() == diagram.markdown(), (
        "docs/session-machine.md is stale: run "
        "`.venv/bin/python -m fastboop.machines.diagram > docs/session-machine.md`"
    )


def test_diagram_shows_every_state_and_the_main_path() -> None:
    text = diagram.mermaid()
    for state in table.STATES:
        assert f'state "{state}" as {state}' in text
    assert "uploading --> booting: upload_accepted" in text
    assert "serving --> waiting_for_gadget: gadget_lost" in text


def test_diagram_changes_when_a_transition_changes() -> None:
    before = diagram.mermaid()
    table.TRANSITIONS.append({"trigger": "boot_accepted", "source": "idle", "dest": "done"})
    try:
        assert diagram.mermaid() != before
    finally:
        table.TRANSITIONS.pop()
