"""Pages of the viewer: the self-contained trajectory report and the ``caw view`` session list.

A page is static HTML around JSON: ``<script type="application/json">`` elements hold the data (with ``<``,
``>`` and ``&`` escaped, so no text can close the element), the inline script renders it (``assets``). A
Content-Security-Policy with a per-page nonce lets only that script run and forbids every request except
to the page's own origin (the ``caw view`` server; a report from ``file://`` makes none).
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path
from typing import Any

from caw.models import Trajectory
from caw.viewer.assets import COMMON_JS, CSS, INDEX_JS, REPORT_JS
from caw.viewer.page import Page, build_page
from caw.viewer.source import Source


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` as ``\\u`` escapes.

    >>> script_json({"t": "</script><b>&"})
    '{"t":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, config: dict[str, Any], data_scripts: list[str], script: str) -> str:
    nonce = secrets.token_urlsafe(16)
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'"
    )
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        '<meta name="generator" content="caw">\n',
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        '<main id="root"><noscript>This caw page needs JavaScript to show the trajectory.</noscript></main>\n',
        f'<script type="application/json" id="caw-config">{script_json(config)}</script>\n',
        *data_scripts,
        f'<script nonce="{nonce}">{COMMON_JS}{script}</script>\n</body>\n</html>\n',
    ]
    return "".join(parts)


def _title(page: Page) -> str:
    h = page.data["header"]
    who = " · ".join(x for x in (h.get("provider"), h.get("model"), h.get("outcome")) if x)
    return f"caw trajectory {page.data.get('session_id') or page.data.get('label') or ''} ({who})"


def render_page(page: Page, *, config: dict[str, Any] | None = None, embed_fulls: bool = True) -> str:
    """The report page of a built ``Page``; ``embed_fulls=False`` when a server answers the full texts."""
    scripts = [f'<script type="application/json" id="caw-data">{script_json(page.data)}</script>\n']
    if embed_fulls:
        scripts += [
            f'<script type="application/json" id="caw-full-{i}">{script_json(text)}</script>\n'
            for i, text in enumerate(page.fulls)
        ]
    return _page(_title(page), config or {}, scripts, REPORT_JS)


def render_report(source: Source | Trajectory, *, base_dir: Path | None = None) -> str:
    """One self-contained HTML file showing ``source`` (no network, works from ``file://``).

    >>> from caw.models import Turn
    >>> page = render_report(Trajectory(agent="claude", turns=[Turn(input="<script>x</script>")]))
    >>> "<script>x</script>" in page, page.startswith("<!DOCTYPE html>")
    (False, True)
    """
    if isinstance(source, Trajectory):
        source = Source(source, source.to_dict(), base_dir, source.session_id)
    return render_page(build_page(source))


def write_report(source: Source | Trajectory, path: str | Path) -> int:
    """Write the self-contained HTML report of a trajectory (what ``caw traj html`` writes) to ``path``,
    atomically; returns its size in bytes. StorageError when it cannot be written. See docs/viewer.md.

    >>> traj = caw.Agent().completion("Fix the failing test")  # doctest: +SKIP
    >>> caw.write_report(traj, "report.html")  # doctest: +SKIP
    48213
    """
    from caw.state.store import atomic_write_text

    text = render_report(source)
    atomic_write_text(Path(path), text)
    return len(text.encode("utf-8"))


def render_index(config: dict[str, Any]) -> str:
    """The ``caw view`` session list (it loads the rows from ``config["api"]``)."""
    return _page("caw sessions", config, [], INDEX_JS)
