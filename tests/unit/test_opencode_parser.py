"""The opencode adapter on output recorded from the real binary, and one test per protocol surprise.

Fixtures: ``tests/fixtures/opencode/*.jsonl`` (recorded with scripts/record_fixtures.py) and
``adapter_*.jsonl`` (recorded for this adapter the same way; scenarios listed in docs/dev/opencode-notes.md).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from caw.errors import ConfigurationError, ContextOverflowError, ConversationNotFound, TurnFailed, UsageLimitError
from caw.events import (
    ErrorEvent,
    Event,
    RateLimitEvent,
    RawEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
)
from caw.models import MCPServer, TextBlock, ThinkingBlock, ToolGroup, Turn
from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest
from caw.providers.opencode import (
    FIRST_START_LOCK,
    FIRST_START_MARKER,
    MIGRATION_RACE_MESSAGE,
    OpencodeParser,
    OpencodeProvider,
    instructions_file,
    reset_from_headers,
    usage_from_step,
)
from caw.session.turn import TurnAssembler, error_from_event
from tests.unit.parse_helpers import fixture_lines, fixture_meta, replay, replay_fixture

SID = "ses_test0000000000000000000"
T0 = 1795308857553  # an event timestamp (epoch ms)
T0_DT = datetime.fromtimestamp(T0 / 1000, tz=timezone.utc)


def fatal(events: list[Event]) -> ErrorEvent | None:
    errors = [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
    return errors[-1] if errors else None


def line(obj: dict[str, Any]) -> str:
    return json.dumps({"timestamp": T0, "sessionID": SID, **obj})


def error_line(name: str, data: dict[str, Any], timestamp: int = T0) -> str:
    return json.dumps(
        {"type": "error", "timestamp": timestamp, "sessionID": SID, "error": {"name": name, "data": data}}
    )


def api_error(status: int | None, message: str, headers: dict[str, str] | None = None, body: str = "") -> str:
    data: dict[str, Any] = {"message": message, "isRetryable": status is None or status >= 429}
    if status is not None:
        data["statusCode"] = status
    if headers is not None:
        data["responseHeaders"] = headers
    if body:
        data["responseBody"] = body
    return error_line("APIError", data)


def build(config: RunConfig | None = None, **request: Any) -> Any:
    req = TurnRequest(prompt=request.pop("prompt", "hello"), **request)
    return OpencodeProvider().build("/bin/opencode", config or RunConfig(cwd="/w"), req)


# ---- recorded fixtures ---------------------------------------------------------------------------


def test_text_fixture() -> None:
    events, turn = replay_fixture(OpencodeParser(), "opencode", "text")
    meta = fixture_meta("opencode", "text")
    assert isinstance(events[0], SessionStarted) and events[0].session_id == meta["session_id"]
    assert turn.result == "Hello from the fake model."
    assert fatal(events) is None
    assert isinstance(events[-1], ResultEvent)
    assert turn.usage.input_tokens == 7674 and turn.usage.output_tokens == 6
    assert turn.usage.cost_usd == pytest.approx(0.023112)


def test_no_terminal_event_exit_zero_is_success() -> None:
    """opencode prints no closing event: the turn is complete when the process exits 0 without an error."""
    lines = fixture_lines("opencode", "text")
    assert [json.loads(x)["type"] for x in lines] == ["step_start", "text", "step_finish"]
    events, _ = replay(OpencodeParser(), lines, exit_code=0)
    assert isinstance(events[-1], ResultEvent)
    killed, _ = replay(OpencodeParser(), lines, exit_code=-9)
    err = fatal(killed)
    assert err is not None and err.kind == "cli"  # the same output without a clean exit is a crash


def test_every_event_carries_session_id_but_session_starts_once() -> None:
    events, _ = replay_fixture(OpencodeParser(), "opencode", "tool")
    started = [e for e in events if isinstance(e, SessionStarted)]
    assert len(started) == 1
    assert started[0].session_id == fixture_meta("opencode", "tool")["session_id"]


def test_tool_use_reports_call_and_result_together() -> None:
    """One ``tool_use`` event holds call and result: the session announces the call first (issue 12)."""
    events, turn = replay_fixture(OpencodeParser(), "opencode", "tool")
    [result] = [e for e in events if isinstance(e, ToolResultEvent)]
    [call] = [e for e in events if isinstance(e, ToolCallEvent)]
    assert events.index(call) == events.index(result) - 1
    assert call.id == result.id and call.name == "bash" and call.arguments == result.arguments
    assert result.name == "bash" and result.arguments == {"command": "echo hi", "description": "Print hi"}
    [use] = turn.tool_uses
    assert use.name == "bash" and use.output == "hi\n" and not use.is_error
    assert use.arguments["command"] == "echo hi"
    assert turn.result == "Tool said: hi\n"


def test_usage_is_summed_over_model_calls() -> None:
    """One step_finish per model call, each for that call alone: a tool turn has two."""
    events, turn = replay_fixture(OpencodeParser(), "opencode", "tool")
    usage = [e for e in events if isinstance(e, UsageEvent)]
    # one per model call, then the turn's total as the one final usage (issue 12: like claude and codex)
    assert len(usage) == 3 and [u.final for u in usage] == [False, False, True]
    assert usage[-1].usage == turn.usage
    assert turn.usage.input_tokens == 7674 + 7743
    assert turn.usage.output_tokens == 40 + 3
    assert turn.usage.cost_usd == pytest.approx(0.023622 + 0.023274)


def test_reasoning_becomes_thinking_block() -> None:
    _, turn = replay_fixture(OpencodeParser(), "opencode", "thinking")
    assert [type(b) for b in turn.output] == [ThinkingBlock, TextBlock]
    assert turn.output[0].text == "The user wants a greeting. Keep it short."  # type: ignore[union-attr]
    assert turn.result == "Hello after thinking."


def test_step_finish_output_tokens_exclude_reasoning() -> None:
    """The fake sent completion_tokens 15 (10 of them reasoning); opencode prints output 5, reasoning 10."""
    _, turn = replay_fixture(OpencodeParser(), "opencode", "thinking")
    assert turn.usage.output_tokens == 15 and turn.usage.reasoning_tokens == 10


def test_step_finish_input_tokens_exclude_cache_reads() -> None:
    """Recorded with prompt_tokens 1000 (400 cached), completion 50 (20 reasoning)."""
    part = {"tokens": {"total": 1050, "input": 600, "output": 30, "reasoning": 20, "cache": {"write": 0, "read": 400}}}
    usage = usage_from_step({**part, "cost": 0.00267})
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (600, 400, 50)
    assert usage.total_tokens == 1050 and usage.cost_usd == pytest.approx(0.00267)


def test_permission_auto_reject_exits_zero() -> None:
    """An `ask` permission is auto-rejected by `run`: the tool fails, opencode stops the loop and exits 0.

    caw reports a completed turn whose ToolUse is an error, plus a warning from stderr.
    """
    meta = fixture_meta("opencode", "permission_rejected")
    assert meta["exit_code"] == 0
    events, turn = replay_fixture(OpencodeParser(), "opencode", "permission_rejected")
    [use] = turn.tool_uses
    assert use.is_error and "rejected permission" in (use.output or "")
    assert fatal(events) is None and isinstance(events[-1], ResultEvent)
    [warning] = [e for e in events if isinstance(e, WarningEvent)]
    assert warning.message.startswith("permission requested: external_directory")
    assert turn.result == ""  # the loop stopped: no model call after the rejection


def test_rate_limit_reset_from_retry_after_headers() -> None:
    """The final error carries the last response's headers: retry-after-ms counts from the event time."""
    events, _ = replay_fixture(OpencodeParser(), "opencode", "rate_limited")
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    raw = json.loads(fixture_lines("opencode", "rate_limited")[0])
    assert raw["error"]["data"]["responseHeaders"]["retry-after-ms"] == "10"
    stamp = datetime.fromtimestamp(raw["timestamp"] / 1000, tz=timezone.utc)
    assert limit.status == "rejected" and limit.waitable and limit.kind == "rate"
    assert limit.resets_at == stamp + timedelta(milliseconds=10)
    err = fatal(events)
    assert err is not None and err.kind == "rate_limit" and err.status == 429


