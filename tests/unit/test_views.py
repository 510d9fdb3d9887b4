"""The ``caw run`` views on event sequences as each CLI emits them (no processes)."""

from __future__ import annotations

import io

from rich.console import Console

from caw.cli.live import LiveView
from caw.cli.views import JsonlView, Outcome, PlainView
from caw.events import (
    EVENT_ADAPTER,
    CawSessionEvent,
    ErrorEvent,
    Event,
    RawEvent,
    ResultEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from caw.models import Trajectory


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


# ---- issue 12: interrupts are not crashes; --jsonl names caw's session ------------------------------------
def test_plain_view_prints_no_empty_lines_for_raw_frames() -> None:
    """claude's task_* system frames are raw events: the progress on stderr says nothing for them."""
    out, err = io.StringIO(), io.StringIO()
    view = PlainView(out, err)
    view.event(RawEvent(provider="claude", data={"type": "system", "subtype": "task_started"}))
    view.event(RawEvent(provider="claude", data={"type": "system", "subtype": "task_notification"}))
    assert err.getvalue() == "" and out.getvalue() == ""


def _jsonl_lines(out: io.StringIO) -> list[Event]:
    return [EVENT_ADAPTER.validate_json(line) for line in out.getvalue().splitlines()]


def test_jsonl_last_line_is_caw_session_with_id_and_resume_handle() -> None:
    out = io.StringIO()
    view = JsonlView(out, io.StringIO())
    view.event(ResultEvent(provider="codex", text="done"))
    traj = Trajectory(session_id="s123", agent="codex", provider_session_id="thread-1")
    view.finish(Outcome(exit_code=0, trajectory=traj, resume_handle="caw1_abc"))
    last = _jsonl_lines(out)[-1]
    assert isinstance(last, CawSessionEvent)
    assert (last.session_id, last.resume_handle, last.provider_session_id) == ("s123", "caw1_abc", "thread-1")
    assert last.provider == "codex" and last.exit_code == 0


def test_jsonl_interrupted_turn_ends_with_cancelled_not_a_fatal_error() -> None:
    """After SIGTERM the stream's last word about the turn is that it was interrupted."""
    out = io.StringIO()
    view = JsonlView(out, io.StringIO())
    view.event(ErrorEvent(provider="claude", kind="cancelled", message="the turn was interrupted", fatal=False))
    traj = Trajectory(session_id="s1", agent="claude")
    view.finish(Outcome(exit_code=130, trajectory=traj, error="interrupted — run the command again"))
    events = _jsonl_lines(out)
    assert [e.type for e in events] == ["error", "caw_session"]
    assert not any(isinstance(e, ErrorEvent) and e.fatal for e in events)


def test_jsonl_second_signal_is_reported_as_cancelled() -> None:
    """A KeyboardInterrupt (second Ctrl-C) leaves no event from the turn: the view adds the cancelled one."""
    out = io.StringIO()
    view = JsonlView(out, io.StringIO())
    view.finish(Outcome(exit_code=130, trajectory=Trajectory(session_id="s1"), error="interrupted"))
    first = _jsonl_lines(out)[0]
    assert isinstance(first, ErrorEvent) and first.kind == "cancelled" and not first.fatal


def test_plain_view_says_interrupted_not_error_for_a_cancelled_turn() -> None:
    err = io.StringIO()
    view = PlainView(io.StringIO(), err)
    view.event(ErrorEvent(provider="claude", kind="cancelled", message="caw stopped the turn", fatal=False))
    assert err.getvalue() == "caw: [claude] interrupted: caw stopped the turn\n"
