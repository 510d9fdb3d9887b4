"""An MCP server caw configures reaches claude on the first ``-p`` turn (fixed in claude 2.1.221)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from caw.models import MCPServer
from tests.e2e.harness import LiveFactory, live_factory
from tests.fakes.replies import Text, ToolCall


@pytest.fixture
def claude_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("claude", tmp_path, monkeypatch)


MCP_LOGGING_SERVER = """
import json, sys
log = open(sys.argv[1], "a", buffering=1)
for line in sys.stdin:
    m = json.loads(line)
    mid, method = m.get("id"), m.get("method")
    log.write(json.dumps({"method": method}) + "\\n")
    if method == "initialize":
        r = {"protocolVersion": m["params"].get("protocolVersion", "2025-06-18"),
             "capabilities": {"tools": {}}, "serverInfo": {"name": "probe", "version": "1"}}
    elif method == "tools/list":
        r = {"tools": [{"name": "probe_tool", "description": "returns a marker",
                        "inputSchema": {"type": "object", "properties": {}}}]}
    elif method == "tools/call":
        r = {"content": [{"type": "text", "text": "probe-marker-7731"}]}
    elif mid is None:
        continue
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid,
                                     "error": {"code": -32601, "message": "method not found"}}) + "\\n")
        sys.stdout.flush()
        continue
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": r}) + "\\n")
    sys.stdout.flush()
"""


def test_mcp_server_is_connected_before_the_first_print_turn(claude_live: LiveFactory, tmp_path: Path) -> None:
    run = claude_live()
    script = tmp_path / "probe_mcp.py"
    script.write_text(MCP_LOGGING_SERVER)
    log = tmp_path / "mcp.log"
    agent = run.agent()
    agent.add_mcp_server(MCPServer(name="probe", command=sys.executable, args=[str(script), str(log)]))
    traj = agent.completion("hello")
    assert traj.turns[-1].status == "completed"
    methods = [json.loads(line)["method"] for line in log.read_text().splitlines()]
    assert "initialize" in methods and "tools/list" in methods
    # the first request already knows the server's tool (2.1.332 lists it among the deferred tools that
    # ToolSearch loads; before 2.1.221 the server connected only after the first -p turn)
    first = run.server.model_requests[0].body
    assert "mcp__probe__probe_tool" in json.dumps(first)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("verdict", [True, "not in this repository"])
def test_can_use_tool_decides_a_tool_use_claude_would_prompt_for(
    claude_live: LiveFactory, tmp_path: Path, verdict: bool | str, warm: bool
) -> None:
    """claude asks caw's permission tool (--permission-prompt-tool) about a command its default mode would
    refuse ("This command requires approval"); the Python callback decides, in this process."""
    run = claude_live()
    marker = tmp_path / "ran.txt"
    command = f"""{sys.executable} -c 'open({json.dumps(str(marker))}, "w").write("yes")'"""
    run.server.enqueue(ToolCall(command), Text("done"))
    asked: list[tuple[str, dict[str, object]]] = []

    def guard(tool: str, arguments: dict[str, object]) -> bool | str:
        asked.append((tool, arguments))
        return verdict

    session = run.agent(can_use_tool=guard, warm=warm).start_session()  # warm: the same flag, no -p (issue 14)
    turn = session.send("run it")
    (use,) = turn.tool_uses
    assert asked and asked[0][0] == "Bash" and asked[0][1].get("command") == command
    if verdict is True:
        assert marker.read_text() == "yes" and not use.is_error
    else:
        assert not marker.exists() and use.is_error and "not in this repository" in (use.output or "")
    session.end()
