"""Python tools, ToolKits, subagents and stdio MCP servers, on the real claude, codex and opencode (issue 15).

The fake model calls the tools by their plain names (``ToolCall(tool="add_note")``); the fake finds the name
each CLI gives them in the request's tool list (``mcp__caw__add_note``, codex's namespace ``mcp__caw``,
``caw_add_note``), so a call only happens when the CLI offered the tool directly on that request.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest

import caw
from caw.agent import AgentSpec
from caw.events import ToolCallEvent, ToolResultEvent
from caw.models import MCPServer
from tests.e2e.conftest import PROVIDERS
from tests.e2e.harness import HARNESSES, Live, LiveFactory, live_factory, start_multi
from tests.e2e.test_claude_mcp import MCP_LOGGING_SERVER
from tests.fakes.base import FakeModelServer
from tests.fakes.env import CODEX_MODEL
from tests.fakes.replies import Text, ToolCall


def offered(body: dict[str, Any] | None) -> list[str]:
    """The tool names a request offers, in the CLI's own spelling (codex namespaces as ``ns__name``)."""
    names: list[str] = []
    for t in (body or {}).get("tools") or []:
        if t.get("type") == "namespace":
            names += [f"{t['name']}__{f.get('name')}" for f in t.get("tools") or []]
        else:
            names.append(str(t.get("name") or (t.get("function") or {}).get("name")))
    return names


def tool_results(server: FakeModelServer) -> list[str | None]:
    return [server.tool_result_text(r.body or {}) for r in server.model_requests]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Counter(caw.ToolKit):
    """State shared by its tools across calls and turns."""

    def __init__(self) -> None:
        self.count = 0

    @caw.tool
    def bump(self, by: Annotated[int, "how much to add"] = 1) -> dict[str, int]:
        """Add to the counter and return it."""
        self.count += by
        return {"count": self.count}


