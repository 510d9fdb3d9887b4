"""One consumer of ``caw run --jsonl`` for every provider (issue 12): the same event sequence, the same fields.

Each test runs the real CLI through the installed ``caw`` command (a subprocess, as a CI job would) on its
loopback fake, and hands stdout to ``read_run``: a consumer written once, with no branch on the provider.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import caw
from caw.events import (
    EVENT_ADAPTER,
    CawSessionEvent,
    ErrorEvent,
    Event,
    ResultEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)
from tests.e2e.harness import Live, LiveFactory, kill_quietly, live_factory, processes_matching, wait_until
from tests.fakes.replies import Text, ToolCall

RUN_TIMEOUT = 120


@dataclass
class Run:
    """What one consumer learns from a ``--jsonl`` stream, the same way for every provider."""

    #: the event types in order, consecutive text/thinking collapsed, progress usage left out
    shape: list[str] = field(default_factory=list)
    started: SessionStarted | None = None
    calls: dict[str, ToolCallEvent] = field(default_factory=dict)
    results: list[ToolResultEvent] = field(default_factory=list)
    text: str = ""
    final_usage: list[UsageEvent] = field(default_factory=list)
    result: ResultEvent | None = None
    errors: list[ErrorEvent] = field(default_factory=list)
    session: CawSessionEvent | None = None


def read_run(stdout: str) -> Run:
    """The consumer: one pass over the lines, no provider-specific branch."""
    run = Run()
    for line in stdout.splitlines():
        ev: Event = EVENT_ADAPTER.validate_json(line)
        if isinstance(ev, UsageEvent) and not ev.final:
            continue  # progress (opencode reports each model call); the final one is the turn's
        if ev.type in ("raw", "rate_limit", "warning", "retry"):
            continue  # what a CLI adds on its own; not part of the turn's shape
        if not (ev.type in ("text", "thinking") and run.shape and run.shape[-1] == ev.type):
            run.shape.append(ev.type)
        if isinstance(ev, SessionStarted):
            run.started = ev
        elif isinstance(ev, ToolCallEvent):
            run.calls[ev.id] = ev
        elif isinstance(ev, ToolResultEvent):
            assert ev.id in run.calls, f"tool_result {ev.id} before its tool_call"
            run.results.append(ev)
        elif isinstance(ev, TextEvent):
            run.text += ev.text
        elif isinstance(ev, UsageEvent):
            run.final_usage.append(ev)
        elif isinstance(ev, ResultEvent):
            run.result = ev
        elif isinstance(ev, ErrorEvent):
            run.errors.append(ev)
        elif isinstance(ev, CawSessionEvent):
            run.session = ev
        elif not isinstance(ev, ThinkingEvent):
            raise AssertionError(f"unexpected event {ev.type}")
    return run


def caw_argv(live: Live, *args: str) -> list[str]:
    model = live.harness.agent_kwargs.get("model")
    return [
        sys.executable, "-m", "caw", "run", "--jsonl", "--provider", live.harness.name,
        *(["--model", str(model)] if model else []), *args,
    ]  # fmt: skip


def _env(live: Live) -> dict[str, Any]:
    return {**live.env, "CAW_DATA_DIR": str(live.root / "caw-data")}


def test_a_tool_turn_reads_the_same_from_every_provider(live: LiveFactory) -> None:
    run = live()
    run.server.enqueue(ToolCall("echo caw-parity-ok"))
    r = subprocess.run(
        caw_argv(run, "Run the command"),
        env=_env(run),
        cwd=run.work,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        input="",
    )
    assert r.returncode == 0, r.stderr
    got = read_run(r.stdout)
    assert got.shape == [
        "session_started", "tool_call", "tool_result", "text", "usage", "result", "caw_session",
    ], r.stdout  # fmt: skip
    # session_started: who, which conversation, which model
    assert got.started is not None and got.started.provider == run.harness.name
    assert got.started.session_id and got.started.model
    # every result names its call, with the call's arguments
    [result] = got.results
    call = got.calls[result.id]
    assert call.name and result.name == call.name and result.arguments == call.arguments
    assert any("caw-parity-ok" in str(v) for v in call.arguments.values())
    assert "caw-parity-ok" in result.output and not result.is_error
    # one final usage with tokens, then the result, whose text is the streamed text exactly once
    [usage] = got.final_usage
    assert usage.usage.input_tokens > 0 and usage.usage.output_tokens > 0
    assert got.result is not None and got.result.text and "caw-parity-ok" in got.result.text
    assert got.text == got.result.text
    # caw's own closing line: its session id and the handle that resumes the conversation
    assert got.session is not None and got.session.exit_code == 0
    assert got.session.session_id and got.session.resume_handle and got.session.resume_handle.startswith("caw1_")
    assert got.session.provider_session_id == got.started.session_id
    assert got.errors == []
    assert f"caw resume {got.session.resume_handle}" in r.stderr


def test_sigterm_ends_the_stream_with_interrupted_not_a_crash(live: LiveFactory) -> None:
    """issue 12: after SIGTERM the last word about the turn is that it was interrupted: no fatal error,
    no claude ``[ede_diagnostic]`` line shown as 'error (unknown)'."""
    run = live()
    # a Python sleep, not `sleep N`: newer claude refuses a standalone sleep (see test_parity's cancel test)
    sleeper = f"time.sleep({300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997})"
    run.server.enqueue(ToolCall(f"{sys.executable} -c 'import time; {sleeper}'"))
    proc = subprocess.Popen(
        caw_argv(run, "--tools", "exec", "Run the command"),
        env=_env(run),
        cwd=run.work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: processes_matching(sleeper), 60, "the tool to start")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_quietly(processes_matching(sleeper))
    assert proc.returncode == 130, stderr
    got = read_run(stdout)
    assert got.shape[-2:] == ["error", "caw_session"], stdout
    [interrupted] = got.errors
    assert interrupted.kind == "cancelled" and not interrupted.fatal
    assert "ede_diagnostic" not in stdout and "ede_diagnostic" not in stderr
    assert got.session is not None and got.session.exit_code == 130 and got.session.resume_handle
    assert not processes_matching(sleeper)


@pytest.fixture
def claude_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("claude", tmp_path, monkeypatch)


def test_claude_partial_messages_stream_deltas_and_the_answer_once(claude_live: LiveFactory) -> None:
    """claude 2.1.197 with ``--include-partial-messages`` (opt-in via extra_args): the text arrives as its
    deltas, and the aggregated assistant message that follows them does not repeat it."""
    run = claude_live()
    answer = "Streaming in three parts, not doubled."
    run.server.enqueue(Text(answer, chunks=3))
    session = run.agent(extra_args=("--include-partial-messages",)).start_session()
    events = list(stream := session.stream("Say it"))
    session.end()
    texts = [e.text for e in events if isinstance(e, TextEvent)]
    assert len(texts) == 3 and "".join(texts) == answer
    assert stream.turn.result == answer
    [result] = [e for e in events if isinstance(e, ResultEvent)]
    assert result.text == answer
    assert not [e for e in events if e.type == "raw" and getattr(e, "data", {}).get("type") == "stream_event"]


def test_session_stream_of_a_cancelled_turn_ends_with_cancelled(claude_live: LiveFactory) -> None:
    """The Python API's stream says it too: the last event before ``TurnCancelled`` is the cancelled one."""
    run = claude_live()
    sleeper = f"time.sleep({300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997})"
    run.server.enqueue(ToolCall(f"{sys.executable} -c 'import time; {sleeper}'"))
    session = run.agent(tools=caw.ToolGroup.EXEC).start_session()
    events: list[Event] = []
    cancel = threading.Thread(
        target=lambda: (wait_until(lambda: processes_matching(sleeper), 60, "the tool"), session.cancel())
    )
    cancel.start()
    try:
        with pytest.raises(caw.TurnCancelled):
            for ev in session.stream("Run the command"):
                events.append(ev)
    finally:
        cancel.join(30)
        kill_quietly(processes_matching(sleeper))
        session.end()
    last = events[-1]
    assert isinstance(last, ErrorEvent) and last.kind == "cancelled" and not last.fatal
    assert not [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
