"""The session serves Python tools: a runner that calls them over MCP as a CLI would (no CLI process).

``McpRunner`` plays a CLI: it reads caw's MCP servers from the ``RunConfig`` it is given, POSTs
``tools/call`` to them (real HTTP on 127.0.0.1), and reports each call as a ``ToolUse`` block with the
``mcp__<server>__<tool>`` name claude and codex use.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import caw
from caw.agent import AgentSpec
from caw.events import Event, ResultEvent, SessionStarted, TextEvent, ToolCallEvent, ToolResultEvent
from caw.models import TextBlock, ToolUse, Turn, UsageStats
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.providers.claude import config_args as claude_args
from caw.providers.codex import mcp_overrides
from caw.session.turn import TurnControl


def call_tool(url: str, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    conn.request("POST", parts.path, json.dumps(payload), {"Content-Type": "application/json"})
    result = json.loads(conn.getresponse().read())["result"]
    conn.close()
    return result["content"][0]["text"], result["isError"]


class McpRunner:
    """``calls[provider]``: the (server, tool, arguments) each turn of that provider makes, then it answers."""

    def __init__(self, calls: dict[str, list[tuple[str, str, dict[str, Any]]]], answers: dict[str, str]) -> None:
        self.calls, self.answers = calls, answers
        self.configs: list[RunConfig] = []

    def __call__(
        self,
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        control: TurnControl | None = None,
        **_: Any,
    ) -> Generator[Event, None, Turn]:
        self.configs.append(config)
        urls = {s.name: s.url for s in config.mcp_servers}
        turn = Turn(input=request.prompt, provider=provider.name, usage=UsageStats(input_tokens=10, output_tokens=2))
        yield SessionStarted(provider=provider.name, session_id=f"{provider.name}-conv")
        for i, (server, tool, arguments) in enumerate(self.calls.get(provider.name, [])):
            name = f"mcp__{server}__{tool}"
            yield ToolCallEvent(provider=provider.name, id=str(i), name=name, arguments=arguments)
            output, is_error = call_tool(urls[server], tool, arguments)
            turn.output.append(ToolUse(id=str(i), name=name, arguments=arguments, output=output, is_error=is_error))
            yield ToolResultEvent(provider=provider.name, id=str(i), output=output, is_error=is_error)
        answer = self.answers.get(provider.name, "ok")
        turn.output.append(TextBlock(text=answer))
        yield TextEvent(provider=provider.name, text=answer)
        yield ResultEvent(provider=provider.name)
        turn.status = "completed"
        return turn


def listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        return s.connect_ex((parts.hostname or "", parts.port or 0)) == 0


def test_a_session_serves_its_tools_on_one_endpoint_and_stops_it_at_end(tmp_path: Path) -> None:
    seen: list[str] = []

    @caw.tool
    def remember(fact: str) -> str:
        """Remember a fact."""
        seen.append(fact)
        return "noted"

    class Kit(caw.ToolKit):
        server_name = "kit"

        def __init__(self) -> None:
            self.total = 0

        @caw.tool
        def add(self, n: int) -> int:
            self.total += n
            return self.total

    kit = Kit()
    runner = McpRunner(
        {
            "claude": [
                ("caw", "remember", {"fact": "sk-ant-api03-" + "x" * 40}),
                ("kit", "add", {"n": 4}),
                ("kit", "add", {"n": "?"}),
            ]
        },
        {"claude": "done"},
    )
    records: list[str] = []

    class Log(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("caw-tools-test")
    logger.addHandler(Log())
    logger.setLevel(logging.INFO)
    agent = caw.Agent(provider="claude", runner=runner, stateless_tools=[remember], tool_servers=[kit], logger=logger)
    session = agent.start_session()
    events = list(session.stream("go"))
    config = runner.configs[0]
    urls = {s.name: s.url for s in config.mcp_servers}
    assert sorted(urls) == ["caw", "kit"] and len({urlsplit(u).port for u in urls.values()}) == 1  # one endpoint
    assert all(s.tool_timeout == 630.0 for s in config.mcp_servers)
    turn = session.end().turns[-1]
    assert seen and kit.total == 4
    assert [u.is_error for u in turn.tool_uses] == [False, False, True]
    assert "invalid arguments for add" in (turn.tool_uses[2].output or "")
    assert [type(e).__name__ for e in events].count("ToolCallEvent") == 3
    assert not any(listening(u) for u in urls.values())  # end() closed it
    # a tool argument that looks like a key never reaches the log unmasked
    assert records and not any("sk-ant-api03-xxxx" in r for r in records)


def test_a_subagent_runs_from_its_spec_and_is_linked_with_its_usage(tmp_path: Path) -> None:
    runner = McpRunner(
        {"claude": [("caw", "helper", {"task": "count the files"})]}, {"claude": "parent", "codex": "child: 3 files"}
    )
    agent = caw.Agent(provider="claude", runner=runner, data_dir=tmp_path)
    agent.add_subagent(AgentSpec(name="helper", description="Counts.", provider=["codex"], system_prompt="be brief"))
    session = agent.start_session()
    session.send("delegate")
    traj = session.end()
    (use,) = traj.turns[-1].tool_uses
    assert use.output == "child: 3 files" and not use.is_error
    child_conf = runner.configs[1]
    assert child_conf.system_prompt == "be brief" and child_conf.mcp_servers == ()  # the child has no tools of its own
    assert use.subagent is not None and Path(use.subagent).is_file()
    assert Path(use.subagent).is_relative_to(tmp_path / "sessions" / traj.session_id / "subagents")
    child = caw.Trajectory.from_dict(json.loads(Path(use.subagent).read_text()))
    assert child.agent == "codex" and child.turns[-1].input == "count the files"
    assert traj.subagent_usage == child.usage and traj.usage.input_tokens == 10  # counted apart


def test_subagents_nest_only_to_the_depth_limit(tmp_path: Path) -> None:
    inner = AgentSpec(name="inner", provider=["opencode"])
    outer = AgentSpec(name="outer", provider=["codex"], subagents=[inner])
    runner = McpRunner(
        {"claude": [("caw", "outer", {"task": "go deeper"})], "codex": [("caw", "inner", {"task": "deepest"})]},
        {"opencode": "bottom"},
    )
    agent = caw.Agent(provider="claude", runner=runner, max_subagent_depth=2)
    agent.add_subagent(outer)
    assert agent.completion("start").turns[-1].tool_uses[0].output == "ok"
    # claude (depth 0) -> codex (1) -> opencode (2): opencode is at the limit and is offered no subagent tool
    assert [c.mcp_servers != () for c in runner.configs] == [True, True, False]
    shallow = McpRunner({"claude": [("caw", "outer", {"task": "x"})]}, {})
    flat = caw.Agent(provider="claude", runner=shallow, max_subagent_depth=1)
    flat.add_subagent(outer)
    flat.completion("start")
    assert [c.mcp_servers != () for c in shallow.configs] == [True, False]  # codex gets no "inner" tool


def test_a_cancelled_turn_cancels_the_running_async_tool() -> None:
    started, finished = threading.Event(), threading.Event()

    async def wait_forever() -> str:
        import asyncio

        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            finished.set()
        return "never"

    runner = McpRunner({"claude": [("caw", "wait_forever", {})]}, {})
    session = caw.Agent(provider="claude", runner=runner, stateless_tools=[wait_forever]).start_session()
    worker = threading.Thread(target=lambda: session.send("go"))
    worker.start()
    assert started.wait(10)
    session.cancel()
    assert finished.wait(10)  # the coroutine was cancelled, not left running
    worker.join(10)
    turn = session.end().turns[-1]
    assert turn.tool_uses[0].is_error and turn.tool_uses[0].output == "wait_forever was cancelled"


def test_claude_gets_alwaysload_timeouts_and_allow_rules_in_a_private_file(tmp_path: Path) -> None:
    servers = (
        caw.MCPServer(name="caw", url="http://127.0.0.1:1/t/caw/mcp", tool_timeout=630.0),
        caw.MCPServer(name="probe", command="python3", defer_tools=True),
        caw.MCPServer(name="caw_permissions", url="http://127.0.0.1:1/t/mcp"),
    )
    temp: list[Path] = []
    argv = claude_args(RunConfig(mcp_servers=servers, tools=caw.ToolGroup.READER), temp)
    (path,) = temp
    assert path.stat().st_mode & 0o777 == 0o600
    entries = json.loads(path.read_text())["mcpServers"]
    assert entries["caw"]["alwaysLoad"] is True and entries["caw"]["timeout"] == 630_000
    assert entries["probe"]["alwaysLoad"] is False and "timeout" not in entries["probe"]
    allowed = argv[argv.index("--allowedTools") + 1].split(",")
    assert "mcp__caw" in allowed and "mcp__probe" in allowed and "mcp__caw_permissions" not in allowed
    assert "Read" in allowed
    path.unlink()


def test_codex_gets_the_approval_mode_and_the_tool_timeout() -> None:
    from caw.providers.codex import ProfileSettings

    argv = mcp_overrides([caw.MCPServer(name="caw", url="http://127.0.0.1:1/x", tool_timeout=630.0)], ProfileSettings())
    assert 'mcp_servers.caw.default_tools_approval_mode="approve"' in argv
    assert "mcp_servers.caw.tool_timeout_sec=630.0" in argv


def test_a_positional_only_or_unhinted_tool_is_refused_or_taken_as_any() -> None:
    def loose(x, y=2):  # type: ignore[no-untyped-def]
        return x

    from caw.tools.functions import function_tool

    spec = function_tool(loose)
    assert spec.input_schema["required"] == ["x"] and spec.validate({"x": [1]}) == {"x": [1], "y": 2}
    with pytest.raises(caw.ConfigurationError, match="positional-only"):
        caw.Agent(provider="claude", stateless_tools=[divmod])
