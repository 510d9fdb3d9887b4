"""The codex parser and argv builder: recorded output of the real binary, dict literals, one test per surprise.

Fixtures are `tests/fixtures/codex/*.jsonl` (scripts/record_fixtures.py); the `adapter_resume*` set is a
two-process thread (turn 1 with a tool call = two model requests, turn 2 through `exec resume`) and a
trimmed copy of its rollout file, see docs/dev/codex-notes.md.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from caw.errors import ConfigurationError, UsageLimitError
from caw.events import (
    ErrorEvent,
    Event,
    RateLimitEvent,
    RawEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
)
from caw.models import MCPServer, TextBlock, ThinkingBlock, ToolGroup, UsageStats
from caw.providers import codex as codex_module
from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest
from caw.providers.codex import (
    CodexParser,
    CodexProvider,
    CodexTurnContext,
    classify_failure,
    native_binary,
    rollout_totals,
    toml_string,
    usage_from_codex,
)
from caw.session.turn import error_from_event
from tests.unit.parse_helpers import FIXTURES, fixture_lines, fixture_meta, replay, replay_fixture

UTC = timezone.utc


def fatal(events: list[Event]) -> ErrorEvent | None:
    errors = [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
    return errors[-1] if errors else None


def new_parser(tmp_path: Path | None = None, *, resumed: bool = False, tz: str | None = "UTC") -> CodexParser:
    from zoneinfo import ZoneInfo

    home = tmp_path / "codex_home" if tmp_path is not None else None
    return CodexParser(CodexTurnContext(codex_home=home, resumed=resumed, tz=ZoneInfo(tz) if tz else None))


def turn_failed(message: str) -> list[str]:
    return [
        '{"type":"thread.started","thread_id":"t-1"}',
        '{"type":"turn.started"}',
        json.dumps({"type": "error", "message": message}),
        json.dumps({"type": "turn.failed", "error": {"message": message}}),
    ]


def completed(*items: dict[str, object], usage: dict[str, int] | None = None) -> list[str]:
    lines = ['{"type":"thread.started","thread_id":"t-1"}', '{"type":"turn.started"}']
    lines += [json.dumps({"type": "item.completed", "item": item}) for item in items]
    lines.append(json.dumps({"type": "turn.completed", "usage": usage or {"input_tokens": 1, "output_tokens": 1}}))
    return lines


# ---- recorded fixtures ----------------------------------------------------------------------------


def test_text_fixture() -> None:
    events, turn = replay_fixture(new_parser(), "codex", "text")
    started = events[0]
    assert isinstance(started, SessionStarted)
    assert started.session_id == fixture_meta("codex", "text")["session_id"]
    assert turn.result == "Hello from the fake model."
    assert fatal(events) is None and isinstance(events[-1], ResultEvent)
    assert events[-1].text == "Hello from the fake model."
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (9534, 12)


def test_tool_fixture_joins_result_to_call() -> None:
    events, turn = replay_fixture(new_parser(), "codex", "tool")
    assert [type(e) for e in events if isinstance(e, ToolCallEvent | ToolResultEvent)] == [
        ToolCallEvent,
        ToolResultEvent,
    ]
    [use] = turn.tool_uses
    assert use.name == "exec_command" and use.arguments == {"command": "/bin/bash -lc 'echo hi'"}
    assert use.output == "hi\n" and not use.is_error
    assert "Tool said" in turn.result


def test_exit_code_zero_even_when_a_command_failed() -> None:
    """The command exits 3, codex exits 0: the turn completes and only the tool use is an error."""
    meta = fixture_meta("codex", "tool_failed")
    assert meta["exit_code"] == 0
    events, turn = replay_fixture(new_parser(), "codex", "tool_failed")
    assert fatal(events) is None and isinstance(events[-1], ResultEvent)
    [use] = turn.tool_uses
    assert use.is_error and use.output == "oops\n"


def test_reasoning_item_becomes_a_thinking_block_and_reasoning_tokens_are_kept() -> None:
    _, turn = replay_fixture(new_parser(), "codex", "thinking")
    assert [type(b) for b in turn.output] == [ThinkingBlock, TextBlock]
    assert turn.output[0].text.startswith("**Planning**")  # type: ignore[union-attr]
    assert turn.usage.reasoning_tokens == 10 and turn.usage.output_tokens == 32


def test_error_items_are_warnings_not_failures() -> None:
    """`item.completed` with `type: error` (unknown model metadata) before `turn.started`: the run goes on."""
    events, turn = replay_fixture(new_parser(), "codex", "warning")
    [warning] = [e for e in events if isinstance(e, WarningEvent)]
    assert "fake-model" in warning.message
    assert fatal(events) is None and turn.result == "Hello despite the warning."


def test_usage_limit_text_uses_curly_apostrophe() -> None:
    """`You’ve hit your usage limit` (U+2019); the reset exists only as "try again at 4:00 AM" in local time."""
    meta = fixture_meta("codex", "rate_limited")
    lines = fixture_lines("codex", "rate_limited")
    assert "You\u2019ve hit your usage limit" in lines[-1]
    events, _ = replay(new_parser(tz="UTC"), lines, meta["exit_code"])
    err = fatal(events)
    assert err is not None and err.kind == "rate_limit"
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    assert limit.status == "rejected" and limit.resets_at is not None
    # the fixture was recorded earlier, so compare the clock time, not the date
    sent = datetime.fromtimestamp(meta["params"]["resets_at"], UTC)
    assert _seconds_after(limit.resets_at, sent) == 60 - sent.second


def _seconds_after(a: datetime, b: datetime) -> int:
    """Seconds from b's time of day to a's (mod one day)."""
    day = 24 * 3600
    return ((a.hour * 3600 + a.minute * 60 + a.second) - (b.hour * 3600 + b.minute * 60 + b.second)) % day


def test_reset_minute_is_rounded_up_so_caw_never_wakes_early() -> None:
    """codex truncates the reset to the minute (04:07:50 prints as "4:07 AM"): caw waits for 04:08:00."""
    events, _ = replay(new_parser(tz="UTC"), turn_failed("You’ve hit your usage limit. Try again at 4:07 AM."))
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    assert limit.resets_at is not None
    assert (limit.resets_at.hour, limit.resets_at.minute, limit.resets_at.second) == (4, 8, 0)


def test_usage_limit_with_a_plain_apostrophe_is_the_same_limit() -> None:
    events, _ = replay(new_parser(), turn_failed("You've hit your usage limit. Try again at 9:02 PM."))
    assert fatal(events).kind == "rate_limit"  # type: ignore[union-attr]
    assert any(isinstance(e, RateLimitEvent) for e in events)


def test_usage_limit_reset_is_read_in_codex_time_zone() -> None:
    """The same instant prints as 2:01 AM in UTC and 9:01 PM in New York: the parser reads it in codex's TZ."""
    text = "You’ve hit your usage limit. Try again at 9:01 PM."
    ny = [e for e in replay(new_parser(tz="America/New_York"), turn_failed(text))[0] if isinstance(e, RateLimitEvent)]
    utc = [e for e in replay(new_parser(tz="UTC"), turn_failed(text))[0] if isinstance(e, RateLimitEvent)]
    assert ny[0].resets_at is not None and utc[0].resets_at is not None
    assert (ny[0].resets_at.hour, ny[0].resets_at.minute) in ((1, 2), (2, 2))  # EST/EDT, end of the minute
    assert (utc[0].resets_at.hour, utc[0].resets_at.minute) == (21, 2)


