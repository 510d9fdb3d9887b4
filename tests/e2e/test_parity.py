"""The same scenarios against every real CLI on its loopback fake: users switch providers, nothing breaks."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import caw
from caw.events import RetryEvent, TextEvent, ToolCallEvent, ToolResultEvent
from tests.background import send_in_background
from tests.e2e.conftest import PROVIDERS
from tests.e2e.harness import LiveFactory, cli_pid, kill_quietly, live_factory, processes_matching, wait_until
from tests.fakes.replies import Hang, Text, Thinking, ToolCall

#: providers whose scenarios also run warm (issue 14: one long-lived CLI per session, ``Agent(warm=True)``)
WARM_PARITY = [name for name in ("claude", "codex", "opencode") if name in PROVIDERS]


@pytest.fixture(params=[*PROVIDERS, *(f"{name}-warm" for name in WARM_PARITY)])
def live(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    name, _, mode = str(request.param).partition("-")
    for factory in live_factory(name, tmp_path, monkeypatch):
        factory.warm = mode == "warm"
        yield factory


def test_plain_text(live: LiveFactory) -> None:
    run = live()
    run.server.enqueue(Text("Hello from the fake model."))
    traj = run.agent().completion("Say hello")
    assert traj.result == "Hello from the fake model."
    turn = traj.turns[0]
    assert turn.status == "completed"
    assert turn.usage.output_tokens > 0
    assert traj.agent == run.harness.name
    assert traj.provider_session_id
    assert run.server.count_occurrences("Say hello") == 1
    assert run.server.non_loopback_attempts() == []


def test_tool_round_trip(live: LiveFactory) -> None:
    run = live()
    run.server.enqueue(ToolCall("echo caw-tool-ok"))
    session = run.agent().start_session()
    events = list(stream := session.stream("Run the command"))
    turn = stream.turn
    calls = [e for e in events if isinstance(e, (ToolCallEvent, ToolResultEvent))]
    assert calls, "the tool call must be reported as events"
    [use] = turn.tool_uses
    assert "caw-tool-ok" in (use.output or "")
    assert not use.is_error
    assert "caw-tool-ok" in turn.result  # the fake's follow-up quotes the tool output
    assert any(isinstance(e, TextEvent) for e in events)
    session.end()


def test_multi_turn_carries_history(live: LiveFactory) -> None:
    run = live()
    with run.agent().start_session() as session:
        session.send("first message alpha")
        second = session.send("second message beta")
    assert second.status == "completed"
    last = run.server.model_requests[-1].body
    assert last is not None
    history = run.server.user_texts(last)
    assert any("first message alpha" in t for t in history), history
    assert "second message beta" in run.server.last_user_text(last)
    assert run.server.count_occurrences("first message alpha") == 1


def test_reasoning_becomes_thinking_block(live: LiveFactory) -> None:
    run = live()
    run.server.enqueue(Thinking("Let me think about the greeting.", "Hi there."))
    traj = run.agent(**run.harness.reasoning_kwargs).completion("Greet me")
    turn = traj.turns[0]
    thinking = [b for b in turn.output if isinstance(b, caw.ThinkingBlock)]
    assert thinking and "think about the greeting" in thinking[0].text
    assert turn.result == "Hi there."


def test_rate_limited_turn_raises_usage_limit(live: LiveFactory) -> None:
    assert live.harness.rate_limited is not None
    run = live(**live.harness.rate_limit_env)
    reset = int(time.time()) + 3 * 3600
    run.server.enqueue(live.harness.rate_limited(reset))
    with pytest.raises(caw.UsageLimitError) as info:
        run.agent(auto_wait=False).completion("please work")
    err = info.value
    assert err.provider == run.harness.name
    assert err.waitable
    if run.harness.reports_reset:
        assert err.resets_at is not None
        assert abs(err.resets_at.timestamp() - reset) <= 60
    assert err.turn is not None and err.turn.status == "rate_limited"
    assert err.trajectory.turns[-1].status == "rate_limited"  # type: ignore[attr-defined]


def test_auth_failure_raises_authentication_error(live: LiveFactory) -> None:
    assert live.harness.auth_error is not None
    run = live()
    run.server.enqueue(live.harness.auth_error())
    with pytest.raises(caw.AuthenticationError) as info:
        run.agent(auto_wait=False).completion("hello?")
    assert info.value.provider == run.harness.name


def test_cli_crash_mid_stream_keeps_partial_turn(live: LiveFactory) -> None:
    """The CLI process dies while the model is answering: a typed error, the partial turn kept, no orphans."""
    run = live()
    run.server.enqueue(Hang(60))
    session = run.agent().start_session()
    send = send_in_background(session, "this will crash")
    wait_until(lambda: run.server.model_requests, 60, "the CLI's model request")
    pid = cli_pid(session)
    assert pid
    os.kill(pid, signal.SIGKILL)
    send.join(30)
    err = send.error
    assert isinstance(err, caw.ProviderCrashed), repr(err)
    assert err.turn is not None and err.turn.status == "failed"
    assert session.trajectory.turns[-1].input == "this will crash"
    session.end()


def test_cancel_kills_running_tool(live: LiveFactory) -> None:
    """A long-running tool is gone within 5 s of cancel, although it lives in a session of its own.

    The tool is a Python sleep, not `sleep N`: claude 2.1.3xx refuses a standalone `sleep` in its Bash tool
    (it points the model at run_in_background), so the pinned-newest claude would never start it.
    """
    run = live()
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997}"
    needle = f"time.sleep({marker})"
    run.server.enqueue(ToolCall(f"{sys.executable} -c 'import time; {needle}'"))
    # EXEC: unlike `sleep`, a python command is not one claude runs without approval in its default mode
    session = run.agent(tools=caw.ToolGroup.EXEC).start_session()
    send = send_in_background(session, "start the long command")
    try:
        pids = wait_until(lambda: processes_matching(needle), 90, "the long-running tool to start")
        started = time.monotonic()
        session.cancel()
        send.join(10)
        gone_after = time.monotonic() - started
        assert not processes_matching(needle), "the tool survived the cancel"
        assert gone_after < 5.0
        assert isinstance(send.error, caw.TurnCancelled)
        assert session.trajectory.turns[-1].status == "cancelled"
    finally:
        kill_quietly(processes_matching(needle))
        session.end()
    assert pids


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("--help", id="dash-help"),
        pytest.param("-x starts with a dash", id="dash-x"),
        # 1 MB (10**6 bytes): far past argv's 128 KiB, under codex's own 1,048,576-character message cap
        pytest.param("big:" + ("0123456789abcdef" * 62500)[:999_996], id="1MB"),
    ],
)
def test_odd_prompts_arrive_verbatim(live: LiveFactory, prompt: str) -> None:
    run = live()
    traj = run.agent().completion(prompt)
    assert traj.turns[0].status == "completed"
    body = run.server.model_requests[-1].body
    assert body is not None
    assert run.server.last_user_text(body) == prompt


def test_retries_are_events_not_failures(live: LiveFactory) -> None:
    """A transient error the CLI retries by itself ends in success; no failure is reported."""
    run = live()
    from tests.fakes.replies import Error

    run.server.enqueue(Error(500, message="temporary", type="api_error"), Text("recovered"))
    agent = run.agent(env={"CLAUDE_CODE_MAX_RETRIES": "2"})
    session = agent.start_session()
    events = list(stream := session.stream("try"))
    assert stream.turn.result == "recovered"
    if run.harness.name == "claude":
        assert any(isinstance(e, RetryEvent) for e in events)
    session.end()


def _limit_replies(run_harness, reset: int) -> list:  # type: ignore[no-untyped-def,type-arg]
    if run_harness.limit_replies is not None:
        return list(run_harness.limit_replies(reset))
    return [run_harness.rate_limited(reset)]


def test_limit_is_waited_out_and_the_same_conversation_continues(live: LiveFactory) -> None:
    from caw.events import LimitWaitEvent

    assert live.harness.rate_limited is not None
    run = live(**live.harness.rate_limit_env)
    with run.agent(auto_wait=False).start_session() as warmup:  # an existing conversation first
        warmup.send("earlier context ONE")
        handle = warmup.resume_handle
    reset = int(time.time()) + 4
    run.server.enqueue(*_limit_replies(live.harness, reset))
    session = run.agent(wait_buffer=1, max_wait=120, data_dir=str(run.root / "data")).resume_session(handle)
    events = list(stream := session.stream("the original request TWO"))
    turn = stream.turn
    assert turn.status == "completed"
    waits = [e for e in events if isinstance(e, LimitWaitEvent)]
    assert waits and waits[0].provider == run.harness.name
    answered_at = run.server.model_requests[-1].t
    if live.harness.reports_reset:
        assert answered_at >= reset + 1 - 0.5, "woke before resets_at + buffer"
    # the model answered from a conversation holding the user's request exactly once (caw did not send it
    # again after the wait), with the earlier history kept. (opencode's own internal 429 retries resend
    # the rejected request; those were never answered.)
    last = run.server.model_requests[-1].body
    assert last is not None
    texts = run.server.user_texts(last)
    assert sum("the original request TWO" in t for t in texts) == 1, texts
    assert any("earlier context ONE" in t for t in texts)
    answered = [r for r in run.server.model_requests if r.reply != "error" and r.body is not None]
    assert sum("the original request TWO" in run.server.last_user_text(r.body) for r in answered) <= 1
    traj = session.end()
    assert traj.usage_limited
    assert [t.status for t in traj.turns][-2:] == ["rate_limited", "completed"]
    assert traj.turns[-1].input == "the original request TWO"
    assert traj.pending_message is None


def test_cancelled_limit_wait_loses_nothing(live: LiveFactory) -> None:
    assert live.harness.rate_limited is not None
    run = live(**live.harness.rate_limit_env)
    data = run.root / "data"
    reset = int(time.time()) + 600
    run.server.enqueue(*_limit_replies(live.harness, reset))
    session = run.agent(max_wait=3600, data_dir=str(data)).start_session()
    send = send_in_background(session, "please wait for me")
    wait_until(lambda: session.trajectory.pending_message, 120, "the limit wait to start")
    started = time.monotonic()
    session.cancel()
    send.join(10)
    assert time.monotonic() - started < 3
    assert isinstance(send.error, caw.TurnCancelled)
    saved = caw.Session.load_trajectory(data / "sessions" / session.trajectory.session_id / "trajectory.json")
    assert saved.trajectory.pending_message == "please wait for me"
    assert saved.trajectory.usage_limited
    assert saved.trajectory.turns[-1].status == "rate_limited"
    assert saved.trajectory.resume_handle
