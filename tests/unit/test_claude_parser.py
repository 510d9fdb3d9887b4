"""The Claude parser on output recorded from the real binary, and one test per protocol surprise."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from caw.events import (
    ErrorEvent,
    RateLimitEvent,
    RawEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
)
from caw.models import TextBlock, ThinkingBlock, ToolGroup, ToolUse
from caw.providers.base import RunConfig, TurnRequest
from caw.providers.claude import ClaudeParser, ClaudeProvider
from tests.unit.parse_helpers import fixture_lines, fixture_meta, replay, replay_fixture


def fatal(events: list) -> ErrorEvent | None:  # type: ignore[type-arg]
    errors = [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
    return errors[-1] if errors else None


def test_text_fixture() -> None:
    events, turn = replay_fixture(ClaudeParser(), "claude", "text")
    assert isinstance(events[0], SessionStarted)
    assert turn.result
    assert fatal(events) is None
    assert any(isinstance(e, ResultEvent) for e in events)
    assert turn.usage.input_tokens > 0 and turn.usage.cost_usd is not None


def test_tool_fixture_joins_result_to_call() -> None:
    _, turn = replay_fixture(ClaudeParser(), "claude", "tool")
    [use] = [b for b in turn.output if isinstance(b, ToolUse)]
    assert use.name == "Bash" and use.output and not use.is_error
    assert "command" in use.arguments


def test_content_blocks_sharing_message_id_merge_into_one_turn() -> None:
    """Each content block is its own `assistant` event; thinking then text share `message.id`."""
    _, turn = replay_fixture(ClaudeParser(), "claude", "thinking")
    kinds = [type(b) for b in turn.output]
    assert kinds == [ThinkingBlock, TextBlock]


def test_two_text_blocks_of_one_message_become_one_text_block() -> None:
    lines = [
        '{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"Hello, "}]}}',
        '{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"world."}]}}',
        '{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"Again."}]}}',
        '{"type":"result","subtype":"success","is_error":false,"result":"x","usage":{}}',
    ]
    _, turn = replay(ClaudeParser(), lines)
    assert [b.text for b in turn.output if isinstance(b, TextBlock)] == ["Hello, world.", "Again."]


def test_assistant_usage_is_a_start_snapshot_result_usage_wins() -> None:
    lines = [
        '{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"x"}],'
        '"usage":{"input_tokens":5,"output_tokens":1}}}',
        '{"type":"result","subtype":"success","is_error":false,"result":"x","total_cost_usd":0.5,'
        '"usage":{"input_tokens":100,"output_tokens":40,"cache_read_input_tokens":7,"cache_creation_input_tokens":3}}',
    ]
    events, turn = replay(ClaudeParser(), lines)
    assert next(e for e in events if isinstance(e, UsageEvent)).final
    u = turn.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens) == (100, 40, 7, 3)
    assert u.cost_usd == 0.5 and u.total_tokens == 150


def test_error_result_says_subtype_success_but_is_error() -> None:
    events, _ = replay_fixture(ClaudeParser(), "claude", "server_error")
    err = fatal(events)
    assert err is not None and err.kind == "server"
    assert not any(isinstance(e, ResultEvent) for e in events)


def test_rate_limit_event_carries_the_reset_epoch() -> None:
    events, _ = replay_fixture(ClaudeParser(), "claude", "rate_limited")
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    assert limit.status == "rejected" and limit.kind == "session"
    meta = fixture_meta("claude", "rate_limited")
    assert limit.resets_at == datetime.fromtimestamp(meta["params"]["reset_epoch"], tz=timezone.utc)
    err = fatal(events)
    assert err is not None and err.kind == "rate_limit" and err.status == 429


def test_api_key_rate_limit_has_no_reset_but_is_a_limit() -> None:
    events, _ = replay_fixture(ClaudeParser(), "claude", "rate_limited_api_key")
    err = fatal(events)
    assert err is not None and err.kind == "rate_limit"


def test_allowed_rate_limit_event_on_a_healthy_turn_is_not_a_limit() -> None:
    lines = [
        '{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","resetsAt":1795320000}}',
        '{"type":"result","subtype":"success","is_error":false,"result":"ok","usage":{}}',
    ]
    events, turn = replay(ClaudeParser(), lines)
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    assert limit.status == "allowed"
    assert fatal(events) is None and turn.limit is None


def test_auth_failure_is_classified_from_the_synthetic_message() -> None:
    events, _ = replay_fixture(ClaudeParser(), "claude", "auth_error")
    err = fatal(events)
    assert err is not None and err.kind == "auth"


def test_repeated_529_has_null_status_but_is_a_server_error() -> None:
    lines = [
        '{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"API Error: Repeated 529'
        ' Overloaded errors."}]},"error":"server_error"}',
        '{"type":"result","subtype":"success","is_error":true,"api_error_status":null,'
        '"result":"API Error: Repeated 529 Overloaded errors.","usage":{}}',
    ]
    events, turn = replay(ClaudeParser(), lines, exit_code=1)
    err = fatal(events)
    assert err is not None and err.kind == "server" and err.status is None
    assert turn.output == []  # the synthetic error text is not the agent's answer


def test_billing_error_is_not_a_rate_limit() -> None:
    lines = [
        '{"type":"assistant","message":{"model":"<synthetic>","content":[]},"error":"billing_error"}',
        '{"type":"result","subtype":"success","is_error":true,"api_error_status":400,'
        '"result":"Credit balance is too low","usage":{}}',
    ]
    events, _ = replay(ClaudeParser(), lines, exit_code=1)
    err = fatal(events)
    assert err is not None and err.kind == "billing"


def test_api_retry_is_a_retry_event_not_a_failure() -> None:
    lines = [
        '{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":506.9,'
        '"error_status":429,"error":"rate_limit"}',
        '{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"ok"}]}}',
        '{"type":"result","subtype":"success","is_error":false,"result":"ok","usage":{}}',
    ]
    events, turn = replay(ClaudeParser(), lines)
    [retry] = [e for e in events if isinstance(e, RetryEvent)]
    assert retry.attempt == 1 and retry.status == 429
    assert fatal(events) is None and turn.retries == 1


def test_legacy_usage_limit_text_passed_through_as_success_is_a_limit() -> None:
    """`Claude AI usage limit reached|<epoch>` arrives with is_error false and rc 0."""
    lines = [
        '{"type":"assistant","message":{"id":"m","content":[{"type":"text",'
        '"text":"Claude AI usage limit reached|1795315950"}]}}',
        '{"type":"result","subtype":"success","is_error":false,"result":"Claude AI usage limit reached|1795315950",'
        '"usage":{}}',
    ]
    events, _ = replay(ClaudeParser(), lines)
    err = fatal(events)
    assert err is not None and err.kind == "rate_limit"
    [limit] = [e for e in events if isinstance(e, RateLimitEvent)]
    assert limit.resets_at == datetime.fromtimestamp(1795315950, tz=timezone.utc)


def test_resume_of_unknown_session_is_not_found() -> None:
    events, _ = replay_fixture(ClaudeParser(), "claude", "resume_unknown")
    err = fatal(events)
    assert err is not None and err.kind == "not_found"


def test_unknown_event_type_is_kept_raw_never_a_crash() -> None:
    lines = [
        '{"type":"hologram","payload":{"x":1}}',
        '{"type":"system","subtype":"future_thing"}',
        '{"type":"assistant","message":{"id":"m","content":[{"type":"future_block","x":1},{"type":"text","text":"ok"}]}}',
        '{"type":"result","subtype":"success","is_error":false,"result":"ok","usage":{}}',
    ]
    events, turn = replay(ClaudeParser(), lines)
    assert sum(isinstance(e, RawEvent) for e in events) == 2
    assert turn.result == "ok"


def test_drifted_shape_of_a_known_type_becomes_raw() -> None:
    events, _ = replay(ClaudeParser(), ['{"type":"system","subtype":"init"}'], exit_code=0)
    assert isinstance(events[0], RawEvent)


def test_exit_without_result_is_a_cli_error_with_stderr() -> None:
    events, _ = replay(
        ClaudeParser(),
        [],
        exit_code=1,
        stderr="Error: When using --print, --output-format=stream-json requires --verbose\n",
    )
    err = fatal(events)
    assert err is not None and err.kind == "cli" and "requires --verbose" in err.message


def test_stream_json_argv_has_verbose_and_prompt_goes_on_stdin() -> None:
    inv = ClaudeProvider().build("claude", RunConfig(cwd="/w"), TurnRequest(prompt="--help", new_key="k"))
    assert inv.argv[:5] == ["claude", "-p", "--output-format", "stream-json", "--verbose"]
    assert "--help" not in inv.argv
    assert inv.stdin == b"--help"
    assert inv.argv[inv.argv.index("--session-id") + 1] == "k"


def test_later_turns_resume_and_config_maps_to_flags() -> None:
    cfg = RunConfig(
        model="sonnet", reasoning="high", system_prompt="be brief", tools=ToolGroup.READER | ToolGroup.WRITER, cwd="/w"
    )
    inv = ClaudeProvider().build("claude", cfg, TurnRequest(prompt="x", resume_key="abc"))
    argv = inv.argv
    assert argv[argv.index("--resume") + 1] == "abc" and "--session-id" not in argv
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert argv[argv.index("--effort") + 1] == "high"
    assert argv[argv.index("--append-system-prompt") + 1] == "be brief"
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert set(argv[argv.index("--tools") + 1].split(",")) >= {"Read", "Edit", "Write"}


def test_default_permission_mode_is_explicit_and_never_bypasses() -> None:
    argv = ClaudeProvider().build("claude", RunConfig(cwd="/w"), TurnRequest(prompt="x")).argv
    assert argv[argv.index("--permission-mode") + 1] == "default"
    assert "--dangerously-skip-permissions" not in argv


def test_mcp_config_file_is_private_and_removed() -> None:
    import os
    import stat

    from caw.models import MCPServer

    cfg = RunConfig(cwd="/w", mcp_servers=(MCPServer(name="echo", command="python3", args=["s.py"], env={"T": "x"}),))
    inv = ClaudeProvider().build("claude", cfg, TurnRequest(prompt="x"))
    path = inv.argv[inv.argv.index("--mcp-config") + 1]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        assert '"echo"' in f.read()
    inv.cleanup()
    assert not os.path.exists(path)


def test_usage_after_non_streaming_fallback_comes_from_model_usage() -> None:
    """A stream cut mid-way makes claude retry without streaming; result.usage is then all zeros."""
    _, turn = replay_fixture(ClaudeParser(), "claude", "midstream_drop")
    assert turn.status != "failed"
    assert turn.usage.input_tokens > 0 and turn.usage.output_tokens > 0
    assert turn.usage.cost_usd and turn.usage.cost_usd > 0


def test_oauth_401_not_logged_in_is_auth() -> None:
    lines = [
        '{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"Not logged in'
        ' · Please run /login"}]},"error":"authentication_failed"}',
        '{"type":"result","subtype":"success","is_error":true,"api_error_status":401,'
        '"result":"Not logged in · Please run /login","usage":{}}',
    ]
    events, _ = replay(ClaudeParser(), lines, exit_code=1)
    err = fatal(events)
    assert err is not None and err.kind == "auth"


def test_connection_lost_after_fallback_is_a_server_error() -> None:
    events, _ = replay_fixture(ClaudeParser(), "claude", "midstream_drop_fatal")
    err = fatal(events)
    assert err is not None and err.kind == "server" and err.status is None


# ---- issue 12: one event shape for every provider ---------------------------------------------------------
def test_tool_result_carries_the_calls_name_and_arguments() -> None:
    """claude's tool_result names only the call's id: the session fills name and arguments from the call."""
    events, _ = replay_fixture(ClaudeParser(), "claude", "tool")
    [call] = [e for e in events if isinstance(e, ToolCallEvent)]
    [result] = [e for e in events if isinstance(e, ToolResultEvent)]
    assert result.id == call.id and result.name == "Bash" and result.arguments == call.arguments
    assert events.index(call) < events.index(result)


def test_session_started_reports_the_clis_model_over_none() -> None:
    events, _ = replay_fixture(ClaudeParser(), "claude", "tool")
    started = next(e for e in events if isinstance(e, SessionStarted))
    assert started.model and started.model.startswith("claude-")


def test_ede_diagnostic_of_an_interrupted_turn_is_not_an_error() -> None:
    """On SIGINT claude closes with error_during_execution whose only error is its internal
    ``[ede_diagnostic]`` line: that is an interruption, not a red 'error (unknown)'."""
    lines = fixture_lines("claude", "interrupted")
    parser = ClaudeParser()
    fed = [ev for line in lines for ev in parser.feed(json.loads(line))]
    assert not [e for e in fed if isinstance(e, ErrorEvent)]
    assert not any("ede_diagnostic" in str(e.model_dump()) for e in fed)
    assert any(isinstance(e, UsageEvent) and e.final for e in fed)
    # when caw did not cancel it (someone else sent the signal), the end of the process says what happened
    [closing] = parser.finish(1, "")
    assert isinstance(closing, ErrorEvent) and closing.kind == "cancelled" and "interrupted" in closing.message
    assert "ede_diagnostic" not in closing.message


def test_ede_diagnostic_is_dropped_from_a_real_error_message() -> None:
    line = {
        "type": "result", "subtype": "error_during_execution", "is_error": True, "usage": {},
        "errors": ["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null", "boom"],
    }  # fmt: skip
    err = fatal(ClaudeParser().feed(line))
    assert err is not None and err.message == "boom"


def test_partial_messages_stream_text_deltas_without_doubling_the_answer() -> None:
    """``--include-partial-messages``: the deltas are the text; the aggregated assistant event that follows
    them must not add it a second time (recorded on 2.1.197, tool round trip)."""
    events, turn = replay_fixture(ClaudeParser(), "claude", "partial_tool")
    texts = [e.text for e in events if isinstance(e, TextEvent)]
    assert texts == ["Tool ", "said:", " hi"]
    assert turn.result == "Tool said: hi"
    assert [type(b) for b in turn.output] == [ToolUse, TextBlock]
    assert not [e for e in events if isinstance(e, RawEvent) and e.data.get("type") == "stream_event"]
    [result] = [e for e in events if isinstance(e, ResultEvent)]
    assert result.text == "Tool said: hi"


def test_partial_messages_an_abandoned_stream_is_flagged() -> None:
    """A stream cut mid-way: claude asks again without streaming, under a new message id (observed)."""
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial answer"}}
    objs: list[dict[str, Any]] = [
        {"type": "stream_event", "event": {"type": "message_start", "message": {"id": "m1"}}},
        {"type": "stream_event", "event": delta},
        {"type": "assistant", "message": {"id": "m2", "content": [{"type": "text", "text": "Recovered."}]}},
    ]
    parser = ClaudeParser()
    fed = [ev for obj in objs for ev in parser.feed(obj)]
    assert [type(e) for e in fed] == [TextEvent, WarningEvent, TextEvent]
    assert isinstance(fed[-1], TextEvent) and fed[-1].text == "Recovered."


def test_partial_messages_deltas_missing_the_end_get_only_the_rest() -> None:
    objs: list[dict[str, Any]] = [
        {"type": "stream_event", "event": {"type": "message_start", "message": {"id": "m1"}}},
        {
            "type": "stream_event",
            "event": {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hel"}},
        },
        {"type": "assistant", "message": {"id": "m1", "content": [{"type": "text", "text": "Hello."}]}},
    ]
    parser = ClaudeParser()
    assert [e.text for obj in objs for e in parser.feed(obj) if isinstance(e, TextEvent)] == ["Hel", "lo."]


def test_partial_messages_of_a_subagent_are_not_the_answer() -> None:
    """A stream_event with a parent_tool_use_id is a subagent's (Task tool): its deltas are no answer text."""
    parser = ClaudeParser()
    start = {"type": "message_start", "message": {"id": "sub1"}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "inner"}}
    fed = [
        ev
        for event in (start, delta)
        for ev in parser.feed({"type": "stream_event", "event": event, "parent_tool_use_id": "toolu_1"})
    ]
    assert fed == []
