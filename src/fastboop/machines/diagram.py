"""Generate the session machine's diagram (Mermaid) from the transition table itself.

``docs/session-machine.md`` is produced by this module and checked by a test, so the
picture in the docs can never drift from the code. Regenerate it with
``python -m fastboop.machines.diagram > docs/session-machine.md``.
"""

from __future__ import annotations

import sys

from transitions.extensions import GraphMachine

from fastboop.machines import table

HEADER = """\
# The session machine

Generated from `fastboop.machines.table` by `python -m fastboop.machines.diagram`;
a test fails when this file is stale. Edge labels are triggers (event tags), with
`[conditions]` and `[!unless]` guards. Edges marked `[internal]` are events that are
accepted and ignored in that state.

Observations (`transfer_progress`, `serve_stats`, `getvar_answered`,
`bootloader_message`, `fastboot_limit_hit`) are accepted in every state, only update
counters, and are not drawn.

"""


class _Model:
    pass


def mermaid() -> str:
    """The Mermaid ``stateDiagram-v2`` source for the session machine."""
    model = _Model()
    # Terminal states ignore every late event; drawing those loops would bury the picture.
    transitions = [
        t
        for t in table.TRANSITIONS
        if not (t["dest"] is None and t["source"] == list(table.TERMINAL_STATES))
    ]
    GraphMachine(
        model=model,
        states=list(table.STATES),
        transitions=transitions,
        initial=table.IDLE,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title="fastboop session",
    )
    source: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    # Drop the "active state" highlight: the diagram shows the definition, not a run.
    lines = [line for line in source.splitlines() if not line.strip().startswith("Class ")]
    return "\n".join(lines).rstrip() + "\n"


def markdown() -> str:
    return f"{HEADER}```mermaid\n{mermaid()}```\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(markdown())