@pytest.fixture(params=PROVIDERS)
def any_live(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory(request.param, tmp_path, monkeypatch)


#: what each CLI opens with (tools-and-output.md §3c): claude 2.1.332 probes the 2026-07-28 ``server/discover``
#: first and falls back on caw's -32601; codex 0.171 speaks 2025-06-18, the others 2025-11-25
HANDSHAKES = {
    "claude": (["server/discover", "initialize"], "2025-11-25"),
    "codex": (["initialize"], "2025-06-18"),
    "opencode": (["initialize"], "2025-11-25"),
}


def test_python_tools_run_in_this_process_and_their_results_reach_the_model(
    any_live: LiveFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    run: Live = any_live()
    from caw.tools.endpoint import ToolEndpoint

    seen: list[tuple[str, Any]] = []
    handle = ToolEndpoint.handle

    def logged(self: ToolEndpoint, message: Any, path: str | None = None) -> Any:
        if isinstance(message, dict) and (path or "").endswith("/caw/mcp"):
            seen.append((str(message.get("method")), (message.get("params") or {}).get("protocolVersion")))
        return handle(self, message, path)

    monkeypatch.setattr(ToolEndpoint, "handle", logged)
    notes: list[str] = []

    @caw.tool(description="Save a note.")
    def add_note(text: str) -> str:
        notes.append(text)
        return f"note {len(notes)} saved: {text}"

    def explode(why: str) -> str:
        """Always fails."""
        raise RuntimeError(f"tool exploded because {why}")

    kit = Counter()
    run.server.enqueue(
        ToolCall("", tool="add_note", input={"text": "hello-7731"}),
        ToolCall("", tool="bump", input={"by": 2}),
        ToolCall("", tool="explode", input={"why": "it must"}),
        Text("all done"),
    )
    session = run.agent(stateless_tools=[add_note, explode], tool_servers=[kit]).start_session()
    stream = session.stream("use the tools")
    events = list(stream)
    turn = stream.turn
    port = session._endpoint.port if session._endpoint is not None else None
    session.end()

    assert turn.status == "completed" and turn.result == "all done"
    assert notes == ["hello-7731"] and kit.count == 2  # the functions ran here, on these objects
    first = offered(run.server.model_requests[0].body)
    assert [n for n in first if n.endswith("add_note")] and [n for n in first if n.endswith("bump")], first
    results = tool_results(run.server)
    assert "note 1 saved: hello-7731" in (results[1] or "")
    assert '{"count": 2}' in (results[2] or "")
    assert "RuntimeError: tool exploded because it must" in (results[3] or "")
    uses = turn.tool_uses
    assert [u.is_error for u in uses] == [False, False, True], uses
    assert uses[0].arguments == {"text": "hello-7731"}
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    done = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [c.name for c in calls] == [u.name for u in uses] and [d.is_error for d in done] == [False, False, True]
    assert port is not None and not listening(port)  # end() closed the endpoint
    opening, version = HANDSHAKES[run.harness.name]
    assert [m for m, _ in seen[: len(opening)]] == opening, seen
    assert dict(seen)["initialize"] == version


@pytest.fixture(params=["claude", "opencode"])
def stdio_live(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveFactory]:
    yield from live_factory(request.param, tmp_path, monkeypatch)


def test_stdio_mcp_server_tools_are_offered_and_allowed(
    stdio_live: LiveFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """add_mcp_server on claude (alwaysLoad + an allow rule: no ToolSearch, no permission prompt) and opencode."""
    run = stdio_live()
    provider = run.harness.name
    script = tmp_path / "probe_mcp.py"
    script.write_text(MCP_LOGGING_SERVER)
    agent = run.agent()
    agent.add_mcp_server(MCPServer(name="probe", command=sys.executable, args=[str(script), str(tmp_path / "log")]))
    run.server.enqueue(ToolCall("", tool="probe_tool", input={}), Text("done"))
    written: list[tuple[Path, int]] = []
    if provider == "claude":  # the --mcp-config file: private while the CLI runs, gone after the turn
        import caw.providers.claude as claude_provider

        original = claude_provider._write_private

        def spy(data: str, suffix: str) -> Path:
            path = original(data, suffix)
            written.append((path, path.stat().st_mode & 0o777))
            return path

        monkeypatch.setattr(claude_provider, "_write_private", spy)
    traj = agent.completion("call the probe")
    assert traj.turns[-1].status == "completed"
    assert all(mode == 0o600 and not path.exists() for path, mode in written)
    assert written or provider != "claude"
    assert [n for n in offered(run.server.model_requests[0].body) if n.endswith("probe_tool")]
    assert "probe-marker-7731" in (tool_results(run.server)[1] or "")
    (use,) = traj.turns[-1].tool_uses
    assert not use.is_error and "probe-marker-7731" in (use.output or "")


def test_claude_hands_a_subtask_to_a_codex_subagent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    multi = start_multi(["claude", "codex"], tmp_path, monkeypatch)
    try:
        claude, codex = multi.servers["claude"], multi.servers["codex"]
        claude.enqueue(ToolCall("", tool="helper", input={"task": "say the codeword"}), Text("parent done"))
        codex.enqueue(Text("codeword-4242"))
        spec = AgentSpec(name="helper", description="A codex helper.", provider=["codex"], model=CODEX_MODEL)
        agent = caw.Agent(provider="claude", cwd=str(multi.work), data_dir=tmp_path / "data", timeout=120)
        agent.add_subagent(spec)
        session = agent.start_session()
        turn = session.send("delegate")
        traj = session.end()
    finally:
        for server in multi.servers.values():
            server.stop()

    assert turn.status == "completed" and turn.result == "parent done"
    assert "say the codeword" in codex.user_texts(codex.model_requests[0].body or {})[-1]
    assert "codeword-4242" in (tool_results(claude)[1] or "")
    (use,) = turn.tool_uses
    assert use.subagent is not None and session.session_dir is not None
    child_file = Path(use.subagent)
    assert child_file.is_file() and session.session_dir in child_file.parents  # saved under the parent's dir
    child = caw.Trajectory.from_dict(json.loads(child_file.read_text()))
    assert child.agent == "codex" and child.result == "codeword-4242"
    # the parent's file links it, and counts the subagent's usage apart from its own
    saved = json.loads((session.session_dir / "trajectory.json").read_text())
    assert saved["turns"][-1]["output"][0]["subagent"] == use.subagent
    assert traj.subagent_usage.total_tokens == child.usage.total_tokens > 0
    assert HARNESSES["codex"].name == "codex"


@pytest.fixture(params=["claude", "codex"])
def warm_live(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory(request.param, tmp_path, monkeypatch)


def test_tools_reach_a_warm_session_on_every_turn(warm_live: LiveFactory) -> None:
    """The long-lived CLI (issue 14) gets the same endpoint; the tool runs in this process on both turns."""
    run = warm_live()
    hits: list[int] = []

    def ping(x: int) -> str:
        hits.append(x)
        return f"pong {x}"

    run.server.enqueue(
        ToolCall("", tool="ping", input={"x": 1}), Text("one"), ToolCall("", tool="ping", input={"x": 2}), Text("two")
    )
    with run.agent(stateless_tools=[ping], warm=True).start_session() as session:
        first, second = session.send("a"), session.send("b")
        assert session._warm is not None
    assert hits == [1, 2] and (first.result, second.result) == ("one", "two")
    assert [u.output for u in first.tool_uses + second.tool_uses] == ["pong 1", "pong 2"]


@pytest.fixture
def claude_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("claude", tmp_path, monkeypatch)


def test_claude_a_slow_tool_times_out_bad_arguments_are_refused_and_cancel_stops_a_tool(
    claude_live: LiveFactory,
) -> None:
    """On the real claude: tool_timeout gives the model caw's timeout message; arguments of the wrong type
    never reach the function; session.cancel() mid-call cancels the running coroutine."""
    import asyncio
    import threading

    run = claude_live()
    release = threading.Event()
    ran: list[int] = []
    started, cancelled = threading.Event(), threading.Event()

    def slow(n: int) -> str:
        ran.append(n)
        release.wait(30)
        return "late"

    async def waits() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    run.server.enqueue(
        ToolCall("", tool="slow", input={"n": "not a number"}),
        ToolCall("", tool="slow", input={"n": 1}),
        Text("survived"),
        ToolCall("", tool="waits", input={}),
    )
    session = run.agent(stateless_tools=[slow, waits], tool_timeout=1).start_session()
    try:
        turn = session.send("go")
    finally:
        release.set()
    assert turn.status == "completed" and turn.result == "survived"
    assert ran == [1]  # the call with a string for an int never ran
    results = tool_results(run.server)
    assert "invalid arguments for slow: n:" in (results[1] or "")
    assert "slow timed out after 1 s" in (results[2] or "")

    raised: list[BaseException] = []

    def again() -> None:
        try:
            session.send("again")
        except caw.TurnCancelled as exc:
            raised.append(exc)

    worker = threading.Thread(target=again, daemon=True)
    worker.start()
    assert started.wait(60)
    session.cancel()
    worker.join(30)
    assert cancelled.wait(10) and raised and session.trajectory.turns[-1].status == "cancelled"
    session.end()
