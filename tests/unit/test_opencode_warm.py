"""The opencode warm client (``opencode serve``) against a scripted HTTP + SSE fake: mapping and traps.

The fake (``tests/unit/fake_opencode_serve.py``) speaks the 1.18.33 shapes; the "CLI" is a shell script that
prints the listening line and sleeps, so start-up, the password, death and ``close`` involve a real process.
The e2e counterpart with the real binary is ``tests/e2e/test_warm_opencode.py``.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from caw.errors import ConfigurationError, ConversationNotFound, FirstOutputTimeout
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
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
)
from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest, WarmClosed
from caw.providers.opencode_warm import OpencodeWarmClient
from tests.unit.fake_opencode_serve import (
    SID,
    FakeServe,
    assistant_info,
    ev,
    idle_ev,
    message_ev,
    part_ev,
    status_ev,
    step_finish,
    step_start,
    text_part,
    tool_part,
    user_info,
)

_ids = itertools.count(1)
Script = Callable[[FakeServe, str, dict[str, Any]], None]


@pytest.fixture
def fake() -> Iterator[FakeServe]:
    server = FakeServe().start()
    yield server
    server.stop()


def make_client(fake: FakeServe, tmp_path: Path, **kw: Any) -> OpencodeWarmClient:
    config = RunConfig(model="fake/text", cwd=str(tmp_path))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return OpencodeWarmClient(
        get_provider("opencode"), fake.binary(tmp_path), config, env, model=("fake", "text"), status_poll_s=0.05, **kw
    )


@pytest.fixture
def client(fake: FakeServe, tmp_path: Path) -> Iterator[OpencodeWarmClient]:
    c = make_client(fake, tmp_path)
    yield c
    c.close(0.0)


def turn(client: OpencodeWarmClient, prompt: str = "hi", *, limit_s: float = 10.0) -> list[Event]:
    """Run one turn to its end; fail (not hang) if it never ends."""
    if client.resume_key is None:
        client.start(TurnRequest(prompt), timeout=10)
    client.begin(TurnRequest(prompt, resume_key=client.resume_key))
    events: list[Event] = []
    give_up = time.monotonic() + limit_s
    while not client.turn_done:
        assert time.monotonic() < give_up, f"the turn never ended; events so far: {events}"
        events += client.poll(0.2)
    return events


def answer(
    text: str,
    *,
    thought: str | None = None,
    tool: bool = False,
    idle: bool = True,
    drop_after_start: bool = False,
    error: dict[str, Any] | None = None,
    structured: Any = None,
) -> Script:
    """What opencode streams for one turn (``drop_after_start``: the stream closes after the step starts)."""

    def on_prompt(fake: FakeServe, sid: str, body: dict[str, Any]) -> None:
        n = next(_ids)
        uid, aid = f"msg_u{n}", f"msg_a{n}"
        user = user_info(sid, uid)
        fake.emit(message_ev(user), part_ev(text_part(sid, uid, f"prt_u{n}", body["parts"][0]["text"])))
        fake.status(sid, "busy")
        fake.emit(status_ev(sid, "busy"), message_ev(assistant_info(sid, aid, uid)))
        parts = [step_start(sid, aid, f"prt_s{n}")]
        if thought:
            parts.append(text_part(sid, aid, f"prt_r{n}", thought, kind="reasoning"))
        if tool:
            parts.append(tool_part(sid, aid, f"prt_t{n}", "completed"))
        parts += [text_part(sid, aid, f"prt_x{n}", text), step_finish(sid, aid, f"prt_f{n}", inp=100, out=7, cost=0.01)]
        fake.emit(part_ev(parts[0]))
        if drop_after_start:
            fake.drop()
        else:
            if tool:
                fake.emit(part_ev(tool_part(sid, aid, f"prt_t{n}", "running")))
            fake.emit(part_ev(text_part(sid, aid, f"prt_x{n}", "", done=False)))
            fake.emit(ev("message.part.delta", sessionID=sid, messageID=aid, partID=f"prt_x{n}", delta=text[:2]))
            fake.emit(*(part_ev(p) for p in parts[1:]))
        extra: dict[str, Any] = {"error": error} if error else {}
        if structured is not None:
            extra["structured"] = structured
        done = assistant_info(sid, aid, uid, completed=True, finish="stop", **extra)
        old = fake.sessions.get(sid, [])
        fake.messages(sid, [*old, {"info": user, "parts": []}, {"info": done, "parts": parts}])
        fake.status(sid, None)
        if drop_after_start:
            return
        if error:
            fake.emit(ev("session.error", sessionID=sid, error=error))
        fake.emit(message_ev(done))
        if idle:
            fake.emit(status_ev(sid, "idle"), idle_ev(sid))

    return on_prompt


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def texts(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextEvent)]


# ---- mapping -----------------------------------------------------------------------------------------------
def test_opencode_turn_maps_like_the_cold_parser(fake: FakeServe, client: OpencodeWarmClient) -> None:
    fake.on_prompt = answer("The answer.", thought="hmm", tool=True)
    events = turn(client, "question")
    assert kinds(events) == [
        "SessionStarted", "ThinkingEvent", "ToolResultEvent", "TextEvent", "UsageEvent", "ResultEvent",
    ]  # fmt: skip
    started = events[0]
    assert isinstance(started, SessionStarted) and started.session_id == SID and started.model == "fake/text"
    thinking, tool, text, usage = events[1], events[2], events[3], events[4]
    assert isinstance(thinking, ThinkingEvent) and thinking.text == "hmm"
    assert isinstance(tool, ToolResultEvent) and tool.output == "hi\n" and tool.arguments["command"] == "echo hi"
    assert isinstance(text, TextEvent) and text.text == "The answer."  # once, finished: no deltas
    assert isinstance(usage, UsageEvent) and usage.usage.input_tokens == 100 and usage.usage.cost_usd == 0.01

    # the cold parser, fed what `opencode run --format json` prints for the same parts, says the same
    cold = get_provider("opencode").parser(RunConfig(model="fake/text"), None)
    run_type = {"step-start": "step_start", "step-finish": "step_finish", "tool": "tool_use"}
    cold_events: list[Event] = []
    for part in fake.sessions[SID][-1]["parts"]:
        line = {"type": run_type.get(part["type"], part["type"]), "sessionID": SID, "timestamp": 1, "part": part}
        cold_events += cold.feed(line)
    cold_events += cold.finish(0, "")
    assert [e.model_dump() for e in cold_events] == [e.model_dump() for e in events]
    assert fake.prompts[0]["parts"] == [{"type": "text", "text": "question"}]
    assert client.resume_key == SID


def test_opencode_prompt_body_carries_model_variant_and_format(fake: FakeServe, tmp_path: Path) -> None:
    schema = {"type": "json_schema", "schema": {"type": "object"}, "retryCount": 1}
    c = OpencodeWarmClient(
        get_provider("opencode"),
        fake.binary(tmp_path),
        RunConfig(model="fake/reasoning", reasoning="high", cwd=str(tmp_path)),
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        model=("fake", "reasoning"),
        output_format=schema,
        status_poll_s=0.05,
    )
    try:
        fake.on_prompt = answer('{"ok": true}', structured={"ok": True})
        events = turn(c, "give json")
    finally:
        c.close(0.0)
    [body] = fake.prompts
    assert body["model"] == {"providerID": "fake", "modelID": "reasoning"}
    assert body["variant"] == "high" and body["format"] == schema
    result = events[-1]
    assert isinstance(result, ResultEvent) and result.structured == {"ok": True} == c.last_structured
    create = next(b for m, p, b in fake.calls if (m, p) == ("POST", "/session"))
    assert create["title"] == "give json"  # a title: no title-generation request (as `run --title=`)
    assert {"permission": "question", "pattern": "*", "action": "deny"} in create["permission"]


def test_opencode_warm_client_comes_from_the_provider(tmp_path: Path) -> None:
    config = RunConfig(model="fake/text", system_prompt="be brief", cwd=str(tmp_path))
    c = get_provider("opencode").warm_client("/bin/true", config, {"OPENCODE_CONFIG_CONTENT": '{"model":"x/y"}'})
    assert isinstance(c, OpencodeWarmClient)
    merged = json.loads(c._serve_env["OPENCODE_CONFIG_CONTENT"])
    assert merged["model"] == "x/y" and merged["instructions"]  # the user's config kept, the prompt file added
    assert c._model == {"providerID": "fake", "modelID": "text"}


def test_opencode_server_password_is_random_and_required(fake: FakeServe, client: OpencodeWarmClient) -> None:
    fake.on_prompt = answer("ok")
    turn(client)
    assert fake.password_file is not None and len(fake.password_file.read_text()) >= 24
    assert fake.unauthorized == 0  # every request carried it
    other = make_client(fake, fake.password_file.parent)
    assert other._password != client._password
    other.close(0.0)


def test_opencode_usage_is_per_turn(fake: FakeServe, client: OpencodeWarmClient) -> None:
    fake.on_prompt = answer("one")
    first = turn(client, "one")
    second = turn(client, "two")
    for events in (first, second):
        [usage] = [e for e in events if isinstance(e, UsageEvent)]
        assert usage.usage.input_tokens == 100 and usage.usage.output_tokens == 7
    assert texts(second) == ["one"]


def test_opencode_retry_status_is_a_retry_event(fake: FakeServe, client: OpencodeWarmClient) -> None:
    inner = answer("after retry")

    def on_prompt(f: FakeServe, sid: str, body: dict[str, Any]) -> None:
        f.emit(status_ev(sid, "retry", attempt=1, message="Rate limit reached. Try again in 2s.", next=10**13))
        inner(f, sid, body)

    fake.on_prompt = on_prompt
    events = turn(client)
    [retry] = [e for e in events if isinstance(e, RetryEvent)]
    assert retry.attempt == 1 and "Rate limit" in retry.message and retry.delay_ms and retry.delay_ms > 0
    assert texts(events) == ["after retry"] and isinstance(events[-1], ResultEvent)


def test_opencode_rate_limit_error_maps_like_the_cold_parser(fake: FakeServe, client: OpencodeWarmClient) -> None:
    error = {
        "name": "APIError",
        "data": {
            "message": "Rate limit reached for requests.",
            "statusCode": 429,
            "isRetryable": True,
            "responseHeaders": {"retry-after": "120", "x-ratelimit-remaining-requests": "0"},
            "responseBody": '{"error": {"code": "rate_limit_exceeded"}}',
        },
    }
    fake.on_prompt = answer("", error=error)
    events = turn(client)
    limit = next(e for e in events if isinstance(e, RateLimitEvent))
    fatal = next(e for e in events if isinstance(e, ErrorEvent) and e.fatal)
    assert limit.waitable and limit.resets_at is not None
    assert fatal.kind == "rate_limit" and fatal.status == 429
    assert not [e for e in events if isinstance(e, ResultEvent)]


def test_opencode_garbled_and_unknown_events_are_raw(fake: FakeServe, client: OpencodeWarmClient) -> None:
    inner = answer("fine")

    def on_prompt(f: FakeServe, sid: str, body: dict[str, Any]) -> None:
        f.emit(ev("session.brand_new_thing", sessionID=sid, x=1))  # type: ignore[arg-type]
        f.emit(b"data: {not json\n\n")  # type: ignore[arg-type]
        f.emit(ev("session.status", sessionID=sid, status="not-an-object"))
        f.emit(ev("message.updated", sessionID="ses_someone_else", info={"id": "m", "role": "assistant"}))
        inner(f, sid, body)

    fake.on_prompt = on_prompt
    events = turn(client)
    raw = [e for e in events if isinstance(e, RawEvent)]
    assert len(raw) == 3  # the unknown type, the garbled line, the drifted shape; another session's: dropped
    assert texts(events) == ["fine"] and isinstance(events[-1], ResultEvent)


def test_opencode_permission_asked_is_rejected_like_run_does(fake: FakeServe, client: OpencodeWarmClient) -> None:
    inner = answer("refused")

    def on_prompt(f: FakeServe, sid: str, body: dict[str, Any]) -> None:
        asked = {"id": "per_1", "sessionID": sid, "permission": "external_directory", "patterns": ["/etc/*"]}
        f.emit(ev("permission.asked", **asked), ev("question.asked", id="que_1", sessionID=sid, questions=[]))
        inner(f, sid, body)

    fake.on_prompt = on_prompt
    events = turn(client)
    warnings = [e.message for e in events if isinstance(e, WarningEvent)]
    assert "permission requested: external_directory (/etc/*); auto-rejecting" in warnings
    replies = [(p, b) for m, p, b in fake.calls if p.startswith(("/permission", "/question"))]
    assert replies == [("/permission/per_1/reply", {"reply": "reject"}), ("/question/que_1/reject", {})]


# ---- the end of a turn -------------------------------------------------------------------------------------
def test_opencode_status_idle_before_busy_is_not_the_end(fake: FakeServe, client: OpencodeWarmClient) -> None:
    """A server's first prompt: the status says idle (``{}``) for ~2 s while the instance boots, and a stale
    idle may come; only an idle after the turn ran ends it."""
    inner = answer("late but whole")
    gate: list[tuple[FakeServe, str, dict[str, Any]]] = []
    fake.on_prompt = lambda f, sid, body: (f.emit(status_ev(sid, "idle"), idle_ev(sid)), gate.append((f, sid, body)))
    client.start(TurnRequest("x"), timeout=10)
    client.begin(TurnRequest("x", resume_key=client.resume_key))
    early: list[Event] = []
    for _ in range(4):  # several status checks answer {} meanwhile
        early += client.poll(0.1)
    assert not client.turn_done and kinds(early) == ["SessionStarted"]
    assert fake.paths("GET").count("/session/status") >= 2
    inner(*gate[0])
    events = early
    give_up = time.monotonic() + 10
    while not client.turn_done and time.monotonic() < give_up:
        events += client.poll(0.2)
    assert texts(events) == ["late but whole"] and isinstance(events[-1], ResultEvent)


def test_opencode_stale_idle_mid_turn_is_checked(fake: FakeServe, client: OpencodeWarmClient) -> None:
    """An idle while the turn runs and no answer is complete (an earlier abort's late idle) is asked about."""
    inner = answer("the real end")
    gate: list[tuple[FakeServe, str, dict[str, Any]]] = []

    def on_prompt(f: FakeServe, sid: str, body: dict[str, Any]) -> None:
        f.status(sid, "busy")
        f.emit(status_ev(sid, "busy"), status_ev(sid, "idle"), idle_ev(sid))  # busy, then a stale idle
        gate.append((f, sid, body))

    fake.on_prompt = on_prompt
    client.start(TurnRequest("x"), timeout=10)
    client.begin(TurnRequest("x", resume_key=client.resume_key))
    events: list[Event] = []
    for _ in range(4):
        events += client.poll(0.1)
    assert not client.turn_done  # the status said busy
    inner(*gate[0])
    give_up = time.monotonic() + 10
    while not client.turn_done and time.monotonic() < give_up:
        events += client.poll(0.2)
    assert texts(events) == ["the real end"] and isinstance(events[-1], ResultEvent)


def test_opencode_idle_sent_on_connect_is_ignored(fake: FakeServe, client: OpencodeWarmClient) -> None:
    """anomalyco/opencode#26635: a (re)connected stream starts with ``session.idle``; mid-turn it is stale."""
    inner = answer("whole answer")

    def on_prompt(f: FakeServe, sid: str, body: dict[str, Any]) -> None:
        f.drop()  # the stream drops right after the prompt; the reconnect's first events say idle

    fake.on_connect = lambda f, n: [idle_ev(SID), status_ev(SID, "idle")] if n > 1 else []
    fake.on_prompt = on_prompt
    client.start(TurnRequest("x"), timeout=10)
    client.begin(TurnRequest("x", resume_key=client.resume_key))
    fake.status(SID, "busy")  # still running as far as the server is concerned
    events: list[Event] = []
    give_up = time.monotonic() + 10
    while fake.connects < 2 or fake.streams() < 1:
        assert time.monotonic() < give_up
        events += client.poll(0.05)
    for _ in range(3):
        events += client.poll(0.05)
    assert not client.turn_done, (events, fake.calls)  # neither the idle on connect nor the status check ended it
    fake.on_prompt = None
    inner(fake, SID, {"parts": [{"text": "x"}]})
    while not client.turn_done and time.monotonic() < give_up:
        events += client.poll(0.2)
    assert texts(events) == ["whole answer"] and isinstance(events[-1], ResultEvent)


def test_opencode_sse_dropped_mid_turn(fake: FakeServe, client: OpencodeWarmClient) -> None:
    """anomalyco/opencode#38458: the stream closes mid-turn and the idle is never seen. The client reconnects,
    asks the status, and emits from the stored messages what it missed, once."""
    fake.on_prompt = answer("recovered text", tool=True, drop_after_start=True)
    events = turn(client)
    assert fake.connects >= 2 and client.reconnects >= 1  # it reconnected
    assert kinds(events) == ["SessionStarted", "ToolResultEvent", "TextEvent", "UsageEvent", "ResultEvent"]
    assert texts(events) == ["recovered text"]
    assert any(p.startswith(f"/session/{SID}/message") for p in fake.paths("GET"))
    fake.on_prompt = answer("next turn on the new stream")
    assert texts(turn(client, "again")) == ["next turn on the new stream"]


def test_opencode_missing_session_idle(fake: FakeServe, client: OpencodeWarmClient) -> None:
    """KochC/opencode-llm-proxy#95: no ``session.idle`` (nor status idle) on 1.18.x; the status poll ends it."""
    fake.on_prompt = answer("no idle follows", idle=False)
    events = turn(client)
    assert texts(events) == ["no idle follows"] and isinstance(events[-1], ResultEvent)
    assert [e for e in events if isinstance(e, UsageEvent)]  # parts seen on the stream are not emitted twice
    assert len([e for e in events if isinstance(e, TextEvent)]) == 1


# ---- cancel, death, resume, close ------------------------------------------------------------------------------
def test_opencode_interrupt_aborts_and_the_abort_error_is_not_fatal(
    fake: FakeServe, client: OpencodeWarmClient
) -> None:
    def on_prompt(f: FakeServe, sid: str, body: dict[str, Any]) -> None:
        f.status(sid, "busy")
        f.emit(status_ev(sid, "busy"))

    fake.on_prompt = on_prompt
    client.start(TurnRequest("x"), timeout=10)
    client.begin(TurnRequest("x", resume_key=client.resume_key))
    events = client.poll(0.2)
    client.interrupt()
    assert f"/session/{SID}/abort" in fake.paths("POST")
    fake.status(SID, None)
    fake.emit(ev("session.error", sessionID=SID, error={"name": "MessageAbortedError", "data": {"message": "Aborted"}}))
    fake.emit(status_ev(SID, "idle"), idle_ev(SID))
    give_up = time.monotonic() + 10
    while not client.turn_done and time.monotonic() < give_up:
        events += client.poll(0.2)
    assert client.turn_done and client.alive
    assert not [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
    fake.on_prompt = answer("after the cancel")
    assert texts(turn(client, "next")) == ["after the cancel"]


def test_opencode_server_death_is_warm_closed(fake: FakeServe, client: OpencodeWarmClient) -> None:
    fake.on_prompt = lambda f, sid, body: f.status(sid, "busy")
    client.start(TurnRequest("x"), timeout=10)
    client.begin(TurnRequest("x", resume_key=client.resume_key))
    assert client.pid is not None
    os.kill(client.pid, signal.SIGKILL)
    with pytest.raises(WarmClosed) as info:
        give_up = time.monotonic() + 10
        while time.monotonic() < give_up:
            client.poll(0.1)
    assert info.value.exit_code == -signal.SIGKILL
    assert not client.alive
    with pytest.raises(WarmClosed):
        client.begin(TurnRequest("y", resume_key=SID))


def test_opencode_resume_of_an_unknown_session_is_conversation_not_found(
    fake: FakeServe, client: OpencodeWarmClient
) -> None:
    with pytest.raises(ConversationNotFound):
        client.start(TurnRequest("x", resume_key="ses_nosuch"), timeout=10)
    fake.sessions["ses_known"] = []
    other = make_client(fake, Path(fake.password_file.parent if fake.password_file else "."))
    try:
        other.start(TurnRequest("x", resume_key="ses_known"), timeout=10)
        assert other.resume_key == "ses_known"
        assert ("POST", "/session") not in [(m, p) for m, p, _ in fake.calls]  # resumed, not created
    finally:
        other.close(0.0)


def test_opencode_close_stops_the_server_process(fake: FakeServe, client: OpencodeWarmClient) -> None:
    fake.on_prompt = answer("bye")
    turn(client)
    pid = client.pid
    assert pid is not None
    client.close(0.5)
    client.close(0.5)  # idempotent
    assert not client.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_opencode_prompt_async_silently_discarded_is_a_turn_failure(fake: FakeServe, tmp_path: Path) -> None:
    """anomalyco/opencode#26635: ``prompt_async`` answers 204 and the prompt never reaches the session."""
    now = [0.0]
    c = make_client(fake, tmp_path, discard_after_s=30.0, clock=lambda: now[0])
    try:
        fake.on_prompt = None  # accepted, then nothing: no user message, no busy
        c.start(TurnRequest("x"), timeout=None)
        c.begin(TurnRequest("x", resume_key=c.resume_key))
        events = c.poll(0.05)
        now[0] = 29.0
        events += c.poll(0.05)
        assert not c.turn_done  # still within the allowance
        now[0] = 31.0
        events += c.poll(0.05)
        assert c.turn_done
        fatal = [e for e in events if isinstance(e, ErrorEvent) and e.fatal]
        assert len(fatal) == 1 and "did not store or run it" in fatal[0].message
        assert c.alive  # the server lives on for the next message
    finally:
        c.close(0.0)


def _script(tmp_path: Path, body: str) -> str:
    script = tmp_path / "opencode-odd"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def _odd_client(tmp_path: Path, body: str) -> OpencodeWarmClient:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return OpencodeWarmClient(get_provider("opencode"), _script(tmp_path, body), RunConfig(cwd=str(tmp_path)), env)


def test_opencode_serve_exiting_before_it_listens_is_warm_closed(tmp_path: Path) -> None:
    c = _odd_client(tmp_path, 'echo "Error: Unexpected error" >&2\nexit 1\n')
    try:
        with pytest.raises(WarmClosed) as info:
            c.start(TurnRequest("x"), timeout=10)
        assert info.value.exit_code == 1 and "Unexpected error" in info.value.stderr_tail
    finally:
        c.close(0.0)


def test_opencode_serve_that_never_listens_is_a_first_output_timeout(tmp_path: Path) -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1.5  # each look at the clock is 1.5 s later: the deadline passes without real waiting
        return now[0]

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    binary = _script(tmp_path, "echo starting\nexec sleep 600\n")
    c = OpencodeWarmClient(get_provider("opencode"), binary, RunConfig(cwd=str(tmp_path)), env, clock=clock)
    with pytest.raises(FirstOutputTimeout):
        c.start(TurnRequest("x"), timeout=3)
    pid = c.pid
    assert pid is not None and not c.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_opencode_serve_listening_off_loopback_is_refused(tmp_path: Path) -> None:
    c = _odd_client(tmp_path, 'echo "opencode server listening on http://0.0.0.0:4096"\nexec sleep 600\n')
    with pytest.raises(ConfigurationError):
        c.start(TurnRequest("x"), timeout=10)
    assert not c.alive
