"""``Agent(can_use_tool=...)``: the callback, the loopback MCP endpoint that carries it, and its wiring."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

import caw
from caw.errors import ConfigurationError
from caw.tools.endpoint import Tool, ToolEndpoint
from caw.tools.permissions import PROMPT_TOOL, SERVER_NAME, decide
from tests.unit.scripted import ScriptedRunner


def _post(url: str, message: Any) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


# ---- the decision ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (True, {"behavior": "allow", "updatedInput": {"command": "ls"}}),
        (False, {"behavior": "deny", "message": "denied by the caller's can_use_tool callback"}),
        ("not on a Friday", {"behavior": "deny", "message": "not on a Friday"}),
    ],
)
def test_the_callback_verdict_becomes_claudes_permission_reply(verdict: bool | str, expected: dict[str, Any]) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def guard(tool: str, arguments: dict[str, Any]) -> bool | str:
        seen.append((tool, arguments))
        return verdict

    text, is_error = decide(guard, {"tool_name": "Bash", "input": {"command": "ls"}, "tool_use_id": "t1"})
    assert json.loads(text) == expected and is_error is False
    assert seen == [("Bash", {"command": "ls"})]


def test_a_callback_that_raises_denies() -> None:
    def broken(tool: str, arguments: dict[str, Any]) -> bool:
        raise RuntimeError("boom")

    reply = json.loads(decide(broken, {"tool_name": "Edit", "input": {}})[0])
    assert reply["behavior"] == "deny" and "boom" in reply["message"]


# ---- the endpoint ----------------------------------------------------------------------------------------
def test_endpoint_speaks_the_mcp_tools_subset_and_closes_on_stop() -> None:
    calls: list[dict[str, Any]] = []
    tool = Tool("echo", "echoes", {"type": "object"}, lambda a: (calls.append(a) or f"got {a['x']}", False))
    endpoint = ToolEndpoint([tool], name="t")
    url = endpoint.start()
    port = int(url.split(":")[2].split("/")[0])
    try:
        status, init = _post(
            url, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
        )
        assert status == 200 and init["result"]["protocolVersion"] == "2025-06-18"
        assert _post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}) == (202, None)
        status, unknown = _post(url, {"jsonrpc": "2.0", "id": 2, "method": "server/discover"})
        assert unknown["error"]["code"] == -32601  # claude 2.1.332 asks this first and expects -32601
        listed = _post(url, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"})[1]["result"]["tools"]
        assert [t["name"] for t in listed] == ["echo"]
        called = _post(
            url, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "echo", "arguments": {"x": 1}}}
        )
        assert called[1]["result"] == {"content": [{"type": "text", "text": "got 1"}], "isError": False}
        assert calls == [{"x": 1}]  # ran in this process
        bad = _post(url, {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "nope"}})[1]
        assert bad["result"]["isError"] is True
        wrong_path = url.rsplit("/", 2)[0] + "/guess/mcp"
        assert _post(wrong_path, {"jsonrpc": "2.0", "id": 6, "method": "tools/list"})[0] == 404
    finally:
        endpoint.stop()
    assert _refused(port)


# ---- the option ------------------------------------------------------------------------------------------
def test_can_use_tool_must_be_callable_and_every_provider_in_the_order_able_to_ask() -> None:
    with pytest.raises(ConfigurationError, match="can_use_tool"):
        caw.Agent(provider="claude", can_use_tool="yes")
    with pytest.raises(ConfigurationError, match="codex"):
        caw.Agent(provider=["claude", "codex"], can_use_tool=lambda t, a: True).start_session()


def test_a_session_serves_the_callback_to_claude_and_stops_serving_at_end() -> None:
    runner = ScriptedRunner({"claude": ["ok"]})
    session = caw.Agent(provider="claude", runner=runner, can_use_tool=lambda t, a: True).start_session()
    session.send("hi")
    _, _, config = runner.calls[0]
    assert config.permission_prompt_tool == PROMPT_TOOL
    (server,) = [s for s in config.mcp_servers if s.name == SERVER_NAME]
    assert server.url.startswith("http://127.0.0.1:")
    port = int(server.url.split(":")[2].split("/")[0])
    assert not _refused(port)
    session.end()
    assert _refused(port)  # nothing the session opened is left listening
