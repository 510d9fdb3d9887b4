#!/usr/bin/env python3
"""The screenshots of docs/viewer.md, taken in headless Chromium from the hand-built sample sessions of
tests/viewer_samples.py (a fallback attempt, a limit wait, a failed tool call, an injected ``<script>``, a
subagent), so they are the same on every machine.

    .venv/bin/python scripts/viewer_screenshots.py [OUT_DIR]     # default docs/images

Needs Debian's ``chromium`` (scripts/test installs it). Writes viewer-report.png, viewer-tool-open.png,
viewer-sessions.png and viewer-session-live.png.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caw.viewer.html import write_report  # noqa: E402
from caw.viewer.server import ViewerServer  # noqa: E402
from caw.viewer.source import load_source  # noqa: E402
from tests.browser import Chromium  # noqa: E402
from tests.viewer_samples import sample_trajectory, subagent_trajectory, write_session  # noqa: E402


def _sessions(data: Path) -> Path:
    main = write_session(data, sample_trajectory("3f2a9c1b7d604e11"), subagent=subagent_trajectory())
    failed = sample_trajectory("9b1e77c2a0f54d3a")
    failed.agent = "codex"
    failed.model = "gpt-5"
    failed.created_at -= timedelta(hours=3)
    failed.turns = failed.turns[:1]
    failed.turns[0].status = "failed"
    failed.turns[0].input = "Upgrade the dependencies and run the linters"
    write_session(data, failed)
    limited = sample_trajectory("c05d2e9a41b84f70")
    limited.agent = "opencode"
    limited.model = "glm-4.6"
    limited.created_at -= timedelta(days=1)
    limited.turns = limited.turns[:2]
    limited.pending_message = limited.turns[1].input
    limited.turns[0].input = "Write a changelog entry for the release"
    write_session(data, limited)
    return main


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        session_dir = _sessions(tmp / "data")
        report = tmp / "report.html"
        write_report(load_source(session_dir), report)
        with Chromium.launch(tmp, width=1200, height=860) as browser:
            page = browser.page()
            page.navigate(report.as_uri())
            page.wait_for("document.body.dataset.ready === '1'")
            page.screenshot(out / "viewer-report.png")
            page.click("#app section.turn:nth-of-type(1) details.tool > summary")
            # a tool call that ran a subagent is open from the start, the subagent's trajectory inside it
            page.wait_for("!!document.querySelector('#app .subagent section.turn')")
            page.evaluate("scrollBy(0, document.querySelector('#app .subagent').getBoundingClientRect().top - 330)")
            page.screenshot(out / "viewer-tool-open.png")
            with ViewerServer(tmp / "data") as server:
                page.navigate(server.url)
                page.wait_for("document.querySelectorAll('#sessions tr').length === 3")
                page.screenshot(out / "viewer-sessions.png")
                page.navigate(server.url + "session/3f2a9c1b7d604e11")
                page.wait_for("document.body.dataset.ready === '1'")
                page.click("#app section.turn:nth-of-type(1) details.tool:nth-of-type(3) > summary")
                page.wait_for("!!document.querySelector('#app details.tool[open] .body')")
                page.evaluate("document.querySelector('#app section.turn').scrollIntoView()")
                page.screenshot(out / "viewer-session-live.png")
                page.navigate("about:blank")
    for name in ("viewer-report", "viewer-tool-open", "viewer-sessions", "viewer-session-live"):
        print(out / f"{name}.png")


if __name__ == "__main__":
    main()