def test_rate_limit_reset_from_http_date_retry_after() -> None:
    """`retry-after` may be an HTTP date (opencode waits for it too); recorded with a reset 2-3 h ahead."""
    meta = fixture_meta("opencode", "adapter_rate_limited_date")
    assert len(meta["requests"]) == 6  # opencode made 1 + 5 attempts before printing the error
    events, turn = replay_fixture(OpencodeParser(), "opencode", "adapter_rate_limited_date")
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    assert limit.resets_at == datetime.fromtimestamp(meta["params"]["reset_epoch"], tz=timezone.utc)
    ev = fatal(events)
    assert ev is not None
    err = error_from_event(ev, limit, turn, 1, "")
    assert isinstance(err, UsageLimitError) and err.waitable and err.resets_at == limit.resets_at


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "2000", "retry-after": "99"}, T0_DT + timedelta(seconds=2)),  # -ms wins, as in opencode
        ({"retry-after": "30"}, T0_DT + timedelta(seconds=30)),
        ({"retry-after": "1.5"}, T0_DT + timedelta(seconds=1.5)),
        ({"Retry-After": "Sun, 22 Nov 2026 05:00:00 GMT"}, datetime(2026, 11, 22, 5, tzinfo=timezone.utc)),
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-requests": "5",
                "x-ratelimit-reset-tokens": "1h2m3.5s",
                "x-ratelimit-remaining-tokens": "0",
            },
            T0_DT + timedelta(seconds=3723.5),
        ),
        ({"x-ratelimit-reset-requests": "20ms"}, T0_DT + timedelta(milliseconds=20)),
        ({"x-ratelimit-reset-requests": "soon"}, None),
        ({"content-type": "application/json"}, None),
    ],
)
def test_reset_header_forms(headers: dict[str, str], expected: datetime | None) -> None:
    assert reset_from_headers(headers, T0_DT) == expected