def test_retry_limit_429_is_a_waitable_rate_limit() -> None:
    events, turn = replay_fixture(new_parser(), "codex", "rate_limited_429")
    err = fatal(events)
    assert err is not None and err.kind == "rate_limit" and err.status == 429
    exc = error_from_event(err, None, turn, 1, "")
    assert isinstance(exc, UsageLimitError) and exc.waitable


def test_auth_fixture_is_auth_with_status() -> None:
    events, _ = replay_fixture(new_parser(), "codex", "auth_error")
    err = fatal(events)
    assert err is not None and err.kind == "auth" and err.status == 401


def test_server_error_and_midstream_drop_are_server_errors() -> None:
    for scenario in ("server_error", "midstream_drop"):
        events, _ = replay_fixture(new_parser(), "codex", scenario)
        assert fatal(events).kind == "server", scenario  # type: ignore[union-attr]


def test_resume_of_unknown_thread_prints_nothing_and_is_not_found() -> None:
    """No JSON at all, rc 1, `no rollout found for thread id` on stderr."""
    events, _ = replay_fixture(new_parser(), "codex", "resume_unknown")
    err = fatal(events)
    assert err is not None and err.kind == "not_found" and "00000000-0000-7000-8000-000000000000" in err.message


def test_every_fixture_parses_without_raw_events() -> None:
    for path in sorted((FIXTURES / "codex").glob("*.jsonl")):
        if "rollout" in path.name:
            continue
        events, _ = replay(new_parser(), path.read_text().splitlines(), 0)
        assert not [e for e in events if isinstance(e, RawEvent)], path.name


