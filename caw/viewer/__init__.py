"""Viewer: a trajectory as a self-contained HTML report (``caw traj html``, ``caw run --html``), the local
``caw view`` server over a data dir, and the facts both share with the terminal view (``caw traj show``).

Standard library only (no rich, no typer). May import: ``caw.errors``, ``caw.models``, ``caw.text``,
``caw.state``. Never imports the providers, the session, the agent or the cli (which imports it).
"""

from __future__ import annotations

from caw.lazy import lazy_exports

__all__ = ["ViewerServer", "load_source", "render_report", "summarize", "write_report"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ViewerServer": "caw.viewer.server",
        "load_source": "caw.viewer.source",
        "render_report": "caw.viewer.html",
        "summarize": "caw.viewer.summary",
        "write_report": "caw.viewer.html",
    },
    __all__,
)
