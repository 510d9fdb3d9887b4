"""CodexWarmClient against a scripted app-server (tests/fakes/codex_app_server.py): the protocol traps, the
event mapping, server requests, faults. The real `codex app-server` runs in tests/e2e/test_warm_codex.py."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest

from caw.errors import ConversationNotFound, FirstOutputTimeout
from caw.events import (
    ErrorEvent,
    Event,
    RateLimitEvent,
    RawEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)
from caw.models import MCPServer, ToolGroup, UsageStats
from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest, WarmClosed
from caw.providers.codex import warm_flags
from caw.providers.codex_warm import CodexWarmClient, app_server_settings, exec_item
from tests.fakes.codex_app_server import app_server_binary


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    yield app_server_binary(tmp_path), tmp_path / "sent.jsonl"


def make(fake: tuple[str, Path], tmp_path: Path, **kw: Any) -> CodexWarmClient:
    binary, log = fake
    config = RunConfig(cwd=str(tmp_path), tools=kw.pop("tools", None))
    env = {"PATH": os.environ.get("PATH", ""), "FAKE_APP_SERVER_LOG": str(log), "TZ": "UTC"}
    client = get_provider("codex").warm_client(binary, config, env)
    assert isinstance(client, CodexWarmClient)
    for key, value in kw.items():
        setattr(client, key, value)
    return client


def turn(client: CodexWarmClient, prompt: str, *, limit: float = 10.0) -> list[Event]:
    client.begin(TurnRequest(prompt=prompt))
    events: list[Event] = []
    deadline = time.monotonic() + limit
    while not client.turn_done:
        assert time.monotonic() < deadline, f"turn did not end: {events}"
        events += client.poll(0.2)
    return events


def sent(fake: tuple[str, Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in fake[1].read_text().splitlines()]


def of(events: list[Event], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def final_usage(events: list[Event]) -> UsageStats:
    finals = [u.usage for u in of(events, UsageEvent) if u.final]
    assert len(finals) == 1, events
    return finals[0]


def test_each_model_request_s_usage_is_a_running_usage_event_before_the_turn_ends(
    fake: tuple[str, Path], tmp_path: Path
) -> None:
    # found by QA with an independent fake: a budget (max_tokens) crossed by a turn's first model request
    # (input tokens: no streamed text shows them) was only seen at turn/completed, so the turn ran to its end
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "run the tool")
        running = [i for i, e in enumerate(events) if isinstance(e, UsageEvent) and not e.final]
        assert [events[i].usage for i in running] == [UsageStats(input_tokens=50, output_tokens=5)] * 2
        # they come as they happen, before the turn's end
        assert running[-1] < events.index(of(events, ResultEvent)[0])
        assert final_usage(events) == UsageStats(input_tokens=100, output_tokens=10)
    finally:
        client.close()


def test_a_turn_maps_text_tools_and_per_turn_usage(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "run the tool")
        assert isinstance(events[0], SessionStarted) and events[0].session_id.startswith("thr-")
        call, result = of(events, ToolCallEvent)[0], of(events, ToolResultEvent)[0]
        assert (call.name, call.arguments) == ("exec_command", {"command": "/bin/bash -lc 'echo hi'"})
        assert (result.output, result.is_error, result.id) == ("hi\n", False, call.id)
        assert [e.text for e in of(events, TextEvent)] == ["ECHO run the tool"]
        assert isinstance(events[-1], ResultEvent) and events[-1].text == "ECHO run the tool"
        usages = of(events, UsageEvent)
        assert [u.usage for u in usages if u.final] == [UsageStats(input_tokens=100, output_tokens=10)]
        # the second turn's usage is its own, not the thread's running total (200/20)
        second = turn(client, "again")
        assert final_usage(second) == UsageStats(input_tokens=100, output_tokens=10)
    finally:
        client.close()
    assert not client.alive


def test_codex_turn_completed_before_start_reply(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "early bird")
        assert isinstance(events[-1], ResultEvent) and events[-1].text == "ECHO early bird"
        # the late turn/start reply neither reopens the turn nor leaks into the next one
        nxt = turn(client, "next")
        assert [type(e).__name__ for e in nxt].count("ResultEvent") == 1
        assert of(nxt, TextEvent)[0].text == "ECHO next"
    finally:
        client.close()


def test_codex_missing_turn_completed_recovered_from_idle_status(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path, idle_grace_s=0.2)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "nocomplete please")
        assert isinstance(events[-1], ResultEvent) and events[-1].text == "ECHO nocomplete please"
        assert final_usage(events).input_tokens == 100
        assert any(m.get("method") == "thread/read" for m in sent(fake))
        assert of(turn(client, "after"), TextEvent)[0].text == "ECHO after"
    finally:
        client.close()


def test_codex_thread_persisted_only_after_first_turn(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        # a thread that never ran a turn has no rollout: `thread/resume` would say "no rollout found"
        assert client.resume_key is None
        client.begin(TurnRequest(prompt="hello"))
        assert client.resume_key is None
        while not client.turn_done:
            client.poll(0.2)
        assert client.resume_key is not None and client.resume_key.startswith("thr-")
    finally:
        client.close()


def test_rejected_first_turn_reports_no_resume_key(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "reject this")
        assert not of(events, SessionStarted), "no turn ran: the thread has no rollout to resume"
        error = events[-1]
        assert isinstance(error, ErrorEvent) and error.fatal and error.kind == "context_overflow"
        assert client.resume_key is None
        assert of(turn(client, "then this"), SessionStarted)
        assert client.resume_key is not None
    finally:
        client.close()


def test_codex_thread_resume_hang_is_a_typed_timeout(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path, resume_timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(FirstOutputTimeout, match="thread/resume"):
        client.start(TurnRequest(prompt="x", resume_key="thr-hang"), timeout=10)
    assert time.monotonic() - t0 < 5
    assert not client.alive


def test_resume_of_a_thread_without_rollout_is_conversation_not_found(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    with pytest.raises(ConversationNotFound, match="no rollout found"):
        client.start(TurnRequest(prompt="x", resume_key="thr-missing"), timeout=10)
    assert not client.alive


def test_resumed_thread_replayed_usage_does_not_count(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x", resume_key="thr-old"), timeout=10)
        assert client.resume_key == "thr-old"
        events = turn(client, "continue")
        assert of(events, SessionStarted)[0].session_id == "thr-old"
        assert final_usage(events) == UsageStats(input_tokens=100, output_tokens=10)
        # the replayed figures of the old turn (400/40) are no running usage of this one either
        assert [u.usage for u in of(events, UsageEvent) if not u.final] == [
            UsageStats(input_tokens=50, output_tokens=5)
        ] * 2
        resume = next(m for m in sent(fake) if m.get("method") == "thread/resume")
        assert resume["params"]["threadId"] == "thr-old" and resume["params"]["excludeTurns"] is True
    finally:
        client.close()


def test_approvals_follow_the_tools_config(fake: tuple[str, Path], tmp_path: Path) -> None:
    for tools, decision in ((ToolGroup.READER | ToolGroup.EXEC, "accept"), (ToolGroup.READER, "decline")):
        client = make(fake, tmp_path, tools=tools)
        try:
            client.start(TurnRequest(prompt="x"), timeout=10)
            assert of(turn(client, "approval"), TextEvent)[0].text == f"decision={decision}"
        finally:
            client.close()


def test_dynamic_tool_call_gets_an_error_result_without_a_handler(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        text = of(turn(client, "dyntool"), TextEvent)[0].text
        assert text == "success=False text=caw has no handler for the tool 'lookup'"
        client.dynamic_tool_handler = lambda p: {"contentItems": [{"type": "inputText", "text": "42"}], "success": True}
        assert of(turn(client, "dyntool"), TextEvent)[0].text == "success=True text=42"
    finally:
        client.close()


def test_unknown_server_request_gets_a_jsonrpc_error(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        assert of(turn(client, "unknownreq"), TextEvent)[0].text == "error=-32601"
    finally:
        client.close()


def test_garbled_and_unknown_lines_are_raw_events(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "garbled")
        raws = of(events, RawEvent)
        assert {"line": "this is not json {"} in [r.data for r in raws]
        assert any(r.data.get("method") == "item/brandNew/notification" for r in raws)
        assert isinstance(events[-1], ResultEvent)
    finally:
        client.close()


def test_will_retry_error_is_a_retry_not_a_failure(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "retry")
        retry = of(events, RetryEvent)[0]
        assert (retry.attempt, retry.max_retries) == (1, 5)
        assert not [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
        assert isinstance(events[-1], ResultEvent)
    finally:
        client.close()


def test_usage_limit_is_rate_limit_event_then_fatal_error(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        events = turn(client, "limit")
        limit = of(events, RateLimitEvent)[0]
        assert limit.status == "rejected" and limit.resets_at is not None
        # "try again at 11:59 PM" (TZ=UTC, minute precision): the end of that minute
        assert limit.resets_at.astimezone(timezone.utc).strftime("%H:%M") == "00:00"
        error = events[-1]
        assert isinstance(error, ErrorEvent) and error.fatal and error.kind == "rate_limit"
        # the process lives on: the next turn answers
        assert of(turn(client, "fine"), TextEvent)[0].text == "ECHO fine"
    finally:
        client.close()


def test_codex_error_info_decides_the_kind_when_the_text_does_not(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        error = turn(client, "opaque401")[-1]
        assert isinstance(error, ErrorEvent) and error.fatal
        assert (error.kind, error.status, error.message) == ("auth", 401, "the request was refused")
    finally:
        client.close()


def test_interrupt_ends_the_turn_and_kill_tools_since_kills_the_leftover(
    fake: tuple[str, Path], tmp_path: Path
) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        before = client.tool_pids()
        client.begin(TurnRequest(prompt="sleep"))
        events: list[Event] = []
        while not of(events, ToolCallEvent):
            events += client.poll(0.2)
        client.interrupt()
        deadline = time.monotonic() + 10
        while not client.turn_done:
            assert time.monotonic() < deadline
            events += client.poll(0.2)
        assert not [e for e in events if isinstance(e, (ResultEvent, ErrorEvent))]
        assert of(events, UsageEvent)[0].usage.input_tokens == 50
        interrupts = [m for m in sent(fake) if m.get("method") == "turn/interrupt"]
        assert interrupts and interrupts[0]["params"]["turnId"] == "turn-1"
        # like codex, the fake leaves the turn's `sleep 60` running after the interrupt
        leftover = client.tool_pids() - before
        assert leftover
        assert client.kill_tools_since(before)
        assert not (client.tool_pids() - before)
        assert of(turn(client, "next"), TextEvent)[0].text == "ECHO next"
    finally:
        client.close()


def test_interrupt_before_the_turn_id_is_known_is_sent_once_it_is(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        before = client.tool_pids()
        client.begin(TurnRequest(prompt="slowreply sleep"))
        client.interrupt()  # no turn id yet: turn/interrupt needs one
        assert not [m for m in sent(fake) if m.get("method") == "turn/interrupt"]
        events: list[Event] = []
        deadline = time.monotonic() + 10
        while not client.turn_done:
            assert time.monotonic() < deadline
            events += client.poll(0.2)
        interrupts = [m for m in sent(fake) if m.get("method") == "turn/interrupt"]
        assert [m["params"]["turnId"] for m in interrupts] == ["turn-1"]
        assert not [e for e in events if isinstance(e, (ResultEvent, ErrorEvent))]
        client.kill_tools_since(before)
    finally:
        client.close()


def test_process_death_mid_turn_is_warm_closed(fake: tuple[str, Path], tmp_path: Path) -> None:
    client = make(fake, tmp_path)
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
        client.begin(TurnRequest(prompt="die"))
        with pytest.raises(WarmClosed) as info:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                client.poll(0.2)
        assert info.value.exit_code == 3
        assert not client.alive
    finally:
        client.close()


def test_thread_start_carries_the_cold_flags(fake: tuple[str, Path], tmp_path: Path) -> None:
    binary, log = fake
    config = RunConfig(
        cwd=str(tmp_path),
        model="gpt-x",
        reasoning="high",
        system_prompt="be brief",
        tools=ToolGroup.READER | ToolGroup.WRITER,
        mcp_servers=(MCPServer(name="m1", command="python3", args=("srv.py",), env={"TOKEN": "s3cret"}),),
    )
    client = get_provider("codex").warm_client(binary, config, {"FAKE_APP_SERVER_LOG": str(log)})
    assert client is not None
    try:
        client.start(TurnRequest(prompt="x"), timeout=10)
    finally:
        client.close()
    params = next(m for m in sent(fake) if m.get("method") == "thread/start")["params"]
    assert (params["sandbox"], params["model"], params["approvalPolicy"]) == ("workspace-write", "gpt-x", "never")
    assert params["developerInstructions"] == "be brief"
    cfg = params["config"]
    assert cfg["model_reasoning_effort"] == "high"
    assert cfg["features.shell_tool"] is False and cfg["features.multi_agent"] is False
    assert cfg["web_search"] == "disabled"
    assert cfg["shell_environment_policy.exclude"] == ["CODEX_API_KEY", "OPENAI_API_KEY"]
    assert (cfg["mcp_servers.m1.command"], cfg["mcp_servers.m1.args"]) == ("python3", ["srv.py"])
    assert cfg["mcp_servers.m1.env"] == {"TOKEN": "s3cret"}
    assert cfg["mcp_servers.m1.default_tools_approval_mode"] == "approve"


def test_extra_args_map_or_the_session_runs_cold() -> None:
    config = RunConfig(extra_args=("-c", "model=o9", "--disable", "plugins", "-s", "danger-full-access"))
    settings = app_server_settings(config, warm_flags(config))
    assert settings is not None
    assert settings.config["model"] == "o9" and settings.config["features.plugins"] is False
    assert settings.sandbox == "danger-full-access"
    bypass = RunConfig(extra_args=("--dangerously-bypass-approvals-and-sandbox", "-m", "gpt-y"))
    settings = app_server_settings(bypass, warm_flags(bypass))
    assert settings is not None and (settings.sandbox, settings.model) == ("danger-full-access", "gpt-y")
    # exec-only options have no app-server equivalent: the provider offers no warm client
    assert app_server_settings(RunConfig(extra_args=("--full-auto",)), []) is None
    assert app_server_settings(RunConfig(extra_args=("--ephemeral",)), []) is None
    assert get_provider("codex").warm_client("codex", RunConfig(extra_args=("--ephemeral",)), {}) is None


def test_exec_item_maps_v2_items_to_the_cold_shapes() -> None:
    assert exec_item(
        {
            "type": "fileChange",
            "id": "f",
            "status": "completed",
            "changes": [{"path": "a.py", "kind": {"type": "add"}, "diff": ""}],
        }
    ) == {"id": "f", "type": "file_change", "status": "completed", "changes": [{"path": "a.py", "kind": "add"}]}
    mcp = exec_item(
        {
            "type": "mcpToolCall",
            "id": "m",
            "server": "s",
            "tool": "t",
            "arguments": {"a": 1},
            "status": "failed",
            "result": None,
            "error": {"message": "boom"},
        }
    )
    assert mcp is not None and (mcp["type"], mcp["server"], mcp["error"]) == ("mcp_tool_call", "s", {"message": "boom"})
    reasoning = exec_item({"type": "reasoning", "id": "r", "summary": ["one", "two"], "content": []})
    assert reasoning is not None and reasoning["text"] == "one\n\ntwo"
    assert exec_item({"type": "userMessage", "id": "u"}) is None