def test_auth_error_fixture() -> None:
    events, _ = replay_fixture(OpencodeParser(), "opencode", "auth_error")
    err = fatal(events)
    assert err is not None and err.kind == "auth" and err.status == 401
    assert isinstance(events[0], SessionStarted)  # the error event alone still names the session
    assert not any(isinstance(e, RateLimitEvent) for e in events)


def test_server_error_fixture() -> None:
    events, _ = replay_fixture(OpencodeParser(), "opencode", "server_error")
    err = fatal(events)
    assert err is not None and err.kind == "server" and err.status == 500


def test_cannot_connect_has_no_status_and_is_a_server_error() -> None:
    message = "Cannot connect to API: Unable to connect. Is the computer able to access the url?"
    events, _ = replay(OpencodeParser(), [api_error(None, message)], exit_code=1)
    err = fatal(events)
    assert err is not None and err.kind == "server" and err.status is None


def test_context_overflow_error_arrives_twice_reported_once() -> None:
    """The second ContextOverflowError comes from opencode's automatic compaction request."""
    lines = fixture_lines("opencode", "adapter_context_overflow")
    assert [json.loads(x)["error"]["name"] for x in lines] == ["ContextOverflowError"] * 2
    events, turn = replay_fixture(OpencodeParser(), "opencode", "adapter_context_overflow")
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and errors[0].kind == "context_overflow"
    assert isinstance(error_from_event(errors[0], None, turn, 1, ""), ContextOverflowError)


