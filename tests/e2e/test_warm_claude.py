"""Warm sessions on the real claude (issue 14): one `claude --input-format stream-json` per Session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import caw
from caw.session.warm import RESTARTED
from tests.background import send_in_background
from tests.e2e.harness import LiveFactory, kill_quietly, live_factory, processes_matching, wait_until
from tests.fakes.replies import Hang, Text, ToolCall


@pytest.fixture
def claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("claude", tmp_path, monkeypatch)


def _pid(session: caw.Session) -> int:
    warm = session._warm
    assert warm is not None
    pid = warm._slots["claude"].client.pid
    assert pid is not None
    return pid


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_three_turns_one_process_history_and_per_turn_usage(claude: LiveFactory) -> None:
    """turns 2 and 3 reuse the process; the fake's request N holds turns 1..N-1; usage is per turn.

    claude's stream-json mode reports total_cost_usd and modelUsage summed over the process's life
    (observed on 2.1.332: 0.049 then 0.099): caw's turn carries the difference."""
    run = claude()
    run.server.enqueue(Text("reply one"), Text("reply two"), Text("reply three"))
    session = run.agent(warm=True).start_session()
    turns = [session.send(f"message number {i}") for i in (1, 2, 3)]
    pid = _pid(session)
    assert [t.result for t in turns] == ["reply one", "reply two", "reply three"]
    for n, request in enumerate(run.server.model_requests, start=1):
        assert request.body is not None
        texts = run.server.user_texts(request.body)
        assert [i for i in (1, 2, 3) if any(f"message number {i}" in t for t in texts)] == list(range(1, n + 1))
    costs = [t.usage.cost_usd for t in turns]
    assert all(c is not None and 0 < c < 0.07 for c in costs), costs  # one turn's share each, not a running sum
    assert abs(sum(c or 0 for c in costs) - 3 * (costs[0] or 0)) < 0.01
    assert turns[2].usage.input_tokens < 2 * turns[0].usage.input_tokens
    assert len({session.trajectory.provider_session_id}) == 1
    traj = session.end()
    assert traj.turns[-1].status == "completed"
    wait_until(lambda: not _alive(pid), 10, "the warm claude to exit after end()")
    assert run.server.non_loopback_attempts() == []


def test_tool_use_in_a_warm_turn(claude: LiveFactory) -> None:
    run = claude()
    run.server.enqueue(Text("ready"), ToolCall("echo caw-warm-tool-ok"))
    with run.agent(warm=True).start_session() as session:
        session.send("hello")
        turn = session.send("run the command")
    [use] = turn.tool_uses
    assert "caw-warm-tool-ok" in (use.output or "")
    assert "caw-warm-tool-ok" in turn.result


def test_cancel_mid_tool_keeps_the_process_and_kills_the_tool(claude: LiveFactory) -> None:
    run = claude()
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997}"
    needle = f"time.sleep({marker})"
    run.server.enqueue(Text("warmed up"), ToolCall(f"{sys.executable} -c 'import time; {needle}'"), Text("after"))
    session = run.agent(warm=True, tools=caw.ToolGroup.EXEC).start_session()
    try:
        session.send("first")
        pid = _pid(session)
        send = send_in_background(session, "start the long command")
        wait_until(lambda: processes_matching(needle), 90, "the long-running tool to start")
        session.cancel()
        send.join(10)
        assert isinstance(send.error, caw.TurnCancelled), repr(send.error)
        assert send.error.turn is not None and send.error.turn.tool_uses  # the partial turn: the call
        assert not processes_matching(needle), "the tool survived the cancel"
        assert session.trajectory.turns[-1].status == "cancelled"
        after = session.send("are you still there?")
        assert after.result == "after"
        assert _pid(session) == pid, "the next send must run on the same warm process"
    finally:
        kill_quietly(processes_matching(needle))
        session.end()


def test_sigkill_of_the_warm_claude_costs_one_turn(claude: LiveFactory) -> None:
    run = claude()
    run.server.enqueue(Text("one"), ToolCall("echo partial-before-crash"), Hang(60), Text("back again"))
    session = run.agent(warm=True).start_session()
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
        assert [u.output and "partial-before-crash" in u.output for u in err.turn.tool_uses] == [True]
        again = session.send("what was the word?")
        assert again.result == "back again"
        assert _pid(session) != pid
        assert again.usage.cost_usd is not None and 0 < again.usage.cost_usd < 0.07  # a new process counts anew
        body = run.server.model_requests[-1].body
        assert body is not None
        assert any("pelican" in t for t in run.server.user_texts(body)), "the conversation was resumed"
        notes = session.trajectory.notes
        assert any("started it again and resumed the conversation" in n for n in notes), notes
        assert [t.status for t in session.trajectory.turns] == ["completed", "failed", "completed"]
        assert RESTARTED == "warm_restarted"
    finally:
        session.end()