# ---- usage: a running total per thread -----------------------------------------------------------


def test_input_tokens_exclude_cached_input() -> None:
    usage = usage_from_codex(
        {"input_tokens": 100, "cached_input_tokens": 10, "cache_write_input_tokens": 3, "output_tokens": 20,
         "reasoning_output_tokens": 5}
    )  # fmt: skip
    assert usage == UsageStats(
        input_tokens=90, cache_read_tokens=10, cache_write_tokens=3, output_tokens=20, reasoning_tokens=5
    )
    assert usage.cost_usd is None and usage.total_tokens == 123


def _resumed_home(tmp_path: Path) -> Path:
    meta = fixture_meta("codex", "adapter_resume")
    day = tmp_path / "codex_home" / "sessions" / "2026" / "11" / "22"
    day.mkdir(parents=True)
    shutil.copy(FIXTURES / "codex" / "adapter_resume_rollout.jsonl", day / meta["rollout_name"])
    return tmp_path / "codex_home"


def test_turn_usage_is_running_total_across_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn 2 in a new process prints the thread total (5100 in, 1500 cached); its own share comes from the rollout."""
    monkeypatch.setattr(codex_module, "_TOTALS", codex_module._TotalsMemory())  # a new process remembers nothing
    _resumed_home(tmp_path)
    first_events, first = replay(new_parser(tmp_path), fixture_lines("codex", "adapter_resume_1"))
    _, second = replay(new_parser(tmp_path, resumed=True), fixture_lines("codex", "adapter_resume_2"))
    # turn 1 = two model requests (1000/200/50 and 1100/300/20); turn 2 = one (3000/1000/70)
    assert (first.usage.input_tokens, first.usage.cache_read_tokens, first.usage.output_tokens) == (1600, 500, 70)
    assert (second.usage.input_tokens, second.usage.cache_read_tokens, second.usage.output_tokens) == (2000, 1000, 70)
    assert next(e for e in first_events if isinstance(e, UsageEvent)).final


def test_rollout_last_token_usage_is_per_request_not_per_turn(tmp_path: Path) -> None:
    """`token_count.info.last_token_usage` covers one model request: turn 1 has two token_count records."""
    rollout = next((_resumed_home(tmp_path) / "sessions").rglob("rollout-*.jsonl"))
    records = [json.loads(line)["payload"] for line in rollout.read_text().splitlines()]
    counts = [r for r in records if r.get("type") == "token_count"]
    assert counts[0]["info"]["last_token_usage"]["input_tokens"] == 1000
    assert counts[1]["info"]["last_token_usage"]["input_tokens"] == 1100  # not the turn's 2100
    totals = rollout_totals(rollout)
    assert totals is not None
    assert totals.before == usage_from_codex({"input_tokens": 2100, "cached_input_tokens": 500, "output_tokens": 70})
    assert totals.after == usage_from_codex({"input_tokens": 5100, "cached_input_tokens": 1500, "output_tokens": 140})


def test_rollout_is_read_backwards_across_chunks_and_rejected_turns(tmp_path: Path) -> None:
    """A usage-limited turn leaves a task_started with no new total: the total before it still counts."""

    def record(payload: dict[str, object]) -> str:
        return json.dumps({"type": "event_msg", "payload": payload})

    def count(total_in: int) -> str:
        return record({"type": "token_count", "info": {"total_token_usage": {"input_tokens": total_in}}})

    lines = [
        record({"type": "task_started"}),
        count(100),
        count(250),
        record({"type": "task_started"}),  # rejected by a usage limit: no model request
        record({"type": "task_started"}),
        json.dumps({"type": "response_item", "payload": {"type": "message", "text": "x" * 5000}}),
        count(400),
    ]
    path = tmp_path / "rollout.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert [bytes(b).decode() for b in codex_module._lines_backwards(path, chunk=7) if b] == lines[::-1]
    totals = rollout_totals(path)
    assert totals is not None
    assert totals.before.input_tokens == 250 and totals.after is not None and totals.after.input_tokens == 400
    path.write_text(record({"type": "task_started"}) + "\n")
    assert rollout_totals(path) == codex_module.RolloutTotals(before=UsageStats(), after=None)
    path.write_text(count(5) + "\n")
    assert rollout_totals(path) is None


def test_resumed_turn_in_the_same_process_uses_the_remembered_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codex_module, "_TOTALS", codex_module._TotalsMemory())
    _, first = replay(new_parser(tmp_path), fixture_lines("codex", "multiturn_1"))
    events, second = replay(new_parser(tmp_path, resumed=True), fixture_lines("codex", "multiturn_2"))
    assert first.usage.input_tokens == 9543
    assert second.usage.input_tokens == 19181 - 9543 and second.usage.output_tokens == 28 - 14
    assert not [e for e in events if isinstance(e, WarningEvent)]


def test_resumed_turn_without_any_previous_total_warns_and_reports_the_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codex_module, "_TOTALS", codex_module._TotalsMemory())
    events, turn = replay(new_parser(tmp_path, resumed=True), fixture_lines("codex", "multiturn_2"))
    assert turn.usage.input_tokens == 19181
    assert any(isinstance(e, WarningEvent) and "running total" in e.message for e in events)


# ---- errors and retries ---------------------------------------------------------------------------


def test_reconnecting_error_is_a_retry_not_a_failure() -> None:
    lines = [
        '{"type":"thread.started","thread_id":"t-1"}',
        '{"type":"turn.started"}',
        '{"type":"error","message":"Reconnecting... 1/2 (exceeded retry limit, last status: 429 Too Many Requests)"}',
        '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"recovered"}}',
        '{"type":"turn.completed","usage":{"input_tokens":5,"output_tokens":1}}',
    ]
    events, turn = replay(new_parser(), lines)
    [retry] = [e for e in events if isinstance(e, RetryEvent)]
    assert (retry.attempt, retry.max_retries, retry.status) == (1, 2, 429)
    assert fatal(events) is None and turn.result == "recovered" and turn.retries == 1


def test_waiting_for_network_notice_is_a_retry_without_counts() -> None:
    line = '{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}'
    [retry] = new_parser().feed(json.loads(line))
    assert isinstance(retry, RetryEvent) and retry.attempt is None


def test_only_turn_failed_fails_the_turn() -> None:
    """The terminal error is printed as `error` first: that line alone must not close the turn."""
    parser = new_parser()
    assert parser.feed({"type": "error", "message": "unexpected status 401 Unauthorized: bad key"}) == []
    assert not parser.closed
    events = parser.feed({"type": "turn.failed", "error": {"message": "unexpected status 401 Unauthorized: bad key"}})
    assert parser.closed and fatal(events).kind == "auth"  # type: ignore[union-attr]


def test_insufficient_quota_is_billing_not_waitable() -> None:
    events, turn = replay(new_parser(), turn_failed("Quota exceeded. Check your plan and billing details."))
    err = fatal(events)
    assert err is not None and err.kind == "billing"
    assert not [e for e in events if isinstance(e, RateLimitEvent)]
    exc = error_from_event(err, None, turn, 1, "")
    assert isinstance(exc, UsageLimitError) and not exc.waitable


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus.", "billing"),
        ("Codex ran out of room in the model's context window. Start a new thread or clear earlier history "
         "before retrying.", "context_overflow"),
        ("Missing environment variable: `FAKE_OPENAI_KEY`.", "auth"),
        ("unexpected status 403 Forbidden: nope, url: http://127.0.0.1:1/v1/responses", "auth"),
        ("exceeded retry limit, last status: 429 Too Many Requests", "rate_limit"),
        ("rate limit exceeded: Rate limit reached for requests. Please try again in 1.5s.", "rate_limit"),
        ("We’re currently experiencing high demand, which may cause temporary errors.", "server"),
        ("Selected model is at capacity. Please try a different model.", "server"),
        ("stream disconnected before completion: idle timeout waiting for SSE", "server"),
        ("unexpected status 400 Bad Request: bad tool schema", "invalid_request"),
        ("something nobody has seen before", "unknown"),
    ],
)  # fmt: skip
def test_failure_messages_are_classified(message: str, kind: str) -> None:
    assert classify_failure(message) == kind


def test_usage_limit_mentioning_credits_is_still_a_waitable_limit() -> None:
    """The plus-plan text offers to "purchase more credits" but names a reset time: a limit, not billing."""
    text = (
        "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
        "https://chatgpt.com/settings/usage to purchase more credits or try again at 2:01 AM."
    )
    assert classify_failure(text) == "rate_limit"


def test_input_over_one_mebichar_is_context_overflow() -> None:
    """codex caps one user message at 1,048,576 characters and says so on stderr, after thread.started only."""
    stderr = (
        "Error: turn/start: turn/start failed: Input exceeds the maximum length of 1048576 characters. "
        '(code -32602), data: {"input_error_code":"input_too_large","max_chars":1048576,"actual_chars":1048580}\n'
    )
    events, _ = replay(new_parser(), ['{"type":"thread.started","thread_id":"t-1"}'], 1, stderr)
    err = fatal(events)
    assert err is not None and err.kind == "context_overflow" and "1048576" in err.message


def test_outside_a_git_repo_without_the_skip_flag_is_a_cli_error() -> None:
    stderr = (
        "WARNING: proceeding, even though we could not create PATH aliases: x\n"
        "Not inside a trusted directory and --skip-git-repo-check was not specified.\n"
    )
    events, _ = replay(new_parser(), [], 1, stderr)
    err = fatal(events)
    assert err is not None and err.kind == "cli" and err.message.startswith("Not inside a trusted directory")


def test_config_error_is_a_cli_error() -> None:
    stderr = 'Error loading config.toml: `wire_api = "chat"` is no longer supported.\nin `model_providers.f.wire_api`\n'
    events, _ = replay(new_parser(), [], 1, stderr)
    assert fatal(events).kind == "cli"  # type: ignore[union-attr]


def test_sigint_leaves_no_terminal_event_and_rc_1() -> None:
    lines = [
        *completed()[:2],
        '{"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"sleep 9",'
        '"aggregated_output":"","exit_code":null,"status":"in_progress"}}',
    ]
    events, turn = replay(new_parser(), lines, 1, "")
    err = fatal(events)
    assert err is not None and err.kind == "cli"
    assert turn.tool_uses[0].name == "exec_command"  # the partial turn keeps the running command


def test_error_without_turn_failed_keeps_its_class() -> None:
    """Killed between the `error` line and `turn.failed`: the error still decides, a limit stays a limit."""
    text = "You’ve hit your usage limit. Try again at 4:07 AM."
    events, _ = replay(new_parser(), turn_failed(text)[:3], -9, "")
    assert fatal(events).kind == "rate_limit"  # type: ignore[union-attr]
    assert any(isinstance(e, RateLimitEvent) for e in events)
    events, _ = replay(new_parser(), turn_failed("a brand new failure")[:3], 1, "")
    assert fatal(events).kind == "cli"  # type: ignore[union-attr]


def test_killed_by_signal_is_a_cli_error() -> None:
    events, _ = replay(new_parser(), completed()[:2], -9, "")
    err = fatal(events)
    assert err is not None and err.kind == "cli" and "signal 9" in err.message


# ---- items --------------------------------------------------------------------------------------


def test_web_search_item_has_duplicated_id_key() -> None:
    """`{"id":"item_0","type":"web_search","id":"ws_..."}`: json keeps the last id; the query is filled in late."""
    lines = [
        *completed()[:2],
        '{"type":"item.started","item":{"id":"item_0","type":"web_search","id":"ws_1e31bb605df1","query":"",'
        '"action":{"type":"other"}}}',
        '{"type":"item.completed","item":{"id":"item_0","type":"web_search","id":"ws_1e31bb605df1",'
        '"query":"weather in paris","action":{"type":"search","query":"weather in paris"}}}',
        '{"type":"turn.completed","usage":{}}',
    ]
    events, turn = replay(new_parser(), lines)
    [use] = turn.tool_uses
    assert use.id == "ws_1e31bb605df1" and use.name == "web_search"
    assert use.arguments["query"] == "weather in paris"
    # the started item has no query yet: the call is announced with its result, the query filled
    [call] = [e for e in events if isinstance(e, ToolCallEvent)]
    assert call.arguments["query"] == "weather in paris"
    assert isinstance(events[events.index(call) + 1], ToolResultEvent)


def test_only_completed_command_still_creates_the_tool_use() -> None:
    item = {
        "id": "item_3", "type": "command_execution", "command": "ls", "aggregated_output": "a\n",
        "exit_code": 0, "status": "completed",
    }  # fmt: skip
    _, turn = replay(new_parser(), completed(item))
    [use] = turn.tool_uses
    assert (use.id, use.name, use.arguments, use.output) == ("item_3", "exec_command", {"command": "ls"}, "a\n")


def test_declined_command_is_an_error() -> None:
    item = {"id": "i", "type": "command_execution", "command": "x", "aggregated_output": "", "exit_code": None,
            "status": "declined"}  # fmt: skip
    _, turn = replay(new_parser(), completed(item))
    assert turn.tool_uses[0].is_error


def test_file_change_item_is_apply_patch_with_the_changes() -> None:
    changes = [{"path": "/w/hello.txt", "kind": "add"}]
    lines = [
        *completed()[:2],
        json.dumps({"type": "item.started", "item": {"id": "item_0", "type": "file_change", "changes": changes,
                                                     "status": "in_progress"}}),
        json.dumps({"type": "item.completed", "item": {"id": "item_0", "type": "file_change", "changes": changes,
                                                       "status": "completed"}}),
        '{"type":"turn.completed","usage":{}}',
    ]  # fmt: skip
    _, turn = replay(new_parser(), lines)
    [use] = turn.tool_uses
    assert use.name == "apply_patch" and use.arguments == {"changes": changes}
    assert use.output == "add /w/hello.txt" and not use.is_error


def test_mcp_tool_call_is_named_after_server_and_tool() -> None:
    ok = {"id": "item_1", "type": "mcp_tool_call", "server": "echo", "tool": "echo", "arguments": {"text": "ping"},
          "result": {"content": [{"type": "text", "text": "echo: ping"}], "structured_content": None},
          "error": None, "status": "completed"}  # fmt: skip
    failed = {**ok, "id": "item_2", "result": None, "status": "failed",
              "error": {"message": "MCP tool call requires approval, but approval policy is never"}}  # fmt: skip
    _, turn = replay(new_parser(), completed(ok, failed))
    first, second = turn.tool_uses
    assert first.name == "mcp__echo__echo" and first.arguments == {"text": "ping"}
    assert first.output == "echo: ping" and not first.is_error
    assert second.is_error and "requires approval" in (second.output or "")


def test_unknown_item_and_event_types_are_kept_raw() -> None:
    parser = new_parser()
    [raw] = parser.feed({"type": "item.completed", "item": {"id": "i", "type": "todo_list", "items": []}})
    assert isinstance(raw, RawEvent)
    [raw2] = parser.feed({"type": "turn.plan.delta", "delta": "x"})
    assert isinstance(raw2, RawEvent)
    assert parser.feed({"type": "item.started", "item": {"id": "i", "type": "agent_message", "text": ""}}) == []


def test_drifted_shape_becomes_raw() -> None:
    [raw] = new_parser().feed({"type": "item.completed"})
    assert isinstance(raw, RawEvent)


# ---- argv -----------------------------------------------------------------------------------------

BIN = "/opt/codex"


def build(config: RunConfig, request: TurnRequest | None = None) -> list[str]:
    return CodexProvider().build(BIN, config, request or TurnRequest(prompt="x")).argv


def test_prompt_goes_on_stdin_and_argv_ends_with_dash() -> None:
    inv = CodexProvider().build(BIN, RunConfig(cwd="/w"), TurnRequest(prompt="--help"))
    assert inv.argv[:5] == [BIN, "exec", "--json", "--skip-git-repo-check", "-c"]
    assert inv.argv[-1] == "-" and "--help" not in inv.argv
    assert inv.stdin == b"--help" and inv.cwd == "/w"


def test_resume_comes_after_every_option_and_model_is_passed_again() -> None:
    """`codex exec resume <id> -s ...` is rejected (`unexpected argument '-s'`): options go before `resume`."""
    cfg = RunConfig(model="gpt-5.5", reasoning="high", extra_args=("--enable", "x"))
    argv = build(cfg, TurnRequest(prompt="x", resume_key="thread-1"))
    assert argv[-3:] == ["resume", "thread-1", "-"]
    assert argv[argv.index("-m") + 1] == "gpt-5.5"
    assert 'model_reasoning_effort="high"' in argv
    assert argv.index("--enable") < argv.index("resume") and argv.index("-s") < argv.index("resume")


def test_sandbox_is_explicit_and_never_bypassed() -> None:
    for tools in (None, ToolGroup.NONE, ToolGroup.READER | ToolGroup.EXEC, ToolGroup.NO_INTERACTION):
        argv = build(RunConfig(tools=tools))
        assert "--dangerously-bypass-approvals-and-sandbox" not in argv
        expected = "workspace-write" if tools is not None and ToolGroup.WRITER in tools else "read-only"
        assert argv[argv.index("-s") + 1] == expected
        assert 'approval_policy="never"' in argv


def test_tool_groups_map_to_codex_features() -> None:
    assert "--disable" not in build(RunConfig(tools=None))  # None: the CLI's own tool set
    reader = build(RunConfig(tools=ToolGroup.READER))
    assert 'web_search="disabled"' in reader
    assert reader[reader.index("shell_tool") - 1 : reader.index("shell_tool") + 1] == ["--disable", "shell_tool"]
    assert "multi_agent" in reader
    everything = build(RunConfig(tools=ToolGroup.ALL))
    assert 'web_search="live"' in everything and "sandbox_workspace_write.network_access=true" in everything
    assert "shell_tool" not in everything and "multi_agent" not in everything


def test_user_sandbox_or_model_options_replace_caw_defaults() -> None:
    """codex rejects `-s` twice (`cannot be used multiple times`): the user's own flag wins."""
    argv = build(RunConfig(model="m1", extra_args=("--sandbox=danger-full-access", "--model", "m2")))
    assert "-s" not in argv and "-m" not in argv
    assert argv[-4:] == ["--sandbox=danger-full-access", "--model", "m2", "-"]