def test_a_different_later_error_does_not_replace_the_first() -> None:
    lines = [api_error(429, "Rate limit reached", {"retry-after": "5"}), error_line("UnknownError", {"message": "x"})]
    events, _ = replay(OpencodeParser(), lines, exit_code=1)
    fatal_errors = [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
    assert [e.kind for e in fatal_errors] == ["rate_limit"]
    assert [e.message for e in events if isinstance(e, ErrorEvent) and not e.fatal] == ["x"]


def test_unknown_model_is_an_opaque_unknown_error() -> None:
    """A wrong `-m` gives only "Unexpected server error" (the cause is in opencode's own log)."""
    events, _ = replay_fixture(OpencodeParser(), "opencode", "adapter_unknown_model")
    err = fatal(events)
    assert err is not None and err.kind == "unknown" and "Unexpected server error" in err.message


def test_unknown_error_with_json_message_is_unwrapped() -> None:
    inner = '{"message":"Upstream connection reset mid-stream","type":"server_error","code":"stream_error"}'
    events, _ = replay(OpencodeParser(), [error_line("UnknownError", {"message": inner})], exit_code=1)
    err = fatal(events)
    assert err is not None and err.message == "Upstream connection reset mid-stream"


def test_hosted_plan_free_usage_text_is_a_usage_limit() -> None:
    message = "Free usage exceeded, subscribe to Go [retrying in 8h12m]"
    events, _ = replay(OpencodeParser(), [error_line("UnknownError", {"message": message})], exit_code=1)
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    assert limit.kind == "usage" and limit.waitable
    assert limit.resets_at == T0_DT + timedelta(hours=8, minutes=12)
    err = fatal(events)
    assert err is not None and err.kind == "rate_limit"


def test_insufficient_quota_429_is_billing_not_waitable() -> None:
    """OpenAI's out-of-credits answer is a 429 as well; waiting does not help."""
    events, turn = replay_fixture(OpencodeParser(), "opencode", "adapter_insufficient_quota")
    err = fatal(events)
    assert err is not None and err.kind == "billing"
    limits = [e for e in events if isinstance(e, RateLimitEvent)]
    mapped = error_from_event(err, limits[-1] if limits else None, turn, 1, "")
    assert isinstance(mapped, UsageLimitError) and not mapped.waitable and mapped.kind == "credits"


def test_unknown_session_is_conversation_not_found() -> None:
    """Unknown `--session`: empty stdout, `Error: Session not found` on stderr, exit 1."""
    meta = fixture_meta("opencode", "resume_unknown")
    assert fixture_lines("opencode", "resume_unknown") == [] and meta["exit_code"] == 1
    events, turn = replay_fixture(OpencodeParser(), "opencode", "resume_unknown")
    err = fatal(events)
    assert err is not None and err.kind == "not_found" and err.message == "Session not found"
    assert isinstance(error_from_event(err, None, turn, 1, meta["stderr"]), ConversationNotFound)


def test_other_cli_failures_are_cli_errors() -> None:
    stderr = "\x1b[91m\x1b[1mError: \x1b[0mYou must provide a message or a command\n"
    events, _ = replay(OpencodeParser(), [], exit_code=1, stderr=stderr)
    err = fatal(events)
    assert err is not None and err.kind == "cli" and err.message == "Error: You must provide a message or a command"


#: stderr of a first start that lost the race in opencode 1.18.33's SQLite migration (twelve concurrent
#: first runs in one fresh data home, issue 17); the CLI exits 1 with nothing on stdout
MIGRATION_RACE_STDERR = (
    "\x1b[91m\x1b[1mError: \x1b[0mUnexpected error\n\nFailed query: \n        CREATE TABLE `workspace` (\n"
    "          `id` text PRIMARY KEY,\n          `type` text NOT NULL,\n          `name` text DEFAULT '' NOT NULL,\n"
    "          `branch` text,\n          `directory` text,\n          `extra` text,\n"
    "          `project_id` text NOT NULL,\n          `time_used` integer NOT NULL,\n"
    "          CONSTRAINT `fk_workspace_project_id_project_id_fk` FOREIGN KEY (`project_id`) REFERENCES"
    " `project`(`id`) ON DELETE CASCADE\n        );\n      \nparams: \n"
)


@pytest.mark.parametrize("stderr", [MIGRATION_RACE_STDERR, "Error: SQLiteError: database is locked\n"])
def test_first_start_migration_race_is_a_turn_failure_not_a_crash(stderr: str) -> None:
    """Not ProviderCrashed (which a fresh CLI run reports as "no provider available", exit 3): it says what raced."""
    events, turn = replay(OpencodeParser(), [], exit_code=1, stderr=stderr)
    err = fatal(events)
    assert err is not None and err.message == MIGRATION_RACE_MESSAGE
    mapped = error_from_event(err, None, turn, 1, stderr)
    assert type(mapped) is TurnFailed and "first start raced another run" in str(mapped)


def test_first_start_lock_is_taken_until_a_first_start_finished(tmp_path: Path) -> None:
    provider = get_provider("opencode")
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    lock = provider.first_start_lock(env)
    assert lock is not None and lock.lock_path == tmp_path / "data" / "opencode" / FIRST_START_LOCK
    lock.acquire()
    lock.release(started=False)  # the CLI printed nothing: the next run still takes the lock
    assert provider.first_start_lock(env) is not None
    lock.acquire()
    lock.release(started=True)
    assert (tmp_path / "data" / "opencode" / FIRST_START_MARKER).exists()
    assert provider.first_start_lock(env) is None


def test_broken_stream_retry_leaves_no_trace() -> None:
    """A dropped connection is retried silently: one step_start, only the recovered text."""
    meta = fixture_meta("opencode", "midstream_drop")
    assert [r["kind"] for r in meta["requests"]] == ["model", "model"]
    events, turn = replay_fixture(OpencodeParser(), "opencode", "midstream_drop")
    assert turn.result == "Recovered after the drop." and fatal(events) is None
    assert not any(isinstance(e, RetryEvent) for e in events)


def test_second_step_start_without_step_finish_is_a_retry() -> None:
    """After an error chunk mid-stream opencode prints another step_start for the same message."""
    start = line({"type": "step_start", "part": {"messageID": "m1", "type": "step-start"}})
    text = line({"type": "text", "part": {"messageID": "m1", "type": "text", "text": "ok"}})
    finish = line({"type": "step_finish", "part": {"messageID": "m1", "tokens": {"input": 1, "output": 1}}})
    events, turn = replay(OpencodeParser(), [start, start, text, finish, start, finish])
    assert len([e for e in events if isinstance(e, RetryEvent)]) == 1
    assert turn.retries == 1 and turn.result == "ok"


def test_compaction_mid_run_synthetic_text_is_not_the_models() -> None:
    """A reply reporting a nearly full context makes opencode compact inside the same run: the summary
    call's text is printed like an answer, then a synthetic "Continue if you have next steps..." part."""
    events, _ = replay_fixture(OpencodeParser(), "opencode", "adapter_compaction")
    texts = [e.text for e in events if isinstance(e, TextEvent)]
    assert not any(t.startswith("Continue if you have next steps") for t in texts)
    [warning] = [e for e in events if isinstance(e, WarningEvent)]
    assert "compacted" in warning.message and "Continue if you have next steps" in warning.message
    assert texts[0] == "Short answer." and len(texts) == 3
    # the summary call is billed too, and the total closes the turn
    assert len([e for e in events if isinstance(e, UsageEvent) and not e.final]) == 3


def test_failed_turn_keeps_user_message_so_continuation_is_continue() -> None:
    """After a run ended by a 429, `--session` sends the failed user message again from the history
    (recorded: system, "Say hello.", "continue" = 3 messages), so caw continues with a short prompt."""
    meta = fixture_meta("opencode", "adapter_after_limit_continue")
    [request] = meta["requests"]
    assert request["messages"] == 3 and request["last_user_text"] == "continue"
    assert "--session" in meta["argv"]
    assert OpencodeProvider().continuation_prompt("Say hello.") == "continue"


def test_unknown_event_type_and_pending_tool_are_kept() -> None:
    tool = {"type": "tool", "tool": "bash", "callID": "c1", "state": {"status": "running", "input": {"command": "x"}}}
    lines = [line({"type": "brand_new", "x": 1}), line({"type": "tool_use", "part": tool})]
    events, _ = replay(OpencodeParser(), lines)
    assert any(isinstance(e, RawEvent) and e.data["type"] == "brand_new" for e in events)
    [call] = [e for e in events if isinstance(e, ToolCallEvent)]
    assert call.id == "c1" and call.arguments == {"command": "x"}


def test_unknown_agent_warning_from_stderr() -> None:
    stderr = '\x1b[93m\x1b[1m! \x1b[0magent "nosuchagent" not found. Falling back to default agent\n'
    events, _ = replay(OpencodeParser(), fixture_lines("opencode", "text"), exit_code=0, stderr=stderr)
    [warning] = [e for e in events if isinstance(e, WarningEvent)]
    assert warning.message.startswith('agent "nosuchagent" not found')


def test_thinking_event_keeps_message_id() -> None:
    part = {"messageID": "m9", "type": "reasoning", "text": "hmm"}
    events, _ = replay(OpencodeParser(), [line({"type": "reasoning", "part": part})])
    [thinking] = [e for e in events if isinstance(e, ThinkingEvent)]
    assert thinking.message_id == "m9"


# ---- building the command ------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["Say hello", "--help", "-x starts with a dash", "big:" + "x" * 200_000])
def test_argv_prompt_words_get_quoted_so_prompt_goes_on_stdin(prompt: str) -> None:
    """An argv message arrives with every word containing a space in double quotes, a leading `-` is a
    flag, and one argv string is limited to 128 KiB: the prompt goes on stdin, read to EOF."""
    inv = build(prompt=prompt)
    assert inv.stdin == prompt.encode()
    assert not any(prompt in arg for arg in inv.argv)
    assert inv.argv[:5] == ["/bin/opencode", "run", "--format", "json", "--thinking"]


def test_empty_title_skips_the_title_request_and_keeps_the_prompt_off_argv() -> None:
    """Without --title a second model call sends the whole prompt for a title; `--title=` names the
    session after the message's first 50 characters instead."""
    assert "--title=" in build().argv
    assert "--title=" not in build(resume_key=SID).argv  # the title belongs to a new session


def test_resume_uses_session_never_continue() -> None:
    argv = build(resume_key=SID).argv
    assert argv[argv.index("--session") + 1] == SID
    assert "--continue" not in argv and "-c" not in argv


def test_model_variant_and_extra_args() -> None:
    config = RunConfig(model="fake/slow:5", reasoning="high", cwd="/w", extra_args=("--agent", "plan"))
    inv = build(config)
    argv = inv.argv
    assert argv[argv.index("--model") + 1] == "fake/slow:5"  # opencode splits at the first "/"
    assert argv[argv.index("--variant") + 1] == "high"
    assert argv[-2:] == ["--agent", "plan"] and inv.cwd == "/w"
    assert "--model" not in build().argv  # no model: opencode's configured default


@pytest.mark.parametrize("model", ["text", "/text", "fake/"])
def test_bare_model_name_is_a_configuration_error(model: str) -> None:
    with pytest.raises(ConfigurationError, match="provider/model"):
        build(RunConfig(model=model))


def test_tool_group_denies_what_was_not_granted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCODE_PERMISSION", '{"external_directory": "allow", "bash": "allow"}')
    inv = build(RunConfig(tools=ToolGroup.READER | ToolGroup.WRITER))
    rules = json.loads(inv.env["OPENCODE_PERMISSION"])
    assert rules["external_directory"] == "allow"  # the user's own rule is kept
    assert rules["bash"] == rules["webfetch"] == rules["task"] == rules["question"] == "deny"
    assert "read" not in rules and "edit" not in rules  # granted: opencode's defaults stay
    assert "OPENCODE_PERMISSION" not in build(RunConfig(tools=None)).env


def test_no_tools_denies_every_mapped_permission() -> None:
    rules = json.loads(build(RunConfig(tools=ToolGroup.NONE)).env["OPENCODE_PERMISSION"])
    assert set(rules) == {"read", "glob", "grep", "lsp", "edit", "bash", "webfetch", "websearch", "task", "question"}


def test_system_prompt_and_mcp_merge_into_the_users_config_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    user = {
        "provider": {"fake": {"npm": "x"}},
        "instructions": ["/mine.md"],
        "mcp": {"old": {"type": "remote", "url": "u"}},
    }
    servers = (
        MCPServer(name="files", command="mcp-files", args=["--root", "/"], env={"TOKEN": "t"}),
        MCPServer(name="web", url="http://127.0.0.1:1/mcp"),
    )
    config = RunConfig(
        system_prompt="Answer in French.", mcp_servers=servers, env={"OPENCODE_CONFIG_CONTENT": json.dumps(user)}
    )
    merged = json.loads(build(config).env["OPENCODE_CONFIG_CONTENT"])
    assert merged["provider"] == user["provider"]
    assert merged["instructions"][0] == "/mine.md" and len(merged["instructions"]) == 2
    assert Path(merged["instructions"][1]).read_text() == "Answer in French."
    assert merged["mcp"]["old"] == {"type": "remote", "url": "u"}
    assert merged["mcp"]["files"] == {
        "type": "local",
        "command": ["mcp-files", "--root", "/"],
        "enabled": True,
        "environment": {"TOKEN": "t"},
    }
    assert merged["mcp"]["web"] == {"type": "remote", "url": "http://127.0.0.1:1/mcp", "enabled": True}
    assert "OPENCODE_CONFIG_CONTENT" not in build(RunConfig()).env  # nothing to add: the user's value stays


def test_system_prompt_file_path_is_stable_and_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The path is part of the system prompt (`Instructions from: <path>`): the same text must give the
    same path in every turn, or the provider's prompt cache would miss every time."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first, again, other = instructions_file("be brief"), instructions_file("be brief"), instructions_file("be long")
    assert first == again != other
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(first.parent).st_mode) == 0o700


