"""The ``caw run`` views on event sequences as each CLI emits them (no processes)."""

from __future__ import annotations

import io

from rich.console import Console

from caw.cli.views import LiveView
from caw.events import ToolCallEvent, ToolResultEvent


def _live() -> tuple[LiveView, io.StringIO]:
    buf = io.StringIO()
    return LiveView(Console(file=buf, force_terminal=True, width=100, color_system=None)), buf


def test_codex_tool_call_announced_at_start_and_with_its_result_is_shown_once() -> None:
    view, buf = _live()
    view.start("codex")
    view.event(ToolCallEvent(provider="codex", id="item_0", name="shell", arguments={"command": "echo hi"}))
    view.event(
        ToolResultEvent(provider="codex", id="item_0", output="hi", name="shell", arguments={"command": "echo hi"})
    )
    assert buf.getvalue().count("⏺ shell(echo hi)") == 1
    assert "⎿ hi" in buf.getvalue()


def test_a_result_that_brings_its_own_call_shows_the_call_line() -> None:
    view, buf = _live()
    view.start("opencode")
    view.event(ToolResultEvent(provider="opencode", id="t1", output="ok", name="bash", arguments={"command": "ls"}))
    assert buf.getvalue().count("⏺ bash(ls)") == 1