def test_offline_friendly_defaults_keep_plugins() -> None:
    argv = build(RunConfig())
    assert "analytics.enabled=false" in argv
    assert "plugins" not in argv


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_toml_string_round_trips_any_text(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text


def test_system_prompt_is_developer_instructions_quoted_as_toml() -> None:
    prompt = 'Be "terse"\n= not a table\\'
    argv = build(RunConfig(system_prompt=prompt))
    [override] = [a for a in argv if a.startswith("developer_instructions=")]
    assert tomllib.loads(override.replace("=", " = ", 1))["developer_instructions"] == prompt


def _profile(inv_argv: list[str], home: Path) -> dict[str, object]:
    name = inv_argv[inv_argv.index("-p") + 1]
    return tomllib.loads((home / f"{name}.config.toml").read_text())


def test_long_system_prompt_goes_to_a_private_profile_removed_after_the_turn(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prompt = "x" * 200_000
    inv = CodexProvider().build(BIN, RunConfig(system_prompt=prompt, env={"CODEX_HOME": str(home)}), TurnRequest("p"))
    assert all(len(a) < 100_001 for a in inv.argv)
    assert _profile(inv.argv, home)["developer_instructions"] == prompt
    [path] = inv.temp_paths
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    inv.cleanup()
    assert not path.exists()


def test_mcp_servers_are_overrides_and_env_values_stay_off_argv(tmp_path: Path) -> None:
    home = tmp_path / "home"
    servers = (
        MCPServer(name="echo", command="python3", args=["s.py", "--x"], env={"TOKEN": "secret-1"}),
        MCPServer(name="remote", url="http://127.0.0.1:9/mcp"),
    )
    inv = CodexProvider().build(BIN, RunConfig(mcp_servers=servers, env={"CODEX_HOME": str(home)}), TurnRequest("p"))
    argv = inv.argv
    assert 'mcp_servers.echo.command="python3"' in argv
    assert 'mcp_servers.echo.args=["s.py", "--x"]' in argv
    assert 'mcp_servers.echo.default_tools_approval_mode="approve"' in argv
    assert 'mcp_servers.remote.url="http://127.0.0.1:9/mcp"' in argv
    assert not any("secret-1" in a for a in argv)
    assert _profile(argv, home) == {"mcp_servers": {"echo": {"env": {"TOKEN": "secret-1"}}}}
    inv.cleanup()


def test_mcp_server_name_must_be_a_plain_key() -> None:
    with pytest.raises(ConfigurationError):
        build(RunConfig(mcp_servers=(MCPServer(name="my.server", command="x"),)))


def test_profile_conflicts_with_a_user_profile(tmp_path: Path) -> None:
    cfg = RunConfig(system_prompt="y" * 200_000, extra_args=("-p", "mine"), env={"CODEX_HOME": str(tmp_path)})
    with pytest.raises(ConfigurationError):
        build(cfg)


def test_the_parser_gets_its_turn_context(tmp_path: Path) -> None:
    provider = CodexProvider()
    parser = provider.parser(RunConfig(env={"CODEX_HOME": str(tmp_path), "TZ": "Asia/Tokyo"}), TurnRequest("p", "t-1"))
    assert parser.context.codex_home == tmp_path and parser.context.resumed
    assert str(parser.context.tz) == "Asia/Tokyo"
    later = provider.parser()  # a parser without a turn (fixture replays) keeps the process defaults
    assert not later.context.resumed


def test_continuation_after_a_limit_is_continue() -> None:
    assert CodexProvider().continuation_prompt("do the big thing") == "continue"


def test_codex_is_registered() -> None:
    provider = get_provider("codex")
    assert isinstance(provider, CodexProvider) and provider.config_home_var == "CODEX_HOME"
    assert provider.binary_name == "codex"


# ---- the native binary behind the npm shim ------------------------------------------------------


def _npm_layout(root: Path, where: str) -> tuple[Path, Path]:
    """node_modules with the shim and the platform binary placed the way one installer lays it out."""
    nm = root / "node_modules"
    pkg = nm / "@openai" / "codex"
    (pkg / "bin").mkdir(parents=True)
    shim = pkg / "bin" / "codex.js"
    shim.write_text("#!/usr/bin/env node\n")
    shim.chmod(0o755)
    (nm / ".bin").mkdir()
    (nm / ".bin" / "codex").symlink_to("../@openai/codex/bin/codex.js")
    vendor = {
        "hoisted": nm / "@openai" / "codex-linux-x64" / "vendor",
        "nested": pkg / "node_modules" / "@openai" / "codex-linux-x64" / "vendor",
        "bundled": pkg / "vendor",
    }[where]
    exe = vendor / "x86_64-unknown-linux-musl" / "bin" / "codex"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    exe.chmod(0o755)
    return nm / ".bin" / "codex", exe


@pytest.mark.parametrize("where", ["hoisted", "nested", "bundled"])
def test_native_binary_found_next_to_the_npm_shim(tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codex_module.platform, "system", lambda: "Linux")
    monkeypatch.setattr(codex_module.platform, "machine", lambda: "x86_64")
    native_binary.cache_clear()
    link, exe = _npm_layout(tmp_path, where)
    assert CodexProvider().executable(str(link)) == [str(exe)]
    native_binary.cache_clear()


def test_shim_without_native_binary_or_other_installs_run_as_is(tmp_path: Path) -> None:
    native_binary.cache_clear()
    link, exe = _npm_layout(tmp_path, "hoisted")
    exe.unlink()
    assert CodexProvider().executable(str(link)) == [str(link)]
    other = tmp_path / "codex"
    other.write_text("")
    assert CodexProvider().executable(str(other)) == [str(other)]
    native_binary.cache_clear()


# ---- issue 12: one event shape for every provider ---------------------------------------------------------
def test_result_text_is_never_null_without_an_agent_message() -> None:
    """A turn that ends after a tool and no message: the result's text is the turn's ('' here), not null."""
    lines = [
        '{"type":"thread.started","thread_id":"019a0000-0000-7000-8000-000000000001"}',
        '{"type":"turn.started"}',
        '{"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"true",'
        '"aggregated_output":"","exit_code":null,"status":"in_progress"}}',
        '{"type":"item.completed","item":{"id":"item_0","type":"command_execution","command":"true",'
        '"aggregated_output":"","exit_code":0,"status":"completed"}}',
        '{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}',
    ]
    events, _ = replay(new_parser(), lines)
    [result] = [e for e in events if isinstance(e, ResultEvent)]
    assert result.text == ""
    [tool_result] = [e for e in events if isinstance(e, ToolResultEvent)]
    assert tool_result.name == "exec_command" and tool_result.arguments == {"command": "true"}


def test_session_started_names_the_configured_model_when_caw_passes_none(tmp_path: Path) -> None:
    """codex never prints its model: with no -m, session_started names the one config.toml sets."""
    home = tmp_path / "codex_home"
    home.mkdir()
    (home / "config.toml").write_text('model = "gpt-5.5"\n')
    parser = get_provider("codex").parser(RunConfig(env={"CODEX_HOME": str(home)}), TurnRequest(prompt="hi"))
    [started] = parser.feed({"type": "thread.started", "thread_id": "019a0000-0000-7000-8000-000000000001"})
    assert isinstance(started, SessionStarted) and started.model == "gpt-5.5"


def test_configured_model_reads_flags_then_the_active_profile(tmp_path: Path) -> None:
    from caw.providers.codex import configured_model

    (tmp_path / "config.toml").write_text('model = "top"\nprofile = "work"\n[profiles.work]\nmodel = "from-profile"\n')
    assert configured_model(tmp_path) == "from-profile"
    assert configured_model(tmp_path, ["-m", "flag-model"]) == "flag-model"
    assert configured_model(tmp_path, ["-c", 'model="quoted"']) == "quoted"
    assert configured_model(tmp_path / "missing") is None
