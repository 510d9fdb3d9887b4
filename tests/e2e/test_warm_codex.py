"""Warm sessions on the real codex (issue 14): one `codex app-server` per Session, on the fake Responses API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import BaseModel

import caw
from caw.events import Event, TextEvent, ToolCallEvent
from caw.models import UsageStats
from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest
from caw.providers.codex_warm import CodexWarmClient
from caw.session.warm import RESTARTED
from tests.background import send_in_background
from tests.e2e.harness import LiveFactory, kill_quietly, live_factory, processes_matching, wait_until
from tests.fakes.env import CODEX_MODEL
from tests.fakes.replies import Hang, Text, Thinking, ToolCall, Usage, codex_usage_limit


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("codex", tmp_path, monkeypatch)


def _pid(session: caw.Session) -> int:
    warm = session._warm
    assert warm is not None
    pid = warm._slots["codex"].client.pid
    assert pid is not None
    return pid


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _sleeper() -> tuple[str, str]:
    """A long command the test can find by its command line (and kill if caw did not)."""
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997}"
    needle = f"time.sleep({marker})"
    return f"{sys.executable} -c 'import time; {needle}'", needle


def test_three_turns_one_process_history_and_per_turn_usage(codex: LiveFactory) -> None:
    """turns 2 and 3 reuse the app-server; request N holds turns 1..N-1; usage is each turn's own.

    The app-server reports the thread's running total (thread/tokenUsage/updated.total); caw's turn carries
    the difference, and cached input is not counted twice."""
    run = codex()
    run.server.enqueue(
        Text("reply one", usage=Usage(input_tokens=1000, output_tokens=50, cached_tokens=200)),
        Text("reply two", usage=Usage(input_tokens=2000, output_tokens=60, cached_tokens=500)),
        Text("reply three", usage=Usage(input_tokens=3000, output_tokens=70, cached_tokens=0)),
    )
    session = run.agent(warm=True).start_session()
    turns = []
    pids = set()
    for i in (1, 2, 3):
        turns.append(session.send(f"message number {i}"))
        pids.add(_pid(session))
    assert len(pids) == 1, "every turn ran on the same app-server"
    assert [t.result for t in turns] == ["reply one", "reply two", "reply three"]
    for n, request in enumerate(run.server.model_requests, start=1):
        assert request.body is not None
        texts = run.server.user_texts(request.body)
        assert [i for i in (1, 2, 3) if any(f"message number {i}" in t for t in texts)] == list(range(1, n + 1))
    assert [t.usage.input_tokens for t in turns] == [800, 1500, 3000]
    assert [t.usage.cache_read_tokens for t in turns] == [200, 500, 0]
    assert [t.usage.output_tokens for t in turns] == [50, 60, 70]
    assert session.trajectory.provider_session_id
    pid = pids.pop()
    traj = session.end()
    assert [t.status for t in traj.turns] == ["completed"] * 3
    wait_until(lambda: not _alive(pid), 10, "the warm codex to exit after end()")
    assert run.server.non_loopback_attempts() == []


def test_tool_use_in_a_warm_turn(codex: LiveFactory) -> None:
    run = codex()
    run.server.enqueue(Text("ready"), ToolCall("echo caw-warm-tool-ok"))
    with run.agent(warm=True, tools=caw.ToolGroup.READER | caw.ToolGroup.EXEC).start_session() as session:
        session.send("hello")
        turn = session.send("run the command")
    [use] = turn.tool_uses
    assert use.name == "exec_command" and "echo caw-warm-tool-ok" in str(use.arguments)
    assert "caw-warm-tool-ok" in (use.output or "") and not use.is_error
    assert "caw-warm-tool-ok" in turn.result  # the fake's follow-up quotes the tool output


def test_codex_interrupt_leaves_the_turns_command_running(codex: LiveFactory) -> None:
    """The protocol surprise behind kill_tools_since: after `turn/interrupt` the turn ends (`interrupted`)
    but its shell command lives on (codex tells the model "unified exec processes may still be running")."""
    run = codex()
    command, needle = _sleeper()
    run.server.enqueue(ToolCall(command), Text("after the interrupt"))
    config = RunConfig(cwd=str(run.work), model=CODEX_MODEL, tools=caw.ToolGroup.READER | caw.ToolGroup.EXEC)
    provider = get_provider("codex")
    binary = provider.locate(run.env)
    assert binary is not None
    client = provider.warm_client(binary, config, run.env)
    assert isinstance(client, CodexWarmClient)
    try:
        client.start(TurnRequest(prompt="x"), timeout=60)
        before = client.tool_pids()
        client.begin(TurnRequest(prompt="run the long command"))
        events: list[Event] = []
        deadline = time.monotonic() + 60
        while not any(isinstance(e, ToolCallEvent) for e in events):
            assert time.monotonic() < deadline
            events += client.poll(0.2)
        wait_until(lambda: processes_matching(needle), 30, "the long command to start")
        client.interrupt()
        while not client.turn_done:
            assert time.monotonic() < deadline
            events += client.poll(0.2)
        time.sleep(0.3)  # nothing to inject: the observation is that the real command is still there
        assert processes_matching(needle), "codex 0.171 stopped the command itself: kill_tools_since may be moot"
        assert client.kill_tools_since(before)
        assert not processes_matching(needle)
        client.begin(TurnRequest(prompt="still there?"))
        while not client.turn_done:
            assert time.monotonic() < deadline
            events += client.poll(0.2)
        body = run.server.model_requests[-1].body
        assert body is not None and run.server.last_user_text(body) == "still there?"
    finally:
        kill_quietly(processes_matching(needle))
        client.close()
    assert not client.alive


def test_cancel_mid_tool_keeps_the_process_and_kills_the_tool(codex: LiveFactory) -> None:
    run = codex()
    command, needle = _sleeper()
    run.server.enqueue(Text("warmed up"), ToolCall(command), Text("after"))
    session = run.agent(warm=True, tools=caw.ToolGroup.READER | caw.ToolGroup.EXEC).start_session()
    try:
        session.send("first")
        pid = _pid(session)
        # codex spawns the command before it announces it (item/started carries its processId): wait for the
        # announcement, so the partial turn has the call to show
        send = _stream_in_background(session, "start the long command")
        wait_until(lambda: any(isinstance(e, ToolCallEvent) for e in send.events), 60, "the tool call event")
        wait_until(lambda: processes_matching(needle), 60, "the long-running tool to start")
        session.cancel()
        send.thread.join(15)
        assert not send.thread.is_alive()
        turn = session.trajectory.turns[-1]
        assert turn.status == "cancelled", (turn.status, send.errors)
        assert turn.tool_uses, "the partial turn keeps the call"
        assert not processes_matching(needle), "the tool survived the cancel"
        after = session.send("are you still there?")
        assert after.result == "after"
        assert _pid(session) == pid, "the next send must run on the same warm process"
    finally:
        kill_quietly(processes_matching(needle))
        session.end()


@dataclass
class _Streaming:
    thread: threading.Thread
    events: list[Event] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def _stream_in_background(session: caw.Session, message: str) -> _Streaming:
    out = _Streaming(thread=threading.Thread(target=lambda: None))

    def run() -> None:
        try:
            for ev in session.stream(message):
                out.events.append(ev)
        except BaseException as exc:
            out.errors.append(exc)

    out.thread = threading.Thread(target=run, name="test-stream", daemon=True)
    out.thread.start()
    return out


def test_sigkill_of_the_warm_codex_costs_one_turn(codex: LiveFactory) -> None:
    run = codex()
    run.server.enqueue(Text("one"), ToolCall("echo partial-before-crash"), Hang(60), Text("back again"))
    session = run.agent(warm=True, tools=caw.ToolGroup.READER | caw.ToolGroup.EXEC).start_session()
    try:
        session.send("remember the word pelican")
        pid = _pid(session)
        send = send_in_background(session, "run it and then hang")
        wait_until(lambda: len(run.server.model_requests) >= 3, 60, "the follow-up model request")
        os.kill(pid, signal.SIGKILL)
        send.join(30)
        err = send.error
        assert isinstance(err, caw.ProviderCrashed), repr(err)
        assert err.turn is not None and err.turn.status == "failed"
        assert [bool(u.output and "partial-before-crash" in u.output) for u in err.turn.tool_uses] == [True]
        again = session.send("what was the word?")
        assert again.result == "back again"
        restarted = _pid(session)
        assert restarted != pid
        assert again.usage.input_tokens > 0
        body = run.server.model_requests[-1].body
        assert body is not None
        assert any("pelican" in t for t in run.server.user_texts(body)), "the conversation was resumed"
        notes = session.trajectory.notes
        assert any("started it again and resumed the conversation" in n for n in notes), notes
        assert [t.status for t in session.trajectory.turns] == ["completed", "failed", "completed"]
        assert RESTARTED == "warm_restarted"
    finally:
        session.end()
    wait_until(lambda: not _alive(pid) and not _alive(restarted), 10, "both app-servers to be gone")


def test_handles_resume_across_modes(codex: LiveFactory) -> None:
    """A handle minted warm resumes cold in another process, and a cold one resumes warm."""
    run = codex()
    run.server.enqueue(Text("a"), Text("b"), Text("c", usage=Usage(input_tokens=4000, output_tokens=40)))
    with run.agent(warm=True).start_session() as warm:
        warm.send("warm word ostrich")
        handle = warm.resume_handle
        assert warm._warm is not None and warm._warm._slots  # it ran warm
    assert handle
    code = (
        "import caw, sys; s = caw.Agent(provider='codex', model=sys.argv[2], warm=False, timeout=120)"
        ".resume_session(sys.argv[1]); print(s.send('cold follow-up').result); print(s.resume_handle)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, handle, CODEX_MODEL],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=run.work,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result, cold_handle = out.stdout.split()
    assert result == "b"
    body = run.server.model_requests[-1].body
    assert body is not None and any("warm word ostrich" in t for t in run.server.user_texts(body))
    with run.agent(warm=True).resume_session(cold_handle) as again:
        turn = again.send("warm again")
        assert again._warm is not None and again._warm._slots  # it ran warm
    assert turn.result == "c"
    # thread/resume replays the previous turn's thread/tokenUsage/updated: it must not count for this turn
    assert turn.usage == UsageStats(input_tokens=4000, output_tokens=40)
    body = run.server.model_requests[-1].body
    assert body is not None
    texts = run.server.user_texts(body)
    assert any("warm word ostrich" in t for t in texts) and any("cold follow-up" in t for t in texts)


def test_python_tools_in_a_warm_codex_session(codex: LiveFactory) -> None:
    """caw's tool endpoint (an MCP server over HTTP) reaches the app-server's thread like `codex exec`: the
    tools are offered directly on the first request (model_catalog_json) and their calls are ToolUses."""
    run = codex()
    notes: list[str] = []

    @caw.tool(description="Save a note.")
    def add_note(text: str) -> str:
        notes.append(text)
        return f"note {len(notes)} saved: {text}"

    run.server.enqueue(ToolCall("", tool="add_note", input={"text": "warm-4417"}), Text("noted"), Text("again"))
    with run.agent(warm=True, stateless_tools=[add_note]).start_session() as session:
        turn = session.send("save a note")
        pid = _pid(session)
        second = session.send("anything else?")
        assert _pid(session) == pid
    assert turn.result == "noted" and second.result == "again"
    assert notes == ["warm-4417"]
    first = run.server.model_requests[0].body or {}
    names = [t.get("name") for t in first.get("tools") or []]
    names += [f.get("name") for t in first.get("tools") or [] for f in t.get("tools") or []]
    assert "add_note" in names, names
    (use,) = turn.tool_uses
    assert use.name.endswith("add_note") and use.arguments == {"text": "warm-4417"} and not use.is_error
    assert "note 1 saved: warm-4417" in (use.output or "")


def test_warm_and_cold_turns_give_the_same_events(codex: LiveFactory) -> None:
    """Reasoning, text, a tool call with its result and per-turn usage: event for event what a cold turn gives
    (the warm client feeds the cold CodexParser), ids and the thread id aside."""
    run = codex()
    streams: dict[bool, list[list[dict[str, object]]]] = {}
    for warm in (False, True):
        run.server.enqueue(
            Thinking("think it over", "one", usage=Usage(input_tokens=100, output_tokens=10)),
            ToolCall("echo parity-5521", usage=Usage(input_tokens=200, output_tokens=20, cached_tokens=50)),
            Text("done", usage=Usage(input_tokens=300, output_tokens=30, cached_tokens=100)),
        )
        agent = run.agent(warm=warm, tools=caw.ToolGroup.READER | caw.ToolGroup.EXEC)
        with agent.start_session() as session:
            streams[warm] = [
                [e.model_dump(exclude={"provider", "id", "message_id", "session_id"}) for e in session.stream(p)]
                for p in ("first", "second")
            ]
            assert bool(session._warm and session._warm._slots) == warm
    # warm also reports each model request's usage as it is spent (a running usage event, final False, which a
    # budget meters mid-turn); codex exec prints usage only at the end
    running = [[e for e in turn if e["type"] == "usage" and not e["final"]] for turn in streams[True]]
    assert [len(r) for r in running] == [1, 2]
    streams[True] = [[e for e in turn if e["type"] != "usage" or e["final"]] for turn in streams[True]]
    assert streams[True] == streams[False]
    kinds = [[e["type"] for e in turn] for turn in streams[True]]
    assert kinds == [
        ["session_started", "thinking", "text", "usage", "result"],
        ["session_started", "tool_call", "tool_result", "text", "usage", "result"],
    ]


class _City(BaseModel):
    name: str
    population: int | None = None


def test_output_schema_on_the_warm_client(codex: LiveFactory) -> None:
    """A schema on a warm turn: turn/start's outputSchema carries the strict schema exec's --output-schema
    sends, for that turn only."""
    run = codex()
    run.server.enqueue(Text("hello"), Text(json.dumps({"name": "Lyon", "population": None})), Text("plain"))
    provider = get_provider("codex")
    binary = provider.locate(run.env)
    assert binary is not None
    client = provider.warm_client(binary, RunConfig(cwd=str(run.work), model=CODEX_MODEL), run.env)
    assert client is not None
    schema = _City.model_json_schema()
    try:
        client.start(TurnRequest(prompt="x"), timeout=60)
        texts = []
        for request in (
            TurnRequest(prompt="hi"),
            TurnRequest(prompt="Name a city as JSON", output_schema=schema),
            TurnRequest(prompt="and now?"),
        ):
            client.begin(request)
            deadline = time.monotonic() + 60
            while not client.turn_done:
                assert time.monotonic() < deadline
                texts += [e.text for e in client.poll(0.2) if isinstance(e, TextEvent)]
    finally:
        client.close()
    assert _City.model_validate_json(texts[1]) == _City(name="Lyon")
    formats = [((r.body or {}).get("text") or {}).get("format") for r in run.server.model_requests]
    assert formats[0] is None and formats[2] is None  # per turn only
    assert formats[1]["strict"] is True and formats[1]["schema"]["additionalProperties"] is False
    assert set(formats[1]["schema"]["required"]) == {"name", "population"}


def test_usage_limit_in_a_warm_turn_is_waited_out_on_the_same_process(codex: LiveFactory) -> None:
    """A usage limit mid-session: auto-wait (injected clock and sleeper) sends "continue" to the same
    app-server, whose thread kept the limited message (as with exec resume)."""
    run = codex()
    reset = int(datetime.now(timezone.utc).timestamp()) + 1800
    run.server.enqueue(Text("first answer"), codex_usage_limit(reset), Text("worked after the wait"))
    now = [datetime.now(timezone.utc)]
    lock = threading.Lock()

    def clock() -> datetime:
        with lock:
            return now[0]

    def sleeper(seconds: float, event: threading.Event) -> bool:
        with lock:
            now[0] += timedelta(seconds=seconds)
        return event.is_set()

    agent = run.agent(warm=True, auto_wait=True, clock=clock, sleeper=sleeper, wait_buffer=1)
    with agent.start_session() as session:
        session.send("hello")
        pid = _pid(session)
        turn = session.send("please do the limited thing")
        assert _pid(session) == pid, "the wait must not cost the warm process"
        turns = session.trajectory.turns
    assert turn.status == "completed" and turn.result == "worked after the wait"
    assert [t.limit.resets_at is not None for t in turns if t.limit is not None] == [True], turns
    last = run.server.model_requests[-1].body
    assert last is not None and run.server.last_user_text(last) == "continue"
    assert sum("please do the limited thing" in t for t in run.server.user_texts(last)) == 1


def test_interpreter_exit_leaves_no_app_server(codex: LiveFactory) -> None:
    """A script that never calls end(): at interpreter exit caw stops the app-server and what it started."""
    run = codex()
    command, needle = _sleeper()
    run.server.enqueue(ToolCall(f"{command} > /dev/null 2>&1 &"), Text("started it"))
    code = (
        "import caw, sys; s = caw.Agent(provider='codex', model=sys.argv[1], warm=True, timeout=120,"
        " tools=caw.ToolGroup.READER | caw.ToolGroup.EXEC).start_session();"
        " s.send('hi'); print(s._warm._slots['codex'].client.pid, flush=True)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, CODEX_MODEL],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=run.work,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    pid = int(out.stdout.split()[0])
    assert run.server.tool_result_text(run.server.model_requests[-1].body or {}) is not None  # the tool ran
    try:
        wait_until(lambda: not _alive(pid), 10, "the app-server to be gone after the interpreter exited")
        wait_until(lambda: not processes_matching(needle), 10, "the background tool to be gone")
    finally:
        kill_quietly(processes_matching(needle))


def test_output_turn_stays_warm(codex: LiveFactory) -> None:
    """`send(output=)` on a warm codex session runs on the same app-server (codex warm_request_fields)."""
    run = codex()
    run.server.enqueue(Text("hello"), Text(json.dumps({"name": "Lyon", "population": 513000})), Text("bye"))
    with run.agent(warm=True).start_session() as session:
        session.send("hi")
        pid = _pid(session)
        turn = session.send("Name a city as JSON", output=_City)
        assert _pid(session) == pid
        last = session.send("thanks")
        assert _pid(session) == pid
    assert turn.parsed == _City(name="Lyon", population=513000) and last.result == "bye"
    formats = [((r.body or {}).get("text") or {}).get("format") for r in run.server.model_requests]
    assert [f is not None for f in formats] == [False, True, False]