def test_unmergeable_user_config_content_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("OPENCODE_CONFIG_CONTENT", '{ // jsonc\n "model": "a/b" }')
    with pytest.raises(ConfigurationError, match="JSON object"):
        build(RunConfig(system_prompt="x"))


def test_registered_and_sessions_live_under_xdg_data_home() -> None:
    provider = get_provider("opencode")
    assert isinstance(provider, OpencodeProvider) and provider.binary_name == "opencode"
    assert provider.config_home({"XDG_DATA_HOME": "/data"}) == "/data"
    assert provider.config_home({}) is None


def test_each_turn_gets_a_fresh_parser() -> None:
    """Each turn gets a fresh parser: a session id seen in one turn is announced again in the next."""
    provider = OpencodeProvider()
    for _ in range(2):
        events, _ = replay(provider.parser(), fixture_lines("opencode", "text"))
        assert isinstance(events[0], SessionStarted)


# ---- issue 12: one event shape for every provider ---------------------------------------------------------
def test_result_text_is_the_turns_text_not_null() -> None:
    """opencode has no terminal event: the result the exit produces carries the turn's answer."""
    events, turn = replay_fixture(OpencodeParser(), "opencode", "tool")
    [result] = [e for e in events if isinstance(e, ResultEvent)]
    assert result.text == turn.result == "Tool said: hi\n"
    # the closing usage comes right before the result, as claude's and codex's do
    assert isinstance(events[events.index(result) - 1], UsageEvent)


