"""The session machine as an SVG picture, drawn from the transition table itself.

It is the machine ``docs/session-machine.md`` draws (same states, same edges, read from
:mod:`fastboop.machines.table`), laid out for a browser: the happy path on one row from
``idle`` to ``serving``, the three ends underneath. Every state is a ``<g id="state-NAME">``
and every edge a ``<path id="edge-SOURCE--DEST">``, so the page highlights the path a
session takes by adding classes, with no layout work and no library in the browser.
Edges that stay in their state (retries, ignored events) are not drawn, as in the docs;
neither are the terminal states' "late event" loops.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from fastboop.machines import table

ROW = (table.IDLE, table.WAITING_FOR_DEVICE, table.PROBING, table.BUILDING, table.UPLOADING,
       table.BOOTING, table.WAITING_FOR_GADGET, table.SERVING)  # fmt: skip
ENDS = {table.CANCELLED: 2.5, table.FAILED: 4.5, table.DONE: 7.0}  # under which column

NODE_W, NODE_H = 118, 34
STEP_X, MARGIN_X = 134, 14
ROW_Y, END_Y = 150, 290
WIDTH = MARGIN_X * 2 + STEP_X * (len(ROW) - 1) + NODE_W
HEIGHT = END_Y + NODE_H + 16


def edges() -> list[tuple[str, str, tuple[str, ...]]]:
    """``(source, dest, triggers)`` for every state change the table allows, in table order."""
    found: dict[tuple[str, str], list[str]] = {}
    for transition in table.TRANSITIONS:
        dest = transition["dest"]
        sources = transition["source"]
        for source in [sources] if isinstance(sources, str) else sources:
            if dest is None or dest == source:
                continue
            triggers = found.setdefault((source, dest), [])
            if transition["trigger"] not in triggers:
                triggers.append(transition["trigger"])
    return [(source, dest, tuple(triggers)) for (source, dest), triggers in found.items()]


def _position(state: str) -> tuple[float, float]:
    """Top-left corner of a state's box."""
    if state in ROW:
        return MARGIN_X + STEP_X * ROW.index(state), ROW_Y
    return MARGIN_X + STEP_X * ENDS[state], END_Y


def _centre(state: str) -> tuple[float, float]:
    x, y = _position(state)
    return x + NODE_W / 2, y + NODE_H / 2


def _edge_path(source: str, dest: str) -> str:
    (sx, sy), (dx, dy) = _centre(source), _centre(dest)
    if dest in ENDS:
        # Down to an end: from the bottom of the source to the top of the end state.
        return f"M{sx:.0f},{sy + NODE_H / 2:.0f} L{dx:.0f},{dy - NODE_H / 2:.0f}"
    span = ROW.index(dest) - ROW.index(source)
    if span == 1:
        return f"M{sx + NODE_W / 2:.0f},{sy:.0f} L{dx - NODE_W / 2:.0f},{dy:.0f}"
    # Skips forward arc above the row, steps back arc above it higher still, so that
    # nothing crosses the edges that go down to the ends.
    lift = 26 + 14 * abs(span) + (18 if span < 0 else 0)
    top = sy - NODE_H / 2
    start_x = sx + (10 if span > 0 else -10)
    end_x = dx + (-10 if span > 0 else 10)
    return (f"M{start_x:.0f},{top:.0f} C{start_x:.0f},{top - lift:.0f} "
            f"{end_x:.0f},{top - lift:.0f} {end_x:.0f},{top:.0f}")  # fmt: skip


def edge_id(source: str, dest: str) -> str:
    return f"edge-{source}--{dest}"


def svg() -> str:
    """The diagram as one ``<svg>`` element (no XML declaration: it is inlined in the page)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="machine" viewBox="0 0 {WIDTH} '
        f'{HEIGHT}" role="img" aria-label="the session state machine">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/>'
        "</marker></defs>",
    ]
    for source, dest, triggers in edges():
        label = escape(" | ".join(triggers))
        path = _edge_path(source, dest)
        parts.append(f'<path id="{edge_id(source, dest)}" class="edge" d="{path}" '
                     f'marker-end="url(#arrow)"><title>{escape(source)} → {escape(dest)}: '
                     f"{label}</title></path>")  # fmt: skip
    parts += list(_nodes(table.STATES))
    parts.append("</svg>")
    return "".join(parts)


def _nodes(states: Iterable[str]) -> Iterable[str]:
    for state in states:
        x, y = _position(state)
        kind = "end" if state in ENDS else "step"
        yield (f'<g id="state-{state}" class="state {kind}"><rect x="{x:.0f}" y="{y:.0f}" '
               f'width="{NODE_W}" height="{NODE_H}" rx="8"/><text x="{x + NODE_W / 2:.0f}" '
               f'y="{y + NODE_H / 2 + 4:.0f}">{escape(state.replace("_", " "))}</text></g>')
