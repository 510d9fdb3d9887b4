"""claude 2.1.197 -> 2.1.332 surprises handled where caw builds the command and keeps the conversation."""

from __future__ import annotations

from pathlib import Path

import pytest

import caw
from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest
from tests.unit.scripted import ScriptedRunner


def _build(**config: object) -> tuple[list[str], dict[str, str]]:
    inv = get_provider("claude").build("claude", RunConfig(**config), TurnRequest(prompt="hi"))  # type: ignore[arg-type]
    return inv.argv, inv.env


def test_claude_never_continues_by_itself_after_a_usage_limit() -> None:
    """2.1.234 added autoContinueAtUsageLimit: caw's auto-wait owns limit waits, so it is turned off."""
    argv, _ = _build()
    assert argv[argv.index("--settings") + 1] == '{"autoContinueAtUsageLimit": false}'
    mine, _ = _build(extra_args=("--settings", "/my/settings.json"))
    assert mine.count("--settings") == 1 and "/my/settings.json" in mine  # the user's own settings win


def test_claude_retry_watchdog_does_not_sit_out_usage_limits() -> None:
    """CLAUDE_CODE_RETRY_WATCHDOG waits out a usage limit for up to 6 h, silently: capped at 0 for caw."""
    _, env = _build()
    assert env["CLAUDE_CODE_RETRY_WATCHDOG_MAX_USAGE_LIMIT_WAIT_MS"] == "0"


def test_permission_mode_is_always_explicit() -> None:
    """2.1.332 may start in `auto` when no mode is given: caw always names one."""
    for tools in (None, caw.ToolGroup.READER, caw.ToolGroup.WRITER, caw.ToolGroup.NONE):
        argv, _ = _build(tools=tools)
        assert argv[argv.index("--permission-mode") + 1] in ("default", "acceptEdits")


@pytest.mark.parametrize(("provider", "noted"), [("claude", True), ("codex", False)])
def test_a_changed_system_prompt_on_resume_is_reported_where_the_cli_keeps_the_first(
    tmp_path: Path, provider: str, noted: bool
) -> None:
    """--system-prompt-snapshot (on by default in 2.1.3xx) ignores a new system prompt on resume."""
    runner = ScriptedRunner({provider: ["first", "second"]})
    first = caw.Agent(provider=provider, data_dir=tmp_path, system_prompt="be terse", runner=runner)
    session = first.start_session()
    session.send("hello")
    handle = session.resume_handle
    session.end()
    later = caw.Agent(provider=provider, data_dir=tmp_path, system_prompt="be verbose", runner=runner)
    resumed = later.resume_session(handle)
    notes = [n for n in resumed.trajectory.notes if "first system prompt" in n]
    assert bool(notes) is noted
    same = caw.Agent(provider=provider, data_dir=tmp_path, system_prompt="be terse", runner=runner)
    assert not [n for n in same.resume_session(handle).trajectory.notes if "first system prompt" in n]


def _frames(*objs: dict[str, object]) -> list[str]:
    import json

    init = {"type": "system", "subtype": "init", "session_id": "s1", "model": "claude-opus-5-5"}
    result = {"subtype": "success", "is_error": False, "result": "hi", "type": "result", "terminal_reason": "completed"}
    return [json.dumps(o) for o in (init, *objs, result)]


def test_keep_alive_frames_are_ignored() -> None:
    from caw.events import RawEvent
    from caw.providers.claude import ClaudeParser
    from tests.unit.parse_helpers import replay

    events, _ = replay(ClaudeParser(), _frames({"type": "keep_alive"}))
    assert not [e for e in events if isinstance(e, RawEvent)]
    assert events[-1].type == "result"


def test_conversation_reset_and_newer_frames_are_kept_raw() -> None:
    from caw.events import RawEvent
    from caw.providers.claude import ClaudeParser
    from tests.unit.parse_helpers import replay

    lines = _frames({"type": "conversation_reset"}, {"type": "system", "subtype": "background_tasks_changed"})
    events, _ = replay(ClaudeParser(), lines)
    raw = [e.data.get("type") for e in events if isinstance(e, RawEvent)]
    assert raw == ["conversation_reset", "system"]


def test_session_writes_lost_becomes_a_warning_on_the_trajectory(tmp_path: Path) -> None:
    """2.1.3xx `system/session_writes_lost`: the transcript was not saved, so a resume may miss turns."""
    from collections.abc import Generator
    from typing import Any

    from caw.events import Event, WarningEvent
    from caw.models import Turn
    from caw.providers.claude import ClaudeParser
    from tests.unit.parse_helpers import replay

    lost = {"type": "system", "subtype": "session_writes_lost", "error_code": "ENOSPC"}
    events, _ = replay(ClaudeParser(), _frames(lost))
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert [w.code for w in warnings] == ["session_writes_lost"] and "ENOSPC" in warnings[0].message

    def runner(provider: Any, binary: Any, config: Any, request: Any, **_: Any) -> Generator[Event, None, Turn]:
        yield warnings[0]
        return Turn(input=request.prompt, provider="claude", status="completed")

    traj = caw.Agent(provider="claude", data_dir=tmp_path, runner=runner).completion("hi")
    assert any("resuming this conversation may miss turns" in n for n in traj.notes)
