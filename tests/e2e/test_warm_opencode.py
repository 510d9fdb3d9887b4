"""Warm sessions on the real opencode (issue 14): one `opencode serve` per Session, driven over HTTP + SSE.

opencode is the slow one (~5 s a cold turn, ~2-5 s for the server to listen), so each test packs several
checks into one session. Every test also checks that nothing left 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import caw
from caw.providers.opencode_warm import OpencodeWarmClient
from tests.background import send_in_background
from tests.e2e.harness import LiveFactory, kill_quietly, live_factory, processes_matching, wait_until
from tests.e2e.test_opencode_specific import assert_stayed_local
from tests.fakes.replies import Echo, Hang, Text, ToolCall


@pytest.fixture
def opencode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("opencode", tmp_path, monkeypatch)


def _client(session: caw.Session) -> OpencodeWarmClient:
    warm = session._warm
    assert warm is not None
    client = warm._slots["opencode"].client
    assert isinstance(client, OpencodeWarmClient)
    return client


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_three_turns_one_server_then_resume_cold_and_warm_again(opencode: LiveFactory) -> None:
    """Turns 2 and 3 reuse the server; request N holds turns 1..N-1; a tool runs; usage is per turn; end()
    leaves nothing running or listening. Then the handle minted warm resumes cold in another process, and
    the cold handle resumes warm."""
    run = opencode()
    run.server.enqueue(Text("reply one"), ToolCall("echo caw-warm-tool-ok"), Text("the tool said ok"), Echo())
    session = run.agent(warm=True, tools=caw.ToolGroup.EXEC | caw.ToolGroup.READER).start_session()
    first = session.send("message number 1")
    client = _client(session)
    pid, port = client.pid, client.port
    assert pid is not None and port and _listening(port)
    second = session.send("message number 2: run the command")
    third = session.send("message number 3")
    assert _client(session).pid == pid, "one server for the whole session"
    assert first.result == "reply one"
    [use] = second.tool_uses
    assert "caw-warm-tool-ok" in (use.output or "") and second.result == "the tool said ok"
    assert third.result.startswith("ECHO")
    requests = run.server.model_requests
    assert len(requests) == 4  # no title request: the session is created with a title
    for request, expected in zip(requests, ([1], [1, 2], [1, 2], [1, 2, 3]), strict=True):
        assert request.body is not None
        texts = run.server.user_texts(request.body)
        assert [i for i in (1, 2, 3) if any(f"message number {i}" in t for t in texts)] == expected
    for turn in (first, third):
        assert turn.usage.cost_usd is not None and 0 < turn.usage.cost_usd < 0.05  # one turn's cost, not a sum
    assert second.usage.cost_usd is not None and second.usage.cost_usd > (first.usage.cost_usd or 0)  # two calls
    assert third.usage.input_tokens < 1.5 * first.usage.input_tokens
    assert session.trajectory.provider_session_id == client.resume_key

    # the event stream drops mid-turn (anomalyco/opencode#38458): caw reconnects, and the turn still ends
    # with all it produced (what the new stream did not carry comes from the stored messages)
    run.server.enqueue(Text("slow and whole", chunks=4, delay_s=0.4))
    send = send_in_background(session, "message number 4")
    wait_until(lambda: len(run.server.model_requests) >= 5, 60, "the slow model request")
    assert client._sse is not None
    client._sse.stop()
    send.join(30)
    assert send.error is None and send.turns[0].result == "slow and whole"
    assert client.reconnects >= 1
    assert _client(session).pid == pid

    handle = session.resume_handle
    traj = session.end()
    assert [t.status for t in traj.turns] == ["completed"] * 4
    wait_until(lambda: not _alive(pid), 10, "opencode serve to exit after end()")
    assert not _listening(port), "the server's port is still open after end()"

    run.server.enqueue(Text("b"), Text("c"))
    code = (
        "import caw, sys; s = caw.Agent(provider='opencode', model='fake/text', warm=False, timeout=120)"
        ".resume_session(sys.argv[1]); print(s.send('cold follow-up').result); print(s.resume_handle)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, handle], capture_output=True, text=True, timeout=150, cwd=run.work, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result, cold_handle = out.stdout.split()
    assert result == "b"
    body = run.server.model_requests[-1].body
    assert body is not None and any("message number 4" in t for t in run.server.user_texts(body))
    with run.agent(warm=True).resume_session(cold_handle) as again:
        turn = again.send("warm again")
        assert again._warm is not None and _client(again).resume_key == client.resume_key  # it ran warm
    assert turn.result == "c"
    body = run.server.model_requests[-1].body
    assert body is not None
    texts = run.server.user_texts(body)
    assert any("message number 1" in t for t in texts) and any("cold follow-up" in t for t in texts)
    assert_stayed_local(run.server)


def test_cancel_mid_tool_keeps_the_server_then_sigkill_costs_one_turn(opencode: LiveFactory) -> None:
    """A cancel mid-tool kills the tool and the next send answers on the same server; a SIGKILL of the server
    mid-turn fails that turn only, and the next send starts a server again and resumes the conversation."""
    run = opencode()
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997}"
    needle = f"time.sleep({marker})"
    run.server.enqueue(
        Text("warmed up"), ToolCall(f"{sys.executable} -c 'import time; {needle}'"), Text("after"), Hang(60),
        Text("back again"),
    )  # fmt: skip
    session = run.agent(warm=True, tools=caw.ToolGroup.EXEC).start_session()
    try:
        session.send("remember the word pelican")
        client = _client(session)
        pid, port = client.pid, client.port
        assert pid is not None
        send = send_in_background(session, "start the long command")
        wait_until(lambda: processes_matching(needle), 60, "the long-running tool to start")
        session.cancel()
        send.join(15)
        assert isinstance(send.error, caw.TurnCancelled), repr(send.error)
        assert not processes_matching(needle), "the tool survived the cancel"
        assert session.trajectory.turns[-1].status == "cancelled"
        after = session.send("are you still there?")
        assert after.result == "after"
        assert _client(session).pid == pid, "the next send must run on the same server"

        requests = len(run.server.model_requests)
        send = send_in_background(session, "now hang")
        wait_until(lambda: len(run.server.model_requests) > requests, 60, "the hanging model request")
        os.kill(pid, signal.SIGKILL)
        send.join(30)
        err = send.error
        assert isinstance(err, caw.ProviderCrashed), repr(err)
        assert err.turn is not None and err.turn.status == "failed"
        assert not _listening(port)
        again = session.send("what was the word?")
        assert again.result == "back again"
        assert _client(session).pid != pid
        body = run.server.model_requests[-1].body
        assert body is not None
        assert any("pelican" in t for t in run.server.user_texts(body)), "the conversation was resumed"
        notes = session.trajectory.notes
        assert any("started it again and resumed the conversation" in n for n in notes), notes
        statuses = [t.status for t in session.trajectory.turns]
        assert statuses == ["completed", "cancelled", "completed", "failed", "completed"]
    finally:
        kill_quietly(processes_matching(needle))
        session.end()
    assert_stayed_local(run.server)