def test_session_started_names_the_model_caw_asked_for() -> None:
    """opencode never prints its model: session_started gets the one caw passed with --model."""
    turn = Turn(input="x", model="fake/text")
    asm = TurnAssembler(turn)
    parser = OpencodeParser()
    events = [
        ev for line in fixture_lines("opencode", "text") for e in parser.feed(json.loads(line)) for ev in asm.feed(e)
    ]
    started = next(e for e in events if isinstance(e, SessionStarted))
    assert started.model == "fake/text"


def test_session_started_names_the_configured_model_when_caw_passes_none(tmp_path: Path) -> None:
    """opencode never prints its model: with no --model, session_started names the one its config sets."""
    env = {"OPENCODE_CONFIG_CONTENT": '{"model": "fake/tool"}', "HOME": str(tmp_path)}
    parser = get_provider("opencode").parser(RunConfig(cwd=str(tmp_path), env=env), TurnRequest(prompt="hi"))
    started = next(e for line in fixture_lines("opencode", "text") for e in parser.feed(json.loads(line)))
    assert isinstance(started, SessionStarted) and started.model == "fake/tool"


def test_configured_model_sources_in_opencodes_merge_order(tmp_path: Path) -> None:
    from caw.providers.opencode import configured_model

    project = tmp_path / "repo" / "sub"
    project.mkdir(parents=True)
    (tmp_path / "repo" / "opencode.json").write_text('{"model": "p/project"}')
    user = tmp_path / "xdg" / "opencode"
    user.mkdir(parents=True)
    (user / "opencode.json").write_text('{"model": "p/user"}')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    assert configured_model({**env, "OPENCODE_CONFIG_CONTENT": '{"model": "p/env"}'}, project) == "p/env"
    assert configured_model(env, project) == "p/project"
    assert configured_model({**env, "OPENCODE_DISABLE_PROJECT_CONFIG": "1"}, project) == "p/user"
    assert configured_model({"HOME": str(tmp_path)}, tmp_path) is None
