"""@caw.tool, ToolKit, the executor, the endpoint's JSON-RPC handler and token check, subagent links (issue 15)."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import threading
from typing import Annotated, Any, Optional

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import caw
from caw.errors import ConfigurationError
from caw.models import ToolUse, Turn, UsageStats
from caw.tools.endpoint import Tool, ToolEndpoint
from caw.tools.executor import ToolExecutor
from caw.tools.functions import function_tool, result_text
from caw.tools.subagents import SubagentLog, SubagentRun
from caw.tools.toolkit import ToolServer, snake_case


class Point(BaseModel):
    x: int
    y: int = 0


@dataclasses.dataclass
class Box:
    w: float


# ---- schema generation -------------------------------------------------------------------------------
def test_schema_from_type_hints_descriptions_defaults_optional_nested() -> None:
    @caw.tool
    def place(
        name: Annotated[str, "what to call it"],
        at: Point,
        count: int = 3,
        note: Optional[str] = None,
        tags: list[str] | None = None,
    ) -> str:
        """Place a thing."""
        return name

    spec = function_tool(place)
    schema = spec.input_schema
    assert spec.name == "place" and spec.description == "Place a thing."
    assert schema["type"] == "object" and schema["required"] == ["name", "at"]
    props = schema["properties"]
    assert props["name"] == {"type": "string", "description": "what to call it"}
    assert props["count"] == {"type": "integer", "default": 3}
    assert {"type": "null"} in props["note"]["anyOf"] and {"type": "null"} in props["tags"]["anyOf"]
    assert props["at"] == {"$ref": "#/$defs/Point"} and schema["$defs"]["Point"]["required"] == ["x"]
    assert spec.validate({"name": "a", "at": {"x": "1"}}) == {
        "name": "a",
        "at": Point(x=1),
        "count": 3,
        "note": None,
        "tags": None,
    }


def test_tool_decorator_with_name_and_description_keeps_the_function() -> None:
    @caw.tool(name="sum_two", description="Adds.")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    spec = function_tool(add)
    assert (spec.name, spec.description) == ("sum_two", "Adds.")
    with pytest.raises(ConfigurationError):
        caw.tool(name="bad name")(add)


_HINTS: dict[str, tuple[Any, Any]] = {
    "int": (int, st.integers()),
    "str": (str, st.text(max_size=20)),
    "float": (float, st.floats(allow_nan=False, allow_infinity=False)),
    "bool": (bool, st.booleans()),
    "list_int": (list[int], st.lists(st.integers(), max_size=4)),
    "opt_str": (Optional[str], st.none() | st.text(max_size=5)),
    "point": (Point, st.builds(lambda x, y: {"x": x, "y": y}, st.integers(), st.integers())),
    "box": (Box, st.builds(lambda w: {"w": w}, st.floats(allow_nan=False, allow_infinity=False))),
}


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.sampled_from(sorted(_HINTS)), min_size=1, max_size=4),
    data=st.data(),
    described=st.booleans(),
)
def test_every_hinted_parameter_is_in_the_schema_and_valid_values_validate(
    picks: list[str], data: st.DataObject, described: bool
) -> None:
    params = [f"p{i}_{kind}" for i, kind in enumerate(picks)]
    annotations = {
        p: (Annotated[_HINTS[k][0], f"about {p}"] if described else _HINTS[k][0])
        for p, k in zip(params, picks, strict=True)
    }

    def fn(**kwargs: Any) -> str:
        return "ok"

    import inspect

    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=annotations[p]) for p in params]
    )
    fn.__annotations__ = annotations
    spec = function_tool(fn, name="gen")
    schema = spec.input_schema
    assert sorted(schema["properties"]) == sorted(params) and sorted(schema["required"]) == sorted(params)
    if described:
        assert all(schema["properties"][p].get("description") == f"about {p}" for p in params)
    json.dumps(schema)  # an MCP inputSchema is JSON
    jsonschema.Draft202012Validator.check_schema(schema)
    values = {p: data.draw(_HINTS[k][1]) for p, k in zip(params, picks, strict=True)}
    jsonschema.validate(values, schema)  # what the model may send by the schema, pydantic accepts
    assert set(spec.validate(values)) == set(params)


def test_results_text_json_pydantic() -> None:
    assert result_text("plain") == "plain"
    assert result_text({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert json.loads(result_text(Point(x=1))) == {"x": 1, "y": 0}
    assert json.loads(result_text([Box(w=1.5)])) == [{"w": 1.5}]
    assert result_text(None) == ""


# ---- ToolKit ---------------------------------------------------------------------------------------------
class MyNotes(caw.ToolKit):
    def __init__(self) -> None:
        self.notes: list[str] = []

    @caw.tool
    def add(self, text: str) -> int:
        """Add a note."""
        self.notes.append(text)
        return len(self.notes)

    @caw.tool
    async def count(self) -> int:
        """How many notes."""
        await asyncio.sleep(0)
        return len(self.notes)

    def not_a_tool(self) -> None:
        pass


def test_toolkit_tools_share_the_instance_state() -> None:
    kit = MyNotes()
    server = kit.as_server()
    assert server.name == "my_notes" and [t.name for t in server.tools] == ["add", "count"]
    ex = ToolExecutor(timeout=5)
    try:
        add, count = server.tools
        assert ex.run(add, {"text": "a"}) == ("1", False)
        assert ex.run(add, {"text": "b"}) == ("2", False)
        assert ex.run(count, {}) == ("2", False)
    finally:
        ex.close()
    assert kit.notes == ["a", "b"] and snake_case("HTTPTools") == "httptools"


def test_agent_accepts_toolkits_functions_and_subagents() -> None:
    def ping() -> str:
        return "pong"

    agent = caw.Agent(provider="claude", stateless_tools=[ping], tool_servers=[MyNotes(), "http://127.0.0.1:9/mcp"])
    agent.add_subagent(caw.AgentSpec(name="helper", provider=["codex"]))
    assert [t.name for t in agent.stateless_tools] == ["ping"]
    assert [s.name for s in agent.mcp_servers] == ["tools1"]
    with pytest.raises(ConfigurationError):
        agent.add_tool_server(MyNotes())  # the same server name twice
    with pytest.raises(ConfigurationError):
        agent.add_subagent(caw.AgentSpec(name="helper"))
    with pytest.raises(ConfigurationError):
        agent.add_tool_server(MyNotes)  # type: ignore[arg-type]  # the class: its state would be nobody's
    spec = agent.get_spec()
    again = caw.Agent.from_spec(spec)
    assert again.order == ("claude",) and [s.name for s in again.get_spec().subagents] == ["helper"]


# ---- the executor ---------------------------------------------------------------------------------------
def test_executor_turns_every_failure_into_an_error_result() -> None:
    release = threading.Event()

    def stuck() -> str:
        release.wait(10)
        return "late"

    async def slow() -> str:
        await asyncio.sleep(30)
        return "never"

    def boom(n: int) -> str:
        raise ValueError(f"bad {n}")

    ex = ToolExecutor(max_workers=2, timeout=0.2)
    try:
        assert ex.run(function_tool(boom), {"n": 7}) == ("ValueError: bad 7", True)
        text, err = ex.run(function_tool(boom), {"n": "seven"})
        assert err and "invalid arguments for boom: n:" in text
        assert ex.run(function_tool(slow), {}) == ("slow timed out after 0.2 s", True)
        assert ex.run(function_tool(stuck), {}) == ("stuck timed out after 0.2 s", True)
    finally:
        release.set()
        ex.close()
    assert ex.run(function_tool(boom), {"n": 1})[1] is True  # closed: refused, not raised


def test_cancel_all_cancels_a_running_async_tool() -> None:
    started = threading.Event()

    async def waits() -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    ex = ToolExecutor(timeout=30)
    out: list[tuple[str, bool]] = []
    t = threading.Thread(target=lambda: out.append(ex.run(function_tool(waits), {})))
    t.start()
    assert started.wait(5)
    assert ex.cancel_all() == 1
    t.join(5)
    ex.close()
    assert out == [("waits was cancelled", True)]


# ---- the endpoint: JSON-RPC and the token ---------------------------------------------------------------
def _post(url: str, payload: Any, path: str | None = None) -> tuple[int, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    body = json.dumps(payload).encode()
    conn.request("POST", path or parts.path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, (json.loads(data) if data else None)


def test_endpoint_mounts_servers_on_one_port_and_refuses_requests_without_the_token() -> None:
    endpoint = ToolEndpoint()
    endpoint.mount("caw", [Tool("echo", "echo", {"type": "object"}, lambda a: (json.dumps(a), False))])
    endpoint.mount("kit", [Tool("boom", "fails", {"type": "object"}, lambda a: (1 / 0, False))])  # type: ignore[arg-type,func-returns-value]
    endpoint.start()
    try:
        url, kit = endpoint.url_for("caw"), endpoint.url_for("kit")
        assert (
            url.startswith("http://127.0.0.1:") and url.split(":")[2].split("/")[0] == kit.split(":")[2].split("/")[0]
        )
        status, reply = _post(
            url, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"a": 1}}}
        )
        assert status == 200 and reply["result"] == {
            "content": [{"type": "text", "text": '{"a": 1}'}],
            "isError": False,
        }
        _, reply = _post(kit, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "boom"}})
        assert reply["result"]["isError"] is True and "ZeroDivisionError" in reply["result"]["content"][0]["text"]
        _, reply = _post(url, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "nope"}})
        assert reply["result"]["isError"] is True and "unknown tool 'nope'" in reply["result"]["content"][0]["text"]
        _, reply = _post(url, {"jsonrpc": "2.0", "id": 4, "method": "server/discover", "params": {}})
        assert reply["error"]["code"] == -32601
        _, reply = _post(kit, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        assert [t["name"] for t in reply["result"]["tools"]] == ["boom"]
        assert _post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"})[0] == 202
        # without the token (or with a wrong one) nothing is served, not even the method list
        assert _post(url, {"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, path="/mcp")[0] == 404
        assert (
            _post(url, {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}, path="/x" + url.split("/", 3)[3])[0] == 404
        )
        port = endpoint.port
    finally:
        endpoint.stop()
    assert port is not None and endpoint.port is None
    with pytest.raises(OSError):
        _post(url, {"jsonrpc": "2.0", "id": 8, "method": "ping"})


# ---- subagent links ---------------------------------------------------------------------------------------
def test_subagent_runs_are_linked_to_the_tool_uses_with_their_arguments() -> None:
    log = SubagentLog()
    log.add(SubagentRun("caw", "helper", {"task": "b"}, "/x/b.json", "codex", UsageStats(input_tokens=5)))
    log.add(SubagentRun("caw", "helper", {"task": "a"}, "/x/a.json", "codex", UsageStats(input_tokens=7)))
    turn = Turn(
        input="go",
        output=[
            ToolUse(id="1", name="mcp__caw__helper", arguments={"task": "a"}),
            ToolUse(id="2", name="caw_helper", arguments={"task": "b"}),
            ToolUse(id="3", name="Bash", arguments={"command": "ls"}),
        ],
    )
    assert log.link(turn) == 2
    a, b, bash = turn.tool_uses
    assert (a.subagent, b.subagent, bash.subagent) == ("/x/a.json", "/x/b.json", None)
    traj = caw.Trajectory(turns=[turn])
    assert traj.subagent_usage.input_tokens == 12 and traj.usage.input_tokens == 0
    assert caw.Trajectory.from_dict(traj.to_dict()).turns[0].tool_uses[0].subagent == "/x/a.json"


def test_tool_server_names_are_unique() -> None:
    with pytest.raises(ConfigurationError):
        ToolServer.of("s", [function_tool(lambda: 1, name="x"), function_tool(lambda: 2, name="x")])


def test_sync_tools_run_on_at_most_max_workers_daemon_threads() -> None:
    gate, full = threading.Event(), threading.Event()
    running, peak = [0], [0]
    lock = threading.Lock()

    def busy(i: int) -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            if running[0] == 2:
                full.set()
        gate.wait(5)
        with lock:
            running[0] -= 1
        return threading.current_thread().daemon  # a stuck tool must not hold the interpreter at exit

    ex = ToolExecutor(max_workers=2, timeout=10)
    spec = function_tool(busy)
    out: list[tuple[str, bool]] = []
    callers = [threading.Thread(target=lambda i=i: out.append(ex.run(spec, {"i": i}))) for i in range(5)]
    for t in callers:
        t.start()
    assert full.wait(5)  # two run, three wait for a slot
    gate.set()
    for t in callers:
        t.join(10)
    ex.close()
    assert out == [("true", False)] * 5 and peak[0] == 2