def test_handles_resume_across_modes(claude: LiveFactory) -> None:
    """A handle minted warm resumes cold in another process, and a cold one resumes warm."""
    run = claude()
    run.server.enqueue(Text("a"), Text("b"), Text("c"))
    with run.agent(warm=True).start_session() as warm:
        warm.send("warm word ostrich")
        handle = warm.resume_handle
    code = (
        "import caw, sys; s = caw.Agent(provider='claude', warm=False, timeout=120).resume_session(sys.argv[1]);"
        " print(s.send('cold follow-up').result); print(s.resume_handle)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, handle], capture_output=True, text=True, timeout=120, cwd=run.work, check=False
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
    body = run.server.model_requests[-1].body
    assert body is not None
    texts = run.server.user_texts(body)
    assert any("warm word ostrich" in t for t in texts) and any("cold follow-up" in t for t in texts)


def test_claude_warm_resume_of_a_lost_conversation_fails_at_start(claude: LiveFactory) -> None:
    """`--resume <unknown>` in stream-json mode: claude exits before answering `initialize` ("No
    conversation found" on stderr). caw makes that ConversationNotFound, so on_missing="fresh" works warm."""
    from caw.state.handle import ResumeHandle, encode

    run = claude()
    run.server.enqueue(Text("fresh answer"))
    lost = encode(
        ResumeHandle(provider="claude", session_id="s1", resume_key=str(uuid.uuid4()), cwd=str(run.work.resolve()))
    )
    with pytest.raises(caw.ConversationNotFound):
        run.agent(warm=True).resume_session(lost).send("hello?")
    with run.agent(warm=True, on_missing="fresh").resume_session(lost) as session:
        turn = session.send("hello again")
        assert turn.result == "fresh answer"
        assert session.trajectory.metadata.get("resumed_fresh") is True


def test_a_limit_in_a_warm_turn_is_waited_out_on_the_same_process(claude: LiveFactory) -> None:
    from caw.events import LimitWaitEvent
    from tests.fakes.replies import anthropic_rate_limited

    run = claude(oauth=True)  # the subscription path: claude reports resetsAt and does not retry
    reset = int(time.time()) + 3
    run.server.enqueue(Text("before"), anthropic_rate_limited(reset), Text("after the wait"))
    with run.agent(warm=True, wait_buffer=1, max_wait=60).start_session() as session:
        session.send("first")
        pid = _pid(session)
        events = list(stream := session.stream("limited then fine"))
        assert stream.turn.result == "after the wait"
        assert any(isinstance(e, LimitWaitEvent) for e in events)
        assert _pid(session) == pid, "the same warm process continues after the wait"
    assert [t.status for t in session.trajectory.turns] == ["completed", "rate_limited", "completed"]


def test_fallback_on_the_first_warm_send_keeps_only_the_answering_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claude (warm) reports a usage limit, codex (warm) answers: the session stays on codex's warm process
    and claude's is stopped."""
    from tests.e2e.harness import HARNESSES, start_multi
    from tests.fakes.replies import anthropic_rate_limited

    multi = start_multi(["claude", "codex"], tmp_path, monkeypatch, flags={"claude": {"oauth": True}})
    try:
        multi.servers["claude"].enqueue(anthropic_rate_limited(int(time.time()) + 3600))
        multi.servers["codex"].enqueue(Text("codex here"), Text("codex again"))
        kw = {"model": HARNESSES["codex"].agent_kwargs["model"]} if "model" in HARNESSES["codex"].agent_kwargs else {}
        agent = caw.Agent(
            provider=["claude", "codex"], cwd=str(multi.work), auto_wait=False, timeout=120, warm=True, models=kw
        )
        with agent.start_session() as session:
            assert session.send("who answers?").result == "codex here"
            warm = session._warm
            assert warm is not None and list(warm._slots) == ["codex"]
            pid = warm._slots["codex"].client.pid
            assert session.send("and again?").result == "codex again"
            assert warm._slots["codex"].client.pid == pid
        assert [(a.provider, a.reason) for a in session.trajectory.attempts][:2] == [
            ("claude", "rate_limited"),
            ("codex", "answered"),
        ]
    finally:
        for server in multi.servers.values():
            server.stop()


def test_interpreter_exit_without_end_leaves_no_warm_claude(claude: LiveFactory) -> None:
    run = claude()
    run.server.enqueue(Text("hi"))
    code = (
        "import caw; s = caw.Agent(provider='claude', warm=True, timeout=120).start_session(); s.send('hello');"
        " print(s._warm._slots['claude'].client.pid, flush=True)"  # no end(): the interpreter just exits
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=run.work)
    assert out.returncode == 0, out.stderr[-2000:]
    pid = int(out.stdout.split()[-1])
    wait_until(lambda: not _alive(pid), 10, "the warm claude to be gone after the interpreter exited")
