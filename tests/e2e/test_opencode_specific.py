"""opencode-only behaviour, against the real binary on the loopback ChatFake.

What the parity suite cannot say for every provider: permissions auto-rejected with exit 0, resuming from
another process and another directory, the title request that must not happen, the system prompt and
ToolGroup reaching the model's request, and a usage-limit wait that continues the same opencode session.
Every test also checks that nothing left 127.0.0.1 (no CONNECT, no npm registry call).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import caw
from caw.events import WarningEvent
from caw.state.handle import ResumeHandle, decode, encode
from tests.e2e.harness import Live, LiveFactory, live_factory, wait_until
from tests.e2e.harness_opencode import OPENCODE, opencode_rate_limited
from tests.fakes.base import FakeModelServer
from tests.fakes.env import REPO_ROOT, cli_path
from tests.fakes.replies import Text, ToolCall

assert OPENCODE.name == "opencode"  # the harness module registered itself


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("opencode", tmp_path, monkeypatch)


def assert_stayed_local(server: FakeModelServer) -> None:
    assert server.non_loopback_attempts() == []
    assert not [r.path for r in server.requests if "/npm/" in r.path]  # the plugin install stub held


def raw_opencode(run: Live, args: list[str], prompt: str, cwd: Path) -> subprocess.Popen[bytes]:
    """The CLI itself (no caw), prompt on stdin, in its own process group so it can be killed whole."""
    proc = subprocess.Popen(
        [str(cli_path("opencode")), "run", "--format", "json", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=run.env,
        cwd=cwd,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(prompt.encode())
    proc.stdin.close()  # opencode reads stdin to EOF before it starts
    proc.stdin = None  # so that communicate() does not touch the closed pipe
    return proc


def test_permission_auto_reject_exits_zero_and_the_turn_completes(live: LiveFactory) -> None:
    """Reading outside the project asks `external_directory`; `run` auto-rejects it, stops and exits 0.

    caw keeps that outcome: a completed turn whose tool use is an error, and a warning event.
    """
    run = live()
    run.server.enqueue(ToolCall("cat /etc/hostname", description="Read hostname"))
    session = run.agent().start_session()
    events = list(stream := session.stream("Show /etc/hostname"))
    turn = stream.turn
    session.end()
    assert turn.status == "completed"
    [use] = turn.tool_uses
    assert use.is_error and "rejected permission" in (use.output or "")
    assert any(isinstance(e, WarningEvent) and "auto-rejecting" in e.message for e in events)
    assert len(run.server.model_requests) == 1  # no model call after the rejection
    assert_stayed_local(run.server)


def test_no_title_request_reaches_the_fake(live: LiveFactory) -> None:
    """Without `--title` opencode sends the whole prompt again in a title request; caw's `--title=` avoids it."""
    run = live()
    raw = raw_opencode(run, ["-m", "fake/text"], "raw run: please title me", run.work)
    raw.communicate(timeout=120)
    assert raw.returncode == 0
    assert [r.kind for r in run.server.requests if r.kind in ("model", "title")] == ["title", "model"]
    run.server.reset()
    traj = run.agent().completion("caw run: no title request please")
    assert traj.turns[0].status == "completed"
    assert [r.kind for r in run.server.requests] == ["model"]
    assert_stayed_local(run.server)


def test_system_prompt_and_tool_group_reach_the_request(live: LiveFactory) -> None:
    run = live()
    marker = "CAW-SYSTEM-MARKER: answer like a pirate."
    traj = run.agent(system_prompt=marker, tools=caw.ToolGroup.READER).completion("hello")
    assert traj.turns[0].status == "completed"
    [request] = run.server.model_requests
    assert request.body is not None
    system = "\n".join(m["content"] for m in request.body["messages"] if m["role"] == "system")
    assert marker in system and "You are opencode" in system  # appended to opencode's prompt, not replacing it
    tools = {t["function"]["name"] for t in request.body["tools"]}
    assert {"read", "glob", "grep"} <= tools
    assert not tools & {"bash", "edit", "write", "webfetch", "task"}  # denied groups vanish from the list
    assert_stayed_local(run.server)


def test_resume_in_a_new_process_from_another_directory(live: LiveFactory, tmp_path: Path) -> None:
    """The handle carries the session's directory; caw runs opencode there whatever the caller's cwd is."""
    run = live()
    with run.agent().start_session() as session:
        first = session.send("first message alpha")
        handle = session.resume_handle
    assert first.status == "completed" and decode(handle).cwd == str(run.work.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import sys, caw\n"
        "s = caw.Agent(timeout=120).resume_session(sys.argv[1])\n"
        "t = s.send('second message beta')\n"
        "s.end()\n"
        "print(t.status)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script, handle], cwd=elsewhere, env=env, capture_output=True, timeout=180, check=False
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.decode().strip().splitlines()[-1] == "completed"
    last = run.server.model_requests[-1].body
    assert last is not None
    assert run.server.user_texts(last) == ["first message alpha", "second message beta"]
    assert_stayed_local(run.server)


def test_raw_resume_from_another_directory_hangs(live: LiveFactory, tmp_path: Path) -> None:
    """Why caw always runs opencode in the session's directory: from elsewhere, `--session` runs the turn
    (the model is called) in the session's directory but prints nothing and never exits."""
    run = live()
    first = raw_opencode(run, ["--title=", "-m", "fake/text"], "hello", run.work)
    try:
        out, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    session_id = json.loads(out.decode().splitlines()[0])["sessionID"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = raw_opencode(run, ["-m", "fake/text", "--session", session_id], "again", elsewhere)
    try:
        wait_until(lambda: len(run.server.model_requests) == 2, 90, "the resumed turn's model request")
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=8)  # a finished turn exits within ~1 s of its reply; this one never does
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        assert not proc.stdout.read()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_unknown_session_raises_conversation_not_found(live: LiveFactory) -> None:
    run = live()
    handle = encode(
        ResumeHandle(provider="opencode", session_id="s1", resume_key="ses_doesnotexist", cwd=str(run.work.resolve()))
    )
    with pytest.raises(caw.ConversationNotFound):
        run.agent().resume_session(handle).send("hello again")
    assert run.server.model_requests == []
    assert_stayed_local(run.server)


def test_usage_limit_wait_continues_the_same_session_with_continue(live: LiveFactory) -> None:
    """After opencode gives up on a 429 its session keeps the user message: caw waits (a fake clock here),
    then sends "continue" with `--session`, so the model sees the original request exactly once."""
    run = live()
    now = [datetime.now(timezone.utc)]

    def clock() -> datetime:
        return now[0]

    def sleeper(seconds: float, cancel: object) -> bool:
        now[0] += timedelta(seconds=seconds)
        return False

    reset = int(now[0].timestamp()) + 3600
    run.server.enqueue(opencode_rate_limited(reset), Text("done after the wait"))
    agent = run.agent(auto_wait=True, clock=clock, sleeper=sleeper, wait_output=lambda line: None)
    traj = agent.completion("please work gamma")
    assert traj.result == "done after the wait"
    requests = run.server.model_requests
    assert len(requests) == 7  # 6 limited attempts by opencode itself, then the continued turn
    last = requests[-1].body
    assert last is not None
    assert run.server.user_texts(last) == ["please work gamma", "continue"]
    assert now[0].timestamp() >= reset  # the fake clock was advanced past the server's reset
    assert_stayed_local(run.server)
