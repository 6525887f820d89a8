"""``fastboop ui``: boot from the browser, watch the session live, debug any journal.

A local web app built on the public embedding API only (:func:`fastboop.watch_devices`,
:func:`fastboop.prepare_session` and :meth:`fastboop.Session.steps`,
:func:`fastboop.replay_recording`, :func:`fastboop.journal.open_journal`): it is itself
an embedder, and proves that API. Starlette serves it through uvicorn; the page is plain
HTML, CSS and vanilla JavaScript shipped in the wheel (``static/``), with nothing loaded
from the internet and no build step. See docs/ui.md.
"""

from fastboop.ui.app import UiSettings, create_app

__all__ = ["UiSettings", "create_app"]
