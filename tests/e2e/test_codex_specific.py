"""Codex-only behaviour, against the real `codex` binary on the loopback Responses fake.

The parity suite covers what every provider shares; these pin what is particular to codex: usage reported as a
running total per thread (also across processes), warning items, exit code 0 after a failing command, unknown
thread ids, the git-repository check, the system prompt as developer instructions, ToolGroup -> sandbox and
features, MCP servers through `-c` overrides, and what a continuation after a usage limit must send.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import caw
from caw.events import RetryEvent, ToolResultEvent, WarningEvent
from caw.models import MCPServer, ToolGroup
from caw.providers.codex import CodexProvider
from caw.state.handle import ResumeHandle, encode
from tests.e2e.harness import Live, LiveFactory, live_factory
from tests.e2e.harness_codex import CODEX
from tests.fakes.base import Responder
from tests.fakes.env import REPO_ROOT, cli_path
from tests.fakes.openai_responses import ResponsesFake
from tests.fakes.replies import Error, Reply, Text, ToolCall, Usage, codex_usage_limit

UNKNOWN_THREAD = "00000000-0000-7000-8000-000000000000"
CODEX_CAP = 1_048_576  # codex's own limit on one user message, in characters


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory(CODEX.name, tmp_path, monkeypatch)


def stayed_local(run: Live) -> None:
    assert run.server.non_loopback_attempts() == []
    assert all(r.path.startswith("/v1/") for r in run.server.requests), [r.path for r in run.server.requests]


def developer_texts(body: dict[str, Any]) -> list[str]:
    return [
        block["text"]
        for item in body.get("input", [])
        if isinstance(item, dict) and item.get("role") == "developer"
        for block in item.get("content", [])
        if isinstance(block, dict) and block.get("type") == "input_text"
    ]


def tool_names(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(t.get("name") or t.get("type")): t for t in body.get("tools", [])}


# ---- usage --------------------------------------------------------------------------------------


def test_turn_usage_is_the_turn_share_also_after_resume_in_a_new_process(codex: LiveFactory, tmp_path: Path) -> None:
    """codex prints the thread's running total; a resumed turn in another process reports only its own usage."""
    run = codex()
    run.server.enqueue(Text("first answer", usage=Usage(input_tokens=1000, output_tokens=50, cached_tokens=200)))
    session = run.agent().start_session()
    first = session.send("first message alpha")
    handle = session.resume_handle
    session.end()
    assert (first.usage.input_tokens, first.usage.cache_read_tokens, first.usage.output_tokens) == (800, 200, 50)

    run.server.enqueue(Text("second answer", usage=Usage(input_tokens=3000, output_tokens=70, cached_tokens=1000)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent(
        """
        import json, sys
        import caw
        session = caw.Agent(provider="codex", timeout=120).resume_session(sys.argv[1])
        turn = session.send("second message beta")
        print(json.dumps({"usage": turn.usage.model_dump(), "result": turn.result}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, handle],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    data = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert data["result"] == "second answer"
    usage = data["usage"]
    # codex printed input 4000 (cached 1200) / output 120 for the thread; this turn's share:
    assert (usage["input_tokens"], usage["cache_read_tokens"], usage["output_tokens"]) == (2000, 1000, 70)
    last = run.server.model_requests[-1].body
    assert last is not None
    assert any("first message alpha" in t for t in run.server.user_texts(last))
    assert run.server.last_user_text(last) == "second message beta"
    stayed_local(run)


# ---- outcome from events, not the exit code -----------------------------------------------------


def test_warning_items_do_not_fail_a_turn(codex: LiveFactory) -> None:
    run = codex()
    run.server.enqueue(Text("Hello despite the warning."))
    session = run.agent(model="fake-model").start_session()
    events = list(stream := session.stream("Say hello"))
    session.end()
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert warnings and "fake-model" in warnings[0].message
    assert stream.turn.status == "completed"
    assert stream.turn.result == "Hello despite the warning."
    stayed_local(run)


def test_a_failing_command_still_completes_the_turn(codex: LiveFactory) -> None:
    run = codex()
    run.server.enqueue(ToolCall("echo oops >&2; exit 3"))
    traj = run.agent().completion("Run it")
    turn = traj.turns[0]
    assert turn.status == "completed"
    [use] = turn.tool_uses
    assert use.is_error and "oops" in (use.output or "")
    assert use.name == "exec_command" and "exit 3" in use.arguments["command"]
    assert "Process exited with code 3" in turn.result
    stayed_local(run)


def test_reconnecting_notice_is_a_retry_event(codex: LiveFactory) -> None:
    run = codex(stream_max_retries=1, request_max_retries=0)
    run.server.enqueue(Error(500, message="temporary"), Text("recovered"))
    session = run.agent().start_session()
    events = list(stream := session.stream("try"))
    session.end()
    retries = [e for e in events if isinstance(e, RetryEvent)]
    assert len(retries) == 1 and retries[0].attempt == 1 and retries[0].max_retries == 1
    assert stream.turn.result == "recovered" and stream.turn.retries == 1
    stayed_local(run)


def test_unknown_thread_is_conversation_not_found(codex: LiveFactory) -> None:
    run = codex()
    handle = encode(
        ResumeHandle(
            provider="codex",
            session_id="s-unknown",
            resume_key=UNKNOWN_THREAD,
            cwd=str(run.work),
            config_home=run.env["CODEX_HOME"],
        )
    )
    session = run.agent().resume_session(handle)
    with pytest.raises(caw.ConversationNotFound) as info:
        session.send("hello?")
    assert UNKNOWN_THREAD in str(info.value)
    session.end()
    fresh = run.agent(on_missing="fresh").resume_session(handle)
    turn = fresh.send("hello again")
    assert turn.status == "completed" and fresh.resume_key not in (None, UNKNOWN_THREAD)
    fresh.end()
    assert len(run.server.model_requests) == 1  # the unknown id never reached the model
    stayed_local(run)


def test_prompt_cap_is_codex_own_one_mebichar_limit(codex: LiveFactory) -> None:
    """codex rejects a user message over 1,048,576 characters before any request (stderr, rc 1)."""
    run = codex()
    at_cap = "x" * CODEX_CAP
    traj = run.agent().completion(at_cap)
    assert traj.turns[0].status == "completed"
    body = run.server.model_requests[-1].body
    assert body is not None and run.server.last_user_text(body) == at_cap
    with pytest.raises(caw.ContextOverflowError) as info:
        run.agent().completion(at_cap + "y")
    assert "1048576" in str(info.value)
    assert len(run.server.model_requests) == 1
    stayed_local(run)


# ---- the git-repository check --------------------------------------------------------------------


def test_git_repo_check_is_skipped_so_any_directory_works(codex: LiveFactory) -> None:
    run = codex()
    assert not (run.work / ".git").exists()
    raw = subprocess.run(
        [str(cli_path("codex")), "exec", "--json", "-"],
        input=b"hello",
        cwd=run.work,
        env=run.env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert raw.returncode == 1 and b"Not inside a trusted directory" in raw.stderr
    assert raw.stdout == b""
    traj = run.agent().completion("hello")
    assert traj.turns[0].status == "completed"
    stayed_local(run)


# ---- settings that must reach the model ----------------------------------------------------------

TRICKY = 'Be terse.\n"quoted" \\ backslash, tab\t, = sign, [brackets], emoji \U0001f600, NUL-free\x7f end'


def test_system_prompt_arrives_verbatim_as_developer_instructions(codex: LiveFactory) -> None:
    run = codex()
    session = run.agent(system_prompt=TRICKY).start_session()
    session.send("one")
    session.send("two")
    session.end()
    first, second = (r.body for r in run.server.model_requests)
    assert first is not None and second is not None
    assert TRICKY in developer_texts(first)
    # re-passed on the resumed turn, but the thread holds it once
    assert developer_texts(second).count(TRICKY) == 1
    stayed_local(run)


def test_long_system_prompt_goes_through_a_private_profile_file(codex: LiveFactory) -> None:
    run = codex()
    long_prompt = "Rule: answer briefly. " * 6000  # ~130 KB: over one argv string's limit
    traj = run.agent(system_prompt=long_prompt).completion("hi")
    assert traj.turns[0].status == "completed"
    body = run.server.model_requests[-1].body
    assert body is not None and long_prompt in developer_texts(body)
    home = Path(run.env["CODEX_HOME"])
    assert not list(home.glob("caw-*.config.toml")), "the per-turn profile file must be deleted"
    stayed_local(run)


def test_model_and_effort_are_passed_on_every_turn(codex: LiveFactory) -> None:
    run = codex()
    session = run.agent(model="fake-model", reasoning="high").start_session()
    session.send("one")
    events = list(stream := session.stream("two"))
    session.end()
    assert stream.turn.status == "completed"
    bodies = [r.body for r in run.server.model_requests]
    assert [b["model"] for b in bodies if b] == ["fake-model", "fake-model"]
    # a resume without -m would fall back to config.toml's model and warn about the switch
    assert not [e for e in events if isinstance(e, WarningEvent) and "resuming with" in e.message]
    stayed_local(run)


def test_reasoning_effort_reaches_the_request(codex: LiveFactory) -> None:
    run = codex()
    run.agent(reasoning="low").completion("hi")
    body = run.server.model_requests[-1].body
    assert body is not None and body["reasoning"]["effort"] == "low"
    stayed_local(run)


# ---- ToolGroup -> sandbox and features ------------------------------------------------------------


def test_tool_groups_select_codex_tools(codex: LiveFactory) -> None:
    run = codex()
    run.agent(model="fake-model", tools=ToolGroup.READER).completion("a")
    run.agent(model="fake-model", tools=ToolGroup.ALL).completion("b")
    reader, everything = (tool_names(r.body or {}) for r in run.server.model_requests)
    assert "exec_command" not in reader and "web_search" not in reader and "multi_agent_v1" not in reader
    assert "exec_command" in everything and "multi_agent_v1" in everything
    assert everything["web_search"].get("external_web_access") is True
    stayed_local(run)


def test_only_writer_lets_commands_write(codex: LiveFactory) -> None:
    """Without WRITER the sandbox is read-only; a write the sandbox denies leaves no command item at all."""
    run = codex()
    run.server.enqueue(ToolCall("touch made-read-only.txt"))
    read_only = run.agent(tools=ToolGroup.EXEC).completion("touch it").turns[0]
    denied = run.server.tool_result_text(run.server.model_requests[-1].body or {})
    run.server.enqueue(ToolCall("touch made-writer.txt"))
    writer = run.agent(tools=ToolGroup.EXEC | ToolGroup.WRITER).completion("touch it").turns[0]
    assert read_only.status == writer.status == "completed"
    assert not (run.work / "made-read-only.txt").exists()
    assert denied is not None and "Read-only file system" in denied
    # codex 0.169 prints no command_execution item for a sandbox-denied command (the rollout has none either)
    assert read_only.tool_uses == []
    [use] = writer.tool_uses
    assert not use.is_error and (run.work / "made-writer.txt").exists()
    stayed_local(run)


# ---- MCP ----------------------------------------------------------------------------------------

MCP_ECHO = """
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    mid, method = m.get("id"), m.get("method")
    if method == "initialize":
        r = {"protocolVersion": m["params"].get("protocolVersion", "2025-06-18"),
             "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "1"}}
    elif method == "tools/list":
        r = {"tools": [{"name": "echo", "description": "echo; token " + os.environ.get("ECHO_TOKEN", "-"),
                        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}]}
    elif method == "tools/call":
        r = {"content": [{"type": "text", "text": "echo: " + m["params"]["arguments"].get("text", "")}]}
    elif mid is None:
        continue
    else:
        r = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": r}) + "\\n")
    sys.stdout.flush()
"""


class McpCallFake(ResponsesFake):
    """Renders ``Text("MCP:<server>:<tool>:<json args>")`` as a namespaced function call (an MCP tool)."""

    def render(self, out: Responder, reply: Reply, body: dict[str, Any], raw_len: int) -> None:
        if not (isinstance(reply, Text) and reply.text.startswith("MCP:")):
            return super().render(out, reply, body, raw_len)
        _, server, tool, arguments = reply.text.split(":", 3)
        item = {
            "id": self.new_id("fc_"),
            "type": "function_call",
            "status": "completed",
            "namespace": f"mcp__{server}",
            "name": tool,
            "call_id": self.new_id("call_"),
            "arguments": arguments,
        }
        out.start_stream()
        out.event({"type": "response.created", "response": {"id": "r", "status": "in_progress", "output": []}})
        out.event({"type": "response.output_item.done", "output_index": 0, "item": item})
        done = {"id": "r", "status": "completed", "output": [item], "usage": None}
        out.event({"type": "response.completed", "response": done})
        out.end_stream()
        return None


def test_mcp_server_is_configured_with_overrides_and_its_tool_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = CODEX.__class__(**{**CODEX.__dict__, "fake": McpCallFake})
    factory = LiveFactory(harness, tmp_path, monkeypatch)
    try:
        run = factory()
        script = tmp_path / "mcp_echo.py"
        script.write_text(MCP_ECHO)
        server = MCPServer(name="echo", command=sys.executable, args=[str(script)], env={"ECHO_TOKEN": "tok-123"})
        run.server.enqueue(Text('MCP:echo:echo:{"text": "ping"}'), Text("done"))
        agent = run.agent(model="fake-model")
        agent.add_mcp_server(server)
        session = agent.start_session()
        events = list(stream := session.stream("use the echo tool"))
        session.end()
        first = run.server.model_requests[0].body or {}
        namespace = tool_names(first)["mcp__echo"]
        # the env value reached the server (through the private profile file, not argv)
        assert "token tok-123" in json.dumps(namespace)
        results = [e for e in events if isinstance(e, ToolResultEvent)]
        assert results and results[0].output == "echo: ping" and not results[0].is_error
        [use] = stream.turn.tool_uses
        assert use.name == "mcp__echo__echo" and use.arguments == {"text": "ping"}
        assert stream.turn.result == "done"
        stayed_local(run)
    finally:
        factory.close()


# ---- continuing after a usage limit ---------------------------------------------------------------


def test_usage_limited_prompt_stays_in_codex_thread_so_continue_is_sent(codex: LiveFactory) -> None:
    """codex keeps the rejected turn's user message in the thread: the retry sends only "continue"."""
    run = codex()
    reset = int(datetime.now(timezone.utc).timestamp()) + 1800
    run.server.enqueue(codex_usage_limit(reset), Text("worked after the wait"))
    now = [datetime.now(timezone.utc)]
    lock = threading.Lock()

    def clock() -> datetime:
        with lock:
            return now[0]

    def sleeper(seconds: float, event: threading.Event) -> bool:
        with lock:
            now[0] += timedelta(seconds=seconds)
        return event.is_set()

    agent = run.agent(auto_wait=True, clock=clock, sleeper=sleeper, wait_buffer=1)
    traj = agent.completion("please do the limited thing")
    assert traj.turns[-1].status == "completed" and traj.result == "worked after the wait"
    assert traj.turns[-1].input == "please do the limited thing"
    last = run.server.model_requests[-1].body
    assert last is not None
    assert run.server.last_user_text(last) == CodexProvider().continuation_prompt("please do the limited thing")
    assert sum("please do the limited thing" in t for t in run.server.user_texts(last)) == 1
    stayed_local(run)
